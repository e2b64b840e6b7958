//! When to ask again: rate-limit headers, the reserve, and backoff after
//! failures. Pure functions; the caller supplies the clock and the jitter.

use std::time::Duration;

/// First delay after a failure, doubled for each further failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(60);
/// Longest delay after failures (authentication errors included).
pub const BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);

/// Longest wait for a reset: GitHub's primary rate-limit window is an hour.
pub const WINDOW: Duration = Duration::from_secs(3600);

/// The primary rate limit as the last response reported it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// Epoch seconds when the window resets, by GitHub's clock.
    pub reset: Option<u64>,
    /// GitHub's clock when it answered (the `Date` header), epoch seconds.
    pub date: Option<u64>,
}

impl RateLimit {
    /// Reads `x-ratelimit-limit`, `-remaining` and `-reset`.
    pub fn from_headers(get: impl Fn(&str) -> Option<String>) -> RateLimit {
        let num = |name: &str| get(name).and_then(|v| v.trim().parse::<u64>().ok());
        RateLimit {
            limit: num("x-ratelimit-limit"),
            remaining: num("x-ratelimit-remaining"),
            reset: num("x-ratelimit-reset"),
            date: get("date").and_then(|v| crate::timefmt::parse_http_date(&v)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.limit.is_none() && self.remaining.is_none() && self.reset.is_none()
    }

    /// Seconds until the window resets (at least 1 s, so the next request
    /// lands after the reset), if a reset time is known and still ahead.
    /// The reset is GitHub's time: it is measured from the answer's `Date`
    /// when there is one, else from the local `now`, and never taken as
    /// more than a window away. A local clock off by a day (stepped back,
    /// or wrong since boot) must not stop polling for a day.
    pub fn until_reset(&self, now: u64) -> Option<Duration> {
        let reset = self.reset?;
        let now = self.date.unwrap_or(now);
        (reset >= now)
            .then(|| Duration::from_secs(reset - now + 1).min(WINDOW + Duration::from_secs(1)))
    }

    /// True when fewer than `reserve` (a share of the limit) requests
    /// remain.
    pub fn under_reserve(&self, reserve: f64) -> bool {
        match (self.limit, self.remaining) {
            (Some(limit), Some(remaining)) if limit > 0 => {
                (remaining as f64) < reserve * limit as f64
            }
            _ => false,
        }
    }
}

/// Parses `retry-after` in seconds (GitHub sends seconds; an HTTP date is
/// not used by the API and is ignored).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Exponential backoff for the `failures`-th consecutive failure (1 for the
/// first): 60 s, 120 s, 240 s ... up to 15 min, plus up to 20% jitter
/// (`jitter` in 0..1) so that many exporters sharing a token spread out.
/// Never below `interval`: a failure never makes polling faster.
pub fn exponential(failures: u32, jitter: f64, interval: Duration) -> Duration {
    let shift = failures.saturating_sub(1).min(16);
    let base = BACKOFF_BASE.saturating_mul(1u32 << shift).min(BACKOFF_MAX);
    let jitter = base.mul_f64(jitter.clamp(0.0, 1.0) * 0.2);
    (base + jitter).min(BACKOFF_MAX).max(interval)
}

/// How a rate-limited answer (403 or 429) says to wait: `retry-after`
/// first, else until the reset when nothing remains, else exponential.
pub fn rate_limited_delay(
    retry_after: Option<Duration>,
    rate: &RateLimit,
    now: u64,
    failures: u32,
    jitter: f64,
    interval: Duration,
) -> Duration {
    if let Some(d) = retry_after {
        return d.max(Duration::from_secs(1));
    }
    if rate.remaining == Some(0) {
        if let Some(d) = rate.until_reset(now) {
            return d;
        }
    }
    exponential(failures, jitter, interval)
}

/// The delay after a successful poll: the interval, or until the window
/// resets when the remainder has fallen under the reserve. The flag tells
/// whether the interval was stretched.
pub fn after_success(
    interval: Duration,
    reserve: f64,
    rate: &RateLimit,
    now: u64,
) -> (Duration, bool) {
    if rate.under_reserve(reserve) {
        if let Some(d) = rate.until_reset(now) {
            if d > interval {
                return (d, true);
            }
        }
    }
    (interval, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn exponential_backoff_doubles_from_a_minute_and_stops_at_15_minutes() {
        let s = |n| exponential(n, 0.0, Duration::from_secs(1)).as_secs();
        assert_eq!(
            [s(1), s(2), s(3), s(4), s(5), s(6), s(50)],
            [60, 120, 240, 480, 900, 900, 900]
        );
        // Jitter adds at most a fifth and never passes the cap.
        let j = exponential(1, 1.0, Duration::from_secs(1)).as_secs_f64();
        assert!((60.0..=72.0).contains(&j), "{j}");
        assert_eq!(exponential(5, 1.0, Duration::from_secs(1)), BACKOFF_MAX);
        // A long poll interval is never shortened by a failure.
        assert_eq!(exponential(1, 0.0, Duration::from_secs(600)).as_secs(), 600);
    }

    #[test]
    fn rate_limited_answers_follow_retry_after_then_reset_then_backoff() {
        let now = 1_000;
        let exhausted = RateLimit {
            limit: Some(5000),
            remaining: Some(0),
            reset: Some(1_300),
            date: None,
        };
        let some_left = RateLimit {
            remaining: Some(10),
            ..exhausted
        };
        let one = Duration::from_secs(1);
        assert_eq!(
            rate_limited_delay(Some(Duration::from_secs(7)), &exhausted, now, 1, 0.0, one),
            Duration::from_secs(7)
        );
        assert_eq!(
            rate_limited_delay(None, &exhausted, now, 1, 0.0, one),
            Duration::from_secs(301)
        );
        assert_eq!(rate_limited_delay(None, &some_left, now, 1, 0.0, one), MIN);
        assert_eq!(
            rate_limited_delay(None, &some_left, now, 3, 0.0, one),
            4 * MIN
        );
        // A reset already past: back off instead of hammering.
        let stale = RateLimit {
            reset: Some(900),
            ..exhausted
        };
        assert_eq!(rate_limited_delay(None, &stale, now, 1, 0.0, one), MIN);
    }

    #[test]
    fn the_reset_is_measured_on_githubs_clock() {
        let exhausted = RateLimit {
            limit: Some(5000),
            remaining: Some(0),
            reset: Some(100_300),
            date: Some(100_000),
        };
        let one = Duration::from_secs(1);
        // The local clock a day behind GitHub's, or a day ahead: the wait
        // is what GitHub's own clock says.
        for now in [100_000 - 86_400, 100_000, 100_000 + 86_400] {
            assert_eq!(
                rate_limited_delay(None, &exhausted, now, 1, 0.0, one),
                Duration::from_secs(301),
                "local clock {now}"
            );
        }
        // Without a Date header: the local clock, but never past a window.
        let no_date = RateLimit {
            date: None,
            ..exhausted
        };
        assert_eq!(
            rate_limited_delay(None, &no_date, 100_000 - 86_400, 1, 0.0, one),
            WINDOW + one
        );
        let rate = RateLimit {
            remaining: Some(1),
            ..no_date
        };
        assert_eq!(
            after_success(Duration::from_secs(60), 0.1, &rate, 0),
            (WINDOW + one, true)
        );
    }

    #[test]
    fn polling_stretches_until_the_reset_under_the_reserve() {
        let rate = |remaining| RateLimit {
            limit: Some(5000),
            remaining: Some(remaining),
            reset: Some(2_000),
            date: None,
        };
        let i = Duration::from_secs(60);
        assert_eq!(after_success(i, 0.1, &rate(600), 1_000), (i, false));
        assert_eq!(after_success(i, 0.1, &rate(500), 1_000), (i, false));
        assert_eq!(
            after_success(i, 0.1, &rate(499), 1_000),
            (Duration::from_secs(1_001), true)
        );
        // Reset closer than the interval: the interval stands.
        assert_eq!(after_success(i, 0.1, &rate(1), 1_990), (i, false));
        // No headers: nothing to go by.
        assert_eq!(
            after_success(i, 0.1, &RateLimit::default(), 1_000),
            (i, false)
        );
    }

    #[test]
    fn headers_and_retry_after_parse() {
        let h = |n: &str| match n {
            "x-ratelimit-limit" => Some("5000".to_string()),
            "x-ratelimit-remaining" => Some(" 4999".to_string()),
            "x-ratelimit-reset" => Some("1700000000".to_string()),
            "date" => Some("Tue, 14 Nov 2023 22:13:20 GMT".to_string()),
            _ => None,
        };
        let r = RateLimit::from_headers(h);
        assert_eq!(
            r,
            RateLimit {
                limit: Some(5000),
                remaining: Some(4999),
                reset: Some(1_700_000_000),
                date: Some(1_700_000_000),
            }
        );
        assert!(RateLimit::from_headers(|_| None).is_empty());
        assert_eq!(parse_retry_after("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
