//! End to end with a real Prometheus and Alertmanager: Prometheus scrapes
//! the exporter (fixture runner root, the test D-Bus stand-in for systemd,
//! the fake GitHub), loads the generated rules, every dashboard query runs
//! without error and returns data, and stopping the runner's unit on the
//! test bus makes RunnerServiceDown pending, then firing, then delivered to
//! a webhook through Alertmanager.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::copy_dir;
use testkit::{Exporter, FakeGithub, FakeSystemd, Unit};

const BIN: &str = env!("CARGO_BIN_EXE_runner-health-exporter");
const ROOT_DIR: &str = env!("CARGO_MANIFEST_DIR");
const UNIT: &str = "actions.runner.acme-app.linux_runner.service";

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// GET on Prometheus' API; the `data` field.
fn api(prom: SocketAddr, path: &str) -> Result<Value, String> {
    let r = testkit::get(prom, path).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(&r.body()).map_err(|e| format!("{e}: {}", r.body()))?;
    if v["status"] != "success" {
        return Err(format!("{path}: {v}"));
    }
    Ok(v["data"].clone())
}

fn query(prom: SocketAddr, q: &str) -> Result<Vec<Value>, String> {
    let data = api(prom, &format!("/api/v1/query?query={}", encode(q)))?;
    Ok(match data["resultType"].as_str() {
        Some("vector") | Some("matrix") => data["result"].as_array().cloned().unwrap_or_default(),
        _ => vec![data["result"].clone()],
    })
}

/// A webhook receiver for Alertmanager: keeps every POSTed body.
fn webhook() -> (SocketAddr, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let store = Arc::clone(&got);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; len];
            let _ = reader.read_exact(&mut body);
            if let Ok(v) = serde_json::from_slice(&body) {
                store.lock().unwrap().push(v);
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (addr, got)
}

/// Every query of the dashboard with Grafana's variables filled in as
/// "All", and the variable queries as (label, match[]) pairs.
/// (title or label, query or selector) pairs.
type Queries = Vec<(String, String)>;

