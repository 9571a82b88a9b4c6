//! The "Business hours" section of an inbox's settings page: on/off, the time zone, the
//! weekly grid, holidays, and the out-of-office reply with a preview of it as it would go
//! out now. The page and its route are the inbox settings' (`inboxes.rs`); this reads the
//! form and says what the section shows.

use chrono::{DateTime, NaiveDate, Utc, Weekday};
use kaltalk_core::hours::{
    BusinessHours, ClockTime, DEFAULT_OUT_OF_OFFICE, HoursError, InboxHours,
    MAX_OUT_OF_OFFICE_CHARS, WEEKDAYS, Week, day_name, zone_names,
};
use kaltalk_core::{Text, ValidationError};

use crate::web::FieldErrors;

/// Each weekday's field prefix in the form, Monday first (`mon_open`, `mon_from`, `mon_to`),
/// and the key its errors are kept under.
const DAYS: [(&str, &str); 7] = [
    ("mon", "hours_mon"),
    ("tue", "hours_tue"),
    ("wed", "hours_wed"),
    ("thu", "hours_thu"),
    ("fri", "hours_fri"),
    ("sat", "hours_sat"),
    ("sun", "hours_sun"),
];

fn day_keys(day: Weekday) -> (&'static str, &'static str) {
    DAYS[day.num_days_from_monday() as usize]
}

/// One weekday's row of the grid: closed, or open from–to (more than one period a day
/// shows as more rows of times).
pub struct DayRow {
    pub key: &'static str,
    pub error_key: &'static str,
    pub name: &'static str,
    pub open: bool,
    pub periods: Vec<(String, String)>,
}

pub struct ZoneOption {
    pub name: String,
    pub selected: bool,
}

fn zone_options(chosen: &str) -> Vec<ZoneOption> {
    let mut zones: Vec<ZoneOption> = zone_names()
        .map(|name| ZoneOption {
            name: name.to_owned(),
            selected: name == chosen,
        })
        .collect();
    if !zones.iter().any(|z| z.selected) {
        zones.insert(
            0,
            ZoneOption {
                name: chosen.to_owned(),
                selected: true,
            },
        );
    }
    zones
}

pub struct HolidayRow {
    /// `2026-12-25`.
    pub value: String,
    /// `Friday 25 December 2026`.
    pub label: String,
}

/// What the section shows: the saved hours, or what was typed when it was refused.
pub struct HoursView {
    pub enabled: bool,
    /// Never saved: the page's script preselects the browser's zone (UTC without it).
    pub zone_unset: bool,
    /// The zones to pick from, the chosen one marked (an unknown one typed is listed too,
    /// so the page shows what was refused).
    pub zones: Vec<ZoneOption>,
    pub days: Vec<DayRow>,
    pub holidays: Vec<HolidayRow>,
    pub new_holiday: String,
    pub out_of_office: String,
    /// The saved reply as a customer writing now would get it, `{back}` filled in.
    pub preview: String,
    /// "Open now", "Closed now: back …", or that the hours are off.
    pub status: String,
}

fn holiday_row(date: NaiveDate) -> HolidayRow {
    HolidayRow {
        value: date.to_string(),
        label: date.format("%A %-d %B %Y").to_string(),
    }
}

