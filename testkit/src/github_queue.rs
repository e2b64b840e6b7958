//! The queue scenario of `tests/fixtures/github/queue/` (see
//! `tests/fixtures/github/README.md`), served by the fake GitHub with its
//! timestamps moved so that the scenario's reference time is now: the
//! exporter measures waits on GitHub's clock, which is the real one.

use crate::FakeGithub;
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

/// The scenario's reference time, 2026-01-05T12:00:00Z.
pub const REFERENCE: i64 = 1_767_614_400;
/// The repository of the scenario.
pub const REPO: &str = "repos/acme/app";
/// The queued Deploy run (one job, `deploy-production`, waiting 466 s at
/// the reference time) and the queued CI run (three jobs, 136 s).
pub const DEPLOY_RUN: u64 = 20_711_000_101;
pub const CI_RUN: u64 = 20_711_000_202;
/// An earlier CI run whose two jobs completed (queue times 42 s, 185 s).
pub const DONE_RUN: u64 = 20_710_990_303;

/// A fixture of `tests/fixtures/github/queue/`.
pub fn fixture(name: &str) -> Value {
    let path = crate::fixtures_dir().join("github/queue").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Seconds since the epoch of `YYYY-MM-DDThh:mm:ssZ`.
pub fn seconds(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (h, mi, se) = (n(11..13)?, n(14..16)?, n(17..19)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

/// `YYYY-MM-DDThh:mm:ssZ` of seconds since the epoch.
pub fn stamp(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let sod = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// Moves every `YYYY-MM-DDThh:mm:ssZ` string in `v` by `by` seconds.
pub fn shift(v: &mut Value, by: i64) {
    match v {
        Value::String(s) => {
            if let Some(t) = seconds(s) {
                *s = stamp(t + by);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| shift(x, by)),
        Value::Object(o) => o.values_mut().for_each(|x| shift(x, by)),
        _ => {}
    }
}

/// A list field of a fixture (`workflow_runs`, `jobs`), shifted by `by`.
pub fn items(name: &str, key: &str, by: i64) -> Vec<Value> {
    let mut v = fixture(name);
    shift(&mut v, by);
    v[key].as_array().cloned().unwrap_or_default()
}

/// Serves the queued state of the scenario: the two queued runs and their
/// four queued jobs, with the reference time moved to now. Returns the
/// shift applied (seconds).
pub fn serve_queued(fake: &FakeGithub) -> i64 {
    let by = now() - REFERENCE;
    fake.set_runs(REPO, items("queued-runs.json", "workflow_runs", by));
    fake.set_jobs(DEPLOY_RUN, items("run-20711000101-jobs.json", "jobs", by));
    fake.set_jobs(CI_RUN, items("run-20711000202-jobs.json", "jobs", by));
    by
}

/// The Deploy run's job (`deploy-production`) picked up by linux_runner
/// `queue` seconds after it was created and completed with success `run`
/// seconds later, with the times moved by `by` as [`serve_queued`] does.
pub fn completed_deploy(by: i64, queue: i64, run: i64) -> Vec<Value> {
    let mut jobs = items("run-20711000101-jobs.json", "jobs", by);
    for j in &mut jobs {
        let created = j["created_at"].as_str().and_then(seconds).unwrap_or(0);
        j["status"] = "completed".into();
        j["conclusion"] = "success".into();
        j["started_at"] = stamp(created + queue).into();
        j["completed_at"] = stamp(created + queue + run).into();
        j["runner_id"] = 23.into();
        j["runner_name"] = "linux_runner".into();
        j["runner_group_id"] = 1.into();
        j["runner_group_name"] = "Default".into();
    }
    jobs
}

/// Completes the Deploy run: its job as [`completed_deploy`], the run
/// `completed` (it leaves the queued list).
pub fn complete_deploy(fake: &FakeGithub, by: i64, queue: i64, run: i64) {
    fake.set_jobs(DEPLOY_RUN, completed_deploy(by, queue, run));
    fake.update_run(REPO, DEPLOY_RUN, |r| {
        r["status"] = "completed".into();
        r["conclusion"] = "success".into();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_move_and_format_back() {
        assert_eq!(seconds("2026-01-05T12:00:00Z"), Some(REFERENCE));
        assert_eq!(stamp(REFERENCE), "2026-01-05T12:00:00Z");
        assert_eq!(stamp(REFERENCE + 86_400 * 60 + 1), "2026-03-06T12:00:01Z");
        let mut v = serde_json::json!({"a": ["2026-01-05T11:52:14Z", "x"], "b": 3});
        shift(&mut v, 466);
        assert_eq!(v["a"][0], "2026-01-05T12:00:00Z");
        assert_eq!(v["a"][1], "x");
    }
}
