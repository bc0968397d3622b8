-- The database itself refuses two live bookings of one doctor whose occupied ranges
-- [starts_at, occupied_until) overlap, whatever code path writes them: the rule PostgreSQL's
-- `bookings_no_overlap` exclusion constraint enforces, written as triggers. An empty range
-- overlaps nothing (as int8range's); cancelled bookings and bookings without a doctor block
-- nothing. The error's message is the constraint's name, which is how the booking engine
-- recognises it (db::bookings::is_overlap_violation) and answers the same 409 as PostgreSQL's.
CREATE TRIGGER bookings_no_overlap_insert
BEFORE INSERT ON bookings
WHEN NEW.status <> 'cancelled' AND NEW.doctor_id IS NOT NULL AND NEW.starts_at < NEW.occupied_until
BEGIN
    SELECT RAISE(ABORT, 'bookings_no_overlap')
    WHERE EXISTS (
        SELECT 1 FROM bookings
        WHERE doctor_id = NEW.doctor_id
          AND status <> 'cancelled'
          AND starts_at < NEW.occupied_until
          AND NEW.starts_at < occupied_until
          AND starts_at < occupied_until
    );
END;

-- PostgreSQL checks an updated row when a column of the constraint (or of its WHERE) changes.
CREATE TRIGGER bookings_no_overlap_update
BEFORE UPDATE OF doctor_id, starts_at, occupied_until, status ON bookings
WHEN NEW.status <> 'cancelled' AND NEW.doctor_id IS NOT NULL AND NEW.starts_at < NEW.occupied_until
BEGIN
    SELECT RAISE(ABORT, 'bookings_no_overlap')
    WHERE EXISTS (
        SELECT 1 FROM bookings
        WHERE id <> OLD.id
          AND doctor_id = NEW.doctor_id
          AND status <> 'cancelled'
          AND starts_at < NEW.occupied_until
          AND NEW.starts_at < occupied_until
          AND starts_at < occupied_until
    );
END;
