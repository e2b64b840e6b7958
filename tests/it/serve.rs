//! The daemon as a user meets it: start with no config, scrape, negotiate
//! formats, bad config, busy port, signals.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testkit::{sample_value, Exporter};

const BIN: &str = env!("CARGO_BIN_EXE_runner-health-exporter");
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

fn parse_openmetrics(text: &str) -> (bool, String) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/check_openmetrics.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn host_ready(e: &Exporter) -> String {
    e.wait_metrics(Duration::from_secs(10), |m| {
        sample_value(
            m,
            "github_runner_exporter_collector_success{collector=\"host\"}",
        ) == Some(1.0)
            && m.contains("github_runner_host_cpu_usage_ratio ")
    })
    .expect("host collector succeeds within 10 s")
}

#[test]
fn zero_config_serves_host_metrics_that_promtool_accepts() {
    let e = Exporter::start(BIN, &[], &[]);
    let text = host_ready(&e);
    for name in [
        "github_runner_host_cpu_usage_ratio",
        "github_runner_host_load1",
        "github_runner_host_load5",
        "github_runner_host_load15",
        "github_runner_host_memory_total_bytes",
        "github_runner_host_memory_available_bytes",
        "github_runner_host_swap_total_bytes",
        "github_runner_host_boot_time_seconds",
        "github_runner_host_cpu_cores",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(name) && l[name.len()..].starts_with(' ')),
            "{name} missing"
        );
    }
    assert!(text.contains("github_runner_host_cpu_seconds_total{mode=\"idle\"}"));
    assert!(
        text.contains("github_runner_host_filesystem_size_bytes{mountpoint=\"/\""),
        "root filesystem reported"
    );
    assert!(text.contains("github_runner_host_filesystem_files_free{mountpoint=\"/\""));
    assert!(
        !text.contains("mountpoint=\"/proc\""),
        "pseudo filesystems excluded"
    );
    let mem = sample_value(&text, "github_runner_host_memory_total_bytes").unwrap();
    let avail = sample_value(&text, "github_runner_host_memory_available_bytes").unwrap();
    assert!(mem > 0.0 && avail <= mem);
    let ratio = sample_value(&text, "github_runner_host_cpu_usage_ratio").unwrap();
    assert!((0.0..=1.0).contains(&ratio));
    assert!(text.contains("github_runner_exporter_build_info{version=\""));
    assert!(text.contains("rustc_version=\""));

    let (ok, report) = testkit::promtool_check_metrics(&text);
    assert!(
        ok && report.trim().is_empty(),
        "promtool findings:\n{report}"
    );
}

#[test]
fn openmetrics_is_negotiated_and_parses_strictly() {
    let e = Exporter::start(BIN, &[], &[]);
    host_ready(&e);
    let r = e.get_with("GET", "/metrics", &[("Accept", PROMETHEUS_ACCEPT)]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let body = r.body();
    assert!(body.ends_with("# EOF\n"));
    assert!(body.contains("# TYPE github_runner_host_cpu_seconds counter\n"));
    let (ok, report) = parse_openmetrics(&body);
    assert!(ok, "{report}");
    assert!(
        report.contains("github_runner_host_cpu_seconds counter"),
        "{report}"
    );

    // The text format for everyone else, including browsers and curl.
    for accept in [None, Some("text/html,*/*;q=0.8"), Some("text/plain")] {
        let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("Accept", *a)).collect();
        let r = e.get_with("GET", "/metrics", &headers);
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8"),
            "{accept:?}"
        );
        assert!(!r.body().contains("# EOF"));
    }
}

#[test]
fn gzip_head_landing_page_and_unknown_paths() {
    let e = Exporter::start(BIN, &["--web.telemetry-path=/custom"], &[]);
    let plain = e.get("/custom");
    assert_eq!(plain.status, 200);
    let gz = e.get_with("GET", "/custom", &[("Accept-Encoding", "gzip")]);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert!(gz.raw_body.len() < plain.raw_body.len() / 2, "compressed");
    assert!(gz.body().starts_with("# HELP "));

    let head = e.get_with("HEAD", "/custom", &[]);
    assert_eq!(head.status, 200);
    assert!(head.raw_body.is_empty());
    let len: usize = head.header("content-length").unwrap().parse().unwrap();
    assert!(len > 1000);

    let root = e.get("/");
    assert_eq!(root.status, 200);
    assert!(root.body().contains("href=\"/custom\""));
    assert!(root.body().contains(env!("CARGO_PKG_VERSION")));
    assert_eq!(
        e.get("/metrics").status,
        404,
        "only the configured path serves metrics"
    );
    assert_eq!(e.get("/favicon.ico").status, 404);
    let post = e.get_with("POST", "/custom", &[]);
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}

