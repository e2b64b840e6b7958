//! Generated files are committed; they must match what the binary
//! generates now. Run `cargo run -- generate --output-dir .` to refresh them.

use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_runner-health-exporter");

#[test]
fn committed_generated_files_match_the_generator() {
    let dir = tempfile::tempdir().unwrap();
    let out = testkit::process::run(
        BIN,
        &["generate", "--output-dir", dir.path().to_str().unwrap()],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!listed.trim().is_empty());
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for line in listed.lines() {
        let generated = Path::new(line);
        let rel = generated.strip_prefix(dir.path()).unwrap();
        let fresh = std::fs::read(generated).unwrap();
        let committed = std::fs::read(repo.join(rel)).unwrap_or_default();
        if fresh != committed {
            stale.push(rel.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files (run `cargo run -- generate --output-dir .`): {stale:?}"
    );
}

#[test]
fn metrics_reference_lists_every_family() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md"))
            .unwrap();
    for name in [
        "github_runner_host_cpu_usage_ratio",
        "github_runner_host_filesystem_avail_bytes",
        "github_runner_service_state",
        "github_runner_jobs_total",
        "github_runner_registered",
        "github_runner_exporter_collector_success",
        "process_resident_memory_bytes",
    ] {
        assert!(
            doc.contains(&format!("| `{name}` |")),
            "{name} missing from docs/metrics.md"
        );
    }
}

#[test]
fn local_thresholds_flow_into_alerts_and_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[health]\nmax_job_duration = \"2h\"\ndisk_free_warn_ratio = 0.2\n",
    )
    .unwrap();
    let out = testkit::process::run(
        BIN,
        &[
            "generate",
            "--output-dir",
            dir.path().to_str().unwrap(),
            "--config.file",
            cfg.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rules = std::fs::read_to_string(dir.path().join("alerts/runner-health.rules.yml")).unwrap();
    assert!(
        rules.contains("github_runner_job_started_timestamp_seconds > 7200"),
        "{rules}"
    );
    assert!(rules.contains("github_runner_work_filesystem_size_bytes < 0.2"));
    let dash = std::fs::read_to_string(dir.path().join("grafana/runner-health.json")).unwrap();
    assert!(dash.contains("\"value\": 7200.0"));
}
