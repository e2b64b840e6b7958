//! The workflow-run and job payloads of GitHub's REST API, as far as the
//! queue reads them, and their timestamps. Every field the schema marks
//! nullable is optional here, and so is every field the published
//! examples leave out (`created_at` of a job, `run_attempt`).

use serde::Deserialize;

/// `GET /repos/{o}/{r}/actions/runs` and `.../workflows/{file}/runs`.
#[derive(Debug, Deserialize)]
pub struct RunList {
    #[serde(default)]
    pub workflow_runs: Vec<Run>,
}

/// A workflow run (schema `workflow-run`).
#[derive(Clone, Debug, Deserialize)]
pub struct Run {
    pub id: u64,
    #[serde(default)]
    pub status: Option<String>,
    /// `.github/workflows/deploy.yml`, possibly with `@ref`.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub run_attempt: Option<u32>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

impl Run {
    /// The workflow's file name (`deploy.yml`), empty when unknown.
    pub fn workflow_file(&self) -> &str {
        crate::config::workflow_file(self.path.as_deref().unwrap_or(""))
    }

    pub fn attempt(&self) -> u32 {
        self.run_attempt.unwrap_or(1)
    }

    pub fn is(&self, status: &str) -> bool {
        self.status.as_deref() == Some(status)
    }
}

/// `GET /repos/{o}/{r}/actions/runs/{id}/jobs`.
#[derive(Debug, Deserialize)]
pub struct JobList {
    #[serde(default)]
    pub jobs: Vec<Job>,
}

/// A job (schema `job`).
#[derive(Clone, Debug, Deserialize)]
pub struct Job {
    pub id: u64,
    #[serde(default)]
    pub run_id: Option<u64>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub completed_at: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Null until a runner is assigned; `0` has been seen too.
    #[serde(default)]
    pub runner_id: Option<u64>,
    /// Null until a runner is assigned; `""` has been seen too.
    #[serde(default)]
    pub runner_name: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
}

impl Job {
    pub fn is(&self, status: &str) -> bool {
        self.status.as_deref() == Some(status)
    }

    /// A runner took the job: a runner id other than 0 or a non-empty
    /// runner name (GitHub has answered `0` and `""` for "none yet").
    pub fn picked_up(&self) -> bool {
        self.runner_id.is_some_and(|id| id != 0)
            || self.runner_name.as_deref().is_some_and(|n| !n.is_empty())
    }

    pub fn created(&self) -> Option<f64> {
        self.created_at.as_deref().and_then(parse_time)
    }

    pub fn started(&self) -> Option<f64> {
        self.started_at.as_deref().and_then(parse_time)
    }

    pub fn completed(&self) -> Option<f64> {
        self.completed_at.as_deref().and_then(parse_time)
    }

    /// `started_at - created_at` when it is a queue time: both known and
    /// `started_at` after `created_at`. A job GitHub has not restamped
    /// (`started_at` equal to `created_at`) has none.
    pub fn queue_time(&self) -> Option<f64> {
        let (c, s) = (self.created()?, self.started()?);
        (s > c).then_some(s - c)
    }

    /// `completed_at - started_at`, never negative.
    pub fn duration(&self) -> Option<f64> {
        Some((self.completed()? - self.started()?).max(0.0))
    }
}

/// Parses the API's date-times: `2026-01-05T11:52:14Z`, also with
/// fractional seconds or a `±hh:mm` offset, into seconds since the epoch.
pub fn parse_time(s: &str) -> Option<f64> {
    let s = s.trim();
    let (main, offset) = if let Some(m) = s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
        (m, 0i64)
    } else {
        let i = s.len().checked_sub(6)?;
        let (m, off) = (s.get(..i)?, s.get(i..)?);
        let sign = match off.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let (h, mi) = off.get(1..)?.split_once(':')?;
        if h.len() != 2 || mi.len() != 2 {
            return None;
        }
        let (h, mi): (i64, i64) = (h.parse().ok()?, mi.parse().ok()?);
        if h > 23 || mi > 59 {
            return None;
        }
        (m, sign * (h * 3600 + mi * 60))
    };
    let (whole, frac) = match main.split_once('.') {
        Some((w, f)) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            (w, format!("0.{f}").parse::<f64>().ok()?)
        }
        Some(_) => return None,
        None => (main, 0.0),
    };
    let base = crate::timefmt::parse_log_timestamp(&format!("{whole}Z"))?;
    Some(base + frac - offset as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(testkit::fixtures_dir().join("github/queue").join(name)).unwrap()
    }

    #[test]
    fn times_in_the_apis_forms() {
        let t = parse_time("2026-01-05T11:52:14Z").unwrap();
        assert_eq!(t, 1_767_613_934.0);
        assert_eq!(parse_time("2026-01-05T03:52:14-08:00"), Some(t));
        assert_eq!(parse_time("2026-01-05T13:52:14+02:00"), Some(t));
        assert_eq!(parse_time("2026-01-05T11:52:14.250Z"), Some(t + 0.25));
        for bad in [
            "",
            "2026-01-05",
            "2026-01-05T11:52:14",
            "2026-01-05T11:52:14+0800",
            "2026-01-05T11:52:14.Z",
            "2026-13-05T11:52:14Z",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_scenarios_runs_and_jobs_parse() {
        let runs: RunList = serde_json::from_slice(&fixture("queued-runs.json")).unwrap();
        assert_eq!(runs.workflow_runs.len(), 2);
        let files: Vec<&str> = runs
            .workflow_runs
            .iter()
            .map(|r| r.workflow_file())
            .collect();
        assert_eq!(files, ["ci.yml", "deploy.yml"]);
        assert!(runs.workflow_runs.iter().all(|r| r.is("queued")));
        let ci: JobList = serde_json::from_slice(&fixture("run-20711000202-jobs.json")).unwrap();
        assert_eq!(ci.jobs.len(), 3);
        let gpu = &ci.jobs[1];
        assert_eq!(gpu.labels, ["self-hosted", "linux", "gpu"]);
        assert!(gpu.is("queued") && !gpu.picked_up());
        assert_eq!(gpu.queue_time(), None, "started_at equals created_at");
        let done: JobList = serde_json::from_slice(&fixture("run-20710990303-jobs.json")).unwrap();
        let q: Vec<Option<f64>> = done.jobs.iter().map(Job::queue_time).collect();
        assert_eq!(q, [Some(42.0), Some(185.0)]);
        let d: Vec<Option<f64>> = done.jobs.iter().map(Job::duration).collect();
        assert_eq!(d, [Some(325.0), Some(105.0)]);
        assert!(done.jobs.iter().all(Job::picked_up));
    }

    #[test]
    fn the_published_examples_parse_with_their_oddities() {
        // The run's path carries an @ref; the job example has no
        // created_at and no run_attempt.
        let runs: RunList =
            serde_json::from_slice(&fixture("example-workflow-run-paginated.json")).unwrap();
        assert_eq!(runs.workflow_runs[0].workflow_file(), "build.yml");
        let jobs: JobList = serde_json::from_slice(&fixture("example-job-paginated.json")).unwrap();
        assert_eq!(jobs.jobs[0].created(), None);
        assert_eq!(jobs.jobs[0].queue_time(), None);
    }

    #[test]
    fn an_empty_runner_counts_as_none() {
        let mut j: Job =
            serde_json::from_str(r#"{"id": 1, "runner_id": 0, "runner_name": ""}"#).unwrap();
        assert!(!j.picked_up());
        j.runner_name = Some("r".into());
        assert!(j.picked_up());
    }
}
