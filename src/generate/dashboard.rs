//! The Grafana dashboard (JSON model), built from the metric catalog and the
//! `[health]` thresholds.

use super::alerts::{DEPLOY_P95_RECORD, DEPLOY_SUCCESS_RECORD, HEALTHY_RECORD};
use crate::config::HealthConfig;
use crate::health::runbook_url;
use crate::metrics::catalog as c;
use serde_json::{json, Value};

/// Selector of runner-level series, filtered by the dashboard variables.
const RUNNER_SEL: &str = r#"job=~"$job", instance=~"$instance", runner=~"$runner""#;
/// Selector of host-level series.
const HOST_SEL: &str = r#"job=~"$job", instance=~"$instance""#;
/// The alerts of this exporter's rules (all but one start with Runner).
const ALERTS_SEL: &str = r#"alertname=~"Runner.*|NoOnlineRunnerForLabels", alertstate="firing""#;

struct Layout {
    y: u32,
    x: u32,
    row_height: u32,
    id: u32,
    panels: Vec<Value>,
}

impl Layout {
    fn row(&mut self, title: &str) {
        if self.x > 0 {
            self.y += self.row_height;
            self.x = 0;
        }
        self.id += 1;
        self.panels.push(json!({
            "type": "row", "id": self.id, "title": title, "collapsed": false,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []
        }));
        self.y += 1;
        self.row_height = 0;
    }

    fn add(&mut self, mut panel: Value, w: u32, h: u32) {
        if self.x + w > 24 {
            self.y += self.row_height;
            self.x = 0;
            self.row_height = 0;
        }
        self.id += 1;
        panel["id"] = json!(self.id);
        panel["gridPos"] = json!({"h": h, "w": w, "x": self.x, "y": self.y});
        panel["datasource"] = ds();
        self.x += w;
        self.row_height = self.row_height.max(h);
        self.panels.push(panel);
    }
}

/// The runbooks of the failure modes a panel shows (page name, link
/// title), linked from the panel's header. Panels not listed show no
/// failure mode of their own.
const PANEL_RUNBOOKS: &[(&str, &[(&str, &str)])] = &[
    (
        "Healthy runners",
        &[
            ("pool-unavailable", "Pool unavailable"),
            ("failover-active", "Failover active"),
        ],
    ),
    (
        "Unhealthy runners",
        &[("README", "Runbooks: every failure mode")],
    ),
    (
        "Firing runner alerts",
        &[("README", "Runbooks: every failure mode")],
    ),
    (
        "Jobs succeeded (1h)",
        &[("job-success-rate-low", "Job success rate low")],
    ),
    ("Exporters up", &[("exporter-down", "Exporter down")]),
    (
        "Runners",
        &[
            ("service-stopped", "Service stopped"),
            ("crash-looping", "Service crash-looping"),
            ("offline-at-github", "Offline at GitHub"),
            ("registration-deleted", "Registration deleted"),
            ("failover-same-host", "Primary and secondary on one host"),
            ("version-deprecated", "Runner version deprecated"),
            ("version-outdated", "Runner version outdated"),
            ("ephemeral-finished", "Ephemeral runner finished"),
            ("docker-unavailable", "Docker unavailable"),
        ],
    ),
    ("CPU usage", &[("host-degraded", "Host degraded")]),
    ("Memory available", &[("host-degraded", "Host degraded")]),
    ("Load average", &[("host-degraded", "Host degraded")]),
    ("Work filesystem free", &[("disk-full", "Work disk full")]),
    ("Filesystems available", &[("disk-full", "Work disk full")]),
    (
        "Jobs by result",
        &[("job-success-rate-low", "Job success rate low")],
    ),
    (
        "Job success ratio (1h)",
        &[("job-success-rate-low", "Job success rate low")],
    ),
    (
        "Job duration",
        &[("job-duration-high", "Job duration high")],
    ),
    ("Job running", &[("stuck-job", "Stuck job")]),
    ("Current job age", &[("stuck-job", "Stuck job")]),
    (
        "Runner log events",
        &[
            ("offline-at-github", "Offline at GitHub"),
            ("session-conflict", "Session conflict"),
            ("registration-deleted", "Registration deleted"),
            ("clock-skew", "Clock skew"),
            ("version-deprecated", "Runner version deprecated"),
            ("docker-unavailable", "Docker unavailable"),
        ],
    ),
    (
        "Queued jobs by label set",
        &[("job-queued-too-long", "Job queued too long")],
    ),
    (
        "Oldest queued job",
        &[("job-queued-too-long", "Job queued too long")],
    ),
    (
        "Online runners per label set",
        &[("no-online-runner-for-labels", "No online runner for labels")],
    ),
    (
        "Deploy success ratio",
        &[("deploy-success-rate-low", "Deploy success rate low")],
    ),
    (
        "Deploy duration p95",
        &[("deploy-duration-high", "Deploy duration high")],
    ),
    (
        "Collector success",
        &[
            ("collector-failing", "Collector failing"),
            ("exporter-data-stale", "Exporter data stale"),
        ],
    ),
    (
        "Collector duration",
        &[("collector-failing", "Collector failing")],
    ),
    (
        "GitHub API requests",
        &[("github-rate-limit-low", "GitHub API rate limit low")],
    ),
    (
        "GitHub API rate limit left",
        &[("github-rate-limit-low", "GitHub API rate limit low")],
    ),
    (
        "GitHub API backoff",
        &[("github-rate-limit-low", "GitHub API rate limit low")],
    ),
];