fn dashboard_queries() -> (Queries, Queries) {
    let text =
        std::fs::read_to_string(Path::new(ROOT_DIR).join("grafana/runner-health.json")).unwrap();
    let d: Value = serde_json::from_str(&text).unwrap();
    let fill = |q: &str| {
        q.replace("$__rate_interval", "15s")
            .replace("$job", ".*")
            .replace("$instance", ".*")
            .replace("$runner", ".*")
            .replace("$role", ".*")
            .replace("$environment", ".*")
    };
    let mut panels = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            let title = format!(
                "{} / {}",
                p["title"].as_str().unwrap(),
                t["refId"].as_str().unwrap()
            );
            panels.push((title, fill(t["expr"].as_str().unwrap())));
        }
    }
    for a in d["annotations"]["list"].as_array().unwrap() {
        if let Some(e) = a["expr"].as_str() {
            panels.push((format!("annotation {}", a["name"]), fill(e)));
        }
    }
    let mut vars = Vec::new();
    for v in d["templating"]["list"].as_array().unwrap() {
        let Some(def) = v["definition"].as_str() else {
            continue;
        };
        // label_values(selector, label)
        let inner = def
            .strip_prefix("label_values(")
            .and_then(|s| s.strip_suffix(')'))
            .unwrap();
        let (selector, label) = inner.rsplit_once(',').unwrap();
        vars.push((label.trim().to_string(), fill(selector.trim())));
    }
    (panels, vars)
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn prometheus_scrapes_rules_fire_and_every_dashboard_query_returns_data() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("actions-runner");
    copy_dir(&testkit::fixtures_dir().join("runner/basic"), &root);
    // A listener process, so the process panels have data.
    std::fs::create_dir_all(root.join("bin")).unwrap();
    let listener_bin = root.join("bin/Runner.Listener");
    std::fs::copy("/bin/sleep", &listener_bin).unwrap();
    std::fs::set_permissions(&listener_bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let _listener = Kill(Command::new(&listener_bin).arg("600").spawn().unwrap());

    let systemd = FakeSystemd::start([Unit::running(UNIT).with_working_directory(&root)]);
    let github = FakeGithub::start();
    github.set_runners(
        "repos/acme/app",
        vec![testkit::fake_github::official_runner()],
    );
    // Jobs waiting in the runner's repository, for the queue panels.
    let shift = testkit::github_queue::serve_queued(&github);
    let token = dir.path().join("token");
    write(&token, "e2e-token\n");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = dir.path().join("config.toml");
    write(
        &config,
        &format!(
            "[host]\nsample_interval = \"1s\"\n[systemd]\nresync_interval = \"5s\"\n[runner_files]\nroot_patterns = []\n\
             [[runner]]\nroot = \"{}\"\nrole = \"primary\"\nenvironment = \"production\"\n\
             [github]\nscope = \"self\"\napi_url = \"{}\"\ntoken_file = \"{}\"\npoll_interval = \"2s\"\n\
             [github.queue]\npoll_interval = \"1s\"\n[jobs]\nworkflows = [\"deploy.yml\"]\n",
            root.display(),
            github.url(),
            token.display()
        ),
    );
    let bus = systemd.address();
    let exporter = Exporter::start(
        BIN,
        &[&format!("--config.file={}", config.display())],
        &[("DBUS_SYSTEM_BUS_ADDRESS", &bus)],
    );

    let (hook, delivered) = webhook();
    let am_port = free_port();
    let am_dir = dir.path().join("alertmanager");
    std::fs::create_dir_all(&am_dir).unwrap();
    write(
        &am_dir.join("alertmanager.yml"),
        &format!(
            "route:\n  receiver: hook\n  group_by: [alertname, runner]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: http://{hook}/\n        send_resolved: true\n"
        ),
    );
    let _alertmanager = Kill(
        Command::new("prometheus-alertmanager")
            .arg(format!(
                "--config.file={}",
                am_dir.join("alertmanager.yml").display()
            ))
            .arg(format!("--storage.path={}", am_dir.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-alertmanager runs (Debian package prometheus-alertmanager)"),
    );

    let prom_port = free_port();
    let prom_dir = dir.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let rules: PathBuf = Path::new(ROOT_DIR).join("alerts/runner-health.rules.yml");
    write(
        &prom_dir.join("prometheus.yml"),
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [\"127.0.0.1:{am_port}\"]\n\
             scrape_configs:\n  - job_name: runner-health-exporter\n    static_configs:\n      - targets: [\"{}\"]\n",
            rules.display(),
            exporter.addr
        ),
    );
    let _prometheus = Kill(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                prom_dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                prom_dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus runs (Debian package prometheus)"),
    );
    let prom: SocketAddr = format!("127.0.0.1:{prom_port}").parse().unwrap();

    // Prometheus scrapes us (in OpenMetrics: its preferred format).
    testkit::wait_for(Duration::from_secs(30), || {
        let r = query(prom, "up{job=\"runner-health-exporter\"} == 1").ok()?;
        (!r.is_empty()).then_some(())
    })
    .expect("Prometheus scrapes the exporter");
    let targets = api(prom, "/api/v1/targets").unwrap();
    let health = &targets["activeTargets"][0];
    assert_eq!(health["health"], "up", "{targets:#}");
    assert_eq!(health["lastError"], "");
    let rules_status = api(prom, "/api/v1/rules").unwrap();
    let groups = rules_status["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{rules_status:#}");
    for g in groups {
        for r in g["rules"].as_array().unwrap() {
            assert_eq!(
                r["health"], "ok",
                "rule {} failed to evaluate: {}",
                r["name"], r["lastError"]
            );
        }
    }

    // Activity while Prometheus watches: jobs completing, a connection lost
    // and regained, so the job and event panels have data.
    let log = root.join("_diag/Runner_20260105-090000-utc.log");
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ts = |offset: u64| runner_health_exporter::timefmt::rfc3339_millis((now - offset) as f64);
    let stamp = |offset: u64| ts(offset)[..19].replace('T', " ") + "Z";
    for line in [
        format!("[{} INFO Terminal] WRITE LINE: {}: Job lint ✓ ünïcödé completed with result: Succeeded", stamp(60), stamp(60)),
        format!("[{} INFO Terminal] WRITE LINE: {}: Running job: build", stamp(50), stamp(50)),
        format!("[{} INFO Terminal] WRITE LINE: {}: Job build completed with result: Failed", stamp(20), stamp(20)),
        format!("[{} INFO Terminal] WRITE LINE: {}: Runner connect error: Connection refused. Retrying until reconnected.", stamp(15), stamp(15)),
        format!("[{} INFO Terminal] WRITE LINE: {}: Runner reconnected.", stamp(10), stamp(10)),
        format!("[{} INFO Terminal] WRITE LINE: {}: Running job: deploy", stamp(5), stamp(5)),
    ] {
        writeln!(f, "{line}").unwrap();
    }
    drop(f);
    testkit::wait_for(Duration::from_secs(20), || {
        let r = query(
            prom,
            "increase(github_runner_jobs_total{result=\"Failed\"}[1m]) > 0",
        )
        .ok()?;
        (!r.is_empty()).then_some(())
    })
    .expect("Prometheus sees the completed jobs");

    // The queued deploy is picked up and completes: a queue time, and a
    // deploy job counted for the SLO panels.
    testkit::wait_for(Duration::from_secs(20), || {
        let r = query(
            prom,
            "github_runner_queue_jobs{labels=\"linux,self-hosted,x64\"} == 1",
        )
        .ok()?;
        (!r.is_empty()).then_some(())
    })
    .expect("Prometheus sees the queued deploy");
    testkit::github_queue::complete_deploy(&github, shift, 60, 250);
    testkit::wait_for(Duration::from_secs(30), || {
        let r = query(
            prom,
            "increase(github_runner_workflow_jobs_total{workflow=\"deploy.yml\", result=\"success\"}[1m]) > 0",
        )
        .ok()?;
        (!r.is_empty()).then_some(())
    })
    .expect("Prometheus sees the deploy counted");

    // Stop the runner's unit on the test bus: RunnerServiceDown goes
    // pending, then fires (for: 1m), and reaches the webhook.
    systemd.stop_unit(UNIT);
    testkit::wait_for(Duration::from_secs(15), || {
        let r = query(
            prom,
            "ALERTS{alertname=\"RunnerServiceDown\", alertstate=\"pending\"}",
        )
        .ok()?;
        (!r.is_empty()).then_some(())
    })
    .expect("RunnerServiceDown is pending");
    let firing = testkit::wait_for(Duration::from_secs(100), || {
        let r = query(
            prom,
            "ALERTS{alertname=\"RunnerServiceDown\", alertstate=\"firing\"}",
        )
        .ok()?;
        r.into_iter().next()
    })
    .expect("RunnerServiceDown fires");
    assert_eq!(firing["metric"]["runner"], "linux_runner");
    assert_eq!(firing["metric"]["unit"], UNIT);
    assert_eq!(firing["metric"]["severity"], "critical");

    let alert = testkit::wait_for(Duration::from_secs(30), || {
        delivered.lock().unwrap().iter().find_map(|v| {
            v["alerts"]
                .as_array()?
                .iter()
                .find(|a| {
                    a["labels"]["alertname"] == "RunnerServiceDown" && a["status"] == "firing"
                })
                .cloned()
        })
    })
    .expect("Alertmanager delivers RunnerServiceDown to the webhook");
    assert_eq!(alert["labels"]["runner"], "linux_runner");
    assert_eq!(
        alert["annotations"]["summary"],
        "Runner linux_runner service is not active"
    );
    assert!(alert["annotations"]["runbook_url"]
        .as_str()
        .unwrap()
        .ends_with("/service-stopped.md"));

    // Fresh log events for the events panel (it shows only non-zero rates).
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let stamp =
        runner_health_exporter::timefmt::rfc3339_millis(now as f64)[..19].replace('T', " ") + "Z";
    writeln!(f, "[{stamp} INFO Terminal] WRITE LINE: {stamp}: Runner connect error: Connection refused. Retrying until reconnected.").unwrap();
    writeln!(
        f,
        "[{stamp} INFO Terminal] WRITE LINE: {stamp}: Runner reconnected."
    )
    .unwrap();
    drop(f);
    testkit::wait_for(Duration::from_secs(20), || {
        let r = query(
            prom,
            "rate(github_runner_log_events_total{event=\"reconnected\"}[15s]) > 0",
        )
        .ok()?;
        (!r.is_empty()).then_some(())
    })
    .expect("Prometheus sees the fresh events");

    // Every dashboard query runs without error and returns data.
    let (panels, vars) = dashboard_queries();
    let mut problems = Vec::new();
    for (title, q) in &panels {
        match query(prom, q) {
            Err(e) => problems.push(format!("{title}: error {e}\n  {q}")),
            Ok(r) if r.is_empty() => problems.push(format!("{title}: no data\n  {q}")),
            Ok(_) => {}
        }
    }
    for (label, selector) in &vars {
        let path = format!("/api/v1/label/{label}/values?match[]={}", encode(selector));
        match api(prom, &path) {
            Err(e) => problems.push(format!("variable {label}: {e}")),
            Ok(v) if v.as_array().is_none_or(|a| a.is_empty()) => {
                problems.push(format!("variable {label}: no values for {selector}"))
            }
            Ok(_) => {}
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} dashboard queries failed:\n{}",
        problems.len(),
        panels.len() + vars.len(),
        problems.join("\n")
    );
}