impl HoursView {
    /// The section for the saved hours (`None`: never set).
    pub fn of(saved: Option<&InboxHours>, now: DateTime<Utc>) -> Self {
        let default;
        let (hours, unset) = match saved {
            Some(saved) => (saved, false),
            None => {
                default = InboxHours {
                    enabled: false,
                    hours: BusinessHours::new("UTC", Week::office_hours(), Vec::new())
                        .unwrap_or_else(|_| unreachable!("office hours in UTC are valid")),
                    out_of_office: DEFAULT_OUT_OF_OFFICE.to_owned(),
                };
                (&default, true)
            }
        };
        let days = WEEKDAYS
            .iter()
            .map(|day| {
                let (key, error_key) = day_keys(*day);
                let intervals = hours.hours.week().day(*day);
                DayRow {
                    key,
                    error_key,
                    name: day_name(*day),
                    open: !intervals.is_empty(),
                    periods: if intervals.is_empty() {
                        vec![("09:00".into(), "17:00".into())]
                    } else {
                        intervals
                            .iter()
                            .map(|i| (i.open.to_string(), time_field(i.close)))
                            .collect()
                    },
                }
            })
            .collect();
        let mut view = Self {
            enabled: hours.enabled,
            zone_unset: unset,
            zones: zone_options(hours.hours.zone_name()),
            days,
            holidays: hours
                .hours
                .holidays()
                .iter()
                .copied()
                .map(holiday_row)
                .collect(),
            new_holiday: String::new(),
            out_of_office: hours.out_of_office.clone(),
            preview: String::new(),
            status: String::new(),
        };
        view.describe(saved, now);
        view
    }

    /// Fills the preview and the status line from the saved hours.
    fn describe(&mut self, saved: Option<&InboxHours>, now: DateTime<Utc>) {
        let Some(saved) = saved.filter(|h| h.enabled) else {
            self.status =
                "Off: the inbox is always open and no out-of-office reply is sent.".to_owned();
            self.preview = match saved {
                Some(saved) => saved.out_of_office_text(now),
                None => String::new(),
            };
            return;
        };
        self.preview = saved.out_of_office_text(now);
        self.status = match saved.back_at(now) {
            None if saved.is_open(now) => "Open now.".to_owned(),
            None => "Closed: the schedule never opens.".to_owned(),
            Some(back) => format!(
                "Closed now: back {}.",
                saved.hours.describe_opening(back, now)
            ),
        };
    }
}

/// A time as a time field holds it: midnight at the end of the day is 00:00 there.
fn time_field(time: ClockTime) -> String {
    if time == ClockTime::END_OF_DAY {
        ClockTime::MIDNIGHT.to_string()
    } else {
        time.to_string()
    }
}

/// The form's fields in order (a weekday may repeat its times; holidays repeat).
pub type HoursForm = Vec<(String, String)>;

fn first<'a>(form: &'a HoursForm, name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn all<'a>(form: &'a HoursForm, name: &str) -> Vec<&'a str> {
    form.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn ticked(form: &HoursForm, name: &str) -> bool {
    first(form, name).is_some_and(|v| !v.is_empty())
}

