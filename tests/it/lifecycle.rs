//! The runner's lifecycle as GitHub enforces it, through the real binary:
//! the `deprecated`, `ephemeral-finished` and `docker-denied` fixtures
//! (tests/fixtures/runner/README.md gives their sources and what the
//! exporter should conclude), the latest release from the fake GitHub, and
//! lines appended the way the runner writes them.

use serde_json::Value;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::{sample_value, Exporter, FakeGithub};

const BIN: &str = env!("CARGO_BIN_EXE_runner-health-exporter");
const SOON: Duration = Duration::from_secs(10);

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

struct Roots {
    dir: tempfile::TempDir,
}

impl Roots {
    fn new() -> Roots {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Roots { dir }
    }

    fn copy(&self, fixture: &str) -> PathBuf {
        let to = self.dir.path().join(fixture);
        testkit::copy_dir(&testkit::fixtures_dir().join("runner").join(fixture), &to);
        to
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn val(m: &str, series: &str) -> Option<f64> {
    sample_value(m, series)
}

/// The three fixtures, GitHub in self scope (the deprecated runner 57 of
/// org acme offline, build-docker-01, id 31 of acme/app, online), a
/// Docker socket only root can open, and Docker's data-root from a
/// daemon.json of the test's.
struct Env {
    roots: Roots,
    github: FakeGithub,
    config: PathBuf,
    docker_denied: PathBuf,
}

fn env() -> Env {
    let roots = Roots::new();
    let deprecated = roots.copy("deprecated");
    let ephemeral = roots.copy("ephemeral-finished");
    let docker_denied = roots.copy("docker-denied");
    if is_root() {
        // The runner's user (no systemd: the root's owner) is nobody.
        std::os::unix::fs::chown(&docker_denied, Some(65534), Some(65534)).unwrap();
    }
    let socket = roots.path().join("docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).unwrap();
    let data_root = roots.path().join("docker-data");
    std::fs::write(
        roots.path().join("daemon.json"),
        format!("{{\"data-root\": \"{}\"}}", data_root.display()),
    )
    .unwrap();
    let github = FakeGithub::start();
    let mut legacy = testkit::fake_github::official_runner();
    legacy["id"] = 57.into();
    legacy["name"] = "legacy-runner".into();
    legacy["status"] = "offline".into();
    legacy["busy"] = false.into();
    github.set_runners("orgs/acme", vec![legacy]);
    let mut build = testkit::fake_github::official_runner();
    build["id"] = 31.into();
    build["name"] = "build-docker-01".into();
    build["status"] = "online".into();
    build["busy"] = false.into();
    github.set_runners("repos/acme/app", vec![build]);
    github.set_latest_release(Some(FakeGithub::fixture_latest_release()));
    let token = roots.path().join("token");
    std::fs::write(&token, "lifecycle-test-token\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = roots.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[host]\nenabled = false\n[systemd]\nenabled = false\n\
             [runner_files]\nroot_patterns = []\nrescan_interval = \"1s\"\n\
             [docker]\nsocket = \"{socket}\"\ndaemon_config = \"{dir}/daemon.json\"\n\
             [[runner]]\nroot = \"{deprecated}\"\nrole = \"legacy\"\n\
             [[runner]]\nroot = \"{ephemeral}\"\nrole = \"ephemeral\"\n\
             [[runner]]\nroot = \"{docker}\"\nrole = \"build\"\n\
             [github]\nscope = \"self\"\napi_url = \"{api}\"\ntoken_file = \"{token}\"\npoll_interval = \"1s\"\n\
             [health]\nmemory_available_warn_ratio = 0.0\ndisk_free_warn_ratio = 0.0002\ndisk_free_fail_ratio = 0.0001\n",
            socket = socket.display(),
            dir = roots.path().display(),
            deprecated = deprecated.display(),
            ephemeral = ephemeral.display(),
            docker = docker_denied.display(),
            api = github.url(),
            token = token.display(),
        ),
    )
    .unwrap();
    Env {
        roots,
        github,
        config,
        docker_denied,
    }
}

fn health(e: &Exporter, query: &str) -> (u16, Value) {
    let r = e.get_with(
        "GET",
        &format!("/health?{query}"),
        &[("Accept", "application/json")],
    );
    (
        r.status,
        serde_json::from_str(&r.body()).unwrap_or(Value::Null),
    )
}

#[test]
fn the_fixtures_read_as_their_readme_says_and_the_latest_release_is_asked_once() {
    let env = env();
    let e = Exporter::start(
        BIN,
        &[&format!("--config.file={}", env.config.display())],
        &[],
    );
    let m = e
        .wait_metrics(SOON, |m| {
            val(
                m,
                "github_runner_latest_version_info{version=\"2.330.0\",source=\"github\"}",
            ) == Some(1.0)
                && val(m, "github_runner_registered{runner=\"build-docker-01\"}") == Some(1.0)
                && m.contains(
                    "github_runner_docker_filesystem_size_bytes{runner=\"build-docker-01\"",
                )
        })
        .unwrap_or_else(|| panic!("not settled:\n{}\nlog:\n{}", e.metrics(), e.logs()));

    // deprecated/: refused for its version, read from the refusal (no
    // version line), updates disabled; counted nothing at start-up.
    for (series, want) in [
        (
            "github_runner_version_deprecated{runner=\"legacy-runner\"}",
            1.0,
        ),
        (
            "github_runner_update_disabled{runner=\"legacy-runner\"}",
            1.0,
        ),
        (
            "github_runner_update_available{runner=\"legacy-runner\"}",
            1.0,
        ),
        (
            "github_runner_listener_connected{runner=\"legacy-runner\"}",
            0.0,
        ),
        (
            "github_runner_lifecycle_state{runner=\"legacy-runner\",state=\"registered\"}",
            1.0,
        ),
        (
            "github_runner_log_events_total{runner=\"legacy-runner\",event=\"version_deprecated\"}",
            0.0,
        ),
        // ephemeral-finished/: not configured any more, finished, not
        // deleted; 2.299.1 is behind.
        (
            "github_runner_configured{runner=\"ephemeral-finished\"}",
            0.0,
        ),
        (
            "github_runner_lifecycle_state{runner=\"ephemeral-finished\",state=\"finished\"}",
            1.0,
        ),
        (
            "github_runner_lifecycle_state{runner=\"ephemeral-finished\",state=\"unregistered\"}",
            0.0,
        ),
        (
            "github_runner_update_available{runner=\"ephemeral-finished\"}",
            1.0,
        ),
        ("github_runner_healthy{runner=\"ephemeral-finished\"}", 0.0),
        // docker-denied/: listening, 2.330.0 current, has run a container
        // job: Docker required.
        (
            "github_runner_listener_connected{runner=\"build-docker-01\"}",
            1.0,
        ),
        (
            "github_runner_update_available{runner=\"build-docker-01\"}",
            0.0,
        ),
        (
            "github_runner_update_disabled{runner=\"build-docker-01\"}",
            0.0,
        ),
        (
            "github_runner_docker_required{runner=\"build-docker-01\"}",
            1.0,
        ),
        (
            "github_runner_lifecycle_state{runner=\"build-docker-01\",state=\"registered\"}",
            1.0,
        ),
    ] {
        assert_eq!(val(&m, series), Some(want), "{series}\n{m}");
    }
    assert!(
        m.contains("github_runner_info{runner=\"legacy-runner\",github_url=\"https://github.com/acme\",pool=\"linux-legacy\",version=\"2.317.0\""),
        "{m}"
    );
    // The data-root of the test's daemon.json (not created: its nearest
    // existing ancestor's filesystem is reported).
    let data_root = env.roots.path().join("docker-data");
    assert!(
        m.contains(&format!(
            "github_runner_docker_filesystem_files_free{{runner=\"build-docker-01\",data_root=\"{}\"}}",
            data_root.display()
        )),
        "{m}"
    );
    assert!(
        !m.contains("github_runner_docker_usable{runner=\"legacy-runner\""),
        "Docker is not watched for a runner that ran no container job"
    );
    if is_root() {
        // The socket is root's 0600; the runner's user is nobody.
        assert_eq!(
            val(
                &m,
                "github_runner_docker_usable{runner=\"build-docker-01\"}"
            ),
            Some(0.0),
            "{m}"
        );
    }

    // /health per runner.
    let (code, body) = health(&e, "runner=legacy-runner");
    assert_eq!(code, 503);
    assert_eq!(
        body["runners"][0]["diagnosis"]["cause"], "version_deprecated",
        "{body:#}"
    );
    let (code, body) = health(&e, "runner=ephemeral-finished");
    assert_eq!(code, 503);
    assert_eq!(body["runners"][0]["lifecycle"], "finished");
    assert!(body["runners"][0]["diagnosis"].is_null(), "{body:#}");
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.contains("no runner here can take a deploy")));
    if is_root() {
        let (code, body) = health(&e, "role=build");
        assert_eq!(code, 503);
        assert_eq!(
            body["runners"][0]["diagnosis"]["cause"], "docker_unavailable",
            "{body:#}"
        );
    }

