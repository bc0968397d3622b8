ALTER TABLE conversations DROP COLUMN fence;
