//! Cron expressions in IANA time zones: validation ([`CronSpec::parse`]), the
//! next tick, and which ticks are due since the last one handled ([`CronSpec::due`]).
//!
//! An expression has 5 fields (minute hour day-of-month month day-of-week) or 6
//! (seconds first); names (`MON`, `JAN`), ranges, lists, steps and `L`/`#`/`W`
//! are read by the `croner` crate, the zone by `chrono-tz`. A tick is an instant:
//! across a DST change a local time that does not exist is skipped and one that
//! happens twice runs once.

use std::time::Duration;

use chrono::TimeZone;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use time::OffsetDateTime;

use crate::model::CatchUp;
use crate::{Error, Result};

/// A tick more overdue than this when first seen was missed (no API process ran
/// then): it is caught up by the schedule's [`CatchUp`], not simply run.
pub const LATE_AFTER: Duration = Duration::from_secs(10);

/// Most ticks of one schedule run at once (a fast expression after a stall).
pub const MAX_DUE: usize = 100;

/// A parsed expression and its zone.
#[derive(Debug, Clone)]
pub struct CronSpec {
    cron: Cron,
    tz: chrono_tz::Tz,
}

/// The ticks due at one look and how far they reach.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Due {
    /// Ticks to run, oldest first.
    pub run: Vec<OffsetDateTime>,
    /// The latest tick looked at (run or skipped): the schedule's new last tick.
    pub handled_to: Option<OffsetDateTime>,
}

impl CronSpec {
    /// Parses `expr` in `timezone`; `Invalid` with the reason otherwise.
    pub fn parse(expr: &str, timezone: &str) -> Result<CronSpec> {
        let fields = expr.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(Error::Invalid(format!(
                "cron must have 5 fields (minute hour day-of-month month day-of-week) or 6 \
                 (seconds first), not {fields}"
            )));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(expr)
            .map_err(|e| Error::Invalid(format!("cron {expr:?}: {e}")))?;
        let tz: chrono_tz::Tz = timezone.parse().map_err(|_| {
            Error::Invalid(format!(
                "unknown time zone {timezone:?}: use an IANA name such as UTC or Europe/Berlin"
            ))
        })?;
        let spec = CronSpec { cron, tz };
        if spec.next_after(crate::model::now()).is_none() {
            return Err(Error::Invalid(format!("cron {expr:?} never matches")));
        }
        Ok(spec)
    }

    /// The first tick strictly after `t`.
    pub fn next_after(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        let at = self.local(t)?;
        let next = self.cron.find_next_occurrence(&at, false).ok()?;
        from_chrono(next)
    }

    /// The last tick at or before `t`.
    pub fn previous_at_or_before(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        let at = self.local(t)?;
        let prev = self.cron.find_previous_occurrence(&at, true).ok()?;
        from_chrono(prev)
    }

    /// The ticks due at `now` after `last`: those less than [`LATE_AFTER`] overdue
    /// all run (at most [`MAX_DUE`]); of those older, only the latest runs, and only
    /// with [`CatchUp::Latest`].
    pub fn due(&self, last: OffsetDateTime, now: OffsetDateTime, catch_up: CatchUp) -> Due {
        let mut due = Due::default();
        let mut from = last;
        let edge = now - LATE_AFTER;
        if edge > last
            && let Some(missed) = self.previous_at_or_before(edge).filter(|t| *t > last)
        {
            if catch_up == CatchUp::Latest {
                due.run.push(missed);
            }
            due.handled_to = Some(missed);
            from = missed;
        }
        while due.run.len() < MAX_DUE {
            match self.next_after(from) {
                Some(next) if next <= now => {
                    due.run.push(next);
                    due.handled_to = Some(next);
                    from = next;
                }
                _ => break,
            }
        }
        due
    }

    fn local(&self, t: OffsetDateTime) -> Option<chrono::DateTime<chrono_tz::Tz>> {
        let utc = chrono::DateTime::from_timestamp(t.unix_timestamp(), t.nanosecond())?;
        Some(self.tz.from_utc_datetime(&utc.naive_utc()))
    }
}

