//! Business hours of an inbox: a time zone, a weekly schedule and holidays. Tells whether
//! the team is open at an instant and when it opens next, on the wall clock of the inbox's
//! zone, so a schedule stays right across daylight-saving changes.
//!
//! Times are whole minutes from 00:00 to 24:00; an interval ends before it starts again
//! the next day, so a shift through midnight is two intervals (Mon 22:00–24:00 and
//! Tue 00:00–02:00), which read as one open stretch.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Days, Duration, LocalResult, NaiveDate, TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The most open periods one weekday may have.
pub const MAX_INTERVALS: usize = 6;
/// The most holidays an inbox keeps.
pub const MAX_HOLIDAYS: usize = 100;

/// A wall-clock time of day in whole minutes, 00:00 to 24:00 (24:00 only ends an interval).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClockTime(u16);

impl ClockTime {
    pub const MIDNIGHT: ClockTime = ClockTime(0);
    pub const END_OF_DAY: ClockTime = ClockTime(24 * 60);

    pub fn new(hour: u16, minute: u16) -> Option<Self> {
        (minute < 60 && (hour < 24 || (hour == 24 && minute == 0)))
            .then_some(ClockTime(hour * 60 + minute))
    }

    /// `9:00`, `09:00`, `17:30` or `24:00`: one or two digits of hour, two of minute.
    pub fn parse(input: &str) -> Result<Self, HoursError> {
        let input = input.trim();
        let bad = || HoursError::BadTime(input.to_owned());
        let (hour, minute) = input.split_once(':').ok_or_else(bad)?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(hour) || hour.len() > 2 || !digits(minute) || minute.len() != 2 {
            return Err(bad());
        }
        let (Ok(hour), Ok(minute)) = (hour.parse::<u16>(), minute.parse::<u16>()) else {
            return Err(bad());
        };
        Self::new(hour, minute).ok_or_else(bad)
    }

    pub fn minutes(self) -> u16 {
        self.0
    }

    fn seconds(self) -> u32 {
        u32::from(self.0) * 60
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl FromStr for ClockTime {
    type Err = HoursError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for ClockTime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ClockTime {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// One open period of a day, from `open` (inclusive) to `close` (exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    pub open: ClockTime,
    pub close: ClockTime,
}

impl Interval {
    pub fn new(open: ClockTime, close: ClockTime) -> Self {
        Self { open, close }
    }

    fn contains(&self, seconds: u32) -> bool {
        self.open.seconds() <= seconds && seconds < self.close.seconds()
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}–{}", self.open, self.close)
    }
}

/// The weekly schedule: per weekday, zero or more open intervals (none: closed that day).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Week {
    pub mon: Vec<Interval>,
    pub tue: Vec<Interval>,
    pub wed: Vec<Interval>,
    pub thu: Vec<Interval>,
    pub fri: Vec<Interval>,
    pub sat: Vec<Interval>,
    pub sun: Vec<Interval>,
}

/// Monday first, as the settings page lists them.
pub const WEEKDAYS: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

/// A weekday's English name ("Monday").
pub fn day_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

impl Week {
    pub fn day(&self, day: Weekday) -> &[Interval] {
        match day {
            Weekday::Mon => &self.mon,
            Weekday::Tue => &self.tue,
            Weekday::Wed => &self.wed,
            Weekday::Thu => &self.thu,
            Weekday::Fri => &self.fri,
            Weekday::Sat => &self.sat,
            Weekday::Sun => &self.sun,
        }
    }

    pub fn day_mut(&mut self, day: Weekday) -> &mut Vec<Interval> {
        match day {
            Weekday::Mon => &mut self.mon,
            Weekday::Tue => &mut self.tue,
            Weekday::Wed => &mut self.wed,
            Weekday::Thu => &mut self.thu,
            Weekday::Fri => &mut self.fri,
            Weekday::Sat => &mut self.sat,
            Weekday::Sun => &mut self.sun,
        }
    }

    /// Monday to Friday, 09:00 to 17:00: where a team's schedule starts.
    pub fn office_hours() -> Self {
        let mut week = Week::default();
        let nine_to_five = Interval::new(ClockTime(9 * 60), ClockTime(17 * 60));
        for day in &WEEKDAYS[..5] {
            week.day_mut(*day).push(nine_to_five);
        }
        week
    }