/// Grafana panel links to the runbooks of a panel's failure modes.
fn runbook_links(h: &HealthConfig, title: &str) -> Option<Value> {
    let (_, pages) = PANEL_RUNBOOKS.iter().find(|(t, _)| *t == title)?;
    let links: Vec<Value> = pages
        .iter()
        .map(|(page, name)| {
            let name = if name.starts_with("Runbooks") {
                name.to_string()
            } else {
                format!("Runbook: {name}")
            };
            json!({"title": name, "url": runbook_url(&h.runbook_base_url, page), "targetBlank": true})
        })
        .collect();
    Some(Value::Array(links))
}

fn ds() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

fn target(expr: String, legend: &str, ref_id: &str) -> Value {
    json!({"datasource": ds(), "expr": expr, "legendFormat": legend, "refId": ref_id, "range": true, "instant": false})
}

fn table_target(expr: String, ref_id: &str) -> Value {
    json!({"datasource": ds(), "expr": expr, "format": "table", "instant": true, "range": false, "refId": ref_id, "legendFormat": "__auto"})
}

/// A time series panel; `threshold` draws a dashed line (and colours past it).
fn timeseries(
    title: &str,
    description: &str,
    unit: &str,
    targets: Vec<Value>,
    threshold: Option<(f64, &str)>,
) -> Value {
    let mut steps = vec![json!({"color": "green", "value": null})];
    let mut style = json!({"mode": "off"});
    if let Some((v, color)) = threshold {
        steps.push(json!({"color": color, "value": v}));
        style = json!({"mode": "dashed"});
    }
    json!({
        "type": "timeseries",
        "title": title,
        "description": description,
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "custom": {"thresholdsStyle": style, "lineWidth": 1, "fillOpacity": 10, "spanNulls": false},
                "thresholds": {"mode": "absolute", "steps": steps}
            },
            "overrides": []
        },
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": true}, "tooltip": {"mode": "multi", "sort": "desc"}}
    })
}

