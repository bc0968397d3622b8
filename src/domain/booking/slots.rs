//! Free appointment slots: the arithmetic behind "when can this doctor see me?".
//!
//! This module turns doctors' weekly opening hours, their blocked intervals (time off, existing
//! bookings, live holds) and a service's duration, buffer and step into bookable slots in the
//! practice's time zone. It answers three questions: which slots are free in a date range
//! ([`free_slots`]), whether one exact appointment can be booked ([`is_free`]), and which free
//! slots are closest to a wished-for time ([`nearest`]). Loading calendars and persisting bookings
//! belong to the callers; everything here is pure and deterministic, so it is cheap to test.
//!
//! Conventions shared by every function:
//! - Instants are UTC epoch milliseconds and intervals are half-open `[start, end)`.
//! - Weekly hours are wall-clock minutes after local midnight, weekday 1 = Monday … 7 = Sunday.
//!   Windows with another weekday, `start_minute >= end_minute` or `end_minute > 1440` are ignored.
//! - A slot's appointment `[start, start + duration)` must fit inside its window, while its occupied
//!   range `[start, start + duration + buffer)` must not overlap any blocked interval; the buffer
//!   may run past closing time. Empty or inverted blocked intervals block nothing.
//! - Wall-clock times repeated when DST ends resolve to their earliest instant; wall-clock times
//!   skipped when DST starts produce no slot. A window edge inside such a gap moves to the first
//!   instant after the gap. Windows therefore become plain UTC intervals and "fits" is measured in
//!   real elapsed time, so a 60-minute appointment is 60 minutes long even across a clock change.
//! - A non-positive duration or step yields no slots; a negative buffer counts as zero.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone};
use chrono_tz::{GapInfo, Tz};
use serde::Serialize;

const MINUTE_MS: i64 = 60_000;
const DAY_MINUTES: u32 = 24 * 60;

/// Opening hours of one weekday, in wall-clock minutes after local midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeeklyWindow {
    /// 1 = Monday … 7 = Sunday.
    pub weekday: u32,
    pub start_minute: u32,
    /// Exclusive; at most 1440 (midnight at the end of the day).
    pub end_minute: u32,
}

#[derive(Debug, Clone, Default)]
pub struct DoctorCalendar {
    pub doctor_id: i64,
    pub hours: Vec<WeeklyWindow>,
    /// Time off, existing bookings' occupied ranges (buffer included) and live holds.
    pub blocked: Vec<(i64, i64)>,
}

