//! The generated Grafana dashboard: structure a user relies on, and every
//! query naming only metrics the exporter (or its rules) produce.

use runner_health_exporter::metrics::catalog;
use serde_json::Value;
use std::path::Path;

fn dashboard() -> Value {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana/runner-health.json"),
    )
    .unwrap();
    serde_json::from_str(&text).expect("dashboard is valid JSON")
}

/// Every query of the dashboard: panel targets, annotations and variables.
pub fn queries(d: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    for a in d["annotations"]["list"].as_array().unwrap() {
        if let Some(e) = a["expr"].as_str() {
            out.push(e.to_string());
        }
    }
    out
}

#[test]
fn variables_rows_and_descriptions() {
    let d = dashboard();
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        vars,
        [
            "datasource",
            "job",
            "instance",
            "role",
            "environment",
            "runner"
        ]
    );
    assert_eq!(d["templating"]["list"][0]["type"], "datasource");
    let panels = d["panels"].as_array().unwrap();
    let rows: Vec<&str> = panels
        .iter()
        .filter(|p| p["type"] == "row")
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        rows,
        [
            "Fleet",
            "Host resources",
            "Jobs",
            "Queue and deploys",
            "Exporter and GitHub API"
        ]
    );
    for p in panels.iter().filter(|p| p["type"] != "row") {
        let title = p["title"].as_str().unwrap();
        assert!(
            p["description"].as_str().is_some_and(|s| s.len() > 20),
            "{title} lacks a description"
        );
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        assert!(
            !p["targets"].as_array().unwrap().is_empty(),
            "{title} has no query"
        );
    }
    let table = panels
        .iter()
        .find(|p| p["type"] == "table")
        .expect("a fleet table");
    let cols = table.to_string();
    for col in ["Service", "GitHub", "Busy", "Last job"] {
        assert!(cols.contains(col), "fleet table lacks {col}");
    }
    let alerts = &d["annotations"]["list"][1];
    assert!(alerts["expr"].as_str().unwrap().starts_with("ALERTS{"));
    // Ids are unique and panels do not overlap.
    let mut ids: Vec<i64> = panels.iter().map(|p| p["id"].as_i64().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), panels.len());
}

#[test]
fn thresholds_match_the_health_defaults() {
    let d = dashboard().to_string();
    let h = runner_health_exporter::config::HealthConfig::default();
    assert!(d.contains(&format!("\"value\":{}", h.job_success_ratio_min.0)));
    assert!(d.contains(&format!("\"value\":{}", h.disk_free_fail_ratio.0)));
    assert!(d.contains(&format!(
        "\"value\":{}.0",
        h.job_duration_p95_max.get().as_secs()
    )));
}

#[test]
fn every_query_names_known_metrics() {
    let d = dashboard();
    let known = |name: &str| {
        catalog::by_name(name).is_some()
            || ["_bucket", "_sum", "_count"]
                .iter()
                .any(|s| name.strip_suffix(s).and_then(catalog::by_name).is_some())
    };
    for q in queries(&d) {
        for word in q.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
            if word.starts_with("github_runner_") || word.starts_with("process_") {
                assert!(known(word), "unknown metric {word} in {q}");
            }
            if word.starts_with("runner:") || word.starts_with("workflow:") {
                assert!(
                    runner_health_exporter::generate::alerts::RECORDS.contains(&word),
                    "unknown recording rule {word} in {q}"
                );
            }
        }
    }
}

#[test]
fn failure_mode_panels_link_their_runbooks() {
    let d = dashboard();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = runner_health_exporter::config::DEFAULT_RUNBOOK_BASE;
    let panels = d["panels"].as_array().unwrap();
    let mut linked = std::collections::BTreeSet::new();
    let pages_of = |p: &Value| -> Vec<String> {
        p["links"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| {
                let title = p["title"].as_str().unwrap();
                assert!(
                    l["title"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("Runbook")),
                    "{title}: link {l} has no runbook title"
                );
                assert_eq!(l["targetBlank"], true, "{title}: {l}");
                let url = l["url"].as_str().unwrap();
                let page = url
                    .strip_prefix(base)
                    .and_then(|p| p.strip_prefix('/'))
                    .unwrap_or_else(|| panic!("{title}: {url} is not under {base}"));
                assert!(
                    root.join("docs/runbooks").join(page).is_file(),
                    "{title}: links docs/runbooks/{page}, which does not exist"
                );
                page.to_string()
            })
            .collect()
    };
    for p in panels.iter().filter(|p| p["type"] != "row") {
        linked.extend(pages_of(p));
    }
    // The panels where a failure mode shows first link its page.
    for (title, page) in [
        ("Runners", "service-stopped.md"),
        ("Runners", "failover-same-host.md"),
        ("Healthy runners", "pool-unavailable.md"),
        ("Work filesystem free", "disk-full.md"),
        ("Memory available", "host-degraded.md"),
        ("Current job age", "stuck-job.md"),
        ("Runner log events", "session-conflict.md"),
        ("Collector success", "collector-failing.md"),
        ("Exporters up", "exporter-down.md"),
        ("GitHub API rate limit left", "github-rate-limit-low.md"),
        ("Oldest queued job", "job-queued-too-long.md"),
        (
            "Online runners per label set",
            "no-online-runner-for-labels.md",
        ),
        ("Deploy success ratio", "deploy-success-rate-low.md"),
    ] {
        let panel = panels
            .iter()
            .find(|p| p["title"] == title)
            .unwrap_or_else(|| panic!("no panel {title}"));
        assert!(
            pages_of(panel).iter().any(|p| p == page),
            "panel {title} does not link {page}"
        );
    }
    // Every page an alert sends you to is reachable from the dashboard.
    let rules = std::fs::read_to_string(root.join("alerts/runner-health.rules.yml")).unwrap();
    for url in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("runbook_url: "))
    {
        let page = url.trim_matches('"').rsplit('/').next().unwrap();
        assert!(
            linked.contains(page),
            "no panel links {page}, the runbook of an alert"
        );
    }
}