    fn is_empty(&self) -> bool {
        WEEKDAYS.iter().all(|d| self.day(*d).is_empty())
    }
}

/// Why a schedule was refused, said for the person who set it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    #[error("{0:?} is not a time zone we know: choose one like Europe/Berlin or America/New_York.")]
    UnknownZone(String),
    #[error("{0:?} is not a time like 09:00 or 17:30.")]
    BadTime(String),
    #[error("On {day}, {interval} closes before it opens.", day = day_name(*.day))]
    CloseBeforeOpen { day: Weekday, interval: Interval },
    #[error("On {day}, {first} and {second} overlap.", day = day_name(*.day))]
    Overlap {
        day: Weekday,
        first: Interval,
        second: Interval,
    },
    #[error("On {day}, keep to {MAX_INTERVALS} open periods or fewer.", day = day_name(*.day))]
    TooManyIntervals { day: Weekday },
    #[error("Keep to {MAX_HOLIDAYS} holidays or fewer: remove past ones.")]
    TooManyHolidays,
}

impl HoursError {
    /// The weekday the error is about, if any.
    pub fn day(&self) -> Option<Weekday> {
        match self {
            HoursError::CloseBeforeOpen { day, .. }
            | HoursError::Overlap { day, .. }
            | HoursError::TooManyIntervals { day } => Some(*day),
            _ => None,
        }
    }
}

/// Parses an IANA zone name (`Europe/Berlin`, `UTC`).
pub fn parse_zone(name: &str) -> Result<Tz, HoursError> {
    name.trim()
        .parse::<Tz>()
        .map_err(|_| HoursError::UnknownZone(name.trim().to_owned()))
}

/// The zones a person picks from: the IANA regions' names and UTC, without the legacy
/// aliases (`US/Eastern`, `Etc/GMT+5`) that the database also carries.
pub fn zone_names() -> impl Iterator<Item = &'static str> {
    const REGIONS: [&str; 9] = [
        "Africa/",
        "America/",
        "Antarctica/",
        "Asia/",
        "Atlantic/",
        "Australia/",
        "Europe/",
        "Indian/",
        "Pacific/",
    ];
    chrono_tz::TZ_VARIANTS
        .iter()
        .map(|tz| tz.name())
        .filter(|name| *name == "UTC" || REGIONS.iter().any(|r| name.starts_with(r)))
}

/// A validated schedule: a known zone, each day's intervals sorted, closing after they
/// open and not overlapping, holidays sorted (dates in the inbox's zone).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredHours", into = "StoredHours")]
pub struct BusinessHours {
    zone: Tz,
    week: Week,
    holidays: Vec<NaiveDate>,
}

/// How a schedule is kept in the inbox row.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredHours {
    time_zone: String,
    #[serde(default)]
    week: Week,
    #[serde(default)]
    holidays: Vec<NaiveDate>,
}

impl TryFrom<StoredHours> for BusinessHours {
    type Error = HoursError;

    fn try_from(stored: StoredHours) -> Result<Self, Self::Error> {
        BusinessHours::new(&stored.time_zone, stored.week, stored.holidays)
    }
}

impl From<BusinessHours> for StoredHours {
    fn from(hours: BusinessHours) -> Self {
        StoredHours {
            time_zone: hours.zone.name().to_owned(),
            week: hours.week,
            holidays: hours.holidays,
        }
    }
}

/// How far ahead an opening is looked for: past a run of holidays as long as the most an
/// inbox keeps, and a week beyond.
const SEARCH_DAYS: u64 = MAX_HOLIDAYS as u64 + 8;

impl BusinessHours {
    pub fn new(
        time_zone: &str,
        mut week: Week,
        mut holidays: Vec<NaiveDate>,
    ) -> Result<Self, HoursError> {
        let zone = parse_zone(time_zone)?;
        for day in WEEKDAYS {
            let intervals = week.day_mut(day);
            if intervals.len() > MAX_INTERVALS {
                return Err(HoursError::TooManyIntervals { day });
            }
            if let Some(interval) = intervals.iter().find(|i| i.close <= i.open) {
                return Err(HoursError::CloseBeforeOpen {
                    day,
                    interval: *interval,
                });
            }
            intervals.sort_by_key(|i| i.open);
            // Touching intervals (12:00–13:00, 13:00–17:00) are one open stretch.
            if let Some(pair) = intervals.windows(2).find(|w| w[1].open < w[0].close) {
                return Err(HoursError::Overlap {
                    day,
                    first: pair[0],
                    second: pair[1],
                });
            }
        }
        holidays.sort();
        holidays.dedup();
        if holidays.len() > MAX_HOLIDAYS {
            return Err(HoursError::TooManyHolidays);
        }
        Ok(Self {
            zone,
            week,
            holidays,
        })
    }

    pub fn zone(&self) -> Tz {
        self.zone
    }