/// Reads the section's form: the hours to save, or the errors by field; with the view of
/// what was typed, for the page to show again. `saved` gives the preview and status.
pub fn parse(
    form: &HoursForm,
    saved: Option<&InboxHours>,
    now: DateTime<Utc>,
) -> (HoursView, Result<InboxHours, FieldErrors>) {
    let mut errors = FieldErrors::default();
    let enabled = ticked(form, "hours_enabled");
    let zone = first(form, "time_zone")
        .unwrap_or_default()
        .trim()
        .to_owned();

    let mut week = Week::default();
    let mut rows = Vec::new();
    for day in WEEKDAYS {
        let (key, error_key) = day_keys(day);
        let open = ticked(form, &format!("{key}_open"));
        let froms = all(form, &format!("{key}_from"));
        let tos = all(form, &format!("{key}_to"));
        let periods: Vec<(String, String)> = froms
            .iter()
            .zip(tos.iter().chain(std::iter::repeat(&"")))
            .map(|(f, t)| (f.trim().to_owned(), t.trim().to_owned()))
            .filter(|(f, t)| !(f.is_empty() && t.is_empty()))
            .collect();
        if open {
            if periods.is_empty() {
                errors.add(ValidationError::new(
                    error_key,
                    format!(
                        "Give {}'s opening and closing times, or untick it.",
                        day_name(day)
                    ),
                ));
            }
            for (from, to) in &periods {
                match (ClockTime::parse(from), ClockTime::parse(to)) {
                    // A time field cannot say 24:00: closing at 00:00 is at midnight.
                    (Ok(open), Ok(close)) => {
                        let close = if close == ClockTime::MIDNIGHT {
                            ClockTime::END_OF_DAY
                        } else {
                            close
                        };
                        week.day_mut(day)
                            .push(kaltalk_core::hours::Interval::new(open, close));
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        errors.add(ValidationError::new(
                            error_key,
                            format!("{}: {e}", day_name(day)),
                        ));
                    }
                }
            }
        }
        rows.push(DayRow {
            key,
            error_key,
            name: day_name(day),
            open,
            periods: if periods.is_empty() {
                vec![(String::new(), String::new())]
            } else {
                periods
            },
        });
    }

    let mut holidays = Vec::new();
    let mut holiday_rows = Vec::new();
    let new_holiday = first(form, "holiday_new").unwrap_or_default().trim();
    for value in all(form, "holiday").into_iter().chain([new_holiday]) {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match value.parse::<NaiveDate>() {
            Ok(date) => {
                holidays.push(date);
                if value != new_holiday {
                    holiday_rows.push(holiday_row(date));
                }
            }
            Err(_) => errors.add(ValidationError::new(
                "hours_holidays",
                format!("{value:?} is not a date like 2026-12-25."),
            )),
        }
    }

    let typed = first(form, "out_of_office").unwrap_or_default();
    let out_of_office = match Text::parse("hours_out_of_office", typed) {
        Ok(text) => text.trim().to_owned(),
        Err(e) => {
            errors.add(e);
            String::new()
        }
    };
    if out_of_office.chars().count() > MAX_OUT_OF_OFFICE_CHARS {
        errors.add(ValidationError::new(
            "hours_out_of_office",
            format!("Keep the reply under {MAX_OUT_OF_OFFICE_CHARS} characters."),
        ));
    }

    let refused = |e: HoursError, errors: &mut FieldErrors| {
        let field = match &e {
            HoursError::UnknownZone(_) => "hours_time_zone",
            HoursError::TooManyHolidays => "hours_holidays",
            other => other.day().map_or("hours_time_zone", |d| day_keys(d).1),
        };
        errors.add(ValidationError::new(field, e.to_string()));
    };
    let hours = match BusinessHours::new(&zone, week.clone(), holidays.clone()) {
        Ok(hours) => Some(hours),
        Err(e @ HoursError::UnknownZone(_)) => {
            refused(e, &mut errors);
            // The grid's own mistakes are said at once too, not after the zone is fixed.
            if let Err(e) = BusinessHours::new("UTC", week, holidays) {
                refused(e, &mut errors);
            }
            None
        }
        Err(e) => {
            refused(e, &mut errors);
            None
        }
    };

    let mut view = HoursView {
        enabled,
        zones: zone_options(&zone),
        zone_unset: false,
        days: rows,
        holidays: holiday_rows,
        new_holiday: if errors.get("hours_holidays").is_some() {
            new_holiday.to_owned()
        } else {
            String::new()
        },
        out_of_office: typed.to_owned(),
        preview: String::new(),
        status: String::new(),
    };
    view.describe(saved, now);
    let result = match hours {
        Some(hours) if errors.is_empty() => Ok(InboxHours {
            enabled,
            hours,
            out_of_office,
        }),
        _ => Err(errors),
    };
    (view, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HoursForm {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn now() -> DateTime<Utc> {
        "2026-01-05T12:00:00Z".parse().expect("time")
    }

    #[test]
    fn a_filled_form_gives_the_hours() {
        let (_, parsed) = parse(
            &form(&[
                ("hours_enabled", "yes"),
                ("time_zone", "Europe/Berlin"),
                ("mon_open", "yes"),
                ("mon_from", "09:00"),
                ("mon_to", "17:00"),
                ("tue_from", "10:00"),
                ("tue_to", "12:00"),
                ("holiday", "2026-12-25"),
                ("holiday_new", "2026-12-24"),
                ("out_of_office", "Back {back}."),
            ]),
            None,
            now(),
        );
        let hours = parsed.unwrap_or_else(|_| panic!("valid"));
        assert!(hours.enabled);
        assert_eq!(hours.hours.zone_name(), "Europe/Berlin");
        assert_eq!(hours.hours.week().mon.len(), 1);
        assert!(hours.hours.week().tue.is_empty(), "Tuesday is not ticked");
        assert_eq!(hours.hours.holidays().len(), 2);
        assert_eq!(hours.out_of_office, "Back {back}.");
    }

    #[test]
    fn closing_at_00_00_means_midnight_and_shows_as_00_00_again() {
        let (_, parsed) = parse(
            &form(&[
                ("time_zone", "UTC"),
                ("sat_open", "yes"),
                ("sat_from", "22:00"),
                ("sat_to", "00:00"),
                ("out_of_office", ""),
            ]),
            None,
            now(),
        );
        let hours = parsed.unwrap_or_else(|_| panic!("valid"));
        assert_eq!(hours.hours.week().sat[0].close, ClockTime::END_OF_DAY);
        let view = HoursView::of(Some(&hours), now());
        assert_eq!(
            view.days[5].periods,
            [("22:00".to_owned(), "00:00".to_owned())]
        );
    }

    #[test]
    fn errors_name_their_field_and_keep_what_was_typed() {
        let (view, parsed) = parse(
            &form(&[
                ("time_zone", "Mars/Olympus"),
                ("wed_open", "yes"),
                ("wed_from", "17:00"),
                ("wed_to", "09:00"),
                ("thu_open", "yes"),
                ("thu_from", "9 am"),
                ("thu_to", "17:00"),
                ("fri_open", "yes"),
                ("holiday_new", "next friday"),
            ]),
            None,
            now(),
        );
        let errors = parsed.expect_err("refused");
        assert!(errors.get("hours_thu").is_some_and(|e| e.contains("9 am")));
        assert!(
            errors
                .get("hours_fri")
                .is_some_and(|e| e.contains("Friday"))
        );
        assert!(errors.get("hours_holidays").is_some());
        assert!(
            view.zones
                .iter()
                .any(|z| z.selected && z.name == "Mars/Olympus")
        );
        assert_eq!(view.new_holiday, "next friday");
        assert_eq!(
            view.days[2].periods,
            [("17:00".to_owned(), "09:00".to_owned())]
        );
        // With the times fixed, the zone and the backwards Wednesday are both said.
        let (_, parsed) = parse(
            &form(&[
                ("time_zone", "Mars/Olympus"),
                ("wed_open", "yes"),
                ("wed_from", "17:00"),
                ("wed_to", "09:00"),
            ]),
            None,
            now(),
        );
        let errors = parsed.expect_err("refused");
        assert!(errors.get("hours_time_zone").is_some());
        assert!(errors.get("hours_wed").is_some());
        let (_, parsed) = parse(
            &form(&[
                ("time_zone", "UTC"),
                ("wed_open", "yes"),
                ("wed_from", "17:00"),
                ("wed_to", "09:00"),
            ]),
            None,
            now(),
        );
        let errors = parsed.expect_err("refused");
        assert_eq!(
            errors.get("hours_wed"),
            Some("On Wednesday, 17:00–09:00 closes before it opens.")
        );
    }

    #[test]
    fn never_saved_hours_start_from_office_hours_and_are_off() {
        let view = HoursView::of(None, now());
        assert!(!view.enabled);
        assert!(view.zone_unset);
        assert!(view.days[0].open && !view.days[5].open);
        assert!(view.status.starts_with("Off"));
        assert_eq!(view.out_of_office, DEFAULT_OUT_OF_OFFICE);
    }
}