#[derive(Debug, Clone, Copy)]
pub struct SlotQuery {
    pub tz: chrono_tz::Tz,
    pub from: chrono::NaiveDate,
    pub to: chrono::NaiveDate, // inclusive
    pub duration_min: i64,
    pub buffer_min: i64,
    pub step_min: i64,
    pub not_before: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Slot {
    pub doctor_id: i64,
    pub starts_at: i64,
    /// End of the appointment itself; the buffer is not included.
    pub ends_at: i64,
}

/// Free slots of every calendar for the local dates `query.from..=query.to`, sorted by start, then
/// doctor id. Candidates start at each window's start plus whole multiples of the step.
pub fn free_slots(calendars: &[DoctorCalendar], query: &SlotQuery) -> Vec<Slot> {
    let Some(service) = Service::new(query.duration_min, query.buffer_min) else {
        return Vec::new();
    };
    if query.step_min <= 0 || query.from > query.to {
        return Vec::new();
    }
    // Dates and their UTC offsets are shared by all doctors, so the time-zone work is done once.
    let days: Vec<LocalDay> =
        query.from.iter_days().take_while(|date| *date <= query.to).map(|date| LocalDay::new(query.tz, date)).collect();

    // Visiting doctors in id order leaves one sorted run per doctor, which the stable sort below
    // merges in about O(n log doctors) instead of sorting every slot from scratch.
    let mut by_id: Vec<&DoctorCalendar> = calendars.iter().collect();
    by_id.sort_by_key(|calendar| calendar.doctor_id);

    let mut slots = Vec::new();
    let mut starts = Vec::new();
    for calendar in by_id {
        let hours = HoursByWeekday::new(&calendar.hours);
        starts.clear();
        for day in &days {
            for window in hours.on(day.weekday) {
                push_candidates(day, query.tz, window, query.step_min, &service, query.not_before, &mut starts);
            }
        }
        // Overlapping windows yield the same start twice, and several windows per day can come in
        // any order; the sweep below needs strictly increasing starts.
        starts.sort_unstable();
        starts.dedup();
        sweep_free(calendar.doctor_id, &starts, &merge_blocked(&calendar.blocked), &service, &mut slots);
    }
    slots.sort_by_key(|slot| slot.starts_at);
    // The same doctor listed twice would otherwise show each shared slot twice.
    slots.dedup();
    slots
}

/// Whether the exact appointment [starts_at, starts_at+duration) for this doctor is inside its hours
/// on that local day (aligned to the step is NOT required: an API client may book 10:05 if it fits
/// the hours) and its occupied range is free.
pub fn is_free(
    calendar: &DoctorCalendar,
    tz: chrono_tz::Tz,
    starts_at: i64,
    duration_min: i64,
    buffer_min: i64,
) -> bool {
    let Some(service) = Service::new(duration_min, buffer_min) else {
        return false;
    };
    let Some(start) = DateTime::from_timestamp_millis(starts_at) else {
        return false;
    };
    let (Some(ends_at), Some(occupied_until)) =
        (starts_at.checked_add(service.duration_ms), starts_at.checked_add(service.occupied_ms))
    else {
        return false;
    };
    let day = LocalDay::new(tz, start.with_timezone(&tz).date_naive());
    let in_hours = HoursByWeekday::new(&calendar.hours).on(day.weekday).iter().any(
        |window| matches!(day.window_bounds(tz, window), Some((open, close)) if open <= starts_at && ends_at <= close),
    );
    in_hours && !calendar.blocked.iter().any(|&blocked| overlaps((starts_at, occupied_until), blocked))
}

/// Up to `count` free slots nearest in time to `wanted` (absolute distance, ties → earlier first),
/// searched from `days_around` days before to `days_around` days after wanted's local date (never
/// before not_before), across the given calendars. Sorted by start.
///
/// Uses `query.tz`, duration, buffer, step and `not_before`, and ignores `query.from`/`to`. The cost
/// grows linearly with `days_around`, so callers taking it from a request should bound it. Slots
/// at the same distance and start are taken in doctor-id order.
pub fn nearest(
    calendars: &[DoctorCalendar],
    query: &SlotQuery,
    wanted: i64,
    count: usize,
    days_around: i64,
) -> Vec<Slot> {
    if count == 0 {
        return Vec::new();
    }
    let Some(wanted_at) = DateTime::from_timestamp_millis(wanted) else {
        return Vec::new();
    };
    let date = wanted_at.with_timezone(&query.tz).date_naive();
    let span = TimeDelta::try_days(days_around.max(0)).unwrap_or(TimeDelta::MAX);
    let from = date.checked_sub_signed(span).unwrap_or(NaiveDate::MIN);
    let to = date.checked_add_signed(span).unwrap_or(NaiveDate::MAX);

    let mut slots = free_slots(calendars, &SlotQuery { from, to, ..*query });
    let closeness = |slot: &Slot| (slot.starts_at.abs_diff(wanted), slot.starts_at, slot.doctor_id);
    if slots.len() > count {
        slots.select_nth_unstable_by_key(count, closeness);
        slots.truncate(count);
    }
    slots.sort_unstable_by_key(|slot| (slot.starts_at, slot.doctor_id));
    slots
}

/// Whether two half-open intervals overlap.
pub fn overlaps(a: (i64, i64), b: (i64, i64)) -> bool {
    // An empty or inverted interval contains no instant, so it cannot share one with anything;
    // without the first two checks a zero-length hold inside a slot would block it.
    a.0 < a.1 && b.0 < b.1 && a.0 < b.1 && b.0 < a.1
}

/// A service's lengths in milliseconds.
struct Service {
    duration_ms: i64,
    /// Duration plus buffer: what a booking keeps away from other bookings.
    occupied_ms: i64,
}

impl Service {
    fn new(duration_min: i64, buffer_min: i64) -> Option<Self> {
        if duration_min <= 0 {
            return None;
        }
        Some(Self {
            duration_ms: duration_min.checked_mul(MINUTE_MS)?,
            occupied_ms: duration_min.checked_add(buffer_min.max(0))?.checked_mul(MINUTE_MS)?,
        })
    }
}

/// Valid windows grouped by weekday, so each date looks only at its own windows.
struct HoursByWeekday([Vec<WeeklyWindow>; 7]);

impl HoursByWeekday {
    fn new(hours: &[WeeklyWindow]) -> Self {
        let mut by_day: [Vec<WeeklyWindow>; 7] = Default::default();
        for window in hours {
            if (1..=7).contains(&window.weekday)
                && window.start_minute < window.end_minute
                && window.end_minute <= DAY_MINUTES
            {
                by_day[window.weekday as usize - 1].push(*window);
            }
        }
        Self(by_day)
    }

    fn on(&self, weekday: u32) -> &[WeeklyWindow] {
        &self.0[weekday as usize - 1]
    }
}

/// One local calendar date in the query's time zone.
struct LocalDay {
    weekday: u32,
    midnight: NaiveDateTime,
    /// UTC instant of local midnight when the whole day runs on a single UTC offset. Then every
    /// wall-clock minute converts with one addition; a time-zone lookup per candidate would
    /// dominate the running time of a month-long query.
    uniform_midnight_utc: Option<i64>,
}

impl LocalDay {
    fn new(tz: Tz, date: NaiveDate) -> Self {
        let midnight = date.and_time(NaiveTime::MIN);
        Self {
            weekday: date.weekday().number_from_monday(),
            midnight,
            uniform_midnight_utc: uniform_midnight_utc(tz, midnight),
        }
    }

    fn local(&self, minute: u32) -> Option<NaiveDateTime> {
        self.midnight.checked_add_signed(TimeDelta::try_minutes(i64::from(minute))?)
    }

    /// The instant of a wall-clock minute of this day (the earliest if it occurs twice), or `None`
    /// if the clocks skip it.
    fn resolve(&self, tz: Tz, minute: u32) -> Option<i64> {
        if let Some(midnight_utc) = self.uniform_midnight_utc {
            if minute <= DAY_MINUTES {
                return Some(midnight_utc + i64::from(minute) * MINUTE_MS);
            }
        }
        let local = self.local(minute)?;
        tz.from_local_datetime(&local).earliest().map(|at| at.timestamp_millis())
    }

