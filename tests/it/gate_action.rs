//! The deploy gate (`action/gate.sh`, the logic of the composite action in
//! `action.yml`) run as a process against two real exporters, one per
//! role, each with its own runner root and its runner's unit on its own
//! real systemd manager (`testkit::SystemdManager`: Debian's systemd in a
//! namespace of its own; needs root): it picks the primary, fails over to
//! the secondary when the
//! primary's service stops, and fails naming the root cause and its
//! runbook when both are down. Also: an exporter that never answers is not
//! healthy and the decision still comes within 30 s; the exporter's
//! Markdown report, when it has one, goes into the step summary as it is;
//! the action, the example workflow and the scripts pass actionlint and
//! shellcheck.
//!
//! `RHE_GATE_DECISION_RUNS=N` repeats the failover measurement N times
//! (benches/gate_decision.sh).

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use testkit::{copy_dir, Exporter, RunnerOptions, SystemdManager};

const BIN: &str = env!("CARGO_BIN_EXE_runner-health-exporter");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const UNIT: &str = "actions.runner.acme-app.linux_runner.service";
const RUNNER: &str = "linux_runner";
const SERVICE_STOPPED_RUNBOOK: &str = "/docs/runbooks/service-stopped.md";

/// One runner host: a runner root, its unit on a real systemd manager,
/// and the exporter watching it with the runner's role.
struct Host {
    exporter: Exporter,
    systemd: SystemdManager,
    _dir: tempfile::TempDir,
}

impl Host {
    fn start(role: &str) -> Host {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("make the runner's parent directory readable");
        let root = dir.path().join("actions-runner");
        copy_dir(&testkit::fixtures_dir().join("runner/basic"), &root);
        // Idle, listening for jobs: the fixture's job in progress goes.
        let log = root.join("_diag/Runner_20260105-090000-utc.log");
        let text = std::fs::read_to_string(&log).expect("read the fixture's runner log");
        let idle: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains("Running job: lint"))
            .collect();
        std::fs::write(&log, idle.join("\n") + "\n").expect("write the runner log");
        std::fs::remove_file(root.join("_diag/Worker_20260105-112000-utc.log"))
            .expect("remove the fixture's worker log");
        // The runner's unit, as `svc.sh install` and `svc.sh start` leave
        // it: its runsvc.sh stand-in runs a listener and logs `Listening
        // for Jobs`; the fixture's .runner stays.
        let systemd = SystemdManager::start().unwrap_or_else(|e| {
            panic!("a real systemd --user must start (root, scripts/install-test-deps.sh): {e}")
        });
        systemd
            .runner_unit_with(UNIT, &root, &RunnerOptions::default())
            .expect("install the runner's unit");
        systemd.daemon_reload().expect("daemon-reload");
        systemd.enable(UNIT).expect("enable the runner's unit");
        systemd.start_unit(UNIT).expect("start the runner's unit");
        // The machine's own disk and memory must not decide the verdict;
        // GitHub is not asked (its check is skipped, which colours nothing).
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[host]\nsample_interval = \"1s\"\n[systemd]\nresync_interval = \"1s\"\n\
                 [runner_files]\nroot_patterns = []\n\
                 [[runner]]\nroot = \"{}\"\nrole = \"{role}\"\nenvironment = \"production\"\n\
                 [github]\nscope = \"off\"\n\
                 [health]\nmemory_available_warn_ratio = 0.0\n\
                 disk_free_warn_ratio = 0.0002\ndisk_free_fail_ratio = 0.0001\n",
                root.display()
            ),
        )
        .expect("write the exporter's config");
        let exporter = Exporter::start(
            BIN,
            &[&format!("--config.file={}", config.display())],
            &[("DBUS_SYSTEM_BUS_ADDRESS", &systemd.address())],
        );
        let host = Host {
            exporter,
            systemd,
            _dir: dir,
        };
        host.wait_service(role, "ok");
        // And its listener connected: runsvc.sh logs `Listening for Jobs`
        // a moment after the unit starts; until then the gate says no.
        host.wait_check(role, "listener_connected", "ok");
        host
    }

    fn url(&self) -> String {
        format!("http://{}", self.exporter.addr)
    }

    /// Waits until `/health?role=ROLE` reports the runner's service check
    /// with `status` (the systemd collector has seen the unit's state).
    fn wait_service(&self, role: &str, status: &str) {
        self.wait_check(role, "service_active", status);
    }

    /// Waits until `/health?role=ROLE` reports check `check` with `status`.
    fn wait_check(&self, role: &str, check: &str, status: &str) {
        let path = format!("/health?role={role}");
        testkit::wait_for(Duration::from_secs(20), || {
            let r = self
                .exporter
                .get_with("GET", &path, &[("Accept", "application/json")]);
            let report: Value = serde_json::from_str(&r.body()).ok()?;
            let (got, _) = testkit::health_check(&report, check)?;
            (got == status).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "{path}: {check} never became {status}; last: {}\nlog:\n{}",
                self.exporter.get(&path).body(),
                self.exporter.logs()
            )
        });
    }
}

