//! What a health evaluation produces: the status of each check, each
//! runner's checks and diagnosis, and the report `/health` and `check`
//! print.

use super::causes::Cause;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Ordered from best to worst, so `max` gives the overall status.
/// `Skipped` is a check that does not apply (GitHub not configured, a
/// runner not run by systemd): neutral, it colours nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Skipped,
    Ok,
    /// The check cannot be evaluated (no data, a collector down). A
    /// critical check that is unknown fails the gate unless `[health]
    /// unknown = "warn"`.
    Unknown,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Skipped => "skipped",
            Status::Ok => "ok",
            Status::Unknown => "unknown",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One check of one runner, as reported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Stable identifier, e.g. `service_active`.
    pub check: String,
    pub status: Status,
    /// A failing critical check fails the deploy gate.
    pub critical: bool,
    pub reason: String,
    pub remediation: String,
    pub runbook: String,
}

/// The most likely root cause of what is wrong with one runner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub cause: Cause,
    pub title: String,
    pub summary: String,
    pub remediation: String,
    pub runbook: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunnerHealth {
    pub runner: String,
    pub role: String,
    pub environment: String,
    pub unit: Option<String>,
    pub root: Option<String>,
    pub status: Status,
    /// True when no critical check fails: fit to deploy. False for an
    /// ephemeral runner that finished (it takes no more jobs).
    pub healthy: bool,
    /// Where the runner is in its life (registered, busy, finished,
    /// unregistered), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<crate::identity::Lifecycle>,
    pub checks: Vec<Check>,
    pub diagnosis: Option<Diagnosis>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub status: Status,
    pub healthy: bool,
    /// RFC 3339, UTC.
    pub generated_at: String,
    pub runners: Vec<RunnerHealth>,
    /// Set when the selection matched no runner (the gate then fails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Jobs waiting for a runner, when the queue is watched. Informational:
    /// it never changes `healthy`, `status` or the exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<super::queue::QueueReport>,
}

impl Report {
    /// Exit code of `check`: 0 healthy, 1 warnings (or unknowns the
    /// config lets pass) only, 2 failing or not evaluable.
    pub fn exit_code(&self) -> u8 {
        if !self.healthy || self.status == Status::Fail {
            2
        } else if self.status >= Status::Unknown {
            1
        } else {
            0
        }
    }
}
