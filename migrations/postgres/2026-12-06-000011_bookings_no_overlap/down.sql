COMMENT ON CONSTRAINT bookings_no_overlap ON bookings IS NULL;