/// Stops the runner's service on `host`: `systemctl stop`.
fn stop_runner_service(host: &Host) {
    host.systemd.stop_unit(UNIT).expect("systemctl stop");
}

fn start_runner_service(host: &Host) {
    host.systemd.start_unit(UNIT).expect("systemctl start");
}

/// What one run of the gate left behind.
struct Gate {
    code: i32,
    stdout: String,
    stderr: String,
    outputs: BTreeMap<String, String>,
    summary: String,
    took: Duration,
}

impl Gate {
    fn output(&self, name: &str) -> &str {
        self.outputs
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| {
                panic!(
                    "no output {name} in GITHUB_OUTPUT: {:?}\nstdout:\n{}",
                    self.outputs, self.stdout
                )
            })
    }

    fn explain(&self) -> String {
        format!(
            "exit {}; stdout:\n{}\nstderr:\n{}\nsummary:\n{}",
            self.code, self.stdout, self.stderr, self.summary
        )
    }
}

/// `GITHUB_OUTPUT` as the runner reads it: `name=value` lines and
/// `name<<DELIMITER` blocks.
fn parse_outputs(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let heredoc = line.find("<<");
        let assign = line.find('=');
        match (heredoc, assign) {
            (Some(h), a) if a.is_none_or(|a| h < a) => {
                let (name, delim) = (&line[..h], &line[h + 2..]);
                let mut value = Vec::new();
                for l in lines.by_ref() {
                    if l == delim {
                        break;
                    }
                    value.push(l);
                }
                out.insert(name.to_string(), value.join("\n"));
            }
            (_, Some(a)) => {
                out.insert(line[..a].to_string(), line[a + 1..].to_string());
            }
            _ => panic!("GITHUB_OUTPUT line {line:?} is neither name=value nor name<<EOF"),
        }
    }
    out
}

/// Runs `action/gate.sh` with the default timeout, retries and delay
/// unless `env` sets them.
fn run_gate(primary: &str, secondary: &str, env: &[(&str, &str)]) -> Gate {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let outputs = dir.path().join("github_output");
    let summary = dir.path().join("step_summary");
    std::fs::write(&outputs, "").expect("create GITHUB_OUTPUT");
    std::fs::write(&summary, "").expect("create GITHUB_STEP_SUMMARY");
    let mut cmd = Command::new("bash");
    cmd.arg(Path::new(ROOT).join("action/gate.sh"))
        .env("GATE_PRIMARY_URL", primary)
        .env("GATE_SECONDARY_URL", secondary)
        .env("GATE_PRIMARY_LABEL", "deploy-primary")
        .env("GATE_SECONDARY_LABEL", "deploy-secondary")
        .env("GATE_ENVIRONMENT", "production")
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_STEP_SUMMARY", &summary);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let out = cmd.output().expect("bash runs action/gate.sh");
    let took = start.elapsed();
    Gate {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        outputs: parse_outputs(&std::fs::read_to_string(&outputs).expect("read GITHUB_OUTPUT")),
        summary: std::fs::read_to_string(&summary).expect("read GITHUB_STEP_SUMMARY"),
        took,
    }
}