    pub fn zone_name(&self) -> &'static str {
        self.zone.name()
    }

    pub fn week(&self) -> &Week {
        &self.week
    }

    pub fn holidays(&self) -> &[NaiveDate] {
        &self.holidays
    }

    fn is_holiday(&self, date: NaiveDate) -> bool {
        self.holidays.binary_search(&date).is_ok()
    }

    /// Whether the team is open at `at`: the inbox's wall clock then is inside one of its
    /// weekday's intervals, and the day is no holiday. In an hour that repeats (clocks go
    /// back) both passes of a wall-clock time are treated alike.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.zone);
        if self.is_holiday(local.date_naive()) {
            return false;
        }
        let seconds = local.num_seconds_from_midnight();
        self.week
            .day(local.weekday())
            .iter()
            .any(|i| i.contains(seconds))
    }

    /// The first instant at or after `at` when the team is open (`at` itself while open),
    /// skipping closed days and holidays. An opening time that the clocks skip (02:30 on
    /// the night they go forward) opens when the clock first reads later than it. `None`
    /// when the schedule never opens.
    pub fn next_opening(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(at) {
            return Some(at);
        }
        if self.week.is_empty() {
            return None;
        }
        let first_day = at.with_timezone(&self.zone).date_naive();
        for offset in 0..=SEARCH_DAYS {
            let date = first_day.checked_add_days(Days::new(offset))?;
            if self.is_holiday(date) {
                continue;
            }
            for interval in self.week.day(date.weekday()) {
                if let Some(opening) = self.opening_of(date, interval, at) {
                    return Some(opening);
                }
            }
        }
        None
    }

    /// The first instant at or after `at` when the team is closed (`at` itself while
    /// closed): the end of the open stretch `at` is in, past touching intervals and
    /// midnight. `None` when it never closes (open around the clock, no holiday ahead).
    pub fn next_closing(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut t = at;
        // A stretch runs through at most every interval of a week, and a holiday ends it.
        for _ in 0..=(7 * MAX_INTERVALS + 1) {
            if !self.is_open(t) {
                return Some(t);
            }
            let local = t.with_timezone(&self.zone);
            let seconds = local.num_seconds_from_midnight();
            let interval = self
                .week
                .day(local.weekday())
                .iter()
                .find(|i| i.contains(seconds))?;
            let midnight = local.date_naive().and_hms_opt(0, 0, 0)?;
            let end = midnight + Duration::minutes(i64::from(interval.close.minutes()));
            t = self.first_instant_after(end, t)?;
        }
        None
    }

    /// The first instant after `after` whose wall clock reads `wall`, or, when the clocks
    /// skip `wall`, the first minute after the gap.
    fn first_instant_after(
        &self,
        wall: chrono::NaiveDateTime,
        after: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let mut minute = wall;
        for _ in 0..=24 * 60 {
            let found = match self.zone.from_local_datetime(&minute) {
                LocalResult::Single(t) => vec![t],
                LocalResult::Ambiguous(first, second) => vec![first, second],
                LocalResult::None => Vec::new(),
            };
            if let Some(t) = found
                .into_iter()
                .map(|t| t.with_timezone(&Utc))
                .find(|t| *t > after)
            {
                return Some(t);
            }
            minute += Duration::minutes(1);
        }
        None
    }

    /// When `interval` on `date` opens, if that is at or after `at` and the team is open
    /// then (an interval that lies wholly in skipped hours never opens).
    fn opening_of(
        &self,
        date: NaiveDate,
        interval: &Interval,
        at: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let midnight = date.and_hms_opt(0, 0, 0)?;
        let wall = midnight + Duration::minutes(i64::from(interval.open.minutes()));
        let close = midnight + Duration::minutes(i64::from(interval.close.minutes()));
        let candidates: Vec<DateTime<Utc>> = match self.zone.from_local_datetime(&wall) {
            LocalResult::Single(t) => vec![t.with_timezone(&Utc)],
            LocalResult::Ambiguous(first, second) => {
                vec![first.with_timezone(&Utc), second.with_timezone(&Utc)]
            }
            // The clocks skip this time: the first minute after the gap that is still in
            // the interval.
            LocalResult::None => {
                let mut minute = wall + Duration::minutes(1);
                let mut found = Vec::new();
                while minute < close {
                    if let Some(t) = self.zone.from_local_datetime(&minute).earliest() {
                        found.push(t.with_timezone(&Utc));
                        break;
                    }
                    minute += Duration::minutes(1);
                }
                found
            }
        };
        candidates
            .into_iter()
            .find(|t| *t >= at && self.is_open(*t))
    }

    /// How an opening reads for a customer, on the inbox's clock: "today at 09:00",
    /// "tomorrow at 09:00", "on Monday at 09:00" within the week, else "on Monday
    /// 3 August at 09:00", with the zone ("(Europe/Berlin time)").
    pub fn describe_opening(&self, opening: DateTime<Utc>, now: DateTime<Utc>) -> String {
        let local = opening.with_timezone(&self.zone);
        let today = now.with_timezone(&self.zone).date_naive();
        let days = (local.date_naive() - today).num_days();
        let day = match days {
            ..=0 => "today".to_owned(),
            1 => "tomorrow".to_owned(),
            2..=6 => format!("on {}", day_name(local.weekday())),
            _ => format!(
                "on {} {} {}",
                day_name(local.weekday()),
                local.day(),
                local.format("%B")
            ),
        };
        format!(
            "{day} at {:02}:{:02} ({} time)",
            local.hour(),
            local.minute(),
            self.zone.name()
        )
    }
}