    // Polled every second for a while: the release is asked once (hourly).
    std::thread::sleep(Duration::from_millis(2500));
    let asked = env
        .github
        .requests()
        .iter()
        .filter(|r| r.route() == "/repos/actions/runner/releases/latest")
        .count();
    assert_eq!(asked, 1);

    // Live: build-docker-01 is refused after a restart (one event, though
    // two lines say it), then updated: a listener connects.
    let log = env
        .docker_denied
        .join("_diag/Runner_20260105-140000-utc.log");
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(b"[2026-01-05 15:00:00Z ERR  Terminal] WRITE ERROR: An error occured: Runner version v2.330.0 is deprecated and cannot receive messages.\n\
[2026-01-05 15:00:00Z ERR  Listener] GitHub.DistributedTask.WebApi.AccessDeniedException: Runner version v2.330.0 is deprecated and cannot receive messages.\n").unwrap();
    let m = e
        .wait_metrics(SOON, |m| {
            val(
                m,
                "github_runner_version_deprecated{runner=\"build-docker-01\"}",
            ) == Some(1.0)
        })
        .expect("the refusal is seen");
    assert_eq!(
        val(&m, "github_runner_log_events_total{runner=\"build-docker-01\",event=\"version_deprecated\"}"),
        Some(1.0)
    );
    // The latest release refused: the check says the broker is the likely
    // cause.
    let (_, body) = health(&e, "runner=build-docker-01");
    let (_, reason) = testkit::health_check(&body, "runner_version").unwrap();
    assert!(
        reason.contains("broker.actions.githubusercontent.com"),
        "{reason}"
    );
    f.write_all(
        b"[2026-01-05 15:10:00Z INFO Terminal] WRITE LINE: Current runner version: '2.331.0'\n\
[2026-01-05 15:10:01Z INFO Terminal] WRITE LINE: 2026-01-05 15:10:01Z: Listening for Jobs\n",
    )
    .unwrap();
    let m = e
        .wait_metrics(SOON, |m| {
            val(
                m,
                "github_runner_version_deprecated{runner=\"build-docker-01\"}",
            ) == Some(0.0)
        })
        .expect("the updated listener connects");
    assert_eq!(
        val(
            &m,
            "github_runner_update_available{runner=\"build-docker-01\"}"
        ),
        Some(0.0),
        "2.331.0 is newer than 2.330.0"
    );
    assert!(m.contains("version=\"2.331.0\""), "{m}");
}

