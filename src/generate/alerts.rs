//! Prometheus alert and recording rules, built from the metric catalog and
//! the `[health]` thresholds, so that alerts, `/health` and `check` agree.

use crate::config::HealthConfig;
use crate::duration::Dur;
use crate::health::runbook_url;
use crate::metrics::catalog as c;
use std::fmt::Write;

/// The Prometheus job the exporter is scraped under (README's scrape
/// config); used by the exporter-down alert.
pub const DEFAULT_JOB: &str = "runner-health-exporter";

/// Name of the recording rule: the exporter's own gate verdict
/// (`github_runner_healthy`: 1 when every critical check passes, 0 when
/// one fails or cannot be evaluated), labelled job, instance, runner, role,
/// environment from the runner's info series.
pub const HEALTHY_RECORD: &str = "runner:github_runner_healthy:bool";

/// How long a pool stays known after its runners' series end (their
/// exporters down): an outage of every runner of a pool pages for this
/// long, and a pool retired on purpose is forgotten after it.
pub const POOL_MEMORY: &str = "1h";

pub struct Rule {
    pub alert: &'static str,
    pub expr: String,
    pub for_: &'static str,
    pub severity: &'static str,
    pub summary: String,
    pub description: String,
    /// Runbook page name (without `.md`).
    pub runbook: &'static str,
}

fn pct(r: f64) -> String {
    format!("{}%", (r * 100.0).round())
}

/// Adds the runner's labels (job, instance, runner) to a host-level series,
/// one result per runner on that host, keeping the host value.
fn per_runner(host_expr: &str) -> String {
    format!(
        "({host_expr}) * on (job, instance) group_right () (0 * max by (job, instance, runner) ({info}) + 1)",
        info = c::RUNNER_INFO.name
    )
}

/// Deploy SLO records, over `[health] deploy_slo_window`, per Prometheus
/// job and workflow. Exporters that watch the same repositories count the
/// same jobs, so the records take the largest count of any exporter
/// (`max`), not the sum. Jobs of the `[jobs] workflows` by result:
pub const DEPLOY_JOBS_RECORD: &str = "workflow:github_runner_workflow_jobs:increase_slo";
/// Share of them that succeeded (cancelled and skipped not counted):
pub const DEPLOY_SUCCESS_RECORD: &str = "workflow:github_runner_workflow_jobs:success_ratio_slo";
/// Their 95th percentile duration:
pub const DEPLOY_P95_RECORD: &str = "workflow:github_runner_workflow_job_duration_seconds:p95_slo";

/// Every recording rule's name.
pub const RECORDS: &[&str] = &[
    HEALTHY_RECORD,
    DEPLOY_JOBS_RECORD,
    DEPLOY_SUCCESS_RECORD,
    DEPLOY_P95_RECORD,
];

/// The label value of the summed label sets (see the catalog).
const OTHER: &str = crate::snapshot::OTHER_LABEL_SET;

/// The recording rules the alerts and the dashboard build on.
pub fn recording_rules(h: &HealthConfig) -> Vec<(&'static str, String)> {
    // The exporter evaluates the gate itself (the same checks as /health,
    // failing closed on what it cannot evaluate); the rule only adds the
    // role and environment of the runner's info series.
    let healthy = format!(
        "max by (job, instance, runner, role, environment) (\n  {info}\n  * on (job, instance, runner) group_left ()\n  {healthy}\n)",
        info = c::RUNNER_INFO.name,
        healthy = c::RUNNER_HEALTHY.name,
    );
    let window = Dur(h.deploy_slo_window.get());
    vec![
        (HEALTHY_RECORD, healthy),
        (
            DEPLOY_JOBS_RECORD,
            format!(
                "max by (job, workflow, result) (increase({}[{window}]))",
                c::WORKFLOW_JOBS.name
            ),
        ),
        (
            DEPLOY_SUCCESS_RECORD,
            format!(
                "sum by (job, workflow) ({DEPLOY_JOBS_RECORD}{{result=\"success\"}})\n/ sum by (job, workflow) ({DEPLOY_JOBS_RECORD}{{result!~\"cancelled|skipped\"}})"
            ),
        ),
        (
            DEPLOY_P95_RECORD,
            format!(
                "histogram_quantile(0.95, max by (job, workflow, le) (increase({}_bucket[{window}])))",
                c::WORKFLOW_JOB_DURATION.name
            ),
        ),
    ]
}