/// An inbox's business hours as its settings keep them: whether they apply, the schedule,
/// and the out-of-office reply. An inbox without them is always open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxHours {
    pub enabled: bool,
    pub hours: BusinessHours,
    /// Sent once per conversation that a customer starts or continues outside the hours;
    /// `{back}` becomes when the team is back ("on Monday at 09:00 (Europe/Berlin time)").
    pub out_of_office: String,
}

/// What a new schedule starts with.
pub const DEFAULT_OUT_OF_OFFICE: &str =
    "Thanks for your message. We're away right now and will reply when we're back {back}.";
/// The most characters an out-of-office reply may have.
pub const MAX_OUT_OF_OFFICE_CHARS: usize = 1000;

impl InboxHours {
    /// Whether the team is open at `at` (always, while the hours are off).
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        !self.enabled || self.hours.is_open(at)
    }

    /// When the team is back, while it is closed at `at`; `None` while open (or when the
    /// schedule never opens).
    pub fn back_at(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(at) {
            return None;
        }
        self.hours.next_opening(at)
    }

    /// When the team closes next, while it is open at `at` under these hours; `None`
    /// while closed, while the hours are off, or when it never closes.
    pub fn closes_at(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.enabled || !self.hours.is_open(at) {
            return None;
        }
        self.hours.next_closing(at)
    }

    /// The out-of-office reply as sent at `at`, `{back}` filled in ("soon" when the
    /// schedule names no opening).
    pub fn out_of_office_text(&self, at: DateTime<Utc>) -> String {
        let back = match self.hours.next_opening(at) {
            Some(opening) => self.hours.describe_opening(opening, at),
            None => "soon".to_owned(),
        };
        self.out_of_office.replace("{back}", &back)
    }
}

/// What the widget says about the team: online only while the inbox is open and the team
/// is available (`team_available`, however that is worked out); when closed, when it is
/// back; when open under business hours, when they end (the widget looks again then).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Presence {
    pub agents_online: bool,
    pub open: bool,
    pub back_at: Option<DateTime<Utc>>,
    pub closes_at: Option<DateTime<Utc>>,
}

pub fn presence(hours: Option<&InboxHours>, team_available: bool, now: DateTime<Utc>) -> Presence {
    let open = hours.is_none_or(|h| h.is_open(now));
    Presence {
        agents_online: open && team_available,
        open,
        back_at: hours.and_then(|h| h.back_at(now)),
        closes_at: hours.and_then(|h| h.closes_at(now)),
    }
}

/// A member's quiet hours: from `from` to `until` on the wall clock of `zone`, every day;
/// a range may wrap midnight (22:00 to 07:00). Push and email keep quiet then; the bell
/// still counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuietHours {
    pub zone: Tz,
    pub from: ClockTime,
    pub until: ClockTime,
}