#[test]
fn gate_picks_the_primary_fails_over_and_names_the_root_cause() {
    let primary = Host::start("primary");
    let secondary = Host::start("secondary");

    // (a) Both healthy: the primary.
    let gate = run_gate(&primary.url(), &secondary.url(), &[]);
    assert_eq!(gate.code, 0, "{}", gate.explain());
    assert_eq!(gate.output("role"), "primary", "{}", gate.explain());
    assert_eq!(gate.output("label"), "deploy-primary");
    assert_eq!(gate.output("healthy"), "true");
    assert_eq!(gate.output("diagnosis"), "");
    assert!(
        gate.summary
            .contains("## Deploy gate: primary (`deploy-primary`)"),
        "{}",
        gate.explain()
    );
    assert!(
        gate.summary.contains("| primary (chosen) |"),
        "{}",
        gate.explain()
    );
    assert!(gate.summary.contains(RUNNER), "{}", gate.explain());
    // The exporter's own Markdown report (`/health?format=markdown`).
    assert!(
        gate.summary.contains("### ✅ HEALTHY (ok)")
            && gate.summary.contains("| `service_active` | ok |"),
        "the exporter's Markdown report in the summary\n{}",
        gate.explain()
    );
    assert!(!gate.stdout.contains("::error"), "{}", gate.explain());

    // (b) The primary's service stops: the secondary, within 30 s of the
    // stop. A gate that asks before the exporter has seen the stop still
    // gets the primary; then it is asked again.
    let runs: usize = std::env::var("RHE_GATE_DECISION_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    for run in 1..=runs {
        if run > 1 {
            start_runner_service(&primary);
            primary.wait_service("primary", "ok");
            primary.wait_check("primary", "listener_connected", "ok");
        }
        let stopped = Instant::now();
        stop_runner_service(&primary);
        let mut asked = 0;
        let gate = loop {
            asked += 1;
            let gate = run_gate(&primary.url(), &secondary.url(), &[]);
            if gate.outputs.get("role").map(String::as_str) != Some("primary")
                || stopped.elapsed() > Duration::from_secs(30)
            {
                break gate;
            }
        };
        let decision = stopped.elapsed();
        println!(
            "gate decision: {:.3} s from the unit stopping to the answer \
             (gate runs: {asked}, the last took {:.3} s)",
            decision.as_secs_f64(),
            gate.took.as_secs_f64()
        );
        assert_eq!(gate.code, 0, "{}", gate.explain());
        assert_eq!(gate.output("role"), "secondary", "{}", gate.explain());
        assert_eq!(gate.output("label"), "deploy-secondary");
        assert_eq!(gate.output("healthy"), "true");
        assert!(
            decision < Duration::from_secs(30),
            "decision took {decision:?}"
        );
        // The failover names the primary's cause, in the log and the summary.
        assert!(
            gate.output("diagnosis")
                .starts_with("primary: Service stopped"),
            "{}",
            gate.explain()
        );
        assert!(
            gate.stdout
                .contains("::warning title=Deploy gate%3A failing over"),
            "{}",
            gate.explain()
        );
        assert!(
            gate.summary.contains("| secondary (chosen) |"),
            "{}",
            gate.explain()
        );
        assert!(
            gate.summary.contains("Service stopped"),
            "{}",
            gate.explain()
        );
    }

    // (c) Both stopped: no deploy; the cause and its runbook in the
    // workflow's error annotations, the outputs and the summary.
    stop_runner_service(&secondary);
    secondary.wait_service("secondary", "fail");
    let gate = run_gate(&primary.url(), &secondary.url(), &[]);
    assert_eq!(gate.code, 1, "{}", gate.explain());
    assert_eq!(gate.output("healthy"), "false");
    assert_eq!(gate.output("role"), "");
    assert_eq!(gate.output("label"), "");
    for role in ["primary", "secondary"] {
        let error = gate
            .stdout
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "::error title=Deploy gate%3A {role} not healthy::"
                ))
            })
            .unwrap_or_else(|| panic!("no ::error for the {role}\n{}", gate.explain()));
        assert!(
            error.contains("Service stopped") && error.contains(SERVICE_STOPPED_RUNBOOK),
            "{error}"
        );
    }
    let diagnosis = gate.output("diagnosis");
    assert_eq!(diagnosis.lines().count(), 2, "{diagnosis}");
    assert!(
        diagnosis.contains("secondary: Service stopped"),
        "{diagnosis}"
    );
    assert!(
        gate.output("runbook").ends_with(SERVICE_STOPPED_RUNBOOK),
        "{}",
        gate.explain()
    );
    assert!(
        gate.summary.contains("## Deploy gate: no healthy runner"),
        "{}",
        gate.explain()
    );
    assert!(
        gate.summary.contains("Service stopped")
            && gate.summary.contains("(https://")
            && gate.summary.contains(SERVICE_STOPPED_RUNBOOK),
        "the summary links the runbook\n{}",
        gate.explain()
    );
}