/// `unless` clause dropping the runners an alert must not page for: an
/// ephemeral runner that finished (its unit stops and its `.runner` goes,
/// by design).
fn unless_finished() -> String {
    format!(
        "unless on (job, instance, runner) {}{{state=\"finished\"}} == 1",
        c::RUNNER_LIFECYCLE_STATE.name
    )
}

/// `unless` clause dropping the runners GitHub refuses for their version:
/// RunnerVersionDeprecated pages for them, with the fix that works
/// (restarting, what the service alerts' runbooks say, is refused again).
fn unless_deprecated() -> String {
    format!(
        "unless on (job, instance, runner) {} == 1",
        c::RUNNER_VERSION_DEPRECATED.name
    )
}

/// Every alert rule.
pub fn alert_rules(h: &HealthConfig) -> Vec<Rule> {
    let on = "{{ $labels.instance }}";
    let runner = "{{ $labels.runner }}";
    let crash_window = Dur(h.crashloop_window.get());
    let max_job = Dur(h.max_job_duration.get());
    let horizon = Dur(h.disk_fill_horizon.get());
    let p95_max = Dur(h.job_duration_p95_max.get());
    let queue_wait = Dur(h.max_queue_wait.get());
    let slo_window = Dur(h.deploy_slo_window.get());
    let deploy_p95 = Dur(h.deploy_duration_p95_max.get());
    let ok_results = "Succeeded|SucceededWithIssues";
    let counted = "result!~\"Canceled|Skipped\"";
    vec![
        Rule {
            alert: "RunnerServiceDown",
            // A runner refused for its version pages as
            // RunnerVersionDeprecated (starting it again does not help); a
            // finished ephemeral runner stops by design.
            expr: format!(
                "max without (state) ({state}{{state=\"active\"}}) == 0\n{finished}\n{deprecated}",
                state = c::SERVICE_STATE.name,
                finished = unless_finished(),
                deprecated = unless_deprecated(),
            ),
            for_: "1m",
            severity: "critical",
            summary: format!("Runner {runner} service is not active"),
            description: format!("Unit {{{{ $labels.unit }}}} of runner {runner} on {on} has not been active for 1 minute: the runner takes no jobs."),
            runbook: "service-stopped",
        },
        Rule {
            alert: "RunnerCrashLooping",
            expr: format!("increase({}[{crash_window}]) >= {}\n{}", c::SERVICE_RESTARTS.name, h.crashloop_restarts, unless_deprecated()),
            for_: "1m",
            severity: "critical",
            summary: format!("Runner {runner} service is crash-looping"),
            description: format!("Unit {{{{ $labels.unit }}}} of runner {runner} on {on} restarted {{{{ $value | printf \"%.0f\" }}}} times in {crash_window}."),
            runbook: "crash-looping",
        },
        Rule {
            alert: "RunnerOffline",
            expr: format!(
                "(\n  label_replace({online} == 0, \"reason\", \"offline at GitHub\", \"\", \"\")\n  or label_replace({connected} == 0, \"reason\", \"listener disconnected\", \"\", \"\")\n)\nand on (runner) {state}{{state=\"active\"}} == 1\n{deprecated}",
                online = c::GITHUB_ONLINE.name,
                connected = c::RUNNER_LISTENER_CONNECTED.name,
                state = c::SERVICE_STATE.name,
                deprecated = unless_deprecated(),
            ),
            for_: "3m",
            severity: "critical",
            summary: format!("Runner {runner} is offline although its service runs"),
            description: format!("Runner {runner} ({on}): {{{{ $labels.reason }}}} while its unit is active: credentials, network or a session conflict."),
            runbook: "offline-at-github",
        },
        Rule {
            alert: "RunnerRegistrationDeleted",
            expr: format!(
                "({} == 0 or {} == 0)\n{}",
                c::GITHUB_REGISTERED.name,
                c::RUNNER_CONFIGURED.name,
                unless_finished()
            ),
            for_: "2m",
            severity: "critical",
            summary: format!("Runner {runner} is no longer registered"),
            description: format!("Runner {runner} ({on}): GitHub answers 404 for it or its .runner file is gone; it must be re-registered."),
            runbook: "registration-deleted",
        },
        // Chosen from what the runner's token validation tolerates: it signs
        // its tokens valid for five minutes from its own clock, so beyond
        // five minutes it cannot authenticate. The default (60s) fires
        // while it still can, far above the measurement's error (about a
        // second), and where the exporter's own GitHub App JWTs start to
        // fail (iat is set 60 s back against drift).
        Rule {
            alert: "RunnerClockSkew",
            expr: format!(
                "abs({}) > {}",
                c::HOST_CLOCK_OFFSET.name,
                h.max_clock_offset.get().as_secs_f64()
            ),
            for_: "2m",
            severity: "warning",
            summary: format!("The clock of {on} is off GitHub's by {{{{ $value | humanizeDuration }}}}"),
            description: format!(
                "The host clock of {on} differs from GitHub's (the Date of its API answers) by {{{{ $value | humanizeDuration }}}}, more than {}. Beyond five minutes GitHub rejects the runners' tokens, and a wrong clock can make a runner log that its registration was deleted: fix the clock, do not re-register.",
                Dur(h.max_clock_offset.get())
            ),
            runbook: "clock-skew",
        },
        Rule {
            alert: "RunnerVersionDeprecated",
            expr: format!("{} == 1", c::RUNNER_VERSION_DEPRECATED.name),
            for_: "1m",
            severity: "critical",
            summary: format!("Runner {runner} is refused by GitHub: its version is deprecated"),
            description: format!("Runner {runner} ({on}): GitHub answered \"Runner version is deprecated and cannot receive messages\"; the listener exited and takes no jobs until the runner is updated (or, if its version is current, until GitHub's broker is reachable)."),
            runbook: "version-deprecated",
        },
        Rule {
            alert: "RunnerVersionOutdated",
            expr: format!(
                "{} == 1\nand on (job, instance, runner) {} == 1",
                c::RUNNER_UPDATE_AVAILABLE.name,
                c::RUNNER_UPDATE_DISABLED.name
            ),
            for_: "15m",
            severity: "warning",
            summary: format!("Runner {runner} is behind the latest release and does not update itself"),
            description: format!("Runner {runner} ({on}) runs an older version than the latest actions/runner release (github_runner_latest_version_info) and was configured with --disableupdate: update it by hand before GitHub deprecates its version."),
            runbook: "version-outdated",
        },
        Rule {
            alert: "RunnerDockerUnavailable",
            expr: format!(
                "{} == 0\nand on (job, instance, runner) {} == 1",
                c::RUNNER_DOCKER_USABLE.name,
                c::RUNNER_DOCKER_REQUIRED.name
            ),
            for_: "3m",
            severity: "critical",
            summary: format!("Docker is unavailable to runner {runner}"),
            description: format!("Runner {runner} ({on}) needs Docker (it runs container jobs, or docker = true) and cannot use it: a Docker unit is not active, the socket is missing, or its permissions leave the runner's user out. Container jobs fail in \"Initialize containers\"."),
            runbook: "docker-unavailable",
        },
        Rule {
            alert: "RunnerDegraded",
            // Inodes run out as surely as bytes (node_modules, many small
            // build outputs); Docker's data-root fills with images and
            // volumes, often on another filesystem than the work folder.
            expr: format!(
                "label_replace({avail} / {size} < {disk}, \"resource\", \"work_filesystem\", \"\", \"\")\nor label_replace({files_free} / {files} < {disk}, \"resource\", \"work_filesystem_inodes\", \"\", \"\")\nor label_replace(max without (data_root) ({davail} / {dsize}) < {disk}, \"resource\", \"docker_filesystem\", \"\", \"\")\nor label_replace(max without (data_root) ({dfiles_free} / {dfiles}) < {disk}, \"resource\", \"docker_filesystem_inodes\", \"\", \"\")\nor label_replace({mem}, \"resource\", \"memory\", \"\", \"\")",
                avail = c::RUNNER_WORK_FS_AVAIL.name,
                size = c::RUNNER_WORK_FS_SIZE.name,
                files_free = c::RUNNER_WORK_FS_FILES_FREE.name,
                files = c::RUNNER_WORK_FS_FILES.name,
                davail = c::RUNNER_DOCKER_FS_AVAIL.name,
                dsize = c::RUNNER_DOCKER_FS_SIZE.name,
                dfiles_free = c::RUNNER_DOCKER_FS_FILES_FREE.name,
                dfiles = c::RUNNER_DOCKER_FS_FILES.name,
                disk = h.disk_free_warn_ratio.0,
                mem = per_runner(&format!("{} / {} < {}", c::HOST_MEMORY_AVAILABLE.name, c::HOST_MEMORY_TOTAL.name, h.memory_available_warn_ratio.0)),
            ),
            for_: "4m",
            severity: "warning",
            summary: format!("Runner {runner} host is degraded ({{{{ $labels.resource }}}})"),
            description: format!(
                "Runner {runner} ({on}): {{{{ $labels.resource }}}} is beyond its threshold (value {{{{ $value | humanizePercentage }}}}; thresholds: space or inodes free under {} on the work filesystem and on Docker's data-root filesystem, memory available under {}).",
                pct(h.disk_free_warn_ratio.0), pct(h.memory_available_warn_ratio.0)
            ),
            runbook: "host-degraded",
        },
        // A saturated CPU is what a runner host does during a build: only a
        // long stretch of it degrades the runner, hence the longer `for`.
        Rule {
            alert: "RunnerCpuSaturated",
            expr: per_runner(&format!("{} > {}", c::HOST_CPU_USAGE_RATIO.name, h.cpu_usage_warn_ratio.0)),
            for_: "10m",
            severity: "warning",
            summary: format!("Runner {runner} host CPU is saturated"),
            description: format!(
                "Runner {runner} ({on}): the host's CPU usage has stayed above {} for 10 minutes (now {{{{ $value | humanizePercentage }}}}): jobs there run slower.",
                pct(h.cpu_usage_warn_ratio.0)
            ),
            runbook: "host-degraded",
        },
        Rule {
            alert: "RunnerDiskWillFill",
            expr: format!(
                "{avail} / {size} < 0.4\nand predict_linear({avail}[1h], {secs}) < 0",
                avail = c::RUNNER_WORK_FS_AVAIL.name,
                size = c::RUNNER_WORK_FS_SIZE.name,
                secs = h.disk_fill_horizon.get().as_secs()
            ),
            for_: "15m",
            severity: "warning",
            summary: format!("Runner {runner} work filesystem will be full within {horizon}"),
            description: format!("Runner {runner} ({on}): the work filesystem has {{{{ $value | humanizePercentage }}}} free and, at the rate of the last hour, fills up within {horizon}."),
            runbook: "disk-full",
        },
        Rule {
            alert: "RunnerJobStuck",
            expr: format!("time() - {} > {}", c::RUNNER_JOB_STARTED.name, h.max_job_duration.get().as_secs()),
            for_: "4m",
            severity: "critical",
            summary: format!("Runner {runner} has a job running longer than {max_job}"),
            description: format!("Runner {runner} ({on}) has run its current job for {{{{ $value | humanizeDuration }}}}, more than {max_job}: it takes no other jobs."),
            runbook: "stuck-job",
        },
        Rule {
            alert: "RunnerJobSuccessRateLow",
            expr: format!(
                "sum by (job, instance, runner) (increase({jobs}{{result=~\"{ok_results}\"}}[1h]))\n/ sum by (job, instance, runner) (increase({jobs}{{{counted}}}[1h]))\n< {min}\nand sum by (job, instance, runner) (increase({jobs}{{{counted}}}[1h])) >= {n}",
                jobs = c::RUNNER_JOBS.name,
                min = h.job_success_ratio_min.0,
                n = h.job_success_min_jobs
            ),
            for_: "15m",
            severity: "warning",
            summary: format!("Runner {runner} job success rate is low"),
            description: format!(
                "Runner {runner} ({on}): {{{{ $value | humanizePercentage }}}} of jobs succeeded over the last hour (threshold {}, at least {} jobs; canceled and skipped jobs not counted).",
                pct(h.job_success_ratio_min.0), h.job_success_min_jobs
            ),
            runbook: "job-success-rate-low",
        },
        Rule {
            alert: "RunnerJobDurationHigh",
            expr: format!(
                "histogram_quantile(0.95, sum by (job, instance, runner, le) (rate({}_bucket[1h]))) > {}",
                c::RUNNER_JOB_DURATION.name,
                h.job_duration_p95_max.get().as_secs()
            ),
            for_: "15m",
            severity: "info",
            summary: format!("Runner {runner} jobs are slow"),
            description: format!("Runner {runner} ({on}): the 95th percentile job duration over the last hour is {{{{ $value | humanizeDuration }}}}, above {p95_max}."),
            runbook: "job-duration-high",
        },
        Rule {
            alert: "RunnerJobQueuedTooLong",
            // The age already is the wait: `for` only lets a poll settle.
            expr: format!(
                "max by (job, labels) ({}) > {}",
                c::QUEUE_OLDEST_AGE.name,
                h.max_queue_wait.get().as_secs()
            ),
            for_: "1m",
            severity: "warning",
            summary: format!("Jobs for runner labels {{{{ $labels.labels }}}} have waited more than {queue_wait}"),
            description: format!(
                "The oldest job queued for a runner with labels {{{{ $labels.labels }}}} has waited {{{{ $value | humanizeDuration }}}} (threshold {queue_wait}). `runner-health-exporter check` names why: no runner with these labels, only offline ones, or every one busy."
            ),
            runbook: "job-queued-too-long",
        },
        Rule {
            alert: "NoOnlineRunnerForLabels",
            // Any exporter that knows an online runner for the set clears
            // it: in self scope each knows only its host's runners.
            expr: format!(
                "max by (job, labels) ({jobs}{{labels!=\"{OTHER}\"}}) > 0\nunless on (job, labels)\nmax by (job, labels) ({runners}{{state=\"online\"}}) > 0",
                jobs = c::QUEUE_JOBS.name,
                runners = c::LABELSET_RUNNERS.name,
            ),
            for_: "4m",
            severity: "warning",
            summary: "No online runner has the labels {{ $labels.labels }} that queued jobs ask for".to_string(),
            description: "{{ $value }} job(s) wait for a runner with all of the labels {{ $labels.labels }}, and no online runner known to the exporters has them: they wait until one is registered, relabelled or brought back online.".to_string(),
            runbook: "no-online-runner-for-labels",
        },
        Rule {
            alert: "RunnerDeploySuccessRateLow",
            expr: format!(
                "{DEPLOY_SUCCESS_RECORD} < {min}\nand on (job, workflow) sum by (job, workflow) ({DEPLOY_JOBS_RECORD}{{result!~\"cancelled|skipped\"}}) >= {n}",
                min = h.deploy_success_ratio_min.0,
                n = h.deploy_min_jobs
            ),
            for_: "5m",
            severity: "warning",
            summary: "Deploy workflow {{ $labels.workflow }} succeeds too rarely".to_string(),
            description: format!(
                "Only {{{{ $value | humanizePercentage }}}} of the jobs of workflow {{{{ $labels.workflow }}}} succeeded over the last {slo_window} (objective {}, at least {} jobs; cancelled and skipped jobs not counted).",
                pct(h.deploy_success_ratio_min.0), h.deploy_min_jobs
            ),
            runbook: "deploy-success-rate-low",
        },
        Rule {
            alert: "RunnerDeployDurationHigh",
            expr: format!(
                "{DEPLOY_P95_RECORD} > {}",
                h.deploy_duration_p95_max.get().as_secs()
            ),
            for_: "5m",
            severity: "warning",
            summary: "Deploy workflow {{ $labels.workflow }} jobs are slow".to_string(),
            description: format!(
                "The 95th percentile duration of the jobs of workflow {{{{ $labels.workflow }}}} over the last {slo_window} is {{{{ $value | humanizeDuration }}}}, above the objective of {deploy_p95}."
            ),
            runbook: "deploy-duration-high",
        },
        Rule {
            alert: "RunnerFailoverActive",
            expr: format!(
                "{rec}{{role=\"primary\"}} == 0\nand on (environment) (max by (environment) ({rec}{{role=\"secondary\"}}) == 1)",
                rec = HEALTHY_RECORD
            ),
            for_: "3m",
            severity: "warning",
            summary: format!("Primary runner {runner} is down; a secondary serves {{{{ $labels.environment }}}}"),
            description: format!("Primary runner {runner} ({on}) for environment {{{{ $labels.environment }}}} is unhealthy; deploys run on the secondary. Bring the primary back."),
            runbook: "failover-active",
        },
        Rule {
            alert: "RunnerPoolUnavailable",
            // A pool is every runner whose info series was seen within
            // POOL_MEMORY; it is unavailable when none of them is healthy
            // now. A runner whose exporter is down, or whose series are
            // gone, has no healthy sample: missing data pages.
            expr: format!(
                "count by (environment) (last_over_time({info}{{environment!=\"\"}}[{mem}]))\nunless on (environment) (max by (environment) ({rec}{{environment!=\"\"}}) == 1)\nor count by (role) (last_over_time({info}{{environment=\"\", role!=\"\"}}[{mem}]))\nunless on (role) (max by (role) ({rec}{{environment=\"\", role!=\"\"}}) == 1)",
                info = c::RUNNER_INFO.name,
                rec = HEALTHY_RECORD,
                mem = POOL_MEMORY,
            ),
            for_: "2m",
            severity: "critical",
            summary: "No healthy runner left for {{ with $labels.environment }}environment {{ . }}{{ else }}role {{ $labels.role }}{{ end }}".to_string(),
            description: "Every runner of {{ with $labels.environment }}environment {{ . }}{{ else }}role {{ $labels.role }}{{ end }} is unhealthy or unreachable (its exporter down or its series absent): deploys cannot run.".to_string(),
            runbook: "pool-unavailable",
        },
        Rule {
            alert: "RunnerFailoverSameHost",
            // The host of a runner is the host part of the scrape's instance
            // (one exporter per host); roles and environments come from the
            // exporters' [[runner]] config through the info series.
            expr: format!(
                "count by (environment, host) (\n  max by (environment, host, role) (\n    label_replace({info}{{role=~\"primary|secondary\"}}, \"host\", \"$1\", \"instance\", \"(.+?)(?::[0-9]+)?\")\n  )\n) > 1",
                info = c::RUNNER_INFO.name
            ),
            for_: "10m",
            severity: "warning",
            summary: "Primary and secondary runner of {{ with $labels.environment }}environment {{ . }}{{ else }}the deploy pool{{ end }} share host {{ $labels.host }}".to_string(),
            description: "The primary and the secondary runner of {{ with $labels.environment }}environment {{ . }}{{ else }}the runners without an environment{{ end }} both run on {{ $labels.host }}: when that host fails, both go down and failover protects nothing. Move one of them to another host.".to_string(),
            runbook: "failover-same-host",
        },
        Rule {
            alert: "RunnerExporterDown",
            expr: format!("up{{job=\"{DEFAULT_JOB}\"}} == 0"),
            for_: "2m",
            severity: "critical",
            summary: format!("runner-health-exporter on {on} is down"),
            description: format!("Prometheus cannot scrape runner-health-exporter on {on}: the runners there are not watched."),
            runbook: "exporter-down",
        },
        Rule {
            alert: "RunnerExporterBlind",
            // The gate's own collectors: while one fails, the runners of
            // that host fail closed, and their cause-specific alerts
            // cannot fire (their series are gone). Missing data pages.
            expr: format!(
                "{}{{collector=~\"systemd|runner\"}} == 0",
                c::EXPORTER_COLLECTOR_SUCCESS.name
            ),
            for_: "2m",
            severity: "critical",
            summary: format!("runner-health-exporter cannot see the runners on {on} ({{{{ $labels.collector }}}} collector failing)"),
            description: format!("The {{{{ $labels.collector }}}} collector of runner-health-exporter on {on} has failed for 2 minutes: the runners there cannot be evaluated, their gate is closed and their own alerts cannot fire."),
            runbook: "collector-failing",
        },
        Rule {
            alert: "RunnerExporterCollectorFailing",
            expr: format!(
                "{}{{collector!~\"systemd|runner\"}} == 0",
                c::EXPORTER_COLLECTOR_SUCCESS.name
            ),
            for_: "4m",
            severity: "warning",
            summary: format!("runner-health-exporter collector {{{{ $labels.collector }}}} fails on {on}"),
            description: format!("The {{{{ $labels.collector }}}} collector of runner-health-exporter on {on} has failed for 4 minutes; its metrics are missing or stale."),
            runbook: "collector-failing",
        },
        Rule {
            alert: "RunnerGitHubApiRateLimitLow",
            expr: format!(
                "{} / {} < {}",
                c::GITHUB_RATE_REMAINING.name,
                c::GITHUB_RATE_LIMIT.name,
                0.1
            ),
            for_: "4m",
            severity: "warning",
            summary: format!("GitHub API rate limit nearly used up on {on}"),
            description: format!("Only {{{{ $value | humanizePercentage }}}} of the GitHub API rate limit is left for runner-health-exporter on {on}; polling slows down until the window resets."),
            runbook: "github-rate-limit-low",
        },
    ]
}