impl QuietHours {
    /// Whether `at` falls in the quiet hours (from included, until excluded).
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.zone).time();
        let minute = u16::try_from(local.num_seconds_from_midnight() / 60).unwrap_or(0);
        let (from, until) = (self.from.minutes(), self.until.minutes());
        match from.cmp(&until) {
            std::cmp::Ordering::Less => (from..until).contains(&minute),
            std::cmp::Ordering::Greater => minute >= from || minute < until,
            std::cmp::Ordering::Equal => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> ClockTime {
        ClockTime::parse(s).expect("time")
    }

    fn iv(open: &str, close: &str) -> Interval {
        Interval::new(t(open), t(close))
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("rfc3339")
            .with_timezone(&Utc)
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    fn office(zone: &str) -> BusinessHours {
        BusinessHours::new(zone, Week::office_hours(), Vec::new()).expect("valid")
    }

    fn every_day(zone: &str, interval: Interval) -> BusinessHours {
        let mut week = Week::default();
        for day in WEEKDAYS {
            week.day_mut(day).push(interval);
        }
        BusinessHours::new(zone, week, Vec::new()).expect("valid")
    }

    #[test]
    fn times_parse_and_print_as_hours_and_minutes() {
        assert_eq!(t("9:00").to_string(), "09:00");
        assert_eq!(t("17:30").minutes(), 17 * 60 + 30);
        assert_eq!(t("24:00"), ClockTime::END_OF_DAY);
        for bad in [
            "24:30", "9", "9:5", "09:60", "-1:00", "ab:cd", "", "123:00", "9:000",
        ] {
            assert_eq!(
                ClockTime::parse(bad),
                Err(HoursError::BadTime(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn new_york_weekdays_nine_to_five() {
        let hours = office("America/New_York");
        // Monday 2026-01-05: 09:00 EST is 14:00 UTC.
        assert!(!hours.is_open(utc("2026-01-05T13:59:59Z")));
        assert!(hours.is_open(utc("2026-01-05T14:00:00Z")));
        assert!(hours.is_open(utc("2026-01-05T21:59:59Z")));
        assert!(!hours.is_open(utc("2026-01-05T22:00:00Z")), "17:00 closes");
        // Friday evening: back Monday 09:00.
        assert_eq!(
            hours.next_opening(utc("2026-01-09T23:00:00Z")),
            Some(utc("2026-01-12T14:00:00Z"))
        );
        // While open, the next opening is now.
        let now = utc("2026-01-06T15:00:00Z");
        assert_eq!(hours.next_opening(now), Some(now));
    }

    #[test]
    fn us_clocks_go_forward_on_8_march_2026() {
        let hours = office("America/New_York");
        // Friday 6 March, 09:00 EST = 14:00 UTC; Monday 9 March, 09:00 EDT = 13:00 UTC.
        assert!(hours.is_open(utc("2026-03-06T14:00:00Z")));
        assert_eq!(
            hours.next_opening(utc("2026-03-06T23:00:00Z")),
            Some(utc("2026-03-09T13:00:00Z"))
        );
        assert!(!hours.is_open(utc("2026-03-09T12:30:00Z")), "08:30 EDT");
        assert!(hours.is_open(utc("2026-03-09T13:00:00Z")));
    }

    #[test]
    fn an_opening_the_clocks_skip_opens_when_the_clock_jumps() {
        // On Sunday 8 March 2026 New York's clocks go from 02:00 EST to 03:00 EDT.
        let hours = every_day("America/New_York", iv("02:30", "05:00"));
        assert_eq!(
            hours.next_opening(utc("2026-03-08T05:00:00Z")), // 00:00 EST
            Some(utc("2026-03-08T07:00:00Z")),               // 03:00 EDT
        );
        assert!(hours.is_open(utc("2026-03-08T07:00:00Z")));
        assert!(!hours.is_open(utc("2026-03-08T06:59:00Z")), "01:59 EST");
        // An interval wholly inside the skipped hour does not open that day.
        let skipped = every_day("America/New_York", iv("02:10", "02:50"));
        assert_eq!(
            skipped.next_opening(utc("2026-03-08T05:00:00Z")),
            Some(utc("2026-03-09T06:10:00Z")), // Monday 02:10 EDT
        );
    }

    #[test]
    fn berlin_across_both_changes_of_2026() {
        let hours = office("Europe/Berlin");
        // Friday 27 March: 09:00 CET = 08:00 UTC. Clocks go forward on Sunday 29 March;
        // Monday 30 March: 09:00 CEST = 07:00 UTC.
        assert!(hours.is_open(utc("2026-03-27T08:00:00Z")));
        assert_eq!(
            hours.next_opening(utc("2026-03-27T17:00:00Z")),
            Some(utc("2026-03-30T07:00:00Z"))
        );
        // Clocks go back on Sunday 25 October; Monday 26 October: 09:00 CET = 08:00 UTC.
        assert_eq!(
            hours.next_opening(utc("2026-10-23T16:00:00Z")),
            Some(utc("2026-10-26T08:00:00Z"))
        );
        assert!(!hours.is_open(utc("2026-10-26T07:30:00Z")), "08:30 CET");
    }

    #[test]
    fn the_hour_that_repeats_in_berlin_is_open_both_times() {
        // 25 October 2026: 03:00 CEST becomes 02:00 CET, so 02:00–02:59 happens twice.
        let hours = every_day("Europe/Berlin", iv("02:00", "03:00"));
        assert!(hours.is_open(utc("2026-10-25T00:30:00Z")), "02:30 CEST");
        assert!(hours.is_open(utc("2026-10-25T01:30:00Z")), "02:30 CET");
        assert!(!hours.is_open(utc("2026-10-25T02:00:00Z")), "03:00 CET");
        // Opening at 02:30: the first pass, and between the passes, the second.
        let late = every_day("Europe/Berlin", iv("02:30", "02:45"));
        assert_eq!(
            late.next_opening(utc("2026-10-24T23:00:00Z")),
            Some(utc("2026-10-25T00:30:00Z"))
        );
        assert_eq!(
            late.next_opening(utc("2026-10-25T00:50:00Z")), // 02:50 CEST
            Some(utc("2026-10-25T01:30:00Z"))               // 02:30 CET
        );
        // An opening at 02:30 on the day the clocks go forward (29 March) opens at 03:00.
        let spring = every_day("Europe/Berlin", iv("02:30", "04:00"));
        assert_eq!(
            spring.next_opening(utc("2026-03-28T23:00:00Z")),
            Some(utc("2026-03-29T01:00:00Z"))
        );
    }

    #[test]
    fn kolkata_has_no_daylight_saving_and_a_half_hour_offset() {
        let hours = office("Asia/Kolkata");
        // 09:00 IST = 03:30 UTC, the same all year.
        for day in ["2026-01-05", "2026-03-30", "2026-07-06", "2026-10-26"] {
            let opening = utc(&format!("{day}T03:30:00Z"));
            assert!(hours.is_open(opening), "{day}");
            assert!(!hours.is_open(opening - Duration::seconds(1)), "{day}");
        }
    }

    #[test]
    fn sydney_clocks_go_back_in_april_and_forward_in_october() {
        let hours = office("Australia/Sydney");
        // Friday 3 April 2026 (AEDT, +11) closes 17:00 = 06:00 UTC; clocks go back on
        // Sunday 5 April; Monday 6 April opens 09:00 AEST (+10) = Sunday 23:00 UTC.
        assert_eq!(
            hours.next_opening(utc("2026-04-03T06:00:00Z")),
            Some(utc("2026-04-05T23:00:00Z"))
        );
        // Forward on Sunday 4 October; Monday 5 October 09:00 AEDT = Sunday 22:00 UTC.
        assert_eq!(
            hours.next_opening(utc("2026-10-02T07:00:00Z")),
            Some(utc("2026-10-04T22:00:00Z"))
        );
    }

    #[test]
    fn holidays_are_closed_days_in_the_inbox_zone() {
        let hours = BusinessHours::new(
            "Europe/Berlin",
            Week::office_hours(),
            vec![date("2026-12-25"), date("2026-12-24"), date("2026-12-25")],
        )
        .expect("valid");
        assert_eq!(hours.holidays(), [date("2026-12-24"), date("2026-12-25")]);
        // Thursday 24 December 10:00 CET: a holiday.
        assert!(!hours.is_open(utc("2026-12-24T09:00:00Z")));
        // Wednesday evening: Thursday and Friday are holidays, so back Monday 28th.
        assert_eq!(
            hours.next_opening(utc("2026-12-23T17:00:00Z")),
            Some(utc("2026-12-28T08:00:00Z"))
        );
        // The holiday is Berlin's date: 23:30 UTC on the 23rd is already the 24th there.
        let all_day = every_day("Europe/Berlin", iv("00:00", "24:00"));
        let with_holiday = BusinessHours::new(
            "Europe/Berlin",
            all_day.week().clone(),
            vec![date("2026-12-24")],
        )
        .expect("valid");
        assert!(!with_holiday.is_open(utc("2026-12-23T23:30:00Z")));
        assert!(with_holiday.is_open(utc("2026-12-23T22:30:00Z")));
        assert_eq!(
            with_holiday.next_opening(utc("2026-12-23T23:30:00Z")),
            Some(utc("2026-12-24T23:00:00Z"))
        );
    }

    #[test]
    fn a_shift_through_midnight_is_two_intervals_that_read_as_one() {
        let mut week = Week::default();
        week.mon.push(iv("22:00", "24:00"));
        week.tue.push(iv("00:00", "02:00"));
        let hours = BusinessHours::new("UTC", week, Vec::new()).expect("valid");
        assert!(hours.is_open(utc("2026-01-05T23:59:59Z")));
        assert!(hours.is_open(utc("2026-01-06T00:00:00Z")));
        assert!(hours.is_open(utc("2026-01-06T01:59:00Z")));
        assert!(!hours.is_open(utc("2026-01-06T02:00:00Z")));
        assert_eq!(
            hours.next_opening(utc("2026-01-06T02:00:00Z")),
            Some(utc("2026-01-12T22:00:00Z"))
        );
    }

    #[test]
    fn the_next_closing_ends_the_open_stretch_across_midnight_and_dst() {
        let hours = office("America/New_York");
        // Monday 10:00 EST: closes at 17:00 EST = 22:00 UTC; while closed, now.
        assert_eq!(
            hours.next_closing(utc("2026-01-05T15:00:00Z")),
            Some(utc("2026-01-05T22:00:00Z"))
        );
        let closed = utc("2026-01-05T23:00:00Z");
        assert_eq!(hours.next_closing(closed), Some(closed));
        // A shift through midnight closes at its second half's end.
        let mut week = Week::default();
        week.mon.push(iv("22:00", "24:00"));
        week.tue.push(iv("00:00", "02:00"));
        week.tue.push(iv("02:00", "03:00"));
        let night = BusinessHours::new("UTC", week, Vec::new()).expect("valid");
        assert_eq!(
            night.next_closing(utc("2026-01-05T23:00:00Z")),
            Some(utc("2026-01-06T03:00:00Z"))
        );
        // Open around the clock: never closes; with a holiday, closes when it starts.
        let always = every_day("Europe/Berlin", iv("00:00", "24:00"));
        assert_eq!(always.next_closing(utc("2026-01-05T12:00:00Z")), None);
        let christmas = BusinessHours::new(
            "Europe/Berlin",
            always.week().clone(),
            vec![date("2026-12-25")],
        )
        .expect("valid");
        assert_eq!(
            christmas.next_closing(utc("2026-12-23T12:00:00Z")),
            Some(utc("2026-12-24T23:00:00Z"))
        );
        // Closing at 03:00 on the night Berlin's clocks skip from 02:00 to 03:00.
        let spring = every_day("Europe/Berlin", iv("01:00", "02:30"));
        assert_eq!(
            spring.next_closing(utc("2026-03-29T00:30:00Z")), // 01:30 CET
            Some(utc("2026-03-29T01:00:00Z"))                 // 03:00 CEST
        );
    }

    #[test]
    fn a_schedule_with_no_open_day_never_opens() {
        let hours = BusinessHours::new("UTC", Week::default(), Vec::new()).expect("valid");
        assert!(!hours.is_open(utc("2026-01-05T12:00:00Z")));
        assert_eq!(hours.next_opening(utc("2026-01-05T12:00:00Z")), None);
    }

    #[test]
    fn invalid_schedules_are_refused_with_a_reason() {
        assert_eq!(
            BusinessHours::new("Mars/Olympus", Week::office_hours(), Vec::new()),
            Err(HoursError::UnknownZone("Mars/Olympus".into()))
        );
        let mut week = Week::default();
        week.wed.push(iv("17:00", "09:00"));
        let err = BusinessHours::new("UTC", week, Vec::new()).expect_err("backwards");
        assert_eq!(
            err.to_string(),
            "On Wednesday, 17:00–09:00 closes before it opens."
        );
        assert_eq!(err.day(), Some(Weekday::Wed));
        let mut week = Week::default();
        week.fri.push(iv("12:00", "17:00"));
        week.fri.push(iv("09:00", "13:00"));
        let err = BusinessHours::new("UTC", week, Vec::new()).expect_err("overlap");
        assert_eq!(
            err.to_string(),
            "On Friday, 09:00–13:00 and 12:00–17:00 overlap."
        );
        let mut week = Week::default();
        week.fri.push(iv("09:00", "12:00"));
        week.fri.push(iv("12:00", "17:00"));
        assert!(
            BusinessHours::new("UTC", week, Vec::new()).is_ok(),
            "touching is fine"
        );
        let mut week = Week::default();
        week.sat.push(iv("09:00", "09:00"));
        assert!(matches!(
            BusinessHours::new("UTC", week, Vec::new()),
            Err(HoursError::CloseBeforeOpen {
                day: Weekday::Sat,
                ..
            })
        ));
        let many = (0..=MAX_HOLIDAYS as u64)
            .map(|i| date("2026-01-01") + Days::new(i))
            .collect();
        assert_eq!(
            BusinessHours::new("UTC", Week::default(), many),
            Err(HoursError::TooManyHolidays)
        );
    }

    #[test]
    fn the_stored_form_round_trips_and_is_validated_when_read() {
        let hours = BusinessHours::new(
            "Europe/Berlin",
            Week::office_hours(),
            vec![date("2026-12-25")],
        )
        .expect("valid");
        let stored = serde_json::to_value(&hours).expect("json");
        assert_eq!(stored["time_zone"], "Europe/Berlin");
        assert_eq!(stored["week"]["mon"][0]["open"], "09:00");
        assert_eq!(stored["week"]["sun"], serde_json::json!([]));
        assert_eq!(stored["holidays"][0], "2026-12-25");
        let back: BusinessHours = serde_json::from_value(stored).expect("read back");
        assert_eq!(back, hours);
        let bad = serde_json::json!({ "time_zone": "Nowhere/City" });
        assert!(serde_json::from_value::<BusinessHours>(bad).is_err());
        let backwards = serde_json::json!({ "time_zone": "UTC", "week": { "mon": [{ "open": "18:00", "close": "08:00" }] } });
        assert!(serde_json::from_value::<BusinessHours>(backwards).is_err());
    }

    #[test]
    fn the_zone_list_has_regions_and_utc_but_not_legacy_aliases() {
        let names: Vec<&str> = zone_names().collect();
        assert!(names.contains(&"Europe/Berlin"));
        assert!(names.contains(&"America/New_York"));
        assert!(names.contains(&"UTC"));
        assert!(!names.contains(&"US/Eastern"));
        assert!(!names.iter().any(|n| n.starts_with("Etc/")));
    }

    #[test]
    fn openings_read_as_today_tomorrow_a_weekday_or_a_date() {
        let hours = office("Europe/Berlin");
        let now = utc("2026-01-05T06:00:00Z"); // Monday 07:00 CET
        let at = |s| hours.describe_opening(utc(s), now);
        assert_eq!(
            at("2026-01-05T08:00:00Z"),
            "today at 09:00 (Europe/Berlin time)"
        );
        assert_eq!(
            at("2026-01-06T08:00:00Z"),
            "tomorrow at 09:00 (Europe/Berlin time)"
        );
        assert_eq!(
            at("2026-01-09T08:00:00Z"),
            "on Friday at 09:00 (Europe/Berlin time)"
        );
        assert_eq!(
            at("2026-01-12T08:00:00Z"),
            "on Monday 12 January at 09:00 (Europe/Berlin time)"
        );
    }

    #[test]
    fn inbox_hours_fill_in_when_the_team_is_back_and_are_open_while_off() {
        let mut inbox = InboxHours {
            enabled: true,
            hours: office("America/New_York"),
            out_of_office: DEFAULT_OUT_OF_OFFICE.into(),
        };
        let friday_night = utc("2026-01-09T23:00:00Z");
        assert_eq!(
            inbox.out_of_office_text(friday_night),
            "Thanks for your message. We're away right now and will reply when we're back on Monday at 09:00 (America/New_York time)."
        );
        assert_eq!(
            inbox.back_at(friday_night),
            Some(utc("2026-01-12T14:00:00Z"))
        );
        let p = presence(Some(&inbox), true, friday_night);
        assert_eq!((p.agents_online, p.open), (false, false));
        assert_eq!(p.back_at, Some(utc("2026-01-12T14:00:00Z")));
        let monday = utc("2026-01-12T15:00:00Z");
        let p = presence(Some(&inbox), true, monday);
        assert_eq!((p.agents_online, p.open, p.back_at), (true, true, None));
        assert_eq!(p.closes_at, Some(utc("2026-01-12T22:00:00Z")));
        assert_eq!(presence(Some(&inbox), true, friday_night).closes_at, None);
        assert!(!presence(Some(&inbox), false, monday).agents_online);
        inbox.enabled = false;
        assert!(inbox.is_open(friday_night));
        assert_eq!(inbox.back_at(friday_night), None);
        assert_eq!(inbox.closes_at(monday), None, "off: never closes");
        let p = presence(None, true, friday_night);
        assert_eq!(
            (p.agents_online, p.open, p.back_at, p.closes_at),
            (true, true, None, None)
        );
    }

    #[test]
    fn quiet_hours_follow_the_members_wall_clock_and_may_wrap_midnight() {
        let night = QuietHours {
            zone: parse_zone("Europe/Berlin").expect("zone"),
            from: ClockTime::parse("22:00").expect("time"),
            until: ClockTime::parse("07:00").expect("time"),
        };
        // Berlin is UTC+1 in January.
        assert!(!night.contains(utc("2026-01-12T20:59:00Z")));
        assert!(night.contains(utc("2026-01-12T21:00:00Z")));
        assert!(night.contains(utc("2026-01-13T05:59:00Z")));
        assert!(!night.contains(utc("2026-01-13T06:00:00Z")));
        let lunch = QuietHours {
            from: ClockTime::parse("12:00").expect("time"),
            until: ClockTime::parse("13:00").expect("time"),
            ..night
        };
        assert!(lunch.contains(utc("2026-01-12T11:30:00Z")));
        assert!(!lunch.contains(utc("2026-01-12T12:00:00Z")));
    }
}
