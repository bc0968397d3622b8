//! Reads the day and time a website visitor asks for when booking in the chat.
//!
//! [`parse`] looks for everyday ways of saying when ("next Monday at 3pm", "15 May 10:00",
//! "tomorrow morning", "2026-05-15", "half past 2") anywhere in a message, relative to today in
//! the practice's time zone. [`say_date`] and [`say_time`] give the bot's way of saying them back.
//! Understanding what the visitor meant is the whole job: whether the practice is open or a slot
//! is free is for the booking code to decide.
//!
//! The text is split into words, digit runs and single symbols, remembering which ones touch (so
//! "3:30" is a time and "3 : 30" is not). Dates are read first and their tokens set aside, so a
//! date's numbers can never be read again as a time; a part of day is noted next, because it
//! settles whether a bare "at 8" is morning or evening; the clock time comes last.
//!
//! Rules for what a visitor leaves open:
//!
//! - Dates without a year are never in the past: a weekday, "15 May" or "the 20th" means the
//!   first such day on or after today ("monday" said on a Monday is today; "15 Jan" said in
//!   November is next January; "29 Feb" is the next leap day). A date written with its year
//!   ("2026-05-15", "15/05/2026", "15 May 2026") is returned as written even when it has passed,
//!   so the bot can say so rather than quietly move it.
//! - "next <weekday>" is that weekday in the calendar week (Monday to Sunday) after this one: on
//!   a Wednesday, "next monday" is 5 days later and "next friday" 9 days later; on a Monday,
//!   "next monday" is 7 days later. "this <weekday>" and "<weekday> next week" follow the plain
//!   and the "next" rule respectively; "last <weekday>" is not a booking date and is ignored.
//! - All-numeric dates are day first ("05/06/2026" is 5 June), as most of the world writes them,
//!   unless the day-first reading is impossible and the month-first one is not ("05/15/2026" is
//!   15 May). A leading four-digit year means year-month-day. A two-digit year is in the 2000s.
//! - A bare hour is read as a clinic's day: 1 to 7 are afternoon or evening (15:00 for "at 3"),
//!   8 to 11 are morning, 12 is noon. A part of day said in the same message wins ("at 8 in the
//!   evening" is 20:00, "morning at 7" is 07:00), as does a leading zero ("07:30"), which is how
//!   24-hour times are written.
//! - A number alone is only a time with "at"/"@" before it, a colon, "am"/"pm" or "o'clock":
//!   "I have 2 kids", phone numbers and "in 3 days" have no time in them.
//! - Ranges ("10-11am", "between 2 and 4") are not understood and yield no time; the bot asks.
//! - A date or time that is written but impossible ("31 February", "2026-13-40", "25:00") yields
//!   `None` rather than a guess, even when something vaguer (a weekday) is also in the message.
//! - When a message names several dates or times, the first one of the most specific kind wins:
//!   a written date over "the 20th", over "tomorrow"-like words, over a weekday.

use chrono::{Datelike, Days, Months, NaiveDate, NaiveTime, Timelike, Weekday};

/// What a message said about when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct When {
    pub date: Option<NaiveDate>,
    pub time: Option<NaiveTime>,
    /// A part of day named without a clock time ("in the morning", "afternoon", "evening"): the
    /// earliest and latest acceptable start as times.
    pub part_of_day: Option<(NaiveTime, NaiveTime)>,
}

/// Reads a date and/or a time from `text`. `today` is the current date in the practice's time
/// zone (callers compute it with chrono-tz). See the module documentation for how open or
/// ambiguous phrasings are settled; in short, a date without a year is the first such day on or
/// after today, "next <weekday>" is that day in the following Monday-to-Sunday week, numeric
/// dates are day first, and a bare hour from 1 to 7 is in the afternoon.
pub fn parse(text: &str, today: NaiveDate) -> When {
    let mut reader = Reader::new(text);
    let date = reader.date(today);
    let part = reader.part_of_day();
    let narrowed = part.and_then(|(part, i)| reader.narrowed(part, i));
    let part = part.map(|(part, _)| part);
    // "around 10", "10ish": a window an hour either side, answered with the nearest free times.
    if let Some(time) = reader.rough_time(part) {
        let from = if time.hour() >= 1 { time - chrono::Duration::hours(1) } else { NaiveTime::MIN };
        let to = if time.hour() <= 22 { time + chrono::Duration::hours(1) } else { hour(23) };
        return When { date, time: None, part_of_day: Some((from, to)) };
    }
    let time = reader.time(part);
    let part_of_day = match (time, part) {
        (None, Some(part)) => Some(narrowed.unwrap_or(part.window())),
        _ => None,
    };
    When { date, time, part_of_day }
}

/// Formats a date the way the bot says it back: "Friday 15 May".
pub fn say_date(date: NaiveDate) -> String {
    date.format("%A %-d %B").to_string()
}

