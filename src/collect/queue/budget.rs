//! The queue's request budget: a share of the token's hourly rate limit.
//! Only answers GitHub charges count (a 304 to a conditional request is
//! free), so a quiet repository costs nearly nothing and a busy one sets
//! the pace. Pure: the caller supplies the clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The window the budget is counted over: GitHub's primary limit is per
/// hour.
pub const HOUR: Duration = Duration::from_secs(3600);
/// The limit assumed until GitHub has sent `x-ratelimit-limit` (a
/// personal access token's).
pub const DEFAULT_LIMIT: u64 = 5000;
/// Weight of the newest poll in the expected cost of the next.
const SMOOTHING: f64 = 0.5;

/// `share` of the hourly `limit`.
pub fn per_hour(share: f64, limit: Option<u64>) -> f64 {
    share * limit.unwrap_or(DEFAULT_LIMIT) as f64
}

/// What the polls of the last hour were charged.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    polls: VecDeque<(Instant, u64)>,
    /// Expected charge of the next poll: a moving average of the polls
    /// after the first (which fills the ETag cache and pays for every
    /// answer once).
    expected: Option<f64>,
}

impl Ledger {
    /// Records a poll that was charged `charged` requests. `warm_up` marks
    /// a poll that filled the ETag cache (the first, or the first after
    /// the watched repositories changed): it counts against the hour but
    /// does not set the pace.
    pub fn record(&mut self, at: Instant, charged: u64, warm_up: bool) {
        self.polls.push_back((at, charged));
        if !warm_up {
            let c = charged as f64;
            self.expected = Some(match self.expected {
                Some(e) => SMOOTHING * c + (1.0 - SMOOTHING) * e,
                None => c,
            });
        }
        self.prune(at);
    }

    fn prune(&mut self, now: Instant) {
        while self
            .polls
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) >= HOUR)
        {
            self.polls.pop_front();
        }
    }

    /// Requests charged within the hour before `at`.
    pub fn spent(&self, at: Instant) -> u64 {
        self.polls
            .iter()
            .filter(|(t, _)| at.saturating_duration_since(*t) < HOUR && *t <= at)
            .map(|(_, c)| c)
            .sum()
    }

    /// The expected charge of the next poll: nothing is known after
    /// warm-ups alone (the next poll tells; the hour's window still
    /// holds what they spent).
    pub fn expected(&self) -> f64 {
        self.expected.unwrap_or(0.0)
    }

    /// How long to wait after the poll that ended at `now`: at least
    /// `min`; long enough that polls costing what they are expected to
    /// cost spend at most `budget` an hour; and, whatever the pace, not
    /// before the polls of the last hour leave room for the next.
    pub fn next_delay(&self, now: Instant, min: Duration, budget: f64) -> Duration {
        let expected = self.expected();
        let budget = budget.max(1.0);
        let pace = Duration::from_secs_f64((expected * HOUR.as_secs_f64() / budget).min(3600.0));
        let mut delay = min.max(pace);
        // The hard cap: wait until enough of the last hour's spending
        // has left the window, never longer than the window.
        let fits = |at: Instant| self.spent(at) as f64 + expected <= budget;
        if !fits(now + delay) {
            delay = self
                .polls
                .iter()
                .map(|(t, _)| (*t + HOUR + Duration::from_secs(1)).saturating_duration_since(now))
                .filter(|d| *d > delay)
                .find(|d| fits(now + *d))
                .unwrap_or(HOUR)
                .max(delay);
        }
        delay.min(HOUR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn the_budget_is_a_share_of_the_limit() {
        assert_eq!(per_hour(0.2, None), 1000.0);
        assert_eq!(per_hour(0.2, Some(15_000)), 3000.0);
    }

    #[test]
    fn free_polls_go_at_the_minimum_interval() {
        let t0 = Instant::now();
        let mut l = Ledger::default();
        l.record(t0, 300, true);
        assert_eq!(l.expected(), 0.0, "only a warm-up so far");
        assert_eq!(l.next_delay(t0, MIN, 1000.0), MIN);
        l.record(t0 + MIN, 0, false);
        assert_eq!(l.next_delay(t0 + MIN, MIN, 1000.0), MIN);
        assert_eq!(l.spent(t0 + MIN), 300);
    }

    #[test]
    fn expensive_polls_are_spread_over_the_hour() {
        let t0 = Instant::now();
        let mut l = Ledger::default();
        l.record(t0, 200, true);
        l.record(t0 + MIN, 200, false);
        // 200 a poll, 1000 an hour: every 12 minutes.
        assert_eq!(
            l.next_delay(t0 + MIN, MIN, 1000.0),
            Duration::from_secs(720)
        );
        // Cheap polls pull the pace back down.
        l.record(t0 + 2 * MIN, 0, false);
        l.record(t0 + 3 * MIN, 0, false);
        assert_eq!(
            l.next_delay(t0 + 3 * MIN, MIN, 1000.0),
            Duration::from_secs(180)
        );
    }

    #[test]
    fn a_spent_hour_waits_until_old_polls_leave_the_window() {
        let t0 = Instant::now();
        let mut l = Ledger::default();
        // A burst: 900 charged at t0, then polls expected at 150 each.
        l.record(t0, 900, true);
        l.record(t0 + MIN, 150, false);
        let now = t0 + MIN;
        let d = l.next_delay(now, MIN, 1000.0);
        // 1050 spent: the next poll (150) fits once the burst at t0 has
        // left the window, just over an hour after it.
        assert_eq!(d, HOUR + Duration::from_secs(1) - MIN);
        assert!(l.spent(now + d) as f64 + l.expected() <= 1000.0);
        // Never longer than the window itself.
        let mut huge = Ledger::default();
        huge.record(t0, 5000, false);
        assert_eq!(huge.next_delay(t0, MIN, 1000.0), HOUR);
    }

    #[test]
    fn the_window_forgets_polls_older_than_an_hour() {
        let t0 = Instant::now();
        let mut l = Ledger::default();
        l.record(t0, 100, true);
        l.record(t0 + HOUR, 7, false);
        assert_eq!(l.spent(t0 + HOUR), 7);
    }
}