#[test]
fn check_on_the_deprecated_fixture_names_the_version_not_healthy() {
    // As a new user would: a config naming the root, nothing else (the
    // systemd bus is not reachable here: the service state is unknown).
    let roots = Roots::new();
    let deprecated = roots.copy("deprecated");
    let config = roots.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[runner_files]\nroot_patterns = []\n[[runner]]\nroot = \"{}\"\n",
            deprecated.display()
        ),
    )
    .unwrap();
    let cfg = format!("--config.file={}", config.display());
    let out = testkit::process::run(
        BIN,
        &["check", &cfg],
        &[("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.starts_with("UNHEALTHY (fail)"), "{text}");
    assert!(
        text.contains("Diagnosis: Runner version deprecated"),
        "{text}"
    );
    assert!(
        text.contains("GitHub refuses runner version 2.317.0"),
        "{text}"
    );
    assert!(text.contains("version-deprecated.md"), "{text}");
    // With the version set by hand (GitHub not asked): still refused.
    std::fs::write(
        &config,
        format!(
            "[runner_files]\nroot_patterns = []\n[systemd]\nenabled = false\n[github]\nrunner_latest_version = \"2.330.0\"\n[[runner]]\nroot = \"{}\"\n",
            deprecated.display()
        ),
    )
    .unwrap();
    let out = testkit::process::run(BIN, &["check", "--json", &cfg], &[]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        report["runners"][0]["diagnosis"]["cause"],
        "version_deprecated"
    );
}