fn from_chrono(t: chrono::DateTime<chrono_tz::Tz>) -> Option<OffsetDateTime> {
    let nanos = t.timestamp_nanos_opt()?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    }

    fn invalid(expr: &str, tz: &str) -> String {
        match CronSpec::parse(expr, tz) {
            Err(Error::Invalid(m)) => m,
            other => panic!("{expr:?} in {tz}: {other:?}"),
        }
    }

    #[test]
    fn five_and_six_fields_parse_and_others_are_refused_with_the_reason() {
        CronSpec::parse("*/5 * * * *", "UTC").unwrap();
        CronSpec::parse("*/10 * * * * MON-FRI", "Europe/Berlin").unwrap();
        assert!(invalid("* * * *", "UTC").contains("5 fields"));
        assert!(invalid("* * * * * * 2030", "UTC").contains("not 7"));
        assert!(invalid("61 * * * *", "UTC").contains("61"));
        assert!(invalid("* * * * BLAH", "UTC").contains("BLAH"));
        assert!(invalid("* * * * *", "Mars/Olympus").contains("unknown time zone"));
        assert!(invalid("0 0 31 2 *", "UTC").contains("never matches"));
    }

    #[test]
    fn next_tick_is_read_in_the_time_zone() {
        let spec = CronSpec::parse("0 9 * * *", "Europe/Berlin").unwrap();
        // 09:00 in Berlin in winter is 08:00 UTC, in summer 07:00 UTC.
        assert_eq!(
            spec.next_after(at("2026-01-10T00:00:00Z")),
            Some(at("2026-01-10T08:00:00Z"))
        );
        assert_eq!(
            spec.next_after(at("2026-07-10T00:00:00Z")),
            Some(at("2026-07-10T07:00:00Z"))
        );
        let secs = CronSpec::parse("*/15 * * * * *", "UTC").unwrap();
        assert_eq!(
            secs.next_after(at("2026-01-10T00:00:00Z")),
            Some(at("2026-01-10T00:00:15Z"))
        );
    }

    #[test]
    fn ticks_on_time_all_run() {
        let spec = CronSpec::parse("* * * * * *", "UTC").unwrap();
        let due = spec.due(
            at("2026-01-10T00:00:00Z"),
            at("2026-01-10T00:00:02.500Z"),
            CatchUp::None,
        );
        assert_eq!(
            due.run,
            vec![at("2026-01-10T00:00:01Z"), at("2026-01-10T00:00:02Z")]
        );
        assert_eq!(due.handled_to, Some(at("2026-01-10T00:00:02Z")));
        let none = spec.due(
            at("2026-01-10T00:00:02Z"),
            at("2026-01-10T00:00:02.900Z"),
            CatchUp::Latest,
        );
        assert_eq!(none, Due::default());
    }

    #[test]
    fn missed_ticks_make_one_run_with_latest_and_none_with_none() {
        let spec = CronSpec::parse("* * * * *", "UTC").unwrap();
        let last = at("2026-01-10T00:00:00Z");
        let now = at("2026-01-10T05:30:30Z");
        let latest = spec.due(last, now, CatchUp::Latest);
        assert_eq!(latest.run, vec![at("2026-01-10T05:30:00Z")]);
        assert_eq!(latest.handled_to, Some(at("2026-01-10T05:30:00Z")));
        let none = spec.due(last, now, CatchUp::None);
        assert!(none.run.is_empty());
        assert_eq!(none.handled_to, Some(at("2026-01-10T05:30:00Z")));
        // A second-level expression down for a month: one catch-up, then the ticks of
        // the last 10 s (late, not missed).
        let fast = CronSpec::parse("* * * * * *", "UTC").unwrap();
        let due = fast.due(
            at("2026-01-01T00:00:00Z"),
            at("2026-02-01T00:00:04Z"),
            CatchUp::Latest,
        );
        assert_eq!(due.run.len(), 11, "{:?}", due.run);
        assert_eq!(due.run[0], at("2026-01-31T23:59:54Z"));
        assert_eq!(due.run[1], at("2026-01-31T23:59:55Z"));
        assert_eq!(due.handled_to, Some(at("2026-02-01T00:00:04Z")));
    }
}
