-- What a booking blocks: its appointment plus the service's buffer, [starts_at, occupied_until).
-- Names are kept on the booking so that history survives a doctor or service being deleted.
ALTER TABLE bookings ADD COLUMN occupied_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE bookings ADD COLUMN doctor_name TEXT NOT NULL DEFAULT '';
ALTER TABLE bookings ADD COLUMN service_name TEXT NOT NULL DEFAULT '';
UPDATE bookings SET occupied_until = ends_at;
CREATE INDEX bookings_doctor_occupied ON bookings(doctor_id, starts_at, occupied_until) WHERE status <> 'cancelled';
CREATE INDEX bookings_contact ON bookings(contact_id, starts_at);
CREATE INDEX bookings_conversation ON bookings(conversation_id);
CREATE INDEX booking_holds_expiry ON booking_holds(expires_at);
CREATE UNIQUE INDEX leads_contact ON leads(contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX leads_conversation ON leads(conversation_id);
CREATE INDEX form_submissions_form ON form_submissions(form_id, created_at);
