//! The cause table: every root cause a diagnosis can name, in priority
//! order (the first cause a failing check points to is the diagnosis),
//! each with its title, runbook page, summary and fix, written once.
//!
//! `{unit}` in a fix stands for the runner's unit name.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One row of the cause table.
#[derive(Debug)]
pub struct CauseInfo {
    /// The id in JSON (`diagnosis.cause`).
    pub id: &'static str,
    pub title: &'static str,
    /// The runbook page in `docs/runbooks/`, without `.md`.
    pub runbook: &'static str,
    /// What is wrong, in one sentence.
    pub summary: &'static str,
    /// What to do; `{unit}` is the runner's unit.
    pub fix: &'static str,
}

/// Defines [`Cause`] and its table in one place: one row per cause, in
/// priority order.
macro_rules! cause_table {
    ($( $(#[$doc:meta])* $variant:ident => { id: $id:literal, title: $title:literal, runbook: $runbook:literal, summary: $summary:literal, fix: $fix:literal $(,)? } ),+ $(,)?) => {
        /// A known failure mode, a row of [`CAUSES`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Cause {
            $( $(#[$doc])* $variant, )+
        }

        /// The cause table, highest priority first.
        pub const CAUSES: &[(Cause, CauseInfo)] = &[
            $( (Cause::$variant, CauseInfo { id: $id, title: $title, runbook: $runbook, summary: $summary, fix: $fix }), )+
        ];

        impl Cause {
            /// Every cause, highest priority first.
            pub const ALL: &'static [Cause] = &[ $( Cause::$variant, )+ ];

            /// This cause's row.
            pub fn info(self) -> &'static CauseInfo {
                // The table and the enum are written by this macro in the
                // same order.
                &CAUSES[self as usize].1
            }
        }
    };
}

cause_table! {
    /// The exporter's user cannot read the runner root or `_diag`.
    PermissionDenied => {
        id: "permission_denied",
        title: "The exporter cannot read the runner",
        runbook: "permission-denied",
        summary: "the exporter cannot read the runner's root or _diag, so its other checks are blind",
        fix: "add the exporter's user to the runner user's group (or set an ACL on the root and _diag), never on credential files; see the runbook",
    },
    /// The host clock is off. Ranked before a deleted registration: a
    /// wrong clock at boot makes the runner log that its registration was
    /// deleted (actions/runner#4648), and re-registering is the wrong fix.
    ClockSkew => {
        id: "clock_skew",
        title: "Clock skew",
        runbook: "clock-skew",
        summary: "the host clock differs from GitHub's: the runner's tokens fail beyond five minutes, and a wrong clock can make the runner log that its registration was deleted",
        fix: "sync the clock (timedatectl set-ntp true; chronyc makestep), then sudo systemctl restart {unit}; do not re-register before the clock is right",
    },
    /// `.runner` gone, GitHub answers 404, or the log says so.
    RegistrationDeleted => {
        id: "registration_deleted",
        title: "Registration deleted",
        runbook: "registration-deleted",
        summary: "the runner is no longer registered: its .runner is gone, GitHub answers 404, or its log says the registration was deleted; the service cannot get jobs",
        fix: "re-register with ./config.sh using a new registration token, then start the service",
    },
    /// Another process holds the runner's session.
    SessionConflict => {
        id: "session_conflict",
        title: "Session conflict",
        runbook: "session-conflict",
        summary: "another process holds this runner's session (the same registration runs on two hosts, e.g. primary and secondary); the listener gave up",
        fix: "stop the duplicate so each host has its own registration, then sudo systemctl restart {unit}",
    },
    /// GitHub refuses the runner's version.
    VersionDeprecated => {
        id: "version_deprecated",
        title: "Runner version deprecated",
        runbook: "version-deprecated",
        summary: "GitHub refuses this runner's version (\"Runner version vX is deprecated and cannot receive messages\"): the listener exited and takes no jobs until the runner is updated; restarting the service does not help (a 403 from a blocked broker endpoint reads the same: see the runbook)",
        fix: "update the runner to the latest release (stop {unit}, unpack the new actions-runner tarball over the root, start {unit}), or let it update itself (remove --disableupdate by configuring it again); if the version is current, allow broker.actions.githubusercontent.com through the proxy or firewall",
    },
    /// The work filesystem is (nearly) full.
    DiskFull => {
        id: "disk_full",
        title: "Work disk full",
        runbook: "disk-full",
        summary: "the work filesystem is nearly full: jobs fail, and the runner may crash",
        fix: "free space in the work folder (_work, docker images, caches) or grow the filesystem",
    },
    /// systemd keeps restarting the runner.
    CrashLooping => {
        id: "crash_looping",
        title: "Service crash-looping",
        runbook: "crash-looping",
        summary: "systemd keeps restarting the runner: it starts and dies",
        fix: "journalctl -u {unit} -n 200 and the newest _diag/Runner_*.log show the crash; fix it, then sudo systemctl reset-failed {unit}",
    },
    /// The unit named for the runner does not exist.
    UnitNotFound => {
        id: "unit_not_found",
        title: "The runner's unit does not exist",
        runbook: "unit-not-found",
        summary: "the systemd unit named for this runner (by the .service file in its root or by [[runner]] unit) does not exist, so nothing starts the runner",
        fix: "reinstall the service from the runner's root (sudo ./svc.sh install <user>, then sudo ./svc.sh start), or correct [[runner]] unit",
    },
    /// The runner's unit is not running.
    ServiceStopped => {
        id: "service_stopped",
        title: "Service stopped",
        runbook: "service-stopped",
        summary: "the runner's systemd unit is not running",
        fix: "sudo systemctl start {unit}; journalctl -u {unit} -n 50 tells why it stopped",
    },
    /// GitHub sees the runner offline although the service runs.
    OfflineAtGithub => {
        id: "offline_at_github",
        title: "Offline at GitHub although the service runs",
        runbook: "offline-at-github",
        summary: "GitHub does not see the runner although the service runs (credentials, network or proxy)",
        fix: "read the newest _diag/Runner_*.log for connect errors or 401s; check network access to GitHub; sudo systemctl restart {unit}",
    },
    /// A job has run longer than the maximum.
    StuckJob => {
        id: "stuck_job",
        title: "Stuck job",
        runbook: "stuck-job",
        summary: "a job has run longer than the configured maximum and holds the runner",
        fix: "cancel the run in GitHub; restart the unit if it does not stop",
    },
    /// Docker is not usable by the runner's user.
    DockerUnavailable => {
        id: "docker_unavailable",
        title: "Docker unavailable",
        runbook: "docker-unavailable",
        summary: "Docker is not usable by the runner's user (docker.service or containerd.service not running, no socket, or the socket's permissions leave the user out): container jobs (container:, services:, container actions) fail in \"Initialize containers\"; other jobs still run",
        fix: "sudo systemctl start docker.service (journalctl -u docker.service tells why it stopped); add the runner's user to the socket's group (sudo usermod -aG docker USER) and restart {unit} so it gets the group",
    },
    /// The host is short of memory.
    HostDegraded => {
        id: "host_degraded",
        title: "Host degraded",
        runbook: "host-degraded",
        summary: "the host is short of memory",
        fix: "find and stop what holds memory (leftover job processes, containers)",
    },
    /// The runner is behind the latest release and does not update itself.
    VersionOutdated => {
        id: "version_outdated",
        title: "Runner version outdated",
        runbook: "version-outdated",
        summary: "the runner is older than the latest actions/runner release and does not update itself (updates are disabled, or its last self-update failed); GitHub stops sending it jobs once the version is deprecated",
        fix: "update the runner by hand to the latest release (stop {unit}, unpack the new actions-runner tarball over the root, start {unit}); for a failed self-update, read the newest _diag/SelfUpdate-*.log",
    },
    /// The exporter cannot reach GitHub through its proxy.
    GithubProxy => {
        id: "github_proxy",
        title: "The exporter cannot reach GitHub through its proxy",
        runbook: "github-proxy",
        summary: "the exporter's requests to GitHub fail at the proxy (refused, no tunnel, or 407 for credentials), so GitHub's view of the runner is unknown; the runner may still reach GitHub",
        fix: "check the proxy the exporter uses ([github] proxy, or https_proxy/HTTPS_PROXY in its unit's environment): host and port (refused), user and password in the URL (407), no_proxy; see the runbook",
    },
    /// The exporter does not trust GitHub's certificate.
    GithubTls => {
        id: "github_tls",
        title: "The exporter does not trust GitHub's certificate",
        runbook: "github-tls",
        summary: "the exporter rejects the certificate GitHub (Enterprise Server, or a TLS-inspecting proxy) presents, usually from an internal CA it does not trust, so GitHub's view of the runner is unknown",
        fix: "set [github] ca_file to the PEM bundle of the CA that signed the certificate (or add it to the system store: update-ca-certificates), then sudo systemctl reload runner-health-exporter",
    },
    /// The exporter cannot evaluate a critical check: a collector is down
    /// or silent, or there is no data.
    DataStale => {
        id: "data_stale",
        title: "Exporter data missing or stale",
        runbook: "exporter-data-stale",
        summary: "the exporter cannot evaluate part of this runner's health (a collector is down or silent, or there is no data yet); unknown is not healthy, so the gate stays closed",
        fix: "read the reasons of the unknown checks; check github_runner_exporter_collector_success and the exporter's log (journalctl -u runner-health-exporter)",
    },
    /// A job has waited for a runner longer than `[health] max_queue_wait`
    /// (the queue section of a report; never a runner's diagnosis).
    JobQueued => {
        id: "job_queued",
        title: "Job waiting for a runner",
        runbook: "job-queued-too-long",
        summary: "a job has waited longer than the configured maximum for a runner with all of its labels",
        fix: "per label set: register or relabel a runner (no runner has the labels), bring the offline runners back, or add capacity (all busy); see the runbook",
    },
}

impl Cause {
    pub fn id(self) -> &'static str {
        self.info().id
    }

    pub fn title(self) -> &'static str {
        self.info().title
    }

    /// The runbook page name (without `.md`).
    pub fn runbook(self) -> &'static str {
        self.info().runbook
    }

    /// The fix, for the runner whose unit is `unit`.
    pub fn fix(self, unit: &str) -> String {
        self.info().fix.replace("{unit}", unit)
    }

    pub fn from_id(id: &str) -> Option<Cause> {
        CAUSES.iter().find(|(_, i)| i.id == id).map(|(c, _)| *c)
    }
}

impl Serialize for Cause {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

impl<'de> Deserialize<'de> for Cause {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let id = String::deserialize(d)?;
        Cause::from_id(&id).ok_or_else(|| serde::de::Error::custom(format!("unknown cause {id:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_has_one_row_in_order_and_a_runbook_page() {
        for (i, (cause, info)) in CAUSES.iter().enumerate() {
            assert_eq!(*cause as usize, i, "{cause:?}: rows follow the enum");
            assert_eq!(cause.info().id, info.id);
            assert_eq!(Cause::from_id(info.id), Some(*cause));
            let page = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("docs/runbooks")
                .join(format!("{}.md", info.runbook));
            assert!(page.is_file(), "{cause:?}: no runbook {}", page.display());
            assert!(!info.summary.is_empty() && !info.fix.is_empty());
        }
        let ids: std::collections::HashSet<&str> = CAUSES.iter().map(|(_, i)| i.id).collect();
        assert_eq!(ids.len(), CAUSES.len(), "ids are unique");
    }
}