    /// Opening and closing instants of a window on this day. An edge the clocks skip moves to the
    /// end of the gap: a clinic opening at 02:30 on a day that jumps from 02:00 to 03:00 is open at
    /// 03:00, and one closing at 02:30 has closed by then.
    fn window_bounds(&self, tz: Tz, window: &WeeklyWindow) -> Option<(i64, i64)> {
        Some((self.edge(tz, window.start_minute)?, self.edge(tz, window.end_minute)?))
    }

    fn edge(&self, tz: Tz, minute: u32) -> Option<i64> {
        if let Some(at) = self.resolve(tz, minute) {
            return Some(at);
        }
        let local = self.local(minute)?;
        GapInfo::new(&local, &tz)?.end.map(|at| at.timestamp_millis())
    }
}

/// See [`LocalDay::uniform_midnight_utc`].
fn uniform_midnight_utc(tz: Tz, midnight: NaiveDateTime) -> Option<i64> {
    let offset_ms = single_offset_ms(tz, midnight)?;
    let next_midnight = midnight.checked_add_signed(TimeDelta::days(1))?;
    // Offset changes in the tz database are always days apart (at least a week in the data
    // chrono-tz ships), so equal, unambiguous offsets at both midnights mean no change in between.
    if single_offset_ms(tz, next_midnight)? != offset_ms {
        return None;
    }
    midnight.and_utc().timestamp_millis().checked_sub(offset_ms)
}

fn single_offset_ms(tz: Tz, local: NaiveDateTime) -> Option<i64> {
    let offset = tz.offset_from_local_datetime(&local).single()?;
    Some(i64::from(offset.fix().local_minus_utc()) * 1000)
}

/// Appends the starts of one window on one day whose appointment fits the window and which are not
/// before `not_before`. Blocked intervals are checked later, in one sweep over all starts.
fn push_candidates(
    day: &LocalDay,
    tz: Tz,
    window: &WeeklyWindow,
    step_min: i64,
    service: &Service,
    not_before: i64,
    starts: &mut Vec<i64>,
) {
    let Some((open, close)) = day.window_bounds(tz, window) else {
        return;
    };
    // Candidates are stepped on the wall clock, which is what a patient sees; a start at or after
    // the closing wall-clock time resolves at or after `close` and could never fit.
    let step = u32::try_from(step_min).unwrap_or(u32::MAX);
    let mut minute = window.start_minute;
    while minute < window.end_minute {
        if let Some(start) = day.resolve(tz, minute) {
            let fits = start.checked_add(service.duration_ms).is_some_and(|end| end <= close);
            if start >= open && fits && start >= not_before {
                starts.push(start);
            }
        }
        minute = minute.saturating_add(step);
    }
}

/// Sorts blocked intervals and merges the overlapping and touching ones, so that both their starts
/// and their ends increase and a single forward pass can test many slots.
fn merge_blocked(blocked: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut sorted: Vec<(i64, i64)> = blocked.iter().copied().filter(|&(start, end)| start < end).collect();
    sorted.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(sorted.len());
    for (start, end) in sorted {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// Emits the starts (strictly increasing) whose occupied range avoids every merged interval.
fn sweep_free(doctor_id: i64, starts: &[i64], merged: &[(i64, i64)], service: &Service, out: &mut Vec<Slot>) {
    let mut next = 0;
    for &start in starts {
        // Intervals ending by this start also end before every later start: drop them for good.
        while next < merged.len() && merged[next].1 <= start {
            next += 1;
        }
        let occupied_until = start.saturating_add(service.occupied_ms);
        if merged.get(next).is_none_or(|&(blocked_from, _)| blocked_from >= occupied_until) {
            out.push(Slot { doctor_id, starts_at: start, ends_at: start + service.duration_ms });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use chrono_tz::America::New_York;
    use chrono_tz::Europe::London;
    use proptest::prelude::*;

    const MON_TO_FRI: std::ops::RangeInclusive<u32> = 1..=5;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().unwrap().timestamp_millis()
    }

    fn local(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0).single().unwrap().timestamp_millis()
    }

    fn window(weekday: u32, start: (u32, u32), end: (u32, u32)) -> WeeklyWindow {
        WeeklyWindow { weekday, start_minute: start.0 * 60 + start.1, end_minute: end.0 * 60 + end.1 }
    }

    fn hours(days: std::ops::RangeInclusive<u32>, start: (u32, u32), end: (u32, u32)) -> Vec<WeeklyWindow> {
        days.map(|weekday| window(weekday, start, end)).collect()
    }

    fn doctor(doctor_id: i64, hours: Vec<WeeklyWindow>, blocked: Vec<(i64, i64)>) -> DoctorCalendar {
        DoctorCalendar { doctor_id, hours, blocked }
    }

    /// 30-minute service, 10-minute buffer, 15-minute step, no lead time.
    fn query(tz: Tz, from: NaiveDate, to: NaiveDate) -> SlotQuery {
        SlotQuery { tz, from, to, duration_min: 30, buffer_min: 10, step_min: 15, not_before: i64::MIN }
    }

    fn starts(slots: &[Slot]) -> Vec<i64> {
        slots.iter().map(|slot| slot.starts_at).collect()
    }

    // 2025-07-07 is a Monday; London is on BST (UTC+1) then.
    fn london_monday(h: u32, mi: u32) -> i64 {
        local(London, 2025, 7, 7, h, mi)
    }

    #[test]
    fn basic_day() {
        let calendars = [doctor(1, hours(MON_TO_FRI, (9, 0), (17, 0)), vec![])];
        let slots = free_slots(&calendars, &query(London, date(2025, 7, 7), date(2025, 7, 7)));
        assert_eq!(slots.len(), 31);
        assert_eq!(slots[0], Slot { doctor_id: 1, starts_at: utc(2025, 7, 7, 8, 0), ends_at: utc(2025, 7, 7, 8, 30) });
        // 16:30 is the last start whose appointment ends by 17:00; its buffer runs past closing.
        assert_eq!(slots[30].starts_at, london_monday(16, 30));
        assert_eq!(slots[30].ends_at, london_monday(17, 0));
        assert!(slots.windows(2).all(|pair| pair[1].starts_at - pair[0].starts_at == 15 * MINUTE_MS));
    }

    #[test]
    fn lunch_break_as_two_windows() {
        let calendars = [doctor(1, vec![window(1, (13, 0), (17, 0)), window(1, (9, 0), (12, 0))], vec![])];
        let slots = free_slots(&calendars, &query(London, date(2025, 7, 7), date(2025, 7, 7)));
        assert_eq!(slots.len(), 11 + 15);
        let all = starts(&slots);
        assert!(all.contains(&london_monday(11, 30)));
        assert!(!all.contains(&london_monday(11, 45)));
        assert!(!all.contains(&london_monday(12, 30)));
        assert_eq!(all[11], london_monday(13, 0));
    }

    #[test]
    fn overlapping_windows_do_not_duplicate_slots() {
        let calendars = [doctor(1, vec![window(1, (9, 0), (12, 0)), window(1, (11, 0), (13, 0))], vec![])];
        let slots = free_slots(&calendars, &query(London, date(2025, 7, 7), date(2025, 7, 7)));
        // 09:00 … 12:30, each once.
        assert_eq!(slots.len(), 15);
        assert!(slots.windows(2).all(|pair| pair[0].starts_at < pair[1].starts_at));
    }

    #[test]
    fn booking_blocks_overlapping_slots() {
        let booking = (london_monday(10, 0), london_monday(10, 40));
        let calendars = [doctor(1, hours(MON_TO_FRI, (9, 0), (17, 0)), vec![booking])];
        let all = starts(&free_slots(&calendars, &query(London, date(2025, 7, 7), date(2025, 7, 7))));
        assert_eq!(all.len(), 31 - 5);
        // 09:15 occupies up to 09:55 and 10:45 starts after the booking: both free.
        assert!(all.contains(&london_monday(9, 15)));
        assert!(all.contains(&london_monday(10, 45)));
        for blocked in [(9, 30), (9, 45), (10, 0), (10, 15), (10, 30)] {
            assert!(!all.contains(&london_monday(blocked.0, blocked.1)), "{blocked:?}");
        }
    }

    #[test]
    fn unsorted_overlapping_blocked_intervals() {
        let blocked = vec![
            (london_monday(14, 0), london_monday(15, 0)),
            (london_monday(10, 20), london_monday(11, 0)),
            (london_monday(14, 30), london_monday(14, 45)),
            (london_monday(10, 0), london_monday(10, 40)),
            (london_monday(16, 0), london_monday(15, 0)), // inverted: blocks nothing
        ];
        let calendars = [doctor(1, hours(MON_TO_FRI, (9, 0), (17, 0)), blocked)];
        let all = starts(&free_slots(&calendars, &query(London, date(2025, 7, 7), date(2025, 7, 7))));
        // [10:00, 11:00) removes 09:30 … 10:45; [14:00, 15:00) removes 13:30 … 14:45.
        assert_eq!(all.len(), 31 - 6 - 6);
        assert!(all.contains(&london_monday(9, 15)));
        assert!(all.contains(&london_monday(11, 0)));
        assert!(all.contains(&london_monday(15, 0)));
        assert!(all.contains(&london_monday(16, 0)));
    }

    #[test]
    fn buffers_push_the_following_slot() {
        // A 09:30 booking of 30 minutes with a 10-minute buffer occupies [09:30, 10:10).
        let booking = (london_monday(9, 30), london_monday(10, 10));
        let calendars = [doctor(1, hours(MON_TO_FRI, (9, 0), (17, 0)), vec![booking])];
        let with_buffer = starts(&free_slots(&calendars, &query(London, date(2025, 7, 7), date(2025, 7, 7))));
        assert_eq!(with_buffer[0], london_monday(10, 15), "the booking's buffer blocks 10:00");
        assert!(!with_buffer.contains(&london_monday(9, 0)), "our own buffer would run into the booking");

        let no_buffer = SlotQuery { buffer_min: 0, ..query(London, date(2025, 7, 7), date(2025, 7, 7)) };
        let without = starts(&free_slots(&calendars, &no_buffer));
        assert_eq!(without[..2], [london_monday(9, 0), london_monday(10, 15)]);
    }

    #[test]
    fn time_off_across_whole_days() {
        let time_off = (local(London, 2025, 7, 8, 0, 0), local(London, 2025, 7, 10, 0, 0));
        let calendars = [doctor(1, hours(MON_TO_FRI, (9, 0), (17, 0)), vec![time_off])];
        let slots = free_slots(&calendars, &query(London, date(2025, 7, 7), date(2025, 7, 11)));
        assert_eq!(slots.len(), 3 * 31);
        assert!(slots.iter().all(|slot| !overlaps((slot.starts_at, slot.ends_at), time_off)));
        assert_eq!(slots[31].starts_at, local(London, 2025, 7, 10, 9, 0));
    }

    #[test]
    fn weekend_closed() {
        let calendars = [doctor(1, hours(MON_TO_FRI, (9, 0), (17, 0)), vec![])];
        assert!(free_slots(&calendars, &query(London, date(2025, 7, 5), date(2025, 7, 6))).is_empty());
        let slots = free_slots(&calendars, &query(London, date(2025, 7, 4), date(2025, 7, 7)));
        assert_eq!(slots.len(), 2 * 31);
        assert_eq!(slots[30].starts_at, local(London, 2025, 7, 4, 16, 30));
        assert_eq!(slots[31].starts_at, london_monday(9, 0));
    }

    #[test]
    fn not_before_cuts_the_morning() {
        let calendars = [doctor(1, hours(MON_TO_FRI, (9, 0), (17, 0)), vec![])];
        let q = SlotQuery { not_before: london_monday(11, 5), ..query(London, date(2025, 7, 7), date(2025, 7, 7)) };
        let slots = free_slots(&calendars, &q);
        assert_eq!(slots[0].starts_at, london_monday(11, 15));
        assert_eq!(slots.len(), 22);
        let exact = SlotQuery { not_before: london_monday(11, 15), ..q };
        assert_eq!(free_slots(&calendars, &exact)[0].starts_at, london_monday(11, 15));
    }

    #[test]
    fn sorted_by_start_then_doctor() {
        let calendars = [
            doctor(7, hours(MON_TO_FRI, (9, 0), (10, 0)), vec![]),
            doctor(3, hours(MON_TO_FRI, (9, 0), (10, 0)), vec![]),
        ];
        let slots = free_slots(&calendars, &query(London, date(2025, 7, 7), date(2025, 7, 7)));
        let order: Vec<(i64, i64)> = slots.iter().map(|slot| (slot.starts_at, slot.doctor_id)).collect();
        assert_eq!(
            order,
            [
                (london_monday(9, 0), 3),
                (london_monday(9, 0), 7),
                (london_monday(9, 15), 3),
                (london_monday(9, 15), 7),
                (london_monday(9, 30), 3),
                (london_monday(9, 30), 7),
            ]
        );
    }

    #[test]
    fn degenerate_queries_yield_nothing() {
        let calendars = [doctor(1, hours(1..=7, (9, 0), (17, 0)), vec![])];
        let base = query(London, date(2025, 7, 7), date(2025, 7, 7));
        assert!(free_slots(&calendars, &SlotQuery { duration_min: 0, ..base }).is_empty());
        assert!(free_slots(&calendars, &SlotQuery { step_min: 0, ..base }).is_empty());
        assert!(free_slots(&calendars, &SlotQuery { from: date(2025, 7, 8), ..base }).is_empty());
        let invalid = [doctor(
            1,
            vec![window(0, (9, 0), (17, 0)), window(8, (9, 0), (17, 0)), window(1, (17, 0), (9, 0))],
            vec![],
        )];
        assert!(free_slots(&invalid, &base).is_empty());
        // A buffer below zero must not let a slot overlap a booking that starts right after it.
        let negative = SlotQuery { buffer_min: -10, ..base };
        let booked = [doctor(1, hours(1..=7, (9, 0), (17, 0)), vec![(london_monday(9, 30), london_monday(10, 0))])];
        assert_eq!(free_slots(&booked, &negative)[0].starts_at, london_monday(9, 0));
        assert_eq!(free_slots(&booked, &negative)[1].starts_at, london_monday(10, 0));
    }

    #[test]
    fn new_york_spring_forward() {
        // 2025-03-09 (Sunday): clocks jump from 02:00 EST to 03:00 EDT.
        let calendars = [doctor(1, hours(1..=7, (9, 0), (17, 0)), vec![])];
        let slots = free_slots(&calendars, &query(New_York, date(2025, 3, 8), date(2025, 3, 10)));
        assert_eq!(slots.len(), 3 * 31);
        assert_eq!(slots[0].starts_at, utc(2025, 3, 8, 14, 0));
        assert_eq!(slots[30].starts_at, utc(2025, 3, 8, 21, 30));
        assert_eq!(slots[31].starts_at, utc(2025, 3, 9, 13, 0));
        assert_eq!(slots[61].starts_at, utc(2025, 3, 9, 20, 30));
        assert_eq!(slots[62].starts_at, utc(2025, 3, 10, 13, 0));
    }

    #[test]
    fn new_york_spring_forward_night_windows() {
        let sunday = date(2025, 3, 9);
        let q = SlotQuery { duration_min: 30, buffer_min: 0, step_min: 30, ..query(New_York, sunday, sunday) };
        let run = |window: WeeklyWindow| starts(&free_slots(&[doctor(1, vec![window], vec![])], &q));
        // 02:00 and 02:30 do not exist; 01:30 EST + 30 minutes is exactly 03:00 EDT.
        assert_eq!(
            run(window(7, (1, 0), (4, 0))),
            [utc(2025, 3, 9, 6, 0), utc(2025, 3, 9, 6, 30), utc(2025, 3, 9, 7, 0), utc(2025, 3, 9, 7, 30)]
        );
        // Opening inside the gap means opening when the gap ends.
        assert_eq!(run(window(7, (2, 30), (4, 0))), [utc(2025, 3, 9, 7, 0), utc(2025, 3, 9, 7, 30)]);
        // Closing inside the gap means closing at 03:00 EDT.
        assert_eq!(
            run(window(7, (0, 0), (2, 30))),
            [utc(2025, 3, 9, 5, 0), utc(2025, 3, 9, 5, 30), utc(2025, 3, 9, 6, 0), utc(2025, 3, 9, 6, 30)]
        );
        let gap_opening = doctor(1, vec![window(7, (2, 30), (4, 0))], vec![]);
        assert!(is_free(&gap_opening, New_York, utc(2025, 3, 9, 7, 0), 30, 0));
        assert!(!is_free(&gap_opening, New_York, utc(2025, 3, 9, 6, 59), 30, 0));
    }

    #[test]
    fn new_york_fall_back() {
        // 2025-11-02 (Sunday): clocks go back from 02:00 EDT to 01:00 EST.
        let calendars = [doctor(1, hours(1..=7, (9, 0), (17, 0)), vec![])];
        let slots = free_slots(&calendars, &query(New_York, date(2025, 11, 1), date(2025, 11, 2)));
        assert_eq!(slots.len(), 2 * 31);
        assert_eq!(slots[0].starts_at, utc(2025, 11, 1, 13, 0));
        assert_eq!(slots[31].starts_at, utc(2025, 11, 2, 14, 0));
        assert_eq!(slots[61].starts_at, utc(2025, 11, 2, 21, 30));
    }

    #[test]
    fn new_york_fall_back_night_windows() {
        let sunday = date(2025, 11, 2);
        let q = SlotQuery { duration_min: 30, buffer_min: 0, step_min: 30, ..query(New_York, sunday, sunday) };
        // 01:00 and 01:30 happen twice and count once, at their EDT instants.
        let calendars = [doctor(1, vec![window(7, (0, 0), (3, 0))], vec![])];
        assert_eq!(
            starts(&free_slots(&calendars, &q)),
            [
                utc(2025, 11, 2, 4, 0),
                utc(2025, 11, 2, 4, 30),
                utc(2025, 11, 2, 5, 0),
                utc(2025, 11, 2, 5, 30),
                utc(2025, 11, 2, 7, 0),
                utc(2025, 11, 2, 7, 30),
            ]
        );
        // Fit is elapsed time: 01:30 EDT + 60 minutes is 01:30 EST, before the 02:00 EST closing.
        let hour_long = SlotQuery { duration_min: 60, ..q };
        let calendars = [doctor(1, vec![window(7, (0, 0), (2, 0))], vec![])];
        assert_eq!(starts(&free_slots(&calendars, &hour_long)).last(), Some(&utc(2025, 11, 2, 5, 30)));
        // The repeated hour's second pass is still inside the hours when booked directly.
        assert!(is_free(&calendars[0], New_York, utc(2025, 11, 2, 6, 0), 60, 0));
    }

    #[test]
    fn is_free_checks_hours_and_blocks() {
        let booking = (london_monday(10, 0), london_monday(10, 40));
        let calendar = doctor(1, hours(MON_TO_FRI, (9, 0), (17, 0)), vec![booking]);
        let free = |h: u32, mi: u32| is_free(&calendar, London, london_monday(h, mi), 30, 10);
        assert!(free(11, 0), "aligned");
        assert!(free(11, 5), "unaligned but inside the hours");
        assert!(free(9, 20), "occupied range only touches the booking");
        assert!(free(10, 40));
        assert!(free(16, 30), "buffer may pass closing time");
        assert!(free(9, 0));
        assert!(!free(16, 35), "appointment would end after closing");
        assert!(!free(8, 45), "before opening");
        assert!(!free(9, 30), "buffer overlaps the booking");
        assert!(!free(10, 10), "inside the booking");
        assert!(!is_free(&calendar, London, local(London, 2025, 7, 5, 10, 0), 30, 10), "Saturday");
        assert!(!is_free(&calendar, London, london_monday(11, 0), 0, 10), "no duration");
    }

    #[test]
    fn nearest_orders_by_distance_then_start() {
        let calendars = [
            doctor(2, hours(MON_TO_FRI, (9, 0), (17, 0)), vec![(london_monday(10, 0), london_monday(10, 5))]),
            doctor(1, hours(MON_TO_FRI, (9, 0), (17, 0)), vec![]),
        ];
        let q = query(London, date(2000, 1, 1), date(2000, 1, 1));
        let got: Vec<(i64, i64)> =
            nearest(&calendars, &q, london_monday(10, 7), 4, 0).iter().map(|s| (s.starts_at, s.doctor_id)).collect();
        // Distances: 10:00 d1 = 7, 10:15 = 8 (both doctors), 09:45 d1 = 22 (d2 is blocked there).
        assert_eq!(
            got,
            [
                (london_monday(9, 45), 1),
                (london_monday(10, 0), 1),
                (london_monday(10, 15), 1),
                (london_monday(10, 15), 2)
            ]
        );

        let one = [doctor(1, hours(MON_TO_FRI, (9, 0), (17, 0)), vec![])];
        let halfway = london_monday(10, 7) + 30_000;
        assert_eq!(starts(&nearest(&one, &q, halfway, 1, 0)), [london_monday(10, 0)], "ties go to the earlier slot");
        assert!(nearest(&one, &q, halfway, 0, 0).is_empty());
    }

    #[test]
    fn nearest_searches_around_the_date_and_respects_not_before() {
        let calendars = [doctor(1, hours(MON_TO_FRI, (9, 0), (17, 0)), vec![])];
        let saturday_noon = local(London, 2025, 7, 5, 12, 0);
        let q = query(London, date(2000, 1, 1), date(2000, 1, 1));
        assert_eq!(
            starts(&nearest(&calendars, &q, saturday_noon, 3, 3)),
            [local(London, 2025, 7, 4, 16, 0), local(London, 2025, 7, 4, 16, 15), local(London, 2025, 7, 4, 16, 30)]
        );
        let later = SlotQuery { not_before: local(London, 2025, 7, 5, 0, 0), ..q };
        assert_eq!(
            starts(&nearest(&calendars, &later, saturday_noon, 3, 3)),
            [london_monday(9, 0), london_monday(9, 15), london_monday(9, 30)]
        );
        assert!(nearest(&calendars, &later, saturday_noon, 3, 1).is_empty());
    }

    #[test]
    fn overlaps_is_half_open() {
        assert!(overlaps((0, 10), (9, 20)));
        assert!(overlaps((5, 6), (0, 10)));
        assert!(!overlaps((0, 10), (10, 20)));
        assert!(!overlaps((10, 20), (0, 10)));
        assert!(!overlaps((5, 5), (0, 10)), "empty");
        assert!(!overlaps((0, 10), (8, 2)), "inverted");
    }

    #[test]
    fn serializes_as_plain_fields() {
        let slot = Slot { doctor_id: 4, starts_at: 1, ends_at: 2 };
        assert_eq!(
            serde_json::to_value(slot).unwrap(),
            serde_json::json!({"doctor_id": 4, "starts_at": 1, "ends_at": 2})
        );
    }

    fn naive_local(date: NaiveDate, minute: i64) -> NaiveDateTime {
        date.and_time(NaiveTime::MIN) + TimeDelta::minutes(minute)
    }

    fn naive_resolve(tz: Tz, date: NaiveDate, minute: i64) -> Option<i64> {
        tz.from_local_datetime(&naive_local(date, minute)).earliest().map(|at| at.timestamp_millis())
    }

    /// A window edge by walking the wall clock forward minute by minute until it exists.
    fn naive_edge(tz: Tz, date: NaiveDate, minute: u32) -> i64 {
        (i64::from(minute)..).find_map(|m| naive_resolve(tz, date, m)).unwrap()
    }

    fn naive_valid(window: &WeeklyWindow) -> bool {
        (1..=7).contains(&window.weekday) && window.start_minute < window.end_minute && window.end_minute <= 1440
    }

    fn naive_within_hours(calendar: &DoctorCalendar, tz: Tz, starts_at: i64, ends_at: i64) -> bool {
        let date = DateTime::from_timestamp_millis(starts_at).unwrap().with_timezone(&tz).date_naive();
        calendar
            .hours
            .iter()
            .filter(|w| naive_valid(w) && w.weekday == date.weekday().number_from_monday())
            .any(|w| naive_edge(tz, date, w.start_minute) <= starts_at && ends_at <= naive_edge(tz, date, w.end_minute))
    }

    /// Every candidate against every blocked interval, with a time-zone lookup each.
    fn naive_free_slots(calendars: &[DoctorCalendar], q: &SlotQuery) -> Vec<Slot> {
        let mut out = Vec::new();
        if q.duration_min <= 0 || q.step_min <= 0 {
            return out;
        }
        let duration = q.duration_min * MINUTE_MS;
        let occupied = (q.duration_min + q.buffer_min.max(0)) * MINUTE_MS;
        for calendar in calendars {
            for date in q.from.iter_days().take_while(|d| *d <= q.to) {
                let weekday = date.weekday().number_from_monday();
                for w in calendar.hours.iter().filter(|w| naive_valid(w) && w.weekday == weekday) {
                    let (open, close) = (naive_edge(q.tz, date, w.start_minute), naive_edge(q.tz, date, w.end_minute));
                    for minute in (i64::from(w.start_minute)..i64::from(w.end_minute)).step_by(q.step_min as usize) {
                        let Some(start) = naive_resolve(q.tz, date, minute) else { continue };
                        let clash = calendar.blocked.iter().any(|&(s, e)| s < e && s < start + occupied && start < e);
                        if start >= q.not_before && open <= start && start + duration <= close && !clash {
                            out.push(Slot {
                                doctor_id: calendar.doctor_id,
                                starts_at: start,
                                ends_at: start + duration,
                            });
                        }
                    }
                }
            }
        }
        out.sort_by_key(|slot| (slot.starts_at, slot.doctor_id));
        out.dedup();
        out
    }

    fn naive_nearest(calendars: &[DoctorCalendar], q: &SlotQuery, wanted: i64, count: usize, days: i64) -> Vec<Slot> {
        let date = DateTime::from_timestamp_millis(wanted).unwrap().with_timezone(&q.tz).date_naive();
        let range = SlotQuery { from: date - TimeDelta::days(days), to: date + TimeDelta::days(days), ..*q };
        let mut all = naive_free_slots(calendars, &range);
        all.sort_by_key(|slot| (slot.starts_at.abs_diff(wanted), slot.starts_at, slot.doctor_id));
        all.truncate(count);
        all.sort_by_key(|slot| (slot.starts_at, slot.doctor_id));
        all
    }

    const ZONES: [Tz; 4] = [London, New_York, chrono_tz::Australia::Lord_Howe, chrono_tz::UTC];
    // 2025 clock changes of the zones above (Lord Howe shifts by 30 minutes), and an ordinary day.
    const ANCHORS: [(i32, u32, u32); 7] =
        [(2025, 3, 9), (2025, 3, 30), (2025, 4, 6), (2025, 10, 5), (2025, 10, 26), (2025, 11, 2), (2025, 6, 18)];

    #[derive(Debug, Clone)]
    struct Case {
        calendars: Vec<DoctorCalendar>,
        query: SlotQuery,
        /// UTC midnight of the day before `query.from`; random instants are minutes after it.
        base: i64,
    }

    fn arb_window() -> impl Strategy<Value = WeeklyWindow> {
        // Weekdays 0 and 8, inverted windows and ends past 1440 exercise the ignored inputs.
        (prop_oneof![18 => 1u32..=7, 1 => Just(0u32), 1 => Just(8u32)], 0u32..1440, -30i64..=720).prop_map(
            |(weekday, start_minute, len)| WeeklyWindow {
                weekday,
                start_minute,
                end_minute: (i64::from(start_minute) + len).clamp(0, 1500) as u32,
            },
        )
    }

    prop_compose! {
        fn arb_case()(
            zone in 0..ZONES.len(),
            anchor in 0..ANCHORS.len(),
            shift in -3i64..=3,
            span in 0i64..=6,
            duration_min in 1i64..=120,
            buffer_min in -10i64..=45,
            step_min in 1i64..=90,
            lead in proptest::option::of(0i64..6 * 1440),
            doctors in proptest::collection::vec(
                (
                    proptest::collection::vec(arb_window(), 0..16),
                    proptest::collection::vec((0i64..8 * 1440, -60i64..=300), 0..60),
                ),
                1..4,
            ),
        ) -> Case {
            let (y, m, d) = ANCHORS[anchor];
            let from = date(y, m, d) + TimeDelta::days(shift);
            let base = (from - TimeDelta::days(1)).and_time(NaiveTime::MIN).and_utc().timestamp_millis();
            let at = |minute: i64| base + minute * MINUTE_MS;
            let calendars = doctors
                .into_iter()
                .enumerate()
                .map(|(i, (hours, blocked))| DoctorCalendar {
                    doctor_id: 10 - i as i64,
                    hours,
                    blocked: blocked.into_iter().map(|(start, len)| (at(start), at(start + len))).collect(),
                })
                .collect();
            let query = SlotQuery {
                tz: ZONES[zone],
                from,
                to: from + TimeDelta::days(span),
                duration_min,
                buffer_min,
                step_min,
                not_before: lead.map_or(i64::MIN, at),
            };
            Case { calendars, query, base }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn returned_slots_are_within_hours_and_free(case in arb_case()) {
            let q = &case.query;
            let slots = free_slots(&case.calendars, q);
            for slot in &slots {
                let calendar = case.calendars.iter().find(|c| c.doctor_id == slot.doctor_id).unwrap();
                prop_assert_eq!(slot.ends_at - slot.starts_at, q.duration_min * MINUTE_MS);
                prop_assert!(slot.starts_at >= q.not_before);
                let day = DateTime::from_timestamp_millis(slot.starts_at).unwrap().with_timezone(&q.tz).date_naive();
                prop_assert!(q.from <= day && day <= q.to);
                prop_assert!(naive_within_hours(calendar, q.tz, slot.starts_at, slot.ends_at));
                let occupied_until = slot.starts_at + (q.duration_min + q.buffer_min.max(0)) * MINUTE_MS;
                for &(start, end) in &calendar.blocked {
                    prop_assert!(!(start < end && start < occupied_until && slot.starts_at < end));
                }
                prop_assert!(is_free(calendar, q.tz, slot.starts_at, q.duration_min, q.buffer_min));
            }
            for calendar in &case.calendars {
                let own: Vec<i64> =
                    slots.iter().filter(|s| s.doctor_id == calendar.doctor_id).map(|s| s.starts_at).collect();
                prop_assert!(own.windows(2).all(|pair| pair[0] < pair[1]));
            }
            prop_assert!(slots.windows(2).all(|p| (p[0].starts_at, p[0].doctor_id) < (p[1].starts_at, p[1].doctor_id)));
        }

        #[test]
        fn free_slots_match_brute_force(case in arb_case()) {
            prop_assert_eq!(free_slots(&case.calendars, &case.query), naive_free_slots(&case.calendars, &case.query));
        }

        #[test]
        fn nearest_matches_brute_force(
            case in arb_case(),
            wanted_minute in 0i64..8 * 1440,
            count in 0usize..12,
            days_around in 0i64..=2,
        ) {
            let wanted = case.base + wanted_minute * MINUTE_MS;
            prop_assert_eq!(
                nearest(&case.calendars, &case.query, wanted, count, days_around),
                naive_nearest(&case.calendars, &case.query, wanted, count, days_around)
            );
        }

        #[test]
        fn is_free_matches_brute_force(case in arb_case(), minute in 0i64..8 * 1440) {
            // Any minute, aligned to a step or not: free exactly when some window fits and nothing clashes.
            let q = &case.query;
            let starts_at = case.base + minute * MINUTE_MS;
            let occupied_until = starts_at + (q.duration_min + q.buffer_min.max(0)) * MINUTE_MS;
            for calendar in &case.calendars {
                let expected = naive_within_hours(calendar, q.tz, starts_at, starts_at + q.duration_min * MINUTE_MS)
                    && !calendar.blocked.iter().any(|&(s, e)| s < e && s < occupied_until && starts_at < e);
                prop_assert_eq!(is_free(calendar, q.tz, starts_at, q.duration_min, q.buffer_min), expected);
            }
        }
    }
}