/// A server on loopback that accepts connections and never answers.
fn silent_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    addr
}

#[test]
fn an_exporter_that_never_answers_is_not_healthy_and_the_decision_stays_under_30s() {
    let secondary = Host::start("secondary");
    let hung = format!("http://{}", silent_server());
    // Defaults: timeout 5 s, retries 2, delay 2 s: 3 * 5 + 2 * 2 = 19 s.
    let gate = run_gate(&hung, &secondary.url(), &[]);
    println!(
        "gate decision with a primary that never answers: {:.3} s",
        gate.took.as_secs_f64()
    );
    assert_eq!(gate.code, 0, "{}", gate.explain());
    assert_eq!(gate.output("role"), "secondary", "{}", gate.explain());
    assert!(
        gate.output("diagnosis")
            .starts_with("primary: Exporter unreachable"),
        "{}",
        gate.explain()
    );
    assert!(gate.output("runbook").ends_with("/exporter-down.md"));
    assert!(gate.took < Duration::from_secs(30), "took {:?}", gate.took);
    // Three rounds of one 5 s timeout each, not one request per round.
    assert!(gate.stdout.contains("round 3:"), "{}", gate.explain());
    assert!(!gate.stdout.contains("round 4:"), "{}", gate.explain());

    // Nothing answers at all: unreachable on both sides fails the gate.
    let gate = run_gate(
        &hung,
        "http://127.0.0.1:1",
        &[("GATE_TIMEOUT", "1"), ("GATE_RETRY_DELAY", "0.1")],
    );
    assert_eq!(gate.code, 1, "{}", gate.explain());
    assert_eq!(gate.output("healthy"), "false");
    assert!(
        gate.stdout.contains(
            "::error title=Deploy gate%3A secondary not healthy::secondary: Exporter unreachable"
        ),
        "{}",
        gate.explain()
    );
}

