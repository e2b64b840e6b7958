//! SIGHUP reloads the config and the web config without dropping the
//! listener; an invalid file is logged and the running one kept, as
//! Prometheus does (github_runner_exporter_config_last_reload_*).

use base64::Engine as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use testkit::{sample_value, Exporter};

const BIN: &str = env!("CARGO_BIN_EXE_runner-health-exporter");

fn root_copy(dir: &Path, name: &str) -> PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("_diag")).unwrap();
    let fixture = testkit::fixtures_dir().join("runner/basic");
    std::fs::copy(fixture.join(".runner"), root.join(".runner")).unwrap();
    std::fs::copy(
        fixture.join("_diag/Runner_20260105-090000-utc.log"),
        root.join("_diag/Runner_20260105-090000-utc.log"),
    )
    .unwrap();
    root
}

fn config(root: &Path, role: &str) -> String {
    format!(
        "[host]\nenabled = false\n[systemd]\nenabled = false\n[runner_files]\nroot_patterns = []\n\
         [[runner]]\nroot = \"{}\"\nrole = \"{role}\"\n",
        root.display()
    )
}

fn reload_ok(m: &str) -> Option<f64> {
    sample_value(m, "github_runner_exporter_config_last_reload_successful")
}

fn reload_ts(m: &str) -> f64 {
    sample_value(
        m,
        "github_runner_exporter_config_last_reload_success_timestamp_seconds",
    )
    .unwrap()
}

fn has_role(m: &str, role: &str) -> bool {
    m.lines().any(|l| {
        l.starts_with("github_runner_info{runner=\"linux_runner\"")
            && l.contains(&format!("role=\"{role}\""))
    })
}

#[test]
fn a_valid_config_takes_effect_and_an_invalid_one_is_kept_out() {
    let dir = tempfile::tempdir().unwrap();
    let root = root_copy(dir.path(), "actions-runner");
    let file = dir.path().join("config.toml");
    std::fs::write(&file, config(&root, "primary")).unwrap();
    let e = Exporter::start(BIN, &[&format!("--config.file={}", file.display())], &[]);
    let m = e
        .wait_metrics(Duration::from_secs(10), |m| has_role(m, "primary"))
        .expect("primary role");
    assert_eq!(reload_ok(&m), Some(1.0));
    let first = reload_ts(&m);

    // Scrape continuously through the reloads: the listener never drops.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let scraper = {
        let (stop, failures, addr) = (Arc::clone(&stop), Arc::clone(&failures), e.addr);
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                match testkit::get(addr, "/metrics") {
                    Ok(r) if r.status == 200 => {}
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            n
        })
    };

    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&file, config(&root, "secondary")).unwrap();
    e.signal("HUP");
    let m = e
        .wait_metrics(Duration::from_secs(10), |m| has_role(m, "secondary"))
        .expect("the new role takes effect");
    assert_eq!(reload_ok(&m), Some(1.0));
    assert!(reload_ts(&m) > first, "success timestamp moves");
    assert!(e.logs().contains("configuration reloaded"), "{}", e.logs());
    // Only a role changed: no collector restarted.
    assert!(e.logs().contains("restarted=\"\""), "{}", e.logs());

    // An invalid config: logged with its key, the running one stays.
    std::fs::write(
        &file,
        config(&root, "secondary") + "\n[health]\nmax_job_duration = \"forever\"\n",
    )
    .unwrap();
    e.signal("HUP");
    let m = e
        .wait_metrics(Duration::from_secs(10), |m| reload_ok(m) == Some(0.0))
        .expect("reload failure is visible");
    assert!(has_role(&m, "secondary"), "the running config stays");
    testkit::wait_for(Duration::from_secs(5), || {
        let logs = e.logs();
        (logs.contains("reload failed") && logs.contains("health.max_job_duration")).then_some(())
    })
    .expect("the failure is logged with the key");

    // Fixing the file and reloading again recovers.
    std::fs::write(&file, config(&root, "primary")).unwrap();
    e.signal("HUP");
    e.wait_metrics(Duration::from_secs(10), |m| {
        reload_ok(m) == Some(1.0) && has_role(m, "primary")
    })
    .expect("a good reload after a bad one");

    stop.store(true, Ordering::Relaxed);
    let scrapes = scraper.join().unwrap();
    assert!(scrapes > 50);
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "scrapes failed during reloads"
    );
}

#[test]
fn runners_added_on_reload_are_watched() {
    let dir = tempfile::tempdir().unwrap();
    let first = root_copy(dir.path(), "runner-a");
    let file = dir.path().join("config.toml");
    std::fs::write(&file, config(&first, "primary")).unwrap();
    let e = Exporter::start(BIN, &[&format!("--config.file={}", file.display())], &[]);
    e.wait_metrics(Duration::from_secs(10), |m| has_role(m, "primary"))
        .unwrap();
    let second = root_copy(dir.path(), "runner-b");
    std::fs::write(
        second.join(".runner"),
        std::fs::read_to_string(second.join(".runner"))
            .unwrap()
            .replace("linux_runner", "second_runner"),
    )
    .unwrap();
    std::fs::write(
        &file,
        config(&first, "primary")
            + &format!(
                "\n[[runner]]\nroot = \"{}\"\nrole = \"secondary\"\n",
                second.display()
            ),
    )
    .unwrap();
    e.signal("HUP");
    e.wait_metrics(Duration::from_secs(10), |m| {
        m.lines().any(|l| {
            l.starts_with("github_runner_info{runner=\"second_runner\"")
                && l.contains("role=\"secondary\"")
        })
    })
    .expect("the added runner appears");
}

#[test]
fn web_config_reload_switches_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    let users = |user: &str| {
        format!(
            "basic_auth_users:\n  {user}: {}\n",
            bcrypt::hash("pw", 4).unwrap()
        )
    };
    std::fs::write(&web, users("alice")).unwrap();
    std::fs::set_permissions(&web, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = Exporter::start(BIN, &[&format!("--web.config.file={}", web.display())], &[]);
    let auth = |u: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:pw"))
        )
    };
    let status = |u: &str| {
        e.get_with("GET", "/metrics", &[("Authorization", &auth(u))])
            .status
    };
    assert_eq!(status("alice"), 200);
    assert_eq!(status("bob"), 401);

    std::fs::write(&web, users("bob")).unwrap();
    e.signal("HUP");
    testkit::wait_for(Duration::from_secs(10), || {
        (status("bob") == 200).then_some(())
    })
    .expect("bob accepted");
    assert_eq!(status("alice"), 401);

    // A broken web config is refused; bob keeps working.
    std::fs::write(&web, "basic_auth_users:\n  carol: not-bcrypt\n").unwrap();
    e.signal("HUP");
    testkit::wait_for(Duration::from_secs(10), || {
        let m = e
            .get_with("GET", "/metrics", &[("Authorization", &auth("bob"))])
            .body();
        (reload_ok(&m) == Some(0.0)).then_some(())
    })
    .expect("reload failure visible");
    assert_eq!(status("bob"), 200);
}
