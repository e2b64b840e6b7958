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

/// Name of the recording rule: 1 when a runner can take a deploy (service
/// active, listener connected, registered, work disk above the fail
/// threshold), 0 when not; labelled job, instance, runner, role,
/// environment.
pub const HEALTHY_RECORD: &str = "runner:github_runner_healthy:bool";

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

/// The recording rules the alerts and the dashboard build on.
pub fn recording_rules(h: &HealthConfig) -> Vec<(&'static str, String)> {
    let healthy = format!(
        "max by (job, instance, runner, role, environment) (\n  {info}\n  * on (job, instance, runner) group_left ()\n  min by (job, instance, runner) (\n    label_replace({state}{{state=\"active\"}}, \"part\", \"service\", \"\", \"\")\n    or label_replace({connected}, \"part\", \"listener\", \"\", \"\")\n    or label_replace({configured}, \"part\", \"configured\", \"\", \"\")\n    or label_replace({registered}, \"part\", \"registered\", \"\", \"\")\n    or label_replace({avail} / {size} >= bool {fail}, \"part\", \"disk\", \"\", \"\")\n  )\n)",
        info = c::RUNNER_INFO.name,
        state = c::SERVICE_STATE.name,
        connected = c::RUNNER_LISTENER_CONNECTED.name,
        configured = c::RUNNER_CONFIGURED.name,
        registered = c::GITHUB_REGISTERED.name,
        avail = c::RUNNER_WORK_FS_AVAIL.name,
        size = c::RUNNER_WORK_FS_SIZE.name,
        fail = h.disk_free_fail_ratio.0,
    );
    vec![(HEALTHY_RECORD, healthy)]
}

/// Every alert rule.
pub fn alert_rules(h: &HealthConfig) -> Vec<Rule> {
    let on = "{{ $labels.instance }}";
    let runner = "{{ $labels.runner }}";
    let crash_window = Dur(h.crashloop_window.get());
    let max_job = Dur(h.max_job_duration.get());
    let horizon = Dur(h.disk_fill_horizon.get());
    let p95_max = Dur(h.job_duration_p95_max.get());
    let ok_results = "Succeeded|SucceededWithIssues";
    let counted = "result!~\"Canceled|Skipped\"";
    vec![
        Rule {
            alert: "RunnerServiceDown",
            expr: format!("max without (state) ({}{{state=\"active\"}}) == 0", c::SERVICE_STATE.name),
            for_: "1m",
            severity: "critical",
            summary: format!("Runner {runner} service is not active"),
            description: format!("Unit {{{{ $labels.unit }}}} of runner {runner} on {on} has not been active for 1 minute: the runner takes no jobs."),
            runbook: "service-stopped",
        },
        Rule {
            alert: "RunnerCrashLooping",
            expr: format!("increase({}[{crash_window}]) >= {}", c::SERVICE_RESTARTS.name, h.crashloop_restarts),
            for_: "1m",
            severity: "critical",
            summary: format!("Runner {runner} service is crash-looping"),
            description: format!("Unit {{{{ $labels.unit }}}} of runner {runner} on {on} restarted {{{{ $value | printf \"%.0f\" }}}} times in {crash_window}."),
            runbook: "crash-looping",
        },
        Rule {
            alert: "RunnerOffline",
            expr: format!(
                "(\n  label_replace({online} == 0, \"reason\", \"offline at GitHub\", \"\", \"\")\n  or label_replace({connected} == 0, \"reason\", \"listener disconnected\", \"\", \"\")\n)\nand on (runner) {state}{{state=\"active\"}} == 1",
                online = c::GITHUB_ONLINE.name,
                connected = c::RUNNER_LISTENER_CONNECTED.name,
                state = c::SERVICE_STATE.name
            ),
            for_: "3m",
            severity: "critical",
            summary: format!("Runner {runner} is offline although its service runs"),
            description: format!("Runner {runner} ({on}): {{{{ $labels.reason }}}} while its unit is active: credentials, network or a session conflict."),
            runbook: "offline-at-github",
        },
        Rule {
            alert: "RunnerRegistrationDeleted",
            expr: format!("{} == 0 or {} == 0", c::GITHUB_REGISTERED.name, c::RUNNER_CONFIGURED.name),
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
            alert: "RunnerDegraded",
            expr: format!(
                "label_replace({avail} / {size} < {disk}, \"resource\", \"work_filesystem\", \"\", \"\")\nor label_replace({mem}, \"resource\", \"memory\", \"\", \"\")",
                avail = c::RUNNER_WORK_FS_AVAIL.name,
                size = c::RUNNER_WORK_FS_SIZE.name,
                disk = h.disk_free_warn_ratio.0,
                mem = per_runner(&format!("{} / {} < {}", c::HOST_MEMORY_AVAILABLE.name, c::HOST_MEMORY_TOTAL.name, h.memory_available_warn_ratio.0)),
            ),
            for_: "4m",
            severity: "warning",
            summary: format!("Runner {runner} host is degraded ({{{{ $labels.resource }}}})"),
            description: format!(
                "Runner {runner} ({on}): {{{{ $labels.resource }}}} is beyond its threshold (value {{{{ $value | humanizePercentage }}}}; thresholds: work filesystem free under {}, memory available under {}).",
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
            expr: format!(
                "max by (environment) ({rec}{{environment!=\"\"}}) == 0\nor max by (role) ({rec}{{environment=\"\", role!=\"\"}}) == 0",
                rec = HEALTHY_RECORD
            ),
            for_: "2m",
            severity: "critical",
            summary: "No healthy runner left for {{ with $labels.environment }}environment {{ . }}{{ else }}role {{ $labels.role }}{{ end }}".to_string(),
            description: "Every runner of {{ with $labels.environment }}environment {{ . }}{{ else }}role {{ $labels.role }}{{ end }} is unhealthy: deploys cannot run.".to_string(),
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
            alert: "RunnerExporterCollectorFailing",
            expr: format!("{} == 0", c::EXPORTER_COLLECTOR_SUCCESS.name),
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