fn yaml_str(s: &str) -> String {
    // JSON strings are valid YAML double-quoted scalars.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

fn yaml_block(out: &mut String, indent: &str, key: &str, text: &str) {
    let _ = writeln!(out, "{indent}{key}: |-");
    for line in text.lines() {
        let _ = writeln!(out, "{indent}  {line}");
    }
}

/// `alerts/runner-health.rules.yml`.
pub fn rules_yaml(h: &HealthConfig) -> String {
    let mut out = String::new();
    out.push_str(
        "# Generated by `runner-health-exporter generate` from the metric catalog and the\n",
    );
    out.push_str("# default [health] thresholds. Do not edit: change src/generate/alerts.rs.\n");
    out.push_str("groups:\n");
    out.push_str("  - name: runner-health.records\n    rules:\n");
    for (record, expr) in recording_rules(h) {
        let _ = writeln!(out, "      - record: {record}");
        yaml_block(&mut out, "        ", "expr", &expr);
    }
    out.push_str("  - name: runner-health.alerts\n    rules:\n");
    for r in alert_rules(h) {
        let _ = writeln!(out, "      - alert: {}", r.alert);
        yaml_block(&mut out, "        ", "expr", &r.expr);
        let _ = writeln!(out, "        for: {}", r.for_);
        let _ = writeln!(out, "        labels:\n          severity: {}", r.severity);
        let _ = writeln!(out, "        annotations:");
        let _ = writeln!(out, "          summary: {}", yaml_str(&r.summary));
        let _ = writeln!(out, "          description: {}", yaml_str(&r.description));
        let _ = writeln!(
            out,
            "          runbook_url: {}",
            yaml_str(&runbook_url(&h.runbook_base_url, r.runbook))
        );
    }
    out
}
