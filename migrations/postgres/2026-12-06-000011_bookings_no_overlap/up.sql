-- PostgreSQL has refused overlapping bookings since 2026-11-21-000002_bookings (the exclusion
-- constraint); this migration, which gives SQLite the same rule as triggers, only documents it,
-- so that both backends keep the same migration names.
COMMENT ON CONSTRAINT bookings_no_overlap ON bookings IS
    'Two live bookings of one doctor never overlap: [starts_at, occupied_until), cancelled ones excluded. SQLite: triggers of the same name.';