fn stat(title: &str, description: &str, expr: String, unit: &str, steps: Value) -> Value {
    json!({
        "type": "stat",
        "title": title,
        "description": description,
        "targets": [target(expr, "", "A")],
        "fieldConfig": {"defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false}, "colorMode": "background", "graphMode": "none", "textMode": "auto"}
    })
}

fn up_down_mapping(ok: &str, bad: &str) -> Value {
    json!([{"type": "value", "options": {
        "1": {"text": ok, "color": "green", "index": 0},
        "0": {"text": bad, "color": "red", "index": 1}
    }}])
}

fn column_override(column: &str, display: &str, mappings: Value, unit: Option<&str>) -> Value {
    let mut props = vec![
        json!({"id": "displayName", "value": display}),
        json!({"id": "custom.cellOptions", "value": {"type": "color-text"}}),
    ];
    if !mappings.is_null() {
        props.push(json!({"id": "mappings", "value": mappings}));
    }
    if let Some(u) = unit {
        props.push(json!({"id": "unit", "value": u}));
    }
    json!({"matcher": {"id": "byName", "options": column}, "properties": props})
}

fn fleet_table() -> Value {
    let by = "max by (runner)";
    let targets = vec![
        table_target(format!("max by (runner, instance, role, environment, version) ({}{{{RUNNER_SEL}, role=~\"$role\", environment=~\"$environment\"}})", c::RUNNER_INFO.name), "A"),
        table_target(format!("{by} ({}{{{RUNNER_SEL}, state=\"active\"}})", c::SERVICE_STATE.name), "B"),
        table_target(format!("{by} ({}{{runner=~\"$runner\"}})", c::GITHUB_ONLINE.name), "C"),
        table_target(format!("{by} ({}{{runner=~\"$runner\"}})", c::GITHUB_BUSY.name), "D"),
        table_target(format!("{by} ({}{{{RUNNER_SEL}}})", c::RUNNER_LISTENER_CONNECTED.name), "E"),
        table_target(format!("{by} ({}{{{RUNNER_SEL}}})", c::RUNNER_JOB_RUNNING.name), "F"),
        table_target(format!("time() - {by} ({}{{{RUNNER_SEL}}})", c::RUNNER_LAST_JOB_COMPLETED.name), "G"),
    ];
    json!({
        "type": "table",
        "title": "Runners",
        "description": "One row per runner: its systemd service, its state at GitHub (online, busy), whether its listener is connected, whether a job runs, when it last completed a job, and its role, environment and version. Red cells need attention.",
        "targets": targets,
        "transformations": [
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {
                "excludeByName": {"Time": true, "Value #A": true},
                "indexByName": {"runner": 0, "instance": 1, "role": 2, "environment": 3, "Value #B": 4, "Value #C": 5, "Value #D": 6, "Value #E": 7, "Value #F": 8, "Value #G": 9, "version": 10},
                "renameByName": {}
            }}
        ],
        "fieldConfig": {
            "defaults": {"custom": {"align": "auto", "cellOptions": {"type": "auto"}}},
            "overrides": [
                column_override("Value #B", "Service", up_down_mapping("active", "down"), None),
                column_override("Value #C", "GitHub", up_down_mapping("online", "offline"), None),
                column_override("Value #D", "Busy", json!([{"type": "value", "options": {"1": {"text": "busy", "color": "blue", "index": 0}, "0": {"text": "idle", "color": "text", "index": 1}}}]), None),
                column_override("Value #E", "Listener", up_down_mapping("connected", "disconnected"), None),
                column_override("Value #F", "Job", json!([{"type": "value", "options": {"1": {"text": "running", "color": "blue", "index": 0}, "0": {"text": "none", "color": "text", "index": 1}}}]), None),
                column_override("Value #G", "Last job", Value::Null, Some("s")),
            ]
        },
        "options": {"showHeader": true, "cellHeight": "sm", "footer": {"show": false}}
    })
}

