//! The generated alert rules in a real promtool: they load, and the unit
//! tests in alerts/tests/ pass and cover every alert both ways.

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn promtool(args: &[&str]) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(ROOT)
        .output()
        .expect("promtool is installed (Debian package prometheus)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn alert_names() -> Vec<String> {
    let rules =
        std::fs::read_to_string(Path::new(ROOT).join("alerts/runner-health.rules.yml")).unwrap();
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn generated_rules_pass_promtool_check() {
    let (ok, out) = promtool(&["check", "rules", "alerts/runner-health.rules.yml"]);
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn alert_unit_tests_pass() {
    let tests: Vec<String> = std::fs::read_dir(Path::new(ROOT).join("alerts/tests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .map(|p| p.strip_prefix(ROOT).unwrap().display().to_string())
        .collect();
    assert!(!tests.is_empty());
    let mut args = vec!["test", "rules"];
    args.extend(tests.iter().map(String::as_str));
    let (ok, out) = promtool(&args);
    assert!(ok, "{out}");
}

#[test]
fn every_alert_has_a_firing_and_a_quiet_case() {
    let names = alert_names();
    for required in [
        "RunnerServiceDown",
        "RunnerCrashLooping",
        "RunnerOffline",
        "RunnerRegistrationDeleted",
        "RunnerVersionDeprecated",
        "RunnerVersionOutdated",
        "RunnerDockerUnavailable",
        "RunnerDegraded",
        "RunnerCpuSaturated",
        "RunnerDiskWillFill",
        "RunnerJobStuck",
        "RunnerJobSuccessRateLow",
        "RunnerJobDurationHigh",
        "RunnerFailoverActive",
        "RunnerPoolUnavailable",
        "RunnerFailoverSameHost",
        "RunnerExporterDown",
        "RunnerExporterCollectorFailing",
        "RunnerGitHubApiRateLimitLow",
        "RunnerJobQueuedTooLong",
        "NoOnlineRunnerForLabels",
        "RunnerDeploySuccessRateLow",
        "RunnerDeployDurationHigh",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "{required} missing from the rules"
        );
    }
    let mut text = String::new();
    for e in std::fs::read_dir(Path::new(ROOT).join("alerts/tests")).unwrap() {
        text.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
    }
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for name in &names {
        let mut fires = false;
        let mut quiet = false;
        for (i, l) in lines.iter().enumerate() {
            if *l == format!("alertname: {name}") {
                match lines.get(i + 1) {
                    Some(&"exp_alerts: []") => quiet = true,
                    Some(&"exp_alerts:") => {
                        fires |= lines
                            .get(i + 2)
                            .is_some_and(|n| n.starts_with("- exp_labels:"));
                        // Annotations are asserted too.
                        assert!(
                            lines[i..]
                                .iter()
                                .take(20)
                                .any(|l| l.starts_with("exp_annotations:")),
                            "{name}: a firing case without annotations"
                        );
                    }
                    _ => {}
                }
            }
        }
        assert!(fires, "{name} has no test case where it fires");
        assert!(quiet, "{name} has no test case where it must not fire");
    }
}

#[test]
fn every_alert_carries_severity_summary_description_and_runbook() {
    let rules =
        std::fs::read_to_string(Path::new(ROOT).join("alerts/runner-health.rules.yml")).unwrap();
    let runbooks = Path::new(ROOT).join("docs/runbooks");
    for block in rules.split("- alert: ").skip(1) {
        let name = block.lines().next().unwrap();
        for key in [
            "severity: ",
            "summary: ",
            "description: ",
            "runbook_url: ",
            "for: ",
        ] {
            assert!(block.contains(key), "{name} lacks {key}");
        }
        let severity = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("severity: "))
            .unwrap();
        assert!(
            ["critical", "warning", "info"].contains(&severity),
            "{name}: {severity}"
        );
        let url = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("runbook_url: "))
            .unwrap();
        let page = url.trim_matches('"').rsplit('/').next().unwrap();
        assert!(
            runbooks.join(page).is_file(),
            "{name}: runbook page docs/runbooks/{page} missing"
        );
    }
}

/// Minutes in a Prometheus duration such as `4m` or `1h`.
fn minutes(d: &str) -> u64 {
    let (n, unit) = d.split_at(d.len() - 1);
    let n: u64 = n.parse().unwrap_or_else(|_| panic!("duration {d}"));
    match unit {
        "m" => n,
        "h" => n * 60,
        _ => panic!("unexpected duration {d}"),
    }
}

#[test]
fn degradations_fire_within_five_minutes_or_the_runbooks_say_why() {
    let rules =
        std::fs::read_to_string(Path::new(ROOT).join("alerts/runner-health.rules.yml")).unwrap();
    let readme = std::fs::read_to_string(Path::new(ROOT).join("docs/runbooks/README.md")).unwrap();
    let section = readme
        .split("## How fast alerts fire")
        .nth(1)
        .expect("docs/runbooks/README.md has a section 'How fast alerts fire'");
    let section = section.split("\n## ").next().unwrap();
    let rows: Vec<Vec<&str>> = section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Alert "))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    let mut documented = Vec::new();
    for block in rules.split("- alert: ").skip(1) {
        let name = block.lines().next().unwrap();
        let for_ = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("for: "))
            .unwrap();
        // Alerts on a recording rule wait for its evaluation too.
        let on_record = runner_health_exporter::generate::alerts::RECORDS
            .iter()
            .any(|r| block.contains(r));
        let intervals = if on_record { 2 } else { 1 };
        let firing_after = minutes(for_) + intervals;
        let row = rows
            .iter()
            .find(|r| r[0] == name)
            .unwrap_or_else(|| panic!("{name} missing from the table in docs/runbooks/README.md"));
        assert_eq!(row[1], for_, "{name}: for");
        assert_eq!(row[2], format!("{firing_after}m"), "{name}: firing after");
        if firing_after > 5 {
            assert!(
                row.get(3).is_some_and(|why| why.len() > 20),
                "{name} fires after {firing_after}m: the table must say why"
            );
        }
        documented.push(name.to_string());
    }
    for r in &rows {
        assert!(
            documented.iter().any(|n| n == r[0]),
            "the table lists {}, which the rules do not have",
            r[0]
        );
    }
}