/// A stand-in for an exporter: with `markdown`, one that has
/// `?format=markdown`; without, an older one that answers 400 to it.
fn markdown_exporter(markdown: Option<&'static str>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut request = String::new();
            if BufReader::new(&conn).read_line(&mut request).is_err() {
                continue;
            }
            let (status, kind, body) = if request.contains("format=markdown") {
                match markdown {
                    Some(md) => ("200 OK", "text/markdown; charset=utf-8", md.to_string()),
                    None => (
                        "400 Bad Request",
                        "text/plain; charset=utf-8",
                        "unknown parameter \"format\": use runner, role or environment\n"
                            .to_string(),
                    ),
                }
            } else {
                (
                    "200 OK",
                    "text/plain; charset=utf-8",
                    "HEALTHY (ok) at 2026-01-05T12:00:00.000Z\n\nrunner md-runner  role=primary  OK\n"
                        .to_string(),
                )
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[test]
fn the_exporters_markdown_report_goes_into_the_summary() {
    const MD: &str = "| Check | Status |\n|---|---|\n| service_active | ok |\n";
    let addr = markdown_exporter(Some(MD));
    let gate = run_gate(&format!("http://{addr}"), "", &[]);
    assert_eq!(gate.code, 0, "{}", gate.explain());
    assert_eq!(gate.output("role"), "primary");
    assert!(gate.summary.contains(MD), "{}", gate.explain());
    assert!(!gate.summary.contains("```text"), "{}", gate.explain());
}

#[test]
fn an_exporter_without_markdown_gets_its_text_report_in_a_code_block() {
    let addr = markdown_exporter(None);
    let gate = run_gate(&format!("http://{addr}"), "", &[]);
    assert_eq!(gate.code, 0, "{}", gate.explain());
    assert!(
        gate.summary.contains("```text\nHEALTHY (ok)"),
        "{}",
        gate.explain()
    );
}

#[test]
fn bad_settings_fail_before_asking_anyone() {
    for (env, complaint) in [
        (
            vec![("GATE_TIMEOUT", "0")],
            "timeout must be a positive number",
        ),
        (
            vec![("GATE_RETRIES", "-1")],
            "retries must be a whole number",
        ),
        (
            vec![("GATE_ENVIRONMENT", "prod&x=1")],
            "environment may only contain",
        ),
    ] {
        let gate = run_gate("http://127.0.0.1:1", "", &env);
        assert_eq!(gate.code, 2, "{env:?}: {}", gate.explain());
        assert!(
            gate.stderr.contains(complaint),
            "{env:?}: {}",
            gate.explain()
        );
        assert!(
            !gate.stdout.contains("round 1"),
            "{env:?}: {}",
            gate.explain()
        );
    }
    let gate = run_gate("", "", &[]);
    assert_eq!(gate.code, 2, "{}", gate.explain());
    assert!(
        gate.stderr.contains("GATE_PRIMARY_URL"),
        "{}",
        gate.explain()
    );
}

fn tool(cmd: &str, args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} runs (scripts/install-test-deps.sh installs it): {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn gate_script_and_bench_pass_shellcheck() {
    let (ok, out) = tool(
        "shellcheck",
        &["action/gate.sh", "benches/gate_decision.sh"],
        Path::new(ROOT),
    );
    assert!(ok, "{out}");
}

#[test]
fn example_workflow_and_action_pass_actionlint() {
    // The example as published.
    let (ok, out) = tool(
        "actionlint",
        &["examples/deploy-with-gate.yml"],
        Path::new(ROOT),
    );
    assert!(ok, "{out}");
    // The same workflow using the action from its checkout (uses: ./):
    // actionlint then reads action.yml and checks the inputs against it.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let workflows: PathBuf = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).expect("create .github/workflows");
    std::fs::copy(
        Path::new(ROOT).join("action.yml"),
        dir.path().join("action.yml"),
    )
    .expect("copy action.yml");
    let example = std::fs::read_to_string(Path::new(ROOT).join("examples/deploy-with-gate.yml"))
        .expect("read the example");
    let published = "uses: runner-health-exporter/runner-health-exporter@main";
    assert!(example.contains(published), "the example uses {published}");
    std::fs::write(
        workflows.join("deploy.yml"),
        example.replace(published, "uses: ./"),
    )
    .expect("write the local-action workflow");
    let (ok, out) = tool("git", &["init", "--quiet"], dir.path());
    assert!(ok, "{out}");
    let (ok, out) = tool("actionlint", &[], dir.path());
    assert!(ok, "{out}");
}

#[test]
fn every_action_input_reaches_the_script_and_every_output_is_written() {
    let action: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(Path::new(ROOT).join("action.yml")).expect("read action.yml"),
    )
    .expect("action.yml is YAML");
    let script =
        std::fs::read_to_string(Path::new(ROOT).join("action/gate.sh")).expect("read gate.sh");
    assert_eq!(action["runs"]["using"], "composite");
    let step = &action["runs"]["steps"][0];
    assert_eq!(step["shell"], "bash");
    let run = step["run"].as_str().unwrap();
    assert!(run.contains("$GITHUB_ACTION_PATH/action/gate.sh"), "{run}");
    assert!(
        !run.contains("${{"),
        "inputs go through env, not into the script: {run}"
    );
    let env = step["env"].as_object().expect("the step's env");
    let inputs = action["inputs"].as_object().expect("inputs");
    for (name, input) in inputs {
        let var = env
            .iter()
            .find(|(_, v)| v.as_str() == Some(&format!("${{{{ inputs.{name} }}}}")))
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| panic!("input {name} is not passed to the script"));
        assert!(
            script.contains(&format!("${{{var}")),
            "gate.sh does not read {var}"
        );
        assert!(
            input["description"].as_str().is_some_and(|d| d.len() > 10),
            "input {name} lacks a description"
        );
    }
    for (name, output) in action["outputs"].as_object().expect("outputs") {
        assert_eq!(
            output["value"],
            format!("${{{{ steps.gate.outputs.{name} }}}}"),
            "output {name}"
        );
        assert!(
            script.contains(&format!("set_output {name} ")),
            "gate.sh never writes output {name}"
        );
    }
}
