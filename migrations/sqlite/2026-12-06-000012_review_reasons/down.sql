ALTER TABLE unanswered_questions DROP COLUMN detail;
ALTER TABLE unanswered_questions DROP COLUMN reason;