/// Formats a time the way the bot says it back: "3:30 PM", "10:00 AM", "12:00 PM".
pub fn say_time(time: NaiveTime) -> String {
    time.format("%-I:%M %p").to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartOfDay {
    Morning,
    Afternoon,
    Evening,
}

impl PartOfDay {
    fn window(self) -> (NaiveTime, NaiveTime) {
        let (from, to) = match self {
            PartOfDay::Morning => (8, 12),
            PartOfDay::Afternoon => (12, 17),
            PartOfDay::Evening => (17, 21),
        };
        (hour(from), hour(to))
    }
}

fn hour(h: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, 0, 0).unwrap_or(NaiveTime::MIN)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meridiem {
    Am,
    Pm,
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Num(String),
    Sym(char),
}

/// Words that may follow a date or an hour without making it something else. Used where the
/// same characters are often not a date at all ("may 2 of us come", "the 3rd floor", "at one
/// point"); "of" is left out on purpose.
const FOLLOWERS: &[&str] = &[
    "at",
    "on",
    "in",
    "or",
    "and",
    "then",
    "please",
    "pls",
    "is",
    "would",
    "could",
    "works",
    "work",
    "ok",
    "okay",
    "if",
    "for",
    "maybe",
    "possible",
    "around",
    "about",
    "from",
    "between",
    "after",
    "before",
    "by",
    "till",
    "until",
    "this",
    "next",
    "tomorrow",
    "today",
    "tonight",
    "morning",
    "afternoon",
    "evening",
    "night",
    "am",
    "pm",
    "oclock",
    "o",
    "instead",
    "too",
    "also",
    "good",
    "fine",
    "free",
    "available",
    "the",
];

const TOMORROW: &[&str] = &["tomorrow", "tmrw", "tmr", "tomorow", "tommorow", "tommorrow"];

struct Reader {
    tokens: Vec<Token>,
    /// Whether whitespace came before each token.
    spaced: Vec<bool>,
    /// Tokens already read as part of a date or time, so nothing reads them twice.
    used: Vec<bool>,
}

impl Reader {
    fn new(text: &str) -> Self {
        let chars: Vec<char> = text.to_lowercase().chars().collect();
        let mut tokens = Vec::new();
        let mut spaced = Vec::new();
        let mut space_before = true;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c.is_whitespace() {
                space_before = true;
                i += 1;
                continue;
            }
            let token = if c.is_ascii_digit() {
                let start = i;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                Token::Num(chars[start..i].iter().collect())
            } else if c.is_alphabetic() {
                let mut word = String::new();
                while i < chars.len() {
                    if chars[i].is_alphabetic() {
                        word.push(chars[i]);
                    } else if !(matches!(chars[i], '\'' | '’') && chars.get(i + 1).is_some_and(|c| c.is_alphabetic()))
                    {
                        break;
                    }
                    // An apostrophe inside a word is dropped so "o'clock" and "oclock" read alike.
                    i += 1;
                }
                Token::Word(word)
            } else {
                i += 1;
                Token::Sym(c)
            };
            tokens.push(token);
            spaced.push(space_before);
            space_before = false;
        }
        let used = vec![false; tokens.len()];
        Reader { tokens, spaced, used }
    }

    fn word(&self, i: usize) -> Option<&str> {
        match self.tokens.get(i) {
            Some(Token::Word(word)) => Some(word),
            _ => None,
        }
    }

    fn is_word(&self, i: usize, any_of: &[&str]) -> bool {
        self.word(i).is_some_and(|word| any_of.contains(&word))
    }

    fn digits(&self, i: usize) -> Option<&str> {
        match self.tokens.get(i) {
            Some(Token::Num(digits)) => Some(digits),
            _ => None,
        }
    }

    /// The value of a run of at most `max_len` digits; longer runs are phone numbers, ids or
    /// noise, never part of a date or a time.
    fn number(&self, i: usize, max_len: usize) -> Option<u32> {
        self.digits(i).filter(|digits| digits.len() <= max_len).and_then(|digits| digits.parse().ok())
    }

    fn is_sym(&self, i: usize, c: char) -> bool {
        self.tokens.get(i) == Some(&Token::Sym(c))
    }

    /// Whether token `i` exists and is written right against the one before it.
    fn touches(&self, i: usize) -> bool {
        self.spaced.get(i) == Some(&false)
    }

    /// Whether what comes at `i` lets the date or hour before it stand (see [`FOLLOWERS`]).
    fn phrase_ends(&self, i: usize) -> bool {
        match self.tokens.get(i) {
            Some(Token::Word(word)) => {
                FOLLOWERS.contains(&word.as_str()) || weekday_named(word).is_some() || month_number(word).is_some()
            }
            _ => true,
        }
    }

    /// Runs `find` at every position, setting aside the tokens of each match, and returns the
    /// first match. Later matches are still set aside so their numbers are not misread later.
    fn scan<T>(&mut self, find: impl Fn(&Self, usize) -> Option<(usize, T)>) -> Option<T> {
        let mut first = None;
        let mut i = 0;
        while i < self.tokens.len() {
            match find(self, i) {
                Some((end, found)) if end > i && self.used.get(i..end).is_some_and(|used| !used.contains(&true)) => {
                    self.used[i..end].fill(true);
                    first = first.or(Some(found));
                    i = end;
                }
                _ => i += 1,
            }
        }
        first
    }

    fn date(&mut self, today: NaiveDate) -> Option<NaiveDate> {
        let written = self.scan(|r, i| r.numeric_date(i).or_else(|| r.month_date(i, today)));
        let ordinal = self.scan(|r, i| r.day_of_month(i, today));
        let relative = self.scan(|r, i| r.relative_day(i, today));
        let weekday = self.scan(|r, i| r.weekday(i, today));
        written.or(ordinal).or(relative).or(weekday).flatten()
    }

    /// "2026-05-15", "15/05/2026", "15.05.2026", "15/05/26".
    fn numeric_date(&self, i: usize) -> Option<(usize, Option<NaiveDate>)> {
        let sep = match self.tokens.get(i + 1) {
            Some(Token::Sym(c @ ('-' | '/' | '.'))) => *c,
            _ => return None,
        };
        if !self.is_sym(i + 3, sep) || !(i + 1..i + 5).all(|k| self.touches(k)) {
            return None;
        }
        let (a, b, c) = (self.digits(i)?, self.digits(i + 2)?, self.digits(i + 4)?);
        // Longer chains are version numbers or addresses, not dates.
        let chained_after = self.is_sym(i + 5, sep) && self.touches(i + 5) && self.touches(i + 6);
        let chained_before = i >= 2 && self.touches(i) && self.is_sym(i - 1, sep) && self.touches(i - 1);
        if chained_after || chained_before {
            return None;
        }
        let short = |s: &str| (1..=2).contains(&s.len());
        let value = |s: &str| s.parse::<u32>().ok();
        let date = if a.len() == 4 && short(b) && short(c) {
            NaiveDate::from_ymd_opt(value(a)? as i32, value(b)?, value(c)?)
        } else if short(a) && short(b) && (c.len() == 4 || (c.len() == 2 && sep != '-')) {
            let year = value(c)? + if c.len() == 2 { 2000 } else { 0 };
            let (a, b) = (value(a)?, value(b)?);
            let (day, month) = if a > 12 || b <= 12 { (a, b) } else { (b, a) };
            NaiveDate::from_ymd_opt(year as i32, month, day)
        } else {
            return None;
        };
        Some((i + 5, date))
    }

    /// "15 May", "15th of May", "May 15", "May the 15th", each optionally with ", 2027".
    fn month_date(&self, i: usize, today: NaiveDate) -> Option<(usize, Option<NaiveDate>)> {
        if let Some(day) = self.number(i, 2) {
            // "at 3 may I…" and "10:15 may…" are a time followed by the verb.
            let after_time = i > 0 && self.touches(i) && (self.is_sym(i - 1, ':') || self.is_sym(i - 1, '.'));
            if after_time || (i > 0 && self.is_word(i - 1, &["at"])) {
                return None;
            }
            let mut k = i + 1;
            if self.has_ordinal_suffix(k) {
                k += 1;
            }
            if self.is_word(k, &["of"]) {
                k += 1;
            }
            let month = self.word(k).and_then(month_number)?;
            return Some(self.with_year(self.skip_abbreviation_dot(k + 1), day, month, today));
        }
        let month = self.word(i).and_then(month_number)?;
        let mut k = self.skip_abbreviation_dot(i + 1);
        if self.is_word(k, &["the"]) {
            k += 1;
        }
        let day = self.number(k, 2)?;
        k += 1;
        let ordinal = self.has_ordinal_suffix(k);
        if ordinal {
            k += 1;
        }
        let (end, date) = self.with_year(k, day, month, today);
        if !ordinal && end == k {
            // Without a suffix or a year, "may" is as likely the verb: "May 2 of us come?",
            // "May 3pm work?".
            let time_follows = self.meridiem(k).is_some() || (self.is_sym(k, ':') && self.touches(k));
            if time_follows || !self.phrase_ends(k) {
                return None;
            }
        }
        Some((end, date))
    }

    fn has_ordinal_suffix(&self, i: usize) -> bool {
        self.touches(i) && self.is_word(i, &["st", "nd", "rd", "th"])
    }

    fn skip_abbreviation_dot(&self, i: usize) -> usize {
        if self.is_sym(i, '.') && self.touches(i) {
            i + 1
        } else {
            i
        }
    }

    /// Reads an optional year at `i` (after an optional comma) for the given day and month.
    fn with_year(&self, i: usize, day: u32, month: u32, today: NaiveDate) -> (usize, Option<NaiveDate>) {
        let at = if self.is_sym(i, ',') { i + 1 } else { i };
        // Other four-digit numbers after a date are more likely a 24-hour time ("15 May 1030").
        let year = self.digits(at).filter(|d| d.len() == 4).and_then(|d| d.parse::<i32>().ok());
        match year.filter(|year| (1900..=2199).contains(year)) {
            Some(year) => (at + 1, NaiveDate::from_ymd_opt(year, month, day)),
            None => (i, upcoming(today, month, day)),
        }
    }

    /// "the 20th", "on 20th": that day of this month, or of the next month that has it.
    fn day_of_month(&self, i: usize, today: NaiveDate) -> Option<(usize, Option<NaiveDate>)> {
        if !self.is_word(i, &["the", "on"]) || !self.has_ordinal_suffix(i + 2) || !self.phrase_ends(i + 3) {
            return None;
        }
        let day = self.number(i + 1, 2).filter(|day| (1..=31).contains(day))?;
        let (mut year, mut month) = (today.year(), today.month());
        // Every day 1..=31 exists in at least one of any twelve consecutive months.
        for _ in 0..12 {
            if let Some(date) = NaiveDate::from_ymd_opt(year, month, day).filter(|date| *date >= today) {
                return Some((i + 3, Some(date)));
            }
            (year, month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
        }
        Some((i + 3, None))
    }

    /// "today", "tonight", "this afternoon", "tomorrow", "day after tomorrow", "in 3 days".
    fn relative_day(&self, i: usize, today: NaiveDate) -> Option<(usize, Option<NaiveDate>)> {
        let (end, days) = match self.word(i)? {
            "today" | "tonight" => (i + 1, 0),
            "this" if self.is_word(i + 1, &["morning", "afternoon", "evening"]) => (i + 2, 0),
            word if TOMORROW.contains(&word) => (i + 1, 1),
            "day" if self.is_word(i + 1, &["after"]) && self.is_word(i + 2, TOMORROW) => (i + 3, 2),
            "in" => return self.in_so_many(i, today),
            _ => return None,
        };
        Some((end, today.checked_add_days(Days::new(days))))
    }

    fn in_so_many(&self, i: usize, today: NaiveDate) -> Option<(usize, Option<NaiveDate>)> {
        let count = match self.word(i + 1) {
            Some("a" | "an") => 1,
            Some(word) => spelled_number(word)?,
            None => self.number(i + 1, 4)?,
        };
        let date = match self.word(i + 2)? {
            "day" | "days" => today.checked_add_days(Days::new(count.into())),
            "week" | "weeks" => today.checked_add_days(Days::new(u64::from(count) * 7)),
            "fortnight" | "fortnights" => today.checked_add_days(Days::new(u64::from(count) * 14)),
            "month" | "months" => today.checked_add_months(Months::new(count)),
            _ => return None,
        };
        Some((i + 3, date))
    }

    /// "monday", "on Tue", "this friday", "next Monday", "friday next week".
    fn weekday(&self, i: usize, today: NaiveDate) -> Option<(usize, Option<NaiveDate>)> {
        let word = self.word(i)?;
        let weekday = weekday_named(word)?;
        let before = i.checked_sub(1).and_then(|p| self.word(p));
        if matches!(before, Some("last" | "past" | "previous")) {
            return None;
        }
        // These abbreviations are also everyday words ("I sat in", "the sun"), so they need
        // something around them that only a day would have.
        if matches!(word, "sat" | "sun" | "wed") {
            let day_before =
                matches!(before, Some("on" | "this" | "next" | "coming" | "by" | "until" | "till" | "from"));
            let day_after = self.word(i + 1).is_none()
                || self.is_word(i + 1, &["at", "morning", "afternoon", "evening", "night", "am", "pm"]);
            if !day_before && !day_after {
                return None;
            }
        }
        let next_week_after = self.is_word(i + 1, &["next"]) && self.is_word(i + 2, &["week"]);
        let date = if before == Some("next") || next_week_after {
            in_next_week(today, weekday)
        } else {
            on_or_after(today, weekday)
        };
        Some((if next_week_after { i + 3 } else { i + 1 }, date))
    }

    /// The part of day named, and where.
    fn part_of_day(&self) -> Option<(PartOfDay, usize)> {
        (0..self.tokens.len()).find_map(|i| {
            let part = match self.word(i)? {
                "morning" | "mornings" => PartOfDay::Morning,
                "afternoon" | "afternoons" => PartOfDay::Afternoon,
                "evening" | "evenings" | "tonight" | "night" => PartOfDay::Evening,
                _ => return None,
            };
            // "Good morning" is a greeting, not a wish for a morning slot.
            let greeting = i > 0 && self.is_word(i - 1, &["good"]);
            (!greeting).then_some((part, i))
        })
    }

    /// "Early" or "late" before the part of day at `i` narrows it to its first or last part:
    /// late morning is 10:00–12:00, early afternoon 12:00–14:00.
    fn narrowed(&self, part: PartOfDay, i: usize) -> Option<(NaiveTime, NaiveTime)> {
        let qualifier = (i > 0).then(|| self.word(i - 1)).flatten()?;
        let (from, to) = part.window();
        let middle = NaiveTime::from_num_seconds_from_midnight_opt(
            (from.num_seconds_from_midnight() + to.num_seconds_from_midnight()) / 2,
            0,
        )?;
        match qualifier {
            "early" => Some((from, middle)),
            "late" => Some((middle, to)),
            _ => None,
        }
    }

    /// A time said as a rough one: "around 10", "about 3pm", "10ish", "roughly at 9". A number
    /// followed by a unit ("about 3 weeks ago") is not a time.
    fn rough_time(&self, part: Option<PartOfDay>) -> Option<NaiveTime> {
        const UNITS: &[&str] = &[
            "week", "weeks", "day", "days", "month", "months", "year", "years", "hour", "hours", "minute", "minutes",
            "min", "mins", "people", "kids", "children", "times", "euros", "dollars",
        ];
        (0..self.tokens.len()).find_map(|i| {
            // "How about 3pm?" proposes 3pm exactly.
            let proposal = self.is_word(i, &["about"]) && i > 0 && self.is_word(i - 1, &["how", "what"]);
            let number = if !proposal && self.is_word(i, &["around", "about", "approximately", "roughly", "circa"]) {
                if self.is_word(i + 1, &["at"]) {
                    i + 2
                } else {
                    i + 1
                }
            } else if self.is_word(i, &["ish"]) && i > 0 && self.digits(i - 1).is_some() {
                i - 1
            } else {
                return None;
            };
            self.digits(number)?;
            let (end, time) = self.clock(number, true, part)?;
            (!self.is_word(end, UNITS)).then_some(time).flatten()
        })
    }

    fn time(&mut self, part: Option<PartOfDay>) -> Option<NaiveTime> {
        self.scan(|r, i| r.time_at(i, part)).flatten()
    }

    fn time_at(&self, i: usize, part: Option<PartOfDay>) -> Option<(usize, Option<NaiveTime>)> {
        match self.word(i) {
            Some("noon" | "midday") => Some((i + 1, Some(hour(12)))),
            Some("midnight") => Some((i + 1, Some(hour(0)))),
            Some("half" | "quarter") => self.past_or_to(i, part),
            Some("at") => self.clock(i + 1, true, part),
            _ if self.is_sym(i, '@') => self.clock(i + 1, true, part),
            _ => self.clock(i, false, part),
        }
    }

    /// "3pm", "3:30 p.m.", "15:30", "10 o'clock", and after "at" also "3", "three", "10.30".
    fn clock(&self, i: usize, after_at: bool, part: Option<PartOfDay>) -> Option<(usize, Option<NaiveTime>)> {
        let (hour, zero_led, spelled) = match self.digits(i) {
            Some(digits) if digits.len() <= 2 => {
                (digits.parse().ok()?, digits.starts_with('0') && digits.len() == 2, false)
            }
            Some(_) => return None,
            None => (self.word(i).and_then(spelled_number).filter(|n| *n <= 12)?, false, true),
        };
        // A number glued to "+", "-", "/", "." or ":" belongs to a phone number, a range or a
        // date, not to a clock.
        let glued = !after_at
            && i > 0
            && self.touches(i)
            && matches!(self.tokens[i - 1], Token::Sym('+' | '-' | '/' | '.' | ':'));
        if glued {
            return None;
        }
        let mut k = i + 1;
        let (mut minute, mut colon, mut dotted) = (0, false, false);
        if !spelled && (self.is_sym(k, ':') || self.is_sym(k, '.')) && self.touches(k) && self.touches(k + 1) {
            if let Some(m) = self.digits(k + 1).filter(|m| m.len() == 2) {
                minute = m.parse().ok()?;
                colon = self.is_sym(k, ':');
                dotted = !colon;
                k += 2;
            }
        }
        let meridiem = self.meridiem(k);
        let oclock = if meridiem.is_none() { self.oclock(k) } else { None };
        let end = k + meridiem.map_or(0, |(_, len)| len) + oclock.unwrap_or(0);
        if !colon && meridiem.is_none() && oclock.is_none() {
            if !after_at || hour > 23 {
                return None;
            }
            // "at 5 555 1234" is a phone number; "at one point" is not a time.
            let phone = self.digits(k).is_some();
            if (!dotted && phone) || (spelled && !self.phrase_ends(k)) {
                return None;
            }
        }
        let hour = resolve_hour(hour, zero_led, meridiem.map(|(m, _)| m), part);
        Some((end, hour.and_then(|h| NaiveTime::from_hms_opt(h, minute, 0))))
    }

    /// "am", "pm", "a.m.", "p.m" at `i`, with how many tokens they take.
    fn meridiem(&self, i: usize) -> Option<(Meridiem, usize)> {
        let meridiem = match self.word(i)? {
            "am" => return Some((Meridiem::Am, 1)),
            "pm" => return Some((Meridiem::Pm, 1)),
            "a" => Meridiem::Am,
            "p" => Meridiem::Pm,
            _ => return None,
        };
        let dotted =
            self.is_sym(i + 1, '.') && self.touches(i + 1) && self.is_word(i + 2, &["m"]) && self.touches(i + 2);
        if !dotted {
            return None;
        }
        let closing_dot = self.is_sym(i + 3, '.') && self.touches(i + 3);
        Some((meridiem, if closing_dot { 4 } else { 3 }))
    }

    fn oclock(&self, i: usize) -> Option<usize> {
        if self.is_word(i, &["oclock"]) {
            Some(1)
        } else if self.is_word(i, &["o"]) && self.is_word(i + 1, &["clock"]) {
            Some(2)
        } else {
            None
        }
    }

    /// "half past 2", "quarter past three", "quarter to 9 am".
    fn past_or_to(&self, i: usize, part: Option<PartOfDay>) -> Option<(usize, Option<NaiveTime>)> {
        let quarter = self.is_word(i, &["quarter"]);
        let past = self.is_word(i + 1, &["past", "after"]);
        let to = quarter && self.is_word(i + 1, &["to", "till", "til", "before"]);
        if !past && !to {
            return None;
        }
        let hour = match self.word(i + 2) {
            Some(word) => spelled_number(word)?,
            None => self.number(i + 2, 2).filter(|h| *h <= 23)?,
        };
        let meridiem = self.meridiem(i + 3);
        let end = i + 3 + meridiem.map_or(0, |(_, len)| len);
        let time = resolve_hour(hour, false, meridiem.map(|(m, _)| m), part).and_then(|h| match (quarter, to) {
            (true, true) => NaiveTime::from_hms_opt((h + 23) % 24, 45, 0),
            (true, false) => NaiveTime::from_hms_opt(h, 15, 0),
            _ => NaiveTime::from_hms_opt(h, 30, 0),
        });
        Some((end, time))
    }
}

/// The 24-hour hour for an hour as written; see the module documentation for bare hours.
fn resolve_hour(hour: u32, zero_led: bool, meridiem: Option<Meridiem>, part: Option<PartOfDay>) -> Option<u32> {
    match meridiem {
        Some(Meridiem::Am) => match hour {
            12 => Some(0),
            1..=11 => Some(hour),
            _ => None,
        },
        Some(Meridiem::Pm) => match hour {
            1..=11 => Some(hour + 12),
            // "15pm" is redundant rather than wrong.
            12..=23 => Some(hour),
            _ => None,
        },
        None if zero_led || hour == 0 || hour >= 12 => (hour <= 23).then_some(hour),
        None => Some(match part {
            Some(PartOfDay::Morning) => hour,
            Some(PartOfDay::Afternoon | PartOfDay::Evening) => hour + 12,
            None if hour <= 7 => hour + 12,
            None => hour,
        }),
    }
}

/// The first day with this month and day on or after `today`, looking far enough ahead to
/// reach the next 29 February.
fn upcoming(today: NaiveDate, month: u32, day: u32) -> Option<NaiveDate> {
    (today.year()..=today.year().saturating_add(8))
        .filter_map(|year| NaiveDate::from_ymd_opt(year, month, day))
        .find(|date| *date >= today)
}

fn on_or_after(today: NaiveDate, weekday: Weekday) -> Option<NaiveDate> {
    let ahead = (7 + weekday.num_days_from_monday() - today.weekday().num_days_from_monday()) % 7;
    today.checked_add_days(Days::new(ahead.into()))
}

fn in_next_week(today: NaiveDate, weekday: Weekday) -> Option<NaiveDate> {
    let to_next_monday = 7 - today.weekday().num_days_from_monday();
    today.checked_add_days(Days::new((to_next_monday + weekday.num_days_from_monday()).into()))
}

fn weekday_named(word: &str) -> Option<Weekday> {
    Some(match word {
        "monday" | "mondays" | "mon" => Weekday::Mon,
        "tuesday" | "tuesdays" | "tue" | "tues" => Weekday::Tue,
        "wednesday" | "wednesdays" | "wed" | "weds" => Weekday::Wed,
        "thursday" | "thursdays" | "thu" | "thur" | "thurs" => Weekday::Thu,
        "friday" | "fridays" | "fri" => Weekday::Fri,
        "saturday" | "saturdays" | "sat" => Weekday::Sat,
        "sunday" | "sundays" | "sun" => Weekday::Sun,
        _ => return None,
    })
}

fn month_number(word: &str) -> Option<u32> {
    Some(match word {
        "january" | "jan" => 1,
        "february" | "feb" => 2,
        "march" | "mar" => 3,
        "april" | "apr" => 4,
        "may" => 5,
        "june" | "jun" => 6,
        "july" | "jul" => 7,
        "august" | "aug" => 8,
        "september" | "sep" | "sept" => 9,
        "october" | "oct" => 10,
        "november" | "nov" => 11,
        "december" | "dec" => 12,
        _ => return None,
    })
}

fn spelled_number(word: &str) -> Option<u32> {
    let n = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
        .iter()
        .position(|name| *name == word)?;
    Some(n as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Wednesday.
    fn wed() -> NaiveDate {
        d(2026, 11, 18)
    }

    /// A Monday.
    fn mon() -> NaiveDate {
        d(2026, 11, 16)
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn date(text: &str) -> Option<NaiveDate> {
        parse(text, wed()).date
    }

    fn time(text: &str) -> Option<NaiveTime> {
        parse(text, wed()).time
    }

    #[test]
    fn fixed_days_are_the_weekdays_the_tests_assume() {
        assert_eq!(wed().weekday(), Weekday::Wed);
        assert_eq!(mon().weekday(), Weekday::Mon);
    }

    #[test]
    fn empty_and_unrelated_text_says_nothing() {
        assert_eq!(parse("", wed()), When::default());
        assert_eq!(parse("Hello, do you take new patients?", wed()), When::default());
    }

    #[test]
    fn today_tomorrow_and_the_day_after() {
        assert_eq!(date("today please"), Some(wed()));
        assert_eq!(date("Can I come TOMORROW?"), Some(d(2026, 11, 19)));
        assert_eq!(date("tmrw"), Some(d(2026, 11, 19)));
        assert_eq!(date("the day after tomorrow."), Some(d(2026, 11, 20)));
        assert_eq!(date("day after tomorrow, at 3"), Some(d(2026, 11, 20)));
    }

    #[test]
    fn tonight_is_today_in_the_evening() {
        let when = parse("Anything tonight?", wed());
        assert_eq!(when.date, Some(wed()));
        assert_eq!(when.time, None);
        assert_eq!(when.part_of_day, Some((t(17, 0), t(21, 0))));
    }

    #[test]
    fn tonight_makes_a_bare_hour_evening() {
        let when = parse("tonight at 8", wed());
        assert_eq!(when.time, Some(t(20, 0)));
        assert_eq!(when.part_of_day, None);
    }

    #[test]
    fn this_afternoon_is_today() {
        let when = parse("this afternoon?", wed());
        assert_eq!(when.date, Some(wed()));
        assert_eq!(when.part_of_day, Some((t(12, 0), t(17, 0))));
    }

    #[test]
    fn bare_weekday_is_the_next_one_on_or_after_today() {
        assert_eq!(date("friday"), Some(d(2026, 11, 20)));
        assert_eq!(date("on Tue"), Some(d(2026, 11, 24)));
        assert_eq!(date("Monday works"), Some(d(2026, 11, 23)));
        assert_eq!(date("wednesday"), Some(wed()));
        assert_eq!(date("sunday?"), Some(d(2026, 11, 22)));
        assert_eq!(parse("monday", mon()).date, Some(mon()));
    }

    #[test]
    fn weekday_abbreviations() {
        let expected = [
            ("mon", 23),
            ("tue", 24),
            ("tues", 24),
            ("wed", 18),
            ("thu", 19),
            ("thurs", 19),
            ("fri", 20),
            ("sat", 21),
            ("sun", 22),
        ];
        for (text, day) in expected {
            assert_eq!(date(&format!("on {text}.")), Some(d(2026, 11, day)), "{text}");
        }
    }

    #[test]
    fn everyday_words_that_look_like_weekdays_are_not_days() {
        assert_eq!(date("I sat in the waiting room for an hour"), None);
        assert_eq!(date("out in the sun all day"), None);
        assert_eq!(date("Sat at 10?"), Some(d(2026, 11, 21)));
    }

    #[test]
    fn this_weekday_is_the_plain_weekday() {
        assert_eq!(date("this friday"), Some(d(2026, 11, 20)));
        assert_eq!(date("this Wednesday"), Some(wed()));
        assert_eq!(date("this coming monday"), Some(d(2026, 11, 23)));
    }

    #[test]
    fn next_weekday_is_in_the_following_calendar_week() {
        // On a Wednesday.
        assert_eq!(date("next Monday"), Some(d(2026, 11, 23)));
        assert_eq!(date("next tuesday"), Some(d(2026, 11, 24)));
        assert_eq!(date("next wednesday"), Some(d(2026, 11, 25)));
        assert_eq!(date("next friday"), Some(d(2026, 11, 27)));
        assert_eq!(date("next sunday"), Some(d(2026, 11, 29)));
        assert_eq!(date("friday next week"), Some(d(2026, 11, 27)));
        // On a Monday.
        assert_eq!(parse("next monday", mon()).date, Some(d(2026, 11, 23)));
        assert_eq!(parse("next friday", mon()).date, Some(d(2026, 11, 27)));
        // On a Sunday the next week starts tomorrow.
        assert_eq!(parse("next monday", d(2026, 11, 22)).date, Some(d(2026, 11, 23)));
        assert_eq!(parse("next sunday", d(2026, 11, 22)).date, Some(d(2026, 11, 29)));
    }

    #[test]
    fn past_weekdays_are_not_booking_dates() {
        assert_eq!(date("I came last friday"), None);
        assert_eq!(date("I came last friday, can I come on tuesday?"), Some(d(2026, 11, 24)));
    }

    #[test]
    fn in_so_many_days_weeks_and_months() {
        assert_eq!(date("in 3 days"), Some(d(2026, 11, 21)));
        assert_eq!(date("in three days"), Some(d(2026, 11, 21)));
        assert_eq!(date("in a day"), Some(d(2026, 11, 19)));
        assert_eq!(date("in a week"), Some(d(2026, 11, 25)));
        assert_eq!(date("in one week"), Some(d(2026, 11, 25)));
        assert_eq!(date("in two weeks"), Some(d(2026, 12, 2)));
        assert_eq!(date("in 2 weeks"), Some(d(2026, 12, 2)));
        assert_eq!(date("in ten days"), Some(d(2026, 11, 28)));
        assert_eq!(date("in a fortnight"), Some(d(2026, 12, 2)));
        assert_eq!(date("in a month"), Some(d(2026, 12, 18)));
        assert_eq!(date("in the morning"), None);
    }

    #[test]
    fn in_so_many_days_is_not_a_time() {
        let when = parse("in 3 days", wed());
        assert_eq!(when.time, None);
        assert_eq!(parse("in 3 days at 3", wed()).time, Some(t(15, 0)));
    }

    #[test]
    fn iso_dates() {
        assert_eq!(date("2026-12-15"), Some(d(2026, 12, 15)));
        assert_eq!(date("on 2027-01-05, please"), Some(d(2027, 1, 5)));
        assert_eq!(date("2027/1/5"), Some(d(2027, 1, 5)));
    }

    #[test]
    fn numeric_dates_are_day_first() {
        assert_eq!(date("15/12/2026"), Some(d(2026, 12, 15)));
        assert_eq!(date("15.12.2026"), Some(d(2026, 12, 15)));
        assert_eq!(date("15-12-2026"), Some(d(2026, 12, 15)));
        assert_eq!(date("05/06/2027"), Some(d(2027, 6, 5)));
        assert_eq!(date("5/6/2027"), Some(d(2027, 6, 5)));
        assert_eq!(date("15/12/26"), Some(d(2026, 12, 15)));
    }

    #[test]
    fn numeric_dates_are_month_first_only_when_day_first_is_impossible() {
        assert_eq!(date("05/15/2027"), Some(d(2027, 5, 15)));
        assert_eq!(date("12/13/2026"), Some(d(2026, 12, 13)));
    }

    #[test]
    fn dates_with_a_year_are_kept_as_written_even_when_past() {
        assert_eq!(date("2026-05-15"), Some(d(2026, 5, 15)));
        assert_eq!(date("15/05/2026"), Some(d(2026, 5, 15)));
        assert_eq!(date("15 May 2026"), Some(d(2026, 5, 15)));
    }

    #[test]
    fn numeric_chains_are_not_dates() {
        assert_eq!(date("version 1.2.2026.4"), None);
        assert_eq!(date("10.0.12.1"), None);
        assert_eq!(date("555-123-4567"), None);
    }

    #[test]
    fn day_month_in_words() {
        let may = Some(d(2027, 5, 15));
        for text in ["15 May", "May 15", "May 15th", "15th of May", "15th May", "may the 15th", "15 may.", "On May 15!"]
        {
            assert_eq!(date(text), may, "{text}");
        }
        assert_eq!(date("15 Dec"), Some(d(2026, 12, 15)));
        assert_eq!(date("Dec. 15"), Some(d(2026, 12, 15)));
        assert_eq!(date("3rd of December"), Some(d(2026, 12, 3)));
    }

    #[test]
    fn every_month_name_and_abbreviation() {
        let names = [
            ("january", "jan", 1),
            ("february", "feb", 2),
            ("march", "mar", 3),
            ("april", "apr", 4),
            ("may", "may", 5),
            ("june", "jun", 6),
            ("july", "jul", 7),
            ("august", "aug", 8),
            ("september", "sep", 9),
            ("october", "oct", 10),
            ("november", "nov", 11),
            ("december", "dec", 12),
        ];
        for (full, short, month) in names {
            let year = if month >= 11 { 2026 } else { 2027 };
            assert_eq!(date(&format!("20 {full}")), Some(d(year, month, 20)), "{full}");
            assert_eq!(date(&format!("{short} 20")), Some(d(year, month, 20)), "{short}");
        }
        assert_eq!(date("Sept 3"), Some(d(2027, 9, 3)));
        assert_eq!(date("3 Sept."), Some(d(2027, 9, 3)));
    }

    #[test]
    fn day_month_with_year() {
        assert_eq!(date("15 May 2027"), Some(d(2027, 5, 15)));
        assert_eq!(date("May 15, 2027"), Some(d(2027, 5, 15)));
        assert_eq!(date("May 15th 2028"), Some(d(2028, 5, 15)));
        assert_eq!(date("15th of May, 2027 please"), Some(d(2027, 5, 15)));
    }

    #[test]
    fn day_month_without_year_is_never_in_the_past() {
        assert_eq!(date("18 Nov"), Some(wed()));
        assert_eq!(date("17 Nov"), Some(d(2027, 11, 17)));
        assert_eq!(date("19 November"), Some(d(2026, 11, 19)));
        assert_eq!(date("15 Jan"), Some(d(2027, 1, 15)));
        assert_eq!(date("31 December"), Some(d(2026, 12, 31)));
    }

    #[test]
    fn leap_day_without_year_is_the_next_leap_day() {
        assert_eq!(date("29 Feb"), Some(d(2028, 2, 29)));
    }

    #[test]
    fn invalid_dates_are_no_date() {
        for text in ["31 February", "February 30th", "2026-13-40", "2026-02-29", "30/02/2027", "31 Nov", "0 May"] {
            assert_eq!(date(text), None, "{text}");
        }
    }

    #[test]
    fn an_invalid_date_is_not_replaced_by_a_vaguer_one() {
        assert_eq!(date("Friday 31 February"), None);
    }

    #[test]
    fn a_written_date_beats_a_weekday() {
        assert_eq!(date("Friday 4 December"), Some(d(2026, 12, 4)));
        assert_eq!(date("tomorrow or 4 December"), Some(d(2026, 12, 4)));
    }

    #[test]
    fn may_the_verb_is_not_a_month() {
        assert_eq!(date("May I book an appointment?"), None);
        assert_eq!(date("May 2 of us come together?"), None);
        let when = parse("May I come at 3 tomorrow?", wed());
        assert_eq!(when.date, Some(d(2026, 11, 19)));
        assert_eq!(when.time, Some(t(15, 0)));
    }

    #[test]
    fn day_of_month_alone() {
        assert_eq!(date("on the 20th"), Some(d(2026, 11, 20)));
        assert_eq!(date("the 18th?"), Some(wed()));
        assert_eq!(date("the 2nd at 10"), Some(d(2026, 12, 2)));
        assert_eq!(date("the 31st"), Some(d(2026, 12, 31)));
        assert_eq!(date("we're on the 3rd floor"), None);
    }

    #[test]
    fn times_with_am_pm() {
        assert_eq!(time("3pm"), Some(t(15, 0)));
        assert_eq!(time("3 pm"), Some(t(15, 0)));
        assert_eq!(time("3:30pm"), Some(t(15, 30)));
        assert_eq!(time("3.30 pm"), Some(t(15, 30)));
        assert_eq!(time("9am"), Some(t(9, 0)));
        assert_eq!(time("9 a.m."), Some(t(9, 0)));
        assert_eq!(time("7 p.m"), Some(t(19, 0)));
        assert_eq!(time("8PM"), Some(t(20, 0)));
        assert_eq!(time("12pm"), Some(t(12, 0)));
        assert_eq!(time("12am"), Some(t(0, 0)));
        assert_eq!(time("12:30 am"), Some(t(0, 30)));
        assert_eq!(time("five pm"), Some(t(17, 0)));
        assert_eq!(time("at 9am"), Some(t(9, 0)));
    }

    #[test]
    fn twenty_four_hour_times() {
        assert_eq!(time("10:00"), Some(t(10, 0)));
        assert_eq!(time("15:30"), Some(t(15, 30)));
        assert_eq!(time("at 13:05."), Some(t(13, 5)));
        assert_eq!(time("07:30"), Some(t(7, 30)));
        assert_eq!(time("00:15"), Some(t(0, 15)));
        assert_eq!(time("12:00"), Some(t(12, 0)));
    }

    #[test]
    fn bare_hours_follow_a_clinics_day() {
        assert_eq!(time("at 1"), Some(t(13, 0)));
        assert_eq!(time("at 3"), Some(t(15, 0)));
        assert_eq!(time("at 7"), Some(t(19, 0)));
        assert_eq!(time("at 8"), Some(t(8, 0)));
        assert_eq!(time("at 10"), Some(t(10, 0)));
        assert_eq!(time("at 11"), Some(t(11, 0)));
        assert_eq!(time("at 12"), Some(t(12, 0)));
        assert_eq!(time("at 16"), Some(t(16, 0)));
        assert_eq!(time("3:30"), Some(t(15, 30)));
        assert_eq!(time("at three"), Some(t(15, 0)));
        assert_eq!(time("@ 4"), Some(t(16, 0)));
        assert_eq!(time("4 o'clock"), Some(t(16, 0)));
        assert_eq!(time("ten oclock"), Some(t(10, 0)));
        assert_eq!(time("at 10.30"), Some(t(10, 30)));
    }

    #[test]
    fn a_part_of_day_settles_a_bare_hour() {
        assert_eq!(time("at 8 in the evening"), Some(t(20, 0)));
        assert_eq!(time("tomorrow morning at 7"), Some(t(7, 0)));
        assert_eq!(time("afternoon at 10"), Some(t(22, 0)));
        assert_eq!(time("evening, 9pm"), Some(t(21, 0)));
    }

    #[test]
    fn noon_midday_midnight() {
        assert_eq!(time("noon"), Some(t(12, 0)));
        assert_eq!(time("at midday"), Some(t(12, 0)));
        assert_eq!(time("12 noon"), Some(t(12, 0)));
        assert_eq!(time("midnight"), Some(t(0, 0)));
    }

    #[test]
    fn half_and_quarter_past() {
        assert_eq!(time("half past 2"), Some(t(14, 30)));
        assert_eq!(time("half past ten"), Some(t(10, 30)));
        assert_eq!(time("quarter past 9"), Some(t(9, 15)));
        assert_eq!(time("a quarter to 9"), Some(t(8, 45)));
        assert_eq!(time("quarter to 3"), Some(t(14, 45)));
        assert_eq!(time("half past 8 pm"), Some(t(20, 30)));
        assert_eq!(time("half the time"), None);
    }

    #[test]
    fn bare_numbers_are_not_times() {
        for text in ["I have 2 kids", "3", "we are 4 people", "room 10", "about 3 weeks ago", "version 2.10"] {
            assert_eq!(time(text), None, "{text}");
        }
    }

    #[test]
    fn phone_numbers_are_not_times() {
        for text in [
            "+1 555 123 4567",
            "call me on +44 20 7946 0958",
            "reach me at 555 123 4567",
            "at +1 555 123 4567",
            "at 5 555 1234",
            "555-123-4567",
            "(555) 123-4567",
        ] {
            let when = parse(text, wed());
            assert_eq!(when.time, None, "{text}");
            assert_eq!(when.date, None, "{text}");
        }
        assert_eq!(time("call +1 555 123 4567 after 3pm"), Some(t(15, 0)));
    }

    #[test]
    fn date_numbers_are_not_times() {
        for text in ["2026-05-15", "15 May", "May 15", "15/05/2027", "15.05.2027", "May 3", "the 3rd"] {
            assert_eq!(time(text), None, "{text}");
        }
    }

    #[test]
    fn spelled_hours_need_a_time_like_context() {
        assert_eq!(time("at one point I called"), None);
        assert_eq!(time("at three of your clinics"), None);
        assert_eq!(time("at three on friday"), Some(t(15, 0)));
    }

    #[test]
    fn impossible_times_are_no_time() {
        for text in ["25:00", "at 24:00", "10:75", "13am", "0pm", "at 25 Main Street"] {
            assert_eq!(time(text), None, "{text}");
        }
    }

    #[test]
    fn ranges_are_not_read_as_a_single_time() {
        assert_eq!(time("10-11am"), None);
    }

    #[test]
    fn early_late_and_around_are_windows() {
        assert_eq!(parse("late morning", wed()).part_of_day, Some((t(10, 0), t(12, 0))));
        assert_eq!(parse("early afternoon please", wed()).part_of_day, Some((t(12, 0), t(14, 30))));
        let around = parse("around 10 on friday", wed());
        assert_eq!((around.time, around.part_of_day), (None, Some((t(9, 0), t(11, 0)))));
        assert_eq!(parse("about 3pm", wed()).part_of_day, Some((t(14, 0), t(16, 0))));
        assert_eq!(parse("10ish", wed()).part_of_day, Some((t(9, 0), t(11, 0))));
        assert_eq!(parse("at 10", wed()).time, Some(t(10, 0)));
        assert_eq!(parse("about 3 weeks ago", wed()).part_of_day, None);
        assert_eq!(parse("how about 3pm?", wed()).time, Some(t(15, 0)));
    }

    #[test]
    fn part_of_day_only_without_a_clock_time() {
        assert_eq!(parse("morning", wed()).part_of_day, Some((t(8, 0), t(12, 0))));
        assert_eq!(parse("in the afternoon", wed()).part_of_day, Some((t(12, 0), t(17, 0))));
        assert_eq!(parse("evenings are best", wed()).part_of_day, Some((t(17, 0), t(21, 0))));
        let when = parse("morning, 10am", wed());
        assert_eq!(when.time, Some(t(10, 0)));
        assert_eq!(when.part_of_day, None);
    }

    #[test]
    fn greetings_are_not_parts_of_day() {
        let when = parse("Good morning! Can I come at 3 tomorrow?", wed());
        assert_eq!(when.part_of_day, None);
        assert_eq!(when.time, Some(t(15, 0)));
        assert_eq!(when.date, Some(d(2026, 11, 19)));
    }

    #[test]
    fn combined_sentences() {
        let cases = [
            ("next Monday at 3pm", Some(d(2026, 11, 23)), Some(t(15, 0)), None),
            ("15 May 10:00", Some(d(2027, 5, 15)), Some(t(10, 0)), None),
            ("tomorrow morning", Some(d(2026, 11, 19)), None, Some((t(8, 0), t(12, 0)))),
            ("Can I come on Friday afternoon?", Some(d(2026, 11, 20)), None, Some((t(12, 0), t(17, 0)))),
            ("2026-05-15 at 10:00", Some(d(2026, 5, 15)), Some(t(10, 0)), None),
            ("Is Dec 3rd at half past 2 free?", Some(d(2026, 12, 3)), Some(t(14, 30)), None),
            ("I'd like thursday, at 9 a.m. if possible", Some(d(2026, 11, 19)), Some(t(9, 0)), None),
            ("May 15, 2027 @ 4:15pm", Some(d(2027, 5, 15)), Some(t(16, 15)), None),
            ("on the 20th at noon", Some(d(2026, 11, 20)), Some(t(12, 0)), None),
            ("in two weeks, evening", Some(d(2026, 12, 2)), None, Some((t(17, 0), t(21, 0)))),
            ("15/12/2026 15:30", Some(d(2026, 12, 15)), Some(t(15, 30)), None),
            ("I have 2 kids, could we do next tue at 10?", Some(d(2026, 11, 24)), Some(t(10, 0)), None),
        ];
        for (text, date, time, part_of_day) in cases {
            assert_eq!(parse(text, wed()), When { date, time, part_of_day }, "{text}");
        }
    }

    #[test]
    fn the_first_time_wins() {
        assert_eq!(time("3pm or 4pm"), Some(t(15, 0)));
    }

    #[test]
    fn odd_input_never_panics() {
        let long_digits = "9".repeat(5000);
        let long_words = "next monday at 3pm ".repeat(2000);
        let odd = [
            "",
            " ",
            "😀📅 tomorrow 🦷 at 3 🎉",
            "99999999999999999999 May",
            "May 99999999999999999999",
            "in 99999999999999999999 days",
            "in 9999 months",
            "in 9999 weeks",
            "9999-99-99",
            "0000-00-00",
            "00/00/00",
            "1.2.3.4.5.6.7",
            "::::",
            "at",
            "at at at",
            "half past",
            "quarter to",
            "quarter to 0",
            "half past 99",
            "the 99th",
            "the 0th",
            "12:",
            ":30",
            "3:",
            "a.m.",
            "p.",
            "İSTANBUL ǅ ß ﬁ",
            "２０２６-０５-１５",
            "١٥ May",
            "\u{200b}3pm\u{200b}",
            "o'",
            "'",
            "3'o",
            "next",
            "last",
            "day after",
            "in",
            "in a",
            long_digits.as_str(),
            long_words.as_str(),
        ];
        let days = [wed(), mon(), NaiveDate::MIN, NaiveDate::MAX, d(2028, 2, 29), d(2026, 12, 31)];
        for text in odd {
            for today in days {
                let when = parse(text, today);
                if let Some(date) = when.date {
                    let _ = say_date(date);
                }
                if let Some(time) = when.time {
                    let _ = say_time(time);
                }
            }
        }
    }

    #[test]
    fn say_date_reads_naturally() {
        assert_eq!(say_date(d(2026, 5, 15)), "Friday 15 May");
        assert_eq!(say_date(d(2026, 11, 2)), "Monday 2 November");
    }

    #[test]
    fn say_time_uses_twelve_hours() {
        assert_eq!(say_time(t(15, 30)), "3:30 PM");
        assert_eq!(say_time(t(10, 0)), "10:00 AM");
        assert_eq!(say_time(t(12, 0)), "12:00 PM");
        assert_eq!(say_time(t(0, 5)), "12:05 AM");
    }
}
