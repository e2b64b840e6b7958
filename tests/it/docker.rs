//! Whether the runner's user can use Docker, judged by the real binary from
//! a real socket's owner, mode and POSIX ACL (set with setfacl, Debian's
//! acl package) and the user's groups in /etc/passwd and /etc/group. The
//! socket is a real Unix socket nobody listens on: the exporter must judge
//! it without connecting.
//!
//! The runner's user is `nobody` (uid 65534, primary group `nogroup`):
//! with the systemd collector off, the owner of the runner root, which the
//! test sets. Needs root (chown, and to run the exporter beside files it
//! does not own); says SKIPPED otherwise.

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_runner-health-exporter");
const NOBODY: u32 = 65534;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown (as root)");
}

fn setfacl(args: &[&str], path: &Path) {
    let out = Command::new("setfacl")
        .args(args)
        .arg(path)
        .output()
        .expect("setfacl runs (Debian package acl: scripts/install-test-deps.sh)");
    assert!(
        out.status.success(),
        "setfacl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Host {
    dir: tempfile::TempDir,
    root: PathBuf,
    socket: PathBuf,
    config: PathBuf,
}

impl Host {
    /// The `docker-denied` runner, owned by nobody, with Docker required,
    /// and a socket owned by root:root, mode 0660, in `socket_dir` under
    /// the temporary directory.
    fn new(socket_dir: &str) -> Host {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().join("actions-runner");
        testkit::copy_dir(&testkit::fixtures_dir().join("runner/docker-denied"), &root);
        chown(&root, NOBODY, NOBODY);
        let sockets = dir.path().join(socket_dir);
        std::fs::create_dir_all(&sockets).unwrap();
        std::fs::set_permissions(&sockets, std::fs::Permissions::from_mode(0o755)).unwrap();
        let socket = sockets.join("docker.sock");
        drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind a socket"));
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660)).unwrap();
        chown(&socket, 0, 0);
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[host]\nenabled = false\n[systemd]\nenabled = false\n\
                 [runner_files]\nroot_patterns = []\n\
                 [docker]\nsocket = \"{}\"\ndaemon_config = \"{}/daemon.json\"\n\
                 [[runner]]\nroot = \"{}\"\ndocker = true\n",
                socket.display(),
                dir.path().display(),
                root.display()
            ),
        )
        .unwrap();
        Host {
            dir,
            root,
            socket,
            config,
        }
    }

    /// `check --json`: the docker_available check's status and reason.
    fn verdict(&self) -> (String, String) {
        let cfg = format!("--config.file={}", self.config.display());
        let out = testkit::process::run(BIN, &["check", "--json", &cfg], &[]);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "check --json: {e}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        testkit::health_check(&report, "docker_available")
            .unwrap_or_else(|| panic!("no docker_available check: {report:#}"))
    }
}

/// A change to the socket before a case.
type Setup = Box<dyn Fn(&Host)>;

#[test]
fn the_socket_is_judged_from_its_mode_acl_and_the_users_groups() {
    if !is_root() {
        eprintln!("SKIPPED: not root");
        return;
    }
    let h = Host::new("run");
    let sock = h.socket.display().to_string();

    let cases: Vec<(&str, Setup, &str, String)> = vec![
        (
            "root:root 0660, nobody in neither",
            Box::new(|_| {}),
            "fail",
            format!("nobody (uid 65534) cannot connect to {sock} (root:root 0660): as others it has ---"),
        ),
        (
            "an ACL entry for the user",
            Box::new(|h| setfacl(&["-m", "u:nobody:rw"], &h.socket)),
            "ok",
            format!("nobody (uid 65534) can connect to {sock} (root:root 0660 +acl) as an ACL entry for the user"),
        ),
        (
            "the mask takes write away",
            Box::new(|h| setfacl(&["-m", "m::r"], &h.socket)),
            "fail",
            "its ACL entry gives rw- (mask r--)".to_string(),
        ),
        (
            "the socket's group is the user's primary group",
            Box::new(|h| {
                // Removing the ACL leaves the mask as the group bits (r):
                // back to 0660.
                setfacl(&["-b"], &h.socket);
                std::fs::set_permissions(&h.socket, std::fs::Permissions::from_mode(0o660))
                    .unwrap();
                chown(&h.socket, 0, NOBODY);
            }),
            "ok",
            format!("can connect to {sock} (root:nogroup 0660) as group nogroup (primary)"),
        ),
        (
            "an ACL entry for the user's group",
            Box::new(|h| {
                chown(&h.socket, 0, 0);
                setfacl(&["-m", "g:nogroup:rw"], &h.socket);
            }),
            "ok",
            "as an ACL entry for group nogroup (primary)".to_string(),
        ),
        (
            "an ACL entry for the group gives read only",
            Box::new(|h| setfacl(&["-m", "g:nogroup:r"], &h.socket)),
            "fail",
            "group nogroup (primary) gives r--".to_string(),
        ),
        (
            "no socket",
            Box::new(|h| std::fs::remove_file(&h.socket).unwrap()),
            "fail",
            format!("no Docker socket at {sock}"),
        ),
    ];
    let mut failures = Vec::new();
    for (name, setup, status, reason) in cases {
        setup(&h);
        let (got_status, got_reason) = h.verdict();
        if got_status != status || !got_reason.contains(&reason) {
            failures.push(format!(
                "{name}: got {got_status}: {got_reason}\n  want {status}: ...{reason}..."
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    drop(h.dir);
}

#[test]
fn a_directory_the_user_cannot_enter_denies_the_socket_inside() {
    if !is_root() {
        eprintln!("SKIPPED: not root");
        return;
    }
    let h = Host::new("private");
    // The socket itself is open to everyone; its directory is not.
    std::fs::set_permissions(&h.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (status, reason) = h.verdict();
    assert_eq!(status, "ok", "{reason}");
    let private = h.socket.parent().unwrap();
    std::fs::set_permissions(private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (status, reason) = h.verdict();
    assert_eq!(status, "fail", "{reason}");
    assert!(
        reason.contains(&format!(
            "nobody (uid 65534) cannot enter {} (root:root 0700)",
            private.display()
        )),
        "{reason}"
    );
    // The root of the runner stays the user's: the verdict is about the
    // runner's user, not the exporter (root).
    assert!(h.root.is_dir());
}