#[test]
fn collectors_with_nothing_to_watch_say_so_and_the_server_runs() {
    // No systemd bus and no runner on a test machine's default paths.
    let bus = "unix:path=/nonexistent/bus";
    let e = Exporter::start(BIN, &[], &[("DBUS_SYSTEM_BUS_ADDRESS", bus)]);
    let text = host_ready(&e);
    assert_eq!(
        sample_value(
            &text,
            "github_runner_exporter_collector_enabled{collector=\"github\"}"
        ),
        Some(0.0),
        "github is off without credentials"
    );
    assert!(text.contains("github_runner_exporter_collector_targets{collector=\"host\"}"));
}

fn write_config(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

/// `config check` on the config in `f`.
fn config_check(f: &tempfile::NamedTempFile) -> std::process::Output {
    let arg = format!("--config.file={}", f.path().display());
    testkit::process::run(BIN, &["config", "check", &arg], &[])
}

#[test]
fn bad_config_names_key_line_and_column_and_exits_non_zero() {
    let f = write_config(
        "[host]\nsample_interval = \"15s\"\n\n[systemd]\nresync_intervall = \"30s\"\n",
    );
    let arg = format!("--config.file={}", f.path().display());
    let err = Exporter::try_start(BIN, &[&arg], &[])
        .err()
        .expect("refuses to start");
    assert!(err.contains("resync_intervall"), "{err}");
    assert!(err.contains(":5:1:"), "line and column: {err}");

    let f = write_config("[host]\nsample_interval = \"fifteen seconds\"\n");
    let out = config_check(&f);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("host.sample_interval"), "{stderr}");
    assert!(stderr.contains(":2:"), "{stderr}");
    assert!(stderr.contains("invalid duration"), "{stderr}");
}

#[test]
fn config_check_prints_the_effective_config() {
    let f = write_config("[host]\nsample_interval = \"30s\"\n\n[[runner]]\nroot = \"/opt/actions-runner\"\nrole = \"primary\"\n");
    let out = config_check(&f);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("sample_interval = \"30s\""), "{stdout}");
    assert!(
        stdout.contains("resync_interval = \"30s\""),
        "defaults shown: {stdout}"
    );
    assert!(stdout.contains("role = \"primary\""), "{stdout}");

    let out = testkit::process::run(
        BIN,
        &["config", "check", "--config.file=/nonexistent/config.toml"],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a missing file named explicitly is an error"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/config.toml"));

    if !std::path::Path::new("/etc/runner-health-exporter/config.toml").exists() {
        let out = testkit::process::run(BIN, &["config", "check"], &[]);
        assert!(
            out.status.success(),
            "a missing default file means defaults"
        );
    }
}

#[test]
fn port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let out = testkit::process::run(
        BIN,
        &[
            &format!("--web.listen-address={addr}"),
            "--config.file=/dev/null",
        ],
        &[],
    );
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&addr.to_string()), "{stderr}");
    assert!(stderr.to_lowercase().contains("in use"), "{stderr}");
}

#[test]
fn sigterm_and_sigint_exit_zero_within_two_seconds() {
    for sig in ["TERM", "INT"] {
        let mut e = Exporter::start(BIN, &[], &[]);
        assert_eq!(e.get("/metrics").status, 200);
        let t = Instant::now();
        e.signal(sig);
        let status = e.wait_exit(Duration::from_secs(3)).expect("exits");
        assert!(status.success(), "SIG{sig}: {status}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "SIG{sig} took {:?}",
            t.elapsed()
        );
    }
}

#[test]
fn version_names_revision_and_rustc() {
    let out = testkit::process::run(BIN, &["--version"], &[]);
    assert!(out.status.success());
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(v.contains(env!("CARGO_PKG_VERSION")), "{v}");
    assert!(v.contains("revision: "), "{v}");
    assert!(v.contains("rustc: 1."), "{v}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let e = Exporter::start(BIN, &["--log.format=json", "--log.level=debug"], &[]);
    assert_eq!(e.get("/metrics").status, 200);
    let logs = e.logs();
    let mut n = 0;
    for line in logs.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}"));
        assert!(v["ts"].is_string() && v["level"].is_string() && v["msg"].is_string());
        n += 1;
    }
    assert!(n >= 2, "{logs}");
}

#[test]
fn health_without_runners_fails_the_gate_in_text_and_json() {
    let cfg = write_config("[systemd]\nenabled = false\n[runner_files]\nroot_patterns = []\n");
    let e = Exporter::start(
        BIN,
        &[&format!("--config.file={}", cfg.path().display())],
        &[],
    );
    let r = e.get("/health");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(
        r.body().contains("no runner found on this host"),
        "{}",
        r.body()
    );
    let r = e.get_with(
        "GET",
        "/health?role=primary",
        &[("Accept", "application/json")],
    );
    assert_eq!(r.status, 503);
    let v: serde_json::Value = serde_json::from_str(&r.body()).unwrap();
    assert_eq!(v["healthy"], false);
    assert_eq!(v["message"], "no runner matches the selection");
    assert_eq!(e.get("/health?bogus=1").status, 400);
}
