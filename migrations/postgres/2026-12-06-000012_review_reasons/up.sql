-- The review list holds more than questions the bot could not answer: `reason` says why a row is
-- there ('unanswered', or 'conflict' when the bot's facts and a knowledge passage disagreed and
-- the bot answered with its facts), `detail` what a person should compare.
ALTER TABLE unanswered_questions ADD COLUMN reason TEXT NOT NULL DEFAULT 'unanswered';
ALTER TABLE unanswered_questions ADD COLUMN detail TEXT;
