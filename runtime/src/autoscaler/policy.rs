//! The scaling decision, a pure function of the policy and one observation.
//!
//! The thresholds are backlog per worker (pending + in-flight executions divided by
//! live workers), as in the seed's `SCALE_UP_THRESHOLD` / `SCALE_DOWN_THRESHOLD`:
//! above `up` the pool grows to `ceil(backlog / up)` workers at once; below `down`
//! it shrinks by one per decision; after any change it waits `cooldown`. The pool
//! always stays within `[min, max]`, even during a cooldown.

use std::time::Duration;

/// Operator settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScalePolicy {
    /// Fewest workers (`MIN_WORKERS`).
    pub min: u32,
    /// Most workers (`MAX_WORKERS`).
    pub max: u32,
    /// Backlog per worker above which to scale up (`SCALE_UP_THRESHOLD`).
    pub up: f64,
    /// Backlog per worker below which to scale down (`SCALE_DOWN_THRESHOLD`).
    pub down: f64,
    /// Quiet time after a change (`COOLDOWN_PERIOD`).
    pub cooldown: Duration,
}

/// What the autoscaler sees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// Pending + in-flight executions.
    pub backlog: u64,
    /// Live workers.
    pub workers: u32,
    /// Time since the autoscaler started.
    pub now: Duration,
    /// When the worker count last changed.
    pub last_change: Option<Duration>,
}

/// What to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Keep the pool; the reason is logged.
    Hold(&'static str),
    /// Grow or shrink the pool to this many workers.
    ScaleTo(u32),
}

/// Decides from one observation.
pub fn decide(p: &ScalePolicy, o: &Observation) -> Decision {
    let (min, max) = (p.min, p.max.max(p.min));
    if o.workers < min {
        return Decision::ScaleTo(min);
    }
    if o.workers > max {
        return Decision::ScaleTo(max);
    }
    if o.last_change
        .is_some_and(|t| o.now.saturating_sub(t) < p.cooldown)
    {
        return Decision::Hold("cooldown");
    }
    let per_worker = o.backlog as f64 / o.workers.max(1) as f64;
    if per_worker > p.up && o.workers < max {
        let wanted = (o.backlog as f64 / p.up.max(f64::MIN_POSITIVE)).ceil() as u32;
        return Decision::ScaleTo(wanted.clamp(o.workers + 1, max));
    }
    if per_worker < p.down && o.workers > min {
        return Decision::ScaleTo(o.workers - 1);
    }
    Decision::Hold("within thresholds")
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: ScalePolicy = ScalePolicy {
        min: 2,
        max: 10,
        up: 3.0,
        down: 2.0,
        cooldown: Duration::from_secs(30),
    };

    fn obs(backlog: u64, workers: u32, now: u64, last: Option<u64>) -> Observation {
        Observation {
            backlog,
            workers,
            now: Duration::from_secs(now),
            last_change: last.map(Duration::from_secs),
        }
    }

    #[test]
    fn bounds_win_even_in_cooldown() {
        assert_eq!(decide(&P, &obs(0, 0, 5, Some(4))), Decision::ScaleTo(2));
        assert_eq!(decide(&P, &obs(0, 12, 5, Some(4))), Decision::ScaleTo(10));
    }

    #[test]
    fn scales_up_to_the_backlog_at_once_capped_by_max() {
        assert_eq!(decide(&P, &obs(20, 2, 100, None)), Decision::ScaleTo(7));
        assert_eq!(decide(&P, &obs(1000, 2, 100, None)), Decision::ScaleTo(10));
        assert_eq!(decide(&P, &obs(7, 2, 100, None)), Decision::ScaleTo(3));
    }

    #[test]
    fn scales_down_one_at_a_time_not_below_min() {
        assert_eq!(decide(&P, &obs(0, 5, 100, None)), Decision::ScaleTo(4));
        assert_eq!(
            decide(&P, &obs(0, 2, 100, None)),
            Decision::Hold("within thresholds")
        );
    }

    #[test]
    fn holds_between_thresholds_and_in_cooldown() {
        assert_eq!(
            decide(&P, &obs(10, 4, 100, None)),
            Decision::Hold("within thresholds")
        );
        assert_eq!(
            decide(&P, &obs(100, 2, 100, Some(80))),
            Decision::Hold("cooldown")
        );
        assert_eq!(
            decide(&P, &obs(100, 2, 100, Some(70))),
            Decision::ScaleTo(10)
        );
    }

    /// A synthetic backlog curve over 10 minutes; each worker drains 3 executions
    /// per 10 s tick. Prints the table; checks bounds, cooldown and that the pool
    /// follows the load up and back down.
    #[test]
    fn simulation_follows_a_backlog_curve() {
        let arrivals = |t: u64| -> u64 {
            match t {
                0..=60 => 2,
                61..=240 => 40,
                241..=300 => 10,
                _ => 0,
            }
        };
        let (mut backlog, mut workers, mut last) = (0u64, 2u32, None);
        let mut changes = Vec::new();
        let mut peak = 0;
        println!("{:>5} {:>8} {:>8}   decision", "t(s)", "backlog", "workers");
        for tick in 0..60u64 {
            let t = tick * 10;
            backlog += arrivals(t);
            let o = obs(backlog, workers, t, last);
            let d = decide(&P, &o);
            if let Decision::ScaleTo(n) = d {
                if let Some(prev) = last {
                    assert!(t - prev >= 30, "cooldown respected at t={t}");
                }
                workers = n;
                last = Some(t);
                changes.push((t, n));
            }
            assert!((P.min..=P.max).contains(&workers));
            peak = peak.max(workers);
            backlog = backlog.saturating_sub(u64::from(workers) * 3);
            let shown = match d {
                Decision::Hold(why) => format!("hold: {why}"),
                Decision::ScaleTo(n) => format!("scale to {n}"),
            };
            println!("{t:>5} {backlog:>8} {workers:>8}   {shown}");
        }
        assert_eq!(peak, P.max, "heavy load reaches max");
        assert_eq!(workers, P.min, "idle returns to min");
        assert_eq!(backlog, 0, "the backlog drains");
        assert!(changes.len() >= 4, "{changes:?}");
    }
}