/// The dashboard JSON model.
pub fn dashboard(h: &HealthConfig) -> Value {
    let mut l = Layout {
        y: 0,
        x: 0,
        row_height: 0,
        id: 0,
        panels: Vec::new(),
    };

    l.row("Fleet");
    l.add(stat(
        "Healthy runners",
        "Runners fit to take a deploy (service active, listener connected, registered, work disk above the fail threshold), from the recording rule runner:github_runner_healthy:bool. Needs the alert rules loaded.",
        format!("sum({HEALTHY_RECORD}{{{RUNNER_SEL}, role=~\"$role\", environment=~\"$environment\"}})"),
        "none",
        json!([{"color": "red", "value": null}, {"color": "green", "value": 1}]),
    ), 4, 4);
    l.add(stat(
        "Unhealthy runners",
        "Runners the recording rule marks unhealthy; see the table and the alerts for why.",
        format!("count({HEALTHY_RECORD}{{{RUNNER_SEL}, role=~\"$role\", environment=~\"$environment\"}} == 0) or vector(0)"),
        "none",
        json!([{"color": "green", "value": null}, {"color": "red", "value": 1}]),
    ), 4, 4);
    l.add(
        stat(
            "Jobs running",
            "Runners running a job now, from their logs.",
            format!("sum({}{{{RUNNER_SEL}}})", c::RUNNER_JOB_RUNNING.name),
            "none",
            json!([{"color": "blue", "value": null}]),
        ),
        4,
        4,
    );
    l.add(
        stat(
            "Firing runner alerts",
            "Alerts of the runner-health rules firing now.",
            format!("count(ALERTS{{{ALERTS_SEL}}}) or vector(0)"),
            "none",
            json!([{"color": "green", "value": null}, {"color": "red", "value": 1}]),
        ),
        4,
        4,
    );
    l.add(stat(
        "Jobs succeeded (1h)",
        &format!("Share of jobs that succeeded over the last hour (canceled and skipped not counted); the alert threshold is {}%.", h.job_success_ratio_min.0 * 100.0),
        format!("sum(increase({j}{{{RUNNER_SEL}, result=~\"Succeeded|SucceededWithIssues\"}}[1h])) / sum(increase({j}{{{RUNNER_SEL}, result!~\"Canceled|Skipped\"}}[1h]))", j = c::RUNNER_JOBS.name),
        "percentunit",
        json!([{"color": "red", "value": null}, {"color": "green", "value": h.job_success_ratio_min.0}]),
    ), 4, 4);
    l.add(
        stat(
            "Exporters up",
            "runner-health-exporter instances Prometheus scrapes successfully.",
            "sum(up{job=~\"$job\", instance=~\"$instance\"})".to_string(),
            "none",
            json!([{"color": "red", "value": null}, {"color": "green", "value": 1}]),
        ),
        4,
        4,
    );
    l.add(fleet_table(), 24, 8);

    l.row("Host resources");
    l.add(
        timeseries(
            "CPU usage",
            &format!(
                "Host CPU usage (all cores). Dashed line: the degraded threshold ({}%).",
                h.cpu_usage_warn_ratio.0 * 100.0
            ),
            "percentunit",
            vec![target(
                format!("{}{{{HOST_SEL}}}", c::HOST_CPU_USAGE_RATIO.name),
                "{{instance}}",
                "A",
            )],
            Some((h.cpu_usage_warn_ratio.0, "red")),
        ),
        8,
        8,
    );
    l.add(timeseries(
        "Memory available",
        &format!("Share of host memory available without swapping. Below the dashed line ({}%) runners are degraded.", h.memory_available_warn_ratio.0 * 100.0),
        "percentunit",
        vec![target(format!("{}{{{HOST_SEL}}} / {}{{{HOST_SEL}}}", c::HOST_MEMORY_AVAILABLE.name, c::HOST_MEMORY_TOTAL.name), "{{instance}}", "A")],
        Some((h.memory_available_warn_ratio.0, "red")),
    ), 8, 8);
    l.add(
        timeseries(
            "Load average",
            "1, 5 and 15 minute load averages per host; compare with the core count.",
            "short",
            vec![
                target(
                    format!("{}{{{HOST_SEL}}}", c::HOST_LOAD1.name),
                    "{{instance}} 1m",
                    "A",
                ),
                target(
                    format!("{}{{{HOST_SEL}}}", c::HOST_LOAD5.name),
                    "{{instance}} 5m",
                    "B",
                ),
                target(
                    format!("{}{{{HOST_SEL}}}", c::HOST_LOAD15.name),
                    "{{instance}} 15m",
                    "C",
                ),
                target(
                    format!("{}{{{HOST_SEL}}}", c::HOST_CPU_CORES.name),
                    "{{instance}} cores",
                    "D",
                ),
            ],
            None,
        ),
        8,
        8,
    );
    l.add(timeseries(
        "Work filesystem free",
        &format!("Free share of the filesystem holding each runner's work folder. Health warns below {}% and fails below {}% (dashed line).", h.disk_free_warn_ratio.0 * 100.0, h.disk_free_fail_ratio.0 * 100.0),
        "percentunit",
        vec![target(format!("{}{{{RUNNER_SEL}}} / {}{{{RUNNER_SEL}}}", c::RUNNER_WORK_FS_AVAIL.name, c::RUNNER_WORK_FS_SIZE.name), "{{runner}}", "A")],
        Some((h.disk_free_fail_ratio.0, "red")),
    ), 8, 8);
    l.add(
        timeseries(
            "Filesystems available",
            "Space available to unprivileged users on every reported filesystem of the hosts.",
            "bytes",
            vec![target(
                format!("{}{{{HOST_SEL}}}", c::HOST_FS_AVAIL.name),
                "{{instance}} {{mountpoint}}",
                "A",
            )],
            None,
        ),
        8,
        8,
    );
    l.add(
        timeseries(
            "Runner processes memory",
            "Resident memory of each runner's listener and worker (a job) processes.",
            "bytes",
            vec![target(
                format!("{}{{{RUNNER_SEL}}}", c::PROCESS_RESIDENT.name),
                "{{runner}} {{process}}",
                "A",
            )],
            None,
        ),
        8,
        8,
    );

    l.row("Jobs");
    l.add(
        timeseries(
            "Jobs by result",
            "Jobs completed per second, by result, from the runners' logs.",
            "ops",
            vec![target(
                format!(
                    "sum by (result) (rate({}{{{RUNNER_SEL}}}[$__rate_interval]))",
                    c::RUNNER_JOBS.name
                ),
                "{{result}}",
                "A",
            )],
            None,
        ),
        8,
        8,
    );
    l.add(timeseries(
        "Job success ratio (1h)",
        &format!("Share of jobs that succeeded over the last hour per runner (canceled and skipped not counted). Dashed line: the {}% alert threshold.", h.job_success_ratio_min.0 * 100.0),
        "percentunit",
        vec![target(format!("sum by (runner) (increase({j}{{{RUNNER_SEL}, result=~\"Succeeded|SucceededWithIssues\"}}[1h])) / sum by (runner) (increase({j}{{{RUNNER_SEL}, result!~\"Canceled|Skipped\"}}[1h]))", j = c::RUNNER_JOBS.name), "{{runner}}", "A")],
        Some((h.job_success_ratio_min.0, "red")),
    ), 8, 8);
    l.add(timeseries(
        "Job duration",
        &format!("50th, 95th and 99th percentile job duration over the last hour. Dashed line: the {} s p95 alert threshold.", h.job_duration_p95_max.get().as_secs()),
        "s",
        vec![
            target(format!("histogram_quantile(0.5, sum by (le) (rate({}_bucket{{{RUNNER_SEL}}}[1h])))", c::RUNNER_JOB_DURATION.name), "p50", "A"),
            target(format!("histogram_quantile(0.95, sum by (le) (rate({}_bucket{{{RUNNER_SEL}}}[1h])))", c::RUNNER_JOB_DURATION.name), "p95", "B"),
            target(format!("histogram_quantile(0.99, sum by (le) (rate({}_bucket{{{RUNNER_SEL}}}[1h])))", c::RUNNER_JOB_DURATION.name), "p99", "C"),
        ],
        Some((h.job_duration_p95_max.get().as_secs_f64(), "red")),
    ), 8, 8);
    l.add(
        timeseries(
            "Job running",
            "1 while a runner runs a job; a job longer than the configured maximum is stuck.",
            "short",
            vec![target(
                format!("{}{{{RUNNER_SEL}}}", c::RUNNER_JOB_RUNNING.name),
                "{{runner}}",
                "A",
            )],
            None,
        ),
        8,
        8,
    );
    l.add(timeseries(
        "Current job age",
        &format!("How long each runner's current job has run. Dashed line: the stuck-job limit ({} s).", h.max_job_duration.get().as_secs()),
        "s",
        vec![target(format!("time() - {}{{{RUNNER_SEL}}}", c::RUNNER_JOB_STARTED.name), "{{runner}}", "A")],
        Some((h.max_job_duration.get().as_secs_f64(), "red")),
    ), 8, 8);
    l.add(timeseries(
        "Runner log events",
        "Known events in the runners' logs per second: connect errors, reconnects, session conflicts, deleted registrations, authentication failures, updates, clock skew, listener exits.",
        "ops",
        vec![target(format!("sum by (runner, event) (rate({}{{{RUNNER_SEL}}}[$__rate_interval])) > 0", c::RUNNER_LOG_EVENTS.name), "{{runner}} {{event}}", "A")],
        None,
    ), 8, 8);

    l.row("Queue and deploys");
    let queue_wait = h.max_queue_wait.get().as_secs_f64();
    l.add(timeseries(
        "Queued jobs by label set",
        "Jobs waiting for a runner, by the label set they ask for (lowercase, sorted), over the watched repositories. Exporters watching the same repositories report the same jobs: the largest count is shown.",
        "short",
        vec![target(format!("max by (labels) ({}{{{HOST_SEL}}})", c::QUEUE_JOBS.name), "{{labels}}", "A")],
        None,
    ), 8, 8);
    l.add(timeseries(
        "Oldest queued job",
        &format!("How long the oldest queued job of each label set has waited. Dashed line: [health] max_queue_wait ({queue_wait} s), past which check names why it waits and RunnerJobQueuedTooLong fires."),
        "s",
        vec![target(format!("max by (labels) ({}{{{HOST_SEL}}})", c::QUEUE_OLDEST_AGE.name), "{{labels}}", "A")],
        Some((queue_wait, "red")),
    ), 8, 8);
    l.add(timeseries(
        "Queue time",
        "50th and 95th percentile of the time jobs waited before a runner picked them up (started_at - created_at), over the last hour. Jobs GitHub shows with started_at equal to created_at are not in it (github_runner_queue_time_unmeasured_total).",
        "s",
        vec![
            target(format!("histogram_quantile(0.5, sum by (le) (rate({}_bucket{{{HOST_SEL}}}[1h])))", c::QUEUE_TIME.name), "p50", "A"),
            target(format!("histogram_quantile(0.95, sum by (le) (rate({}_bucket{{{HOST_SEL}}}[1h])))", c::QUEUE_TIME.name), "p95", "B"),
        ],
        None,
    ), 8, 8);
    l.add(timeseries(
        "Online runners per label set",
        "Runners carrying every label of a requested label set: online, and online and idle. 0 online while jobs are queued: nothing can take them. In self scope an exporter knows only its host's runners: the largest count over the exporters is shown.",
        "short",
        vec![target(format!("max by (labels, state) ({}{{{HOST_SEL}}})", c::LABELSET_RUNNERS.name), "{{labels}} {{state}}", "A")],
        None,
    ), 8, 8);
    l.add(timeseries(
        "Deploy success ratio",
        &format!("Share of the [jobs] workflows' jobs that succeeded over the SLO window ({}), from the recording rule {DEPLOY_SUCCESS_RECORD}; cancelled and skipped jobs not counted. Dashed line: the {}% objective.", crate::duration::Dur(h.deploy_slo_window.get()), h.deploy_success_ratio_min.0 * 100.0),
        "percentunit",
        vec![target(format!("{DEPLOY_SUCCESS_RECORD}{{job=~\"$job\"}}"), "{{workflow}}", "A")],
        Some((h.deploy_success_ratio_min.0, "red")),
    ), 8, 8);
    l.add(timeseries(
        "Deploy duration p95",
        &format!("95th percentile duration of the [jobs] workflows' jobs over the SLO window, from the recording rule {DEPLOY_P95_RECORD}. Dashed line: the {} s objective.", h.deploy_duration_p95_max.get().as_secs()),
        "s",
        vec![target(format!("{DEPLOY_P95_RECORD}{{job=~\"$job\"}}"), "{{workflow}}", "A")],
        Some((h.deploy_duration_p95_max.get().as_secs_f64(), "red")),
    ), 8, 8);

    l.row("Exporter and GitHub API");
    l.add(timeseries(
        "Collector success",
        "1 when a collector's last run succeeded; 0 means its data is missing or stale (see the exporter's log).",
        "short",
        vec![target(format!("{}{{{HOST_SEL}}}", c::EXPORTER_COLLECTOR_SUCCESS.name), "{{instance}} {{collector}}", "A")],
        None,
    ), 8, 8);
    l.add(
        timeseries(
            "Collector duration",
            "Wall-clock duration of each collector's last run.",
            "s",
            vec![target(
                format!("{}{{{HOST_SEL}}}", c::EXPORTER_COLLECTOR_DURATION.name),
                "{{instance}} {{collector}}",
                "A",
            )],
            None,
        ),
        8,
        8,
    );
    l.add(
        timeseries(
            "Exporter memory",
            "Resident memory of the runner-health-exporter processes themselves.",
            "bytes",
            vec![target(
                format!("process_resident_memory_bytes{{{HOST_SEL}}}"),
                "{{instance}} resident",
                "A",
            )],
            None,
        ),
        8,
        8,
    );
    l.add(timeseries(
        "GitHub API requests",
        "Requests to the GitHub REST API per second by status code (304 answers cost no rate limit).",
        "reqps",
        vec![target(format!("sum by (code) (rate({}{{{HOST_SEL}}}[$__rate_interval]))", c::GITHUB_API_REQUESTS.name), "{{code}}", "A")],
        None,
    ), 8, 8);
    l.add(timeseries(
        "GitHub API rate limit left",
        "Share of the GitHub API rate limit left in the current window. Below the dashed line (10%) polling slows down and an alert fires.",
        "percentunit",
        vec![target(format!("{}{{{HOST_SEL}}} / {}{{{HOST_SEL}}}", c::GITHUB_RATE_REMAINING.name, c::GITHUB_RATE_LIMIT.name), "{{instance}}", "A")],
        Some((0.1, "red")),
    ), 8, 8);
    l.add(timeseries(
        "Queue API budget used",
        "Requests the queue collector had charged over the last hour, as a share of its budget ([github.queue] budget_share of the token's hourly limit). It paces its polls to stay under 100%.",
        "percentunit",
        vec![target(format!("max by (instance) (increase({}{{{HOST_SEL}}}[1h])) / max by (instance) ({}{{{HOST_SEL}}})", c::QUEUE_API_CHARGED.name, c::QUEUE_API_BUDGET.name), "{{instance}}", "A")],
        Some((1.0, "red")),
    ), 8, 8);
    l.add(timeseries(
        "GitHub API backoff",
        "Extra delay before the next GitHub API poll because of errors or a low rate limit (0 when polling normally).",
        "s",
        vec![target(format!("{}{{{HOST_SEL}}}", c::GITHUB_BACKOFF.name), "{{instance}}", "A")],
        None,
    ), 8, 8);

    let mut panels = l.panels;
    for p in &mut panels {
        let title = p["title"].as_str().unwrap_or_default().to_string();
        if let Some(links) = runbook_links(h, &title) {
            p["links"] = links;
        }
    }

    let var = |name: &str, label: &str, query: String| {
        json!({
            "type": "query", "name": name, "label": label,
            "datasource": ds(),
            "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "definition": query,
            "refresh": 2, "includeAll": true, "multi": true, "allValue": ".*",
            "current": {"selected": true, "text": ["All"], "value": ["$__all"]},
            "sort": 1, "hide": 0, "options": []
        })
    };
    json!({
        "title": "GitHub Actions runners",
        "uid": "runner-health",
        "description": "Self-hosted GitHub Actions runners as runner-health-exporter sees them: service, registration, jobs, host resources. Generated by runner-health-exporter generate.",
        "tags": ["github-actions", "runners", "runner-health-exporter"],
        "editable": true,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "",
        "links": [],
        "annotations": {"list": [
            {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": true, "hide": true,
             "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"},
            {"datasource": ds(), "enable": true, "iconColor": "red", "name": "Runner alerts",
             "expr": format!("ALERTS{{{ALERTS_SEL}}}"), "step": "60s",
             "titleFormat": "{{alertname}}", "textFormat": "{{runner}} {{instance}} {{severity}}",
             "tagKeys": "severity,runner", "useValueForTime": false}
        ]},
        "templating": {"list": [
            {"type": "datasource", "name": "datasource", "label": "Data source", "query": "prometheus",
             "current": {}, "hide": 0, "refresh": 1, "options": [], "includeAll": false, "multi": false},
            var("job", "Job", format!("label_values({}, job)", c::EXPORTER_BUILD_INFO.name)),
            var("instance", "Instance", format!("label_values({}{{job=~\"$job\"}}, instance)", c::EXPORTER_BUILD_INFO.name)),
            var("role", "Role", format!("label_values({}{{job=~\"$job\", instance=~\"$instance\"}}, role)", c::RUNNER_INFO.name)),
            var("environment", "Environment", format!("label_values({}{{job=~\"$job\", instance=~\"$instance\"}}, environment)", c::RUNNER_INFO.name)),
            var("runner", "Runner", format!("label_values({}{{job=~\"$job\", instance=~\"$instance\", role=~\"$role\", environment=~\"$environment\"}}, runner)", c::RUNNER_INFO.name)),
        ]},
        "panels": panels,
    })
}

/// `grafana/runner-health.json`.
pub fn dashboard_json(h: &HealthConfig) -> String {
    let mut s = serde_json::to_string_pretty(&dashboard(h)).unwrap_or_default();
    s.push('\n');
    s
}
