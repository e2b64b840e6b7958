//! A real systemd manager (`systemd --user`, Debian 12's systemd 252) for
//! the exporter to watch, instead of the stand-in in `fake_systemd`.
//!
//! # How it runs
//!
//! Each [`SystemdManager`] is `/lib/systemd/systemd --user`, started as
//! root under `unshare -m --propagation private` with:
//!
//! - a tmpfs on `/run/systemd` holding an empty `/run/systemd/system`
//!   (systemd refuses to run as a user manager unless it finds that
//!   directory, and the tmpfs keeps the host's `/run/systemd` untouched);
//! - a cgroup of its own, `/rhe-sdm-<test pid>-<n>`, in every mounted
//!   hierarchy that systemd uses (the unified one and, on a hybrid host, the
//!   named `systemd` one), so that its units get real cgroups such as
//!   `/rhe-sdm-1234-0/app.slice/actions.runner.acme-app.r1.service`;
//! - a temporary directory for `HOME`, `XDG_RUNTIME_DIR` (mode 700) and
//!   `XDG_CONFIG_HOME` (units go in `$XDG_CONFIG_HOME/systemd/user/`), and
//!   an otherwise empty environment.
//!
//! The user bus is the socket-activated `dbus-daemon` of Debian's
//! `dbus-user-session` (units `dbus.socket` and `dbus.service`): it listens
//! on `$XDG_RUNTIME_DIR/bus` and starts on the first connection; the
//! manager then takes `org.freedesktop.systemd1` there. The exporter is
//! pointed at it with `DBUS_SYSTEM_BUS_ADDRESS` ([`SystemdManager::address`]).
//! `systemctl --user` talks to the manager over its private socket
//! (`$XDG_RUNTIME_DIR/systemd/private`), not over the bus; the harness
//! runs it in the manager's mount namespace (`nsenter`), where it finds
//! `/run/systemd/system` and so leaves `enable`/`disable` to the manager
//! (which reloads) instead of editing the links itself. The manager's
//! own log goes to `manager.log` in the temporary directory
//! ([`SystemdManager::manager_log`]).
//!
//! # What systemd does when the manager dies, reloads or re-executes
//!
//! Found with this harness on systemd 252.38 and dbus 1.14.10; the tests
//! in `tests/it/systemd_manager.rs` check the parts the exporter relies on.
//! Times are from the 2-core test machine.
//!
//! - **SIGKILL of the manager** ([`SystemdManager::kill_manager`]) kills
//!   nothing else. The bus daemon (the manager's child, unit
//!   `dbus.service`) and every unit's processes are re-parented and keep
//!   running, whatever their `KillMode`, in the cgroups they were in. The
//!   bus stays up: clients keep their connections and get
//!   `NameOwnerChanged("org.freedesktop.systemd1", ":1.N", "")` within
//!   ~1 ms. The name stays activatable, so a call to it is not refused:
//!   the bus holds it until systemd returns to that bus (it never does,
//!   see below) and only the caller's timeout ends it (the exporter's
//!   `Subscribe` gives up after its 2 s `call_timeout`). `systemctl --user`
//!   finds nobody on the private socket, falls back to the bus and waits
//!   there for its 25 s timeout; [`SystemdManager::systemctl`] refuses at
//!   once instead while no manager runs.
//! - **Starting a manager again** on the same directories
//!   ([`SystemdManager::restart_manager`]; ready ~0.2 s after the spawn,
//!   up to ~1 s on a loaded machine) is a new manager with no memory of
//!   the old one. Its `dbus.socket` unlinks `$XDG_RUNTIME_DIR/bus` and
//!   binds a new socket there; the first client starts a new bus daemon.
//!   The old bus daemon lives on as an orphan: clients connected to it
//!   stay connected to a bus where systemd never comes back, and a client
//!   that connects through the path before the new manager has bound it
//!   lands there too. Units start from scratch: a unit that was running is
//!   `inactive` (the processes still in its cgroup are not adopted) unless
//!   it is enabled, in which case the new manager starts it again next to
//!   the survivors (two `Runner.Listener`s in one cgroup). `NRestarts`
//!   counts from 0 again. The exporter (backoff 1 s, 2 s, 4 s... plus 2 s
//!   per call held on the orphaned bus) reported the unit again 3.2-7.2 s
//!   after a kill followed by a restart 3 s later.
//! - **`daemon-reexec`** ([`SystemdManager::daemon_reexec`], ~0.1-0.2 s,
//!   up to ~0.9 s on a loaded machine) keeps the bus daemon, the units and
//!   their processes, and the pid (it is an exec). Subscribers get, from
//!   the old manager, `Reloading(true)` and at once `UnitRemoved` for
//!   every loaded unit (runner units included); then the name changes
//!   hands, seen here as one `NameOwnerChanged(systemd1, ":1.1", ":1.6")`
//!   (the new connection queues for the name, so the handover is direct;
//!   a slower start would show `old -> ""` then `"" -> new`); then, from
//!   the new manager, `PropertiesChanged` of every unit (no `UnitNew`)
//!   and `Reloading(false)`, a few ms after the owner change. The
//!   subscription survives (systemd serializes its subscribers): a client
//!   that does not call `Subscribe` again still gets the new manager's
//!   signals. A call in flight when the old manager execs fails with
//!   `org.freedesktop.DBus.Error.NoReply` ("Message recipient disconnected
//!   from message bus without replying"); a call made between the
//!   old owner leaving and the new one arriving is held and answered.
//! - **`daemon-reload`** keeps the owner and the connection: subscribers
//!   get `Reloading(true)`, `UnitRemoved` for every loaded unit, `UnitNew`
//!   for every unit loaded again, then `Reloading(false)`; calls made
//!   meanwhile are answered after the reload.
//! - **A stopped unit that is not enabled** (nothing references it) is
//!   unloaded at once (`UnitRemoved`): it drops out of `ListUnits*` and the
//!   exporter stops reporting it instead of reporting it `inactive`. An
//!   enabled unit (the runner's `svc.sh install` enables it) stays loaded.
//!
//! # Cleaning up
//!
//! Dropping a [`SystemdManager`] kills the manager and every process left
//! in its cgroup (`cgroup.kill` on the unified hierarchy where the kernel
//! has it, else SIGKILL to each process found in the `cgroup.procs` of the
//! subtree), then removes the cgroups depth-first. Cgroups left behind by a
//! test process that no longer exists are swept the same way at the next
//! start.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The manager binary of Debian's `systemd` package.
pub const SYSTEMD: &str = "/lib/systemd/systemd";
/// The user bus units of Debian's `dbus-user-session` package.
const DBUS_SOCKET_UNIT: &str = "/usr/lib/systemd/user/dbus.socket";
/// The bus name systemd takes.
pub const SYSTEMD_NAME: &str = "org.freedesktop.systemd1";
const CGROUP_BASE: &str = "/sys/fs/cgroup";
/// Prefix of the cgroups made here: `rhe-sdm-<pid>-<n>`.
const CGROUP_PREFIX: &str = "rhe-sdm-";
/// How long the manager may take to start and own its bus name.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one D-Bus step of the readiness check may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a `systemctl` command may run.
const SYSTEMCTL_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);

/// Runs inside the new mount namespace: a private `/run/systemd`, the
/// shell itself moved into the manager's cgroups (one per argument), then
/// the manager in its place.
const LAUNCH: &str = r#"set -eu
mkdir -p /run/systemd
mount -t tmpfs -o mode=0755 rhe-systemd /run/systemd
mkdir /run/systemd/system
for cg in "$@"; do echo $$ > "$cg/cgroup.procs"; done
exec "$RHE_SYSTEMD" --user
"#;

/// What went wrong, with what was being done.
pub struct Error(String);

impl Error {
    fn new(msg: impl Into<String>) -> Error {
        Error(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// Debug prints the message as is: `expect` on a harness result then shows
// multi-line context (logs, systemctl output) readably.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error(format!("{}: {e}", what())))
    }
}

/// A running `systemd --user` with its own directories, cgroup and bus.
/// Killed with everything it started on drop.
pub struct SystemdManager {
    /// The cgroup's name (one path component).
    name: String,
    /// The cgroup in each hierarchy.
    cgroups: Vec<PathBuf>,
    dir: tempfile::TempDir,
    child: Option<Child>,
    rt: tokio::runtime::Runtime,
}

/// The cgroup hierarchies the manager needs a cgroup in: the unified one
/// (at the top on a pure cgroup v2 host, under `unified/` on a hybrid one)
/// and the named `systemd` v1 hierarchy where it is mounted.
fn hierarchies() -> Vec<PathBuf> {
    let base = Path::new(CGROUP_BASE);
    if base.join("cgroup.controllers").exists() {
        return vec![base.to_path_buf()];
    }
    ["unified", "systemd"]
        .into_iter()
        .map(|h| base.join(h))
        .filter(|p| p.join("cgroup.procs").exists())
        .collect()
}

/// Every directory of a cgroup subtree, deepest first.
fn subtree_depth_first(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                subtree_depth_first(&e.path(), out);
            }
        }
    }
    out.push(dir.to_path_buf());
}

/// The processes in a cgroup subtree.
fn subtree_pids(dir: &Path) -> Vec<u32> {
    let mut dirs = Vec::new();
    subtree_depth_first(dir, &mut dirs);
    let mut pids: Vec<u32> = dirs
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|t| {
            t.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Kills everything in the cgroups and removes them. Returns what could
/// not be done.
fn destroy_cgroups(cgroups: &[PathBuf]) -> Vec<String> {
    let mut problems = Vec::new();
    // cgroup.kill (Linux 5.14, cgroup v2) kills the whole subtree at once,
    // with no window for a pid to be reused by an unrelated process.
    for cg in cgroups {
        let kill = cg.join("cgroup.kill");
        if kill.exists() {
            if let Err(e) = std::fs::write(&kill, "1") {
                problems.push(format!("writing {}: {e}", kill.display()));
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids: Vec<u32> = cgroups.iter().flat_map(|cg| subtree_pids(cg)).collect();
        if pids.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            problems.push(format!("processes still in the cgroups: {pids:?}"));
            break;
        }
        for pid in pids {
            signal(pid, libc::SIGKILL);
        }
        std::thread::sleep(POLL);
    }
    for cg in cgroups {
        let mut dirs = Vec::new();
        subtree_depth_first(cg, &mut dirs);
        for d in dirs {
            // A killed process may still hold its cgroup for a moment.
            let removed =
                crate::wait_for(Duration::from_secs(5), || match std::fs::remove_dir(&d) {
                    Ok(()) => Some(Ok(())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(Ok(())),
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => None,
                    Err(e) => Some(Err(e)),
                });
            match removed {
                Some(Ok(())) => {}
                Some(Err(e)) => problems.push(format!("removing {}: {e}", d.display())),
                None => problems.push(format!("removing {}: still busy", d.display())),
            }
        }
    }
    problems
}

fn signal(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid <= 1 {
        return;
    }
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Removes the cgroups of managers whose test process has gone (a test
/// binary killed before its drops ran).
fn sweep_stale_cgroups(hierarchies: &[PathBuf]) {
    let mut stale: Vec<(String, Vec<PathBuf>)> = Vec::new();
    for h in hierarchies {
        let Ok(entries) = std::fs::read_dir(h) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(CGROUP_PREFIX) else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if Path::new("/proc").join(pid.to_string()).exists() {
                continue;
            }
            match stale.iter_mut().find(|(n, _)| *n == name) {
                Some((_, dirs)) => dirs.push(e.path()),
                None => stale.push((name, vec![e.path()])),
            }
        }
    }
    for (name, dirs) in stale {
        for p in destroy_cgroups(&dirs) {
            eprintln!("systemd_manager: sweeping the stale cgroup {name}: {p}");
        }
    }
}

fn check_prerequisites() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Error::new(
            "the real-systemd harness needs root (mount namespaces, tmpfs, cgroups); run the tests as root",
        ));
    }
    for (path, package) in [
        (SYSTEMD, "systemd"),
        (DBUS_SOCKET_UNIT, "dbus-user-session"),
        ("/usr/bin/dbus-daemon", "dbus"),
    ] {
        if !Path::new(path).exists() {
            return Err(Error::new(format!(
                "{path} is missing: install the Debian package {package} (scripts/install-test-deps.sh)"
            )));
        }
    }
    if Command::new("unshare")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        return Err(Error::new(
            "unshare is missing: install the Debian package util-linux (scripts/install-test-deps.sh)",
        ));
    }
    Ok(())
}

/// Polls `f` until it returns Some or `timeout` passes (like
/// [`crate::wait_for`], for callers that want to say what they waited on).
fn poll<T>(
    timeout: Duration,
    what: impl Fn() -> String,
    f: impl FnMut() -> Option<T>,
) -> Result<T> {
    crate::wait_for(timeout, f).ok_or_else(|| Error(format!("{} within {timeout:?}", what())))
}

static INSTANCES: AtomicU64 = AtomicU64::new(0);

impl SystemdManager {
    /// Starts a manager with new directories and a new cgroup, and waits
    /// until it owns `org.freedesktop.systemd1` on its bus and has finished
    /// starting up.
    pub fn start() -> Result<SystemdManager> {
        check_prerequisites()?;
        let hierarchies = hierarchies();
        if hierarchies.is_empty() {
            return Err(Error::new(format!(
                "no cgroup hierarchy for systemd under {CGROUP_BASE} (neither cgroup v2 nor name=systemd)"
            )));
        }
        sweep_stale_cgroups(&hierarchies);
        let name = format!(
            "{CGROUP_PREFIX}{}-{}",
            std::process::id(),
            INSTANCES.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::Builder::new()
            .prefix("systemd-manager")
            .tempdir()
            .context(|| "creating the manager's temporary directory".into())?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context(|| "building a tokio runtime".into())?;
        let mut m = SystemdManager {
            cgroups: hierarchies.iter().map(|h| h.join(&name)).collect(),
            name,
            dir,
            child: None,
            rt,
        };
        m.make_dirs()?;
        for cg in &m.cgroups {
            std::fs::create_dir(cg).context(|| format!("creating the cgroup {}", cg.display()))?;
        }
        m.spawn()?;
        Ok(m)
    }

    fn make_dirs(&self) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        for d in [self.home(), self.unit_dir()] {
            std::fs::create_dir_all(&d).context(|| format!("creating {}", d.display()))?;
        }
        let run = self.runtime_dir();
        std::fs::create_dir_all(&run).context(|| format!("creating {}", run.display()))?;
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700))
            .context(|| format!("making {} private", run.display()))?;
        Ok(())
    }

    /// The temporary directory holding everything of this manager.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// `XDG_RUNTIME_DIR`: the bus socket, systemd's private socket.
    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn config_home(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    /// Where unit files go: `$XDG_CONFIG_HOME/systemd/user`.
    pub fn unit_dir(&self) -> PathBuf {
        self.config_home().join("systemd/user")
    }

    /// The bus address, for `DBUS_SYSTEM_BUS_ADDRESS`. The same across
    /// [`restart_manager`](Self::restart_manager).
    pub fn address(&self) -> String {
        format!("unix:path={}", self.runtime_dir().join("bus").display())
    }

    /// The manager's cgroup as systemd writes ControlGroup: `/<name>`.
    pub fn cgroup(&self) -> String {
        format!("/{}", self.name)
    }

    /// The manager's process id, while it runs.
    pub fn manager_pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("manager.log")
    }

    /// What the manager logged (every manager started on these
    /// directories).
    pub fn manager_log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .context(|| format!("opening {}", self.log_path().display()))?;
        let log2 = log
            .try_clone()
            .context(|| "duplicating the log file".into())?;
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", LAUNCH, "sh"])
            .args(&self.cgroups)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LANG", "C.UTF-8")
            .env("HOME", self.home())
            .env("XDG_RUNTIME_DIR", self.runtime_dir())
            .env("XDG_CONFIG_HOME", self.config_home())
            .env("SYSTEMD_LOG_TARGET", "console")
            .env("SYSTEMD_LOG_COLOR", "0")
            .env("RHE_SYSTEMD", SYSTEMD)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .context(|| "spawning unshare (util-linux)".into())?;
        self.child = Some(child);
        self.wait_ready()
    }

    /// Waits until the manager owns its bus name (which starts the bus
    /// daemon) and has finished starting up.
    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(Error(format!(
                        "the manager exited with {status} while starting; its log:\n{}",
                        self.manager_log()
                    )));
                }
            }
            let pid = self.manager_pid();
            if pid.is_some() && self.name_owner_pid().ok().flatten() == pid {
                break;
            }
            if Instant::now() >= deadline {
                return Err(Error(format!(
                    "the manager did not own {SYSTEMD_NAME} on {} within {START_TIMEOUT:?}; its log:\n{}",
                    self.address(),
                    self.manager_log()
                )));
            }
            std::thread::sleep(POLL);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        poll(
            left,
            || {
                format!(
                    "the manager finished starting up; its log:\n{}",
                    self.manager_log()
                )
            },
            || {
                let state = self.show_manager("SystemState").ok()?;
                matches!(state.as_str(), "running" | "degraded").then_some(())
            },
        )
    }

    /// The process id of the owner of `org.freedesktop.systemd1` on the
    /// bus at [`address`](Self::address), None when nobody owns it.
    /// Connecting starts the bus daemon when it is not running.
    pub fn name_owner_pid(&self) -> Result<Option<u32>> {
        let address = self.address();
        self.rt.block_on(async {
            let conn = tokio::time::timeout(
                STEP_TIMEOUT,
                zbus::connection::Builder::address(address.as_str()).build(),
            )
            .await
            .context(|| format!("connecting to {address}"))?
            .context(|| format!("connecting to {address}"))?;
            let reply = tokio::time::timeout(
                STEP_TIMEOUT,
                conn.call_method(
                    Some("org.freedesktop.DBus"),
                    "/org/freedesktop/DBus",
                    Some("org.freedesktop.DBus"),
                    "GetConnectionUnixProcessID",
                    &(SYSTEMD_NAME,),
                ),
            )
            .await
            .context(|| "asking the bus for systemd's pid".into())?;
            match reply {
                Ok(msg) => {
                    let pid: u32 = msg
                        .body()
                        .deserialize()
                        .context(|| "reading GetConnectionUnixProcessID's reply".into())?;
                    Ok(Some(pid))
                }
                Err(zbus::Error::FDO(e)) if matches!(*e, zbus::fdo::Error::NameHasNoOwner(_)) => {
                    Ok(None)
                }
                Err(e) => Err(Error(format!("asking the bus for systemd's pid: {e}"))),
            }
        })
    }

    /// SIGKILLs the manager (only the manager: see the module doc for what
    /// survives it).
    pub fn kill_manager(&mut self) -> Result<()> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| Error::new("kill_manager: the manager is not running"))?;
        child
            .kill()
            .context(|| format!("SIGKILL to the manager (pid {})", child.id()))?;
        child
            .wait()
            .context(|| format!("waiting for the manager (pid {}) to die", child.id()))?;
        Ok(())
    }

    /// Starts a manager again on the same directories and cgroup (after
    /// killing the running one, if any) and waits until it is ready. See
    /// the module doc for what the new manager finds.
    pub fn restart_manager(&mut self) -> Result<()> {
        if self.child.is_some() {
            self.kill_manager()?;
        }
        self.spawn()
    }

    /// Writes a unit file (no daemon-reload).
    pub fn install_unit(&self, name: &str, text: &str) -> Result<PathBuf> {
        if name.contains('/') || name.is_empty() {
            return Err(Error(format!("not a unit name: {name:?}")));
        }
        let path = self.unit_dir().join(name);
        std::fs::write(&path, text).context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Removes a unit file (no daemon-reload).
    pub fn remove_unit(&self, name: &str) -> Result<()> {
        let path = self.unit_dir().join(name);
        std::fs::remove_file(&path).context(|| format!("removing {}", path.display()))
    }

    /// [`runner_unit_with`](Self::runner_unit_with) with the defaults: no
    /// `Restart=`, as the runner's own unit template.
    pub fn runner_unit(&self, name: &str, root: &Path) -> Result<RunnerUnit> {
        self.runner_unit_with(name, root, &RunnerOptions::default())
    }

    /// Makes `root` look like an installed runner's root and writes unit
    /// `name` for it, like the runner's `svc.sh install` (no
    /// daemon-reload, not enabled). In `root`: `runsvc.sh` (the unit's
    /// ExecStart), `bin/Runner.Listener` (a copy of `sleep`, so that its
    /// command name and executable are the listener's), `.service` and
    /// `_diag/`. Files already there (a copied fixture's `.runner`, logs)
    /// are kept.
    ///
    /// `runsvc.sh` appends to `_diag/Runner_<start time>-utc.log` in the
    /// runner's format: `Current runner version: '<version>'`, then either
    /// (crashing, see [`RunnerUnit::set_crashing`]) an error and exit 1, or
    /// `<time>: Listening for Jobs` while it runs `bin/Runner.Listener` as
    /// its child; SIGTERM is passed on to the listener, as
    /// `RunnerService.js` does.
    pub fn runner_unit_with(
        &self,
        name: &str,
        root: &Path,
        opts: &RunnerOptions,
    ) -> Result<RunnerUnit> {
        use std::os::unix::fs::PermissionsExt;
        for d in [root.join("bin"), root.join("_diag")] {
            std::fs::create_dir_all(&d).context(|| format!("creating {}", d.display()))?;
        }
        let listener = root.join("bin/Runner.Listener");
        std::fs::copy("/bin/sleep", &listener)
            .context(|| format!("copying /bin/sleep to {}", listener.display()))?;
        let script = root.join("runsvc.sh");
        std::fs::write(&script, runsvc(&opts.version))
            .context(|| format!("writing {}", script.display()))?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .context(|| format!("making {} executable", script.display()))?;
        let service = root.join(".service");
        std::fs::write(&service, format!("{name}\n"))
            .context(|| format!("writing {}", service.display()))?;
        let unit = RunnerUnit {
            name: name.to_string(),
            root: root.to_path_buf(),
        };
        unit.set_crashing(opts.crash)?;
        self.install_unit(name, &runner_unit_text(name, root, opts))?;
        Ok(unit)
    }

    /// `systemctl --user`, run in the manager's mount namespace while it
    /// runs: there `/run/systemd/system` exists, so systemctl takes the
    /// system for booted with systemd and leaves `enable`/`disable` to the
    /// manager (as on a real host) instead of editing links itself.
    fn systemctl_command(&self, manager: u32) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--target={manager}"))
            .args(["--mount", "--", "systemctl", "--user"])
            .arg("--no-pager")
            .arg("--no-ask-password")
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C.UTF-8")
            .env("HOME", self.home())
            .env("XDG_RUNTIME_DIR", self.runtime_dir())
            .env("XDG_CONFIG_HOME", self.config_home())
            .env("SYSTEMD_PAGER", "")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs `systemctl --user args...` against this manager and returns
    /// its output, whatever the exit status.
    ///
    /// Fails at once while no manager runs: systemctl would fall back to
    /// the bus, where a call to the dead manager waits for its 25 s
    /// timeout.
    pub fn systemctl_output(&self, args: &[&str]) -> Result<Output> {
        let Some(manager) = self.manager_pid() else {
            return Err(Error(format!(
                "systemctl --user {}: the manager is not running",
                args.join(" ")
            )));
        };
        let mut child = self
            .systemctl_command(manager)
            .args(args)
            .spawn()
            .context(|| format!("running systemctl --user {}", args.join(" ")))?;
        let deadline = Instant::now() + SYSTEMCTL_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Error(format!(
                        "systemctl --user {} did not finish within {SYSTEMCTL_TIMEOUT:?}",
                        args.join(" ")
                    )));
                }
                Err(e) => {
                    return Err(Error(format!(
                        "waiting for systemctl --user {}: {e}",
                        args.join(" ")
                    )))
                }
            }
        }
        child
            .wait_with_output()
            .context(|| format!("reading the output of systemctl --user {}", args.join(" ")))
    }

    /// Runs `systemctl --user args...`; its stdout when it succeeds, else
    /// an error with its exit status and stderr.
    pub fn systemctl(&self, args: &[&str]) -> Result<String> {
        let out = self.systemctl_output(args)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(Error(format!(
                "systemctl --user {} failed ({}): {}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim_end(),
                String::from_utf8_lossy(&out.stdout).trim_end()
            )))
        }
    }

    pub fn daemon_reload(&self) -> Result<()> {
        self.systemctl(&["daemon-reload"]).map(drop)
    }

    /// `systemctl --user daemon-reexec`; returns once the re-executed
    /// manager answers on its private socket again (systemctl waits for
    /// that itself).
    pub fn daemon_reexec(&self) -> Result<()> {
        self.systemctl(&["daemon-reexec"]).map(drop)
    }

    /// Starts a unit and waits for the start job (for `Type=simple`: until
    /// the process is forked).
    pub fn start_unit(&self, unit: &str) -> Result<()> {
        self.systemctl(&["start", unit]).map(drop)
    }

    /// Stops a unit and waits until it is stopped.
    pub fn stop_unit(&self, unit: &str) -> Result<()> {
        self.systemctl(&["stop", unit]).map(drop)
    }

    pub fn restart_unit(&self, unit: &str) -> Result<()> {
        self.systemctl(&["restart", unit]).map(drop)
    }

    pub fn enable(&self, unit: &str) -> Result<()> {
        self.systemctl(&["enable", unit]).map(drop)
    }

    /// `systemctl disable --now`: what the runner's `svc.sh uninstall`
    /// does before removing the unit file.
    pub fn disable_now(&self, unit: &str) -> Result<()> {
        self.systemctl(&["disable", "--now", unit]).map(drop)
    }

    pub fn reset_failed(&self, unit: &str) -> Result<()> {
        self.systemctl(&["reset-failed", unit]).map(drop)
    }

    /// One property of a unit, as `systemctl show -p PROP --value` prints
    /// it.
    pub fn show(&self, unit: &str, prop: &str) -> Result<String> {
        let out = self.systemctl(&["show", "-p", prop, "--value", unit])?;
        Ok(out.trim_end_matches('\n').to_string())
    }

    /// One property of the manager itself (`SystemState`, `Version`...).
    pub fn show_manager(&self, prop: &str) -> Result<String> {
        let out = self.systemctl(&["show", "-p", prop, "--value"])?;
        Ok(out.trim_end_matches('\n').to_string())
    }

    /// Waits until `show(unit, prop)` satisfies `want`; returns the value.
    pub fn wait_show(
        &self,
        unit: &str,
        prop: &str,
        timeout: Duration,
        want: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let last = Mutex::new(String::new());
        poll(
            timeout,
            || {
                format!(
                    "{unit}: {prop} did not reach the wanted value (last: {:?})",
                    last.lock().map(|l| l.clone()).unwrap_or_default()
                )
            },
            || {
                let v = match self.show(unit, prop) {
                    Ok(v) => v,
                    Err(e) => e.to_string(),
                };
                let ok = want(&v);
                if let Ok(mut l) = last.lock() {
                    l.clone_from(&v);
                }
                ok.then_some(v)
            },
        )
    }

    /// Waits until the unit's ActiveState is `state`.
    pub fn wait_active_state(&self, unit: &str, state: &str, timeout: Duration) -> Result<()> {
        self.wait_show(unit, "ActiveState", timeout, |v| v == state)
            .map(drop)
    }

    /// Every process in the manager's cgroup subtree (the manager, the bus
    /// daemon, the units' processes, survivors of a killed manager).
    pub fn processes(&self) -> Vec<Process> {
        let mut pids: Vec<u32> = self
            .cgroups
            .iter()
            .flat_map(|cg| subtree_pids(cg))
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids.into_iter()
            .filter_map(|pid| {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
                let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
                let cgroup = cgroup
                    .lines()
                    .find_map(|l| l.strip_prefix("0::"))
                    .unwrap_or("")
                    .to_string();
                Some(Process {
                    pid,
                    comm: comm.trim_end_matches('\n').to_string(),
                    cgroup,
                })
            })
            .collect()
    }

    /// The processes called `comm` in the manager's cgroup subtree.
    pub fn processes_named(&self, comm: &str) -> Vec<Process> {
        self.processes()
            .into_iter()
            .filter(|p| p.comm == comm)
            .collect()
    }

    /// Waits until exactly `count` processes called `comm` run in the
    /// manager's cgroup subtree (a unit's `ExecStart` returns before its
    /// script has started its children).
    pub fn wait_processes_named(
        &self,
        comm: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<Process>> {
        poll(
            timeout,
            || {
                format!(
                    "{count} processes called {comm} (now: {:?})",
                    self.processes()
                )
            },
            || {
                let found = self.processes_named(comm);
                (found.len() == count).then_some(found)
            },
        )
    }

    /// Connects a recorder of systemd's signals to the bus (see
    /// [`BusWatch`]).
    pub fn watch_bus(&self) -> Result<BusWatch> {
        BusWatch::connect(&self.address())
    }
}

impl Drop for SystemdManager {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for p in destroy_cgroups(&self.cgroups) {
            eprintln!("systemd_manager: cleaning up {}: {p}", self.name);
        }
    }
}

/// A process found in the manager's cgroups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// The command name (`/proc/PID/comm`).
    pub comm: String,
    /// Its cgroup in the unified hierarchy (`0::` of `/proc/PID/cgroup`).
    pub cgroup: String,
}

/// How [`SystemdManager::runner_unit_with`] writes a runner's unit.
#[derive(Clone, Debug)]
pub struct RunnerOptions {
    /// `Restart=`: `no` (the runner's template sets none), `always`,
    /// `on-failure`...
    pub restart: String,
    /// `RestartSec=`.
    pub restart_sec: Duration,
    /// Start crashing (`runsvc.sh` exits 1 right after its version line).
    pub crash: bool,
    /// Keep systemd's default start rate limit (5 starts in 10 s, then
    /// `failed` with `start-limit-hit`). Off by default: with
    /// `StartLimitIntervalSec=0` a crash loop goes on.
    pub start_limit: bool,
    /// The version the log states.
    pub version: String,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            restart: "no".into(),
            restart_sec: Duration::from_millis(100),
            crash: false,
            start_limit: false,
            version: "2.330.0".into(),
        }
    }
}

/// The unit file: the runner's `actions.runner.service.template` (no
/// `User=` in a user manager, `default.target` for `multi-user.target`)
/// with the options added.
fn runner_unit_text(name: &str, root: &Path, opts: &RunnerOptions) -> String {
    let runner = name
        .strip_prefix("actions.runner.")
        .and_then(|n| n.strip_suffix(".service"))
        .unwrap_or(name);
    let limit = if opts.start_limit {
        ""
    } else {
        "StartLimitIntervalSec=0\n"
    };
    format!(
        "[Unit]\n\
         Description=GitHub Actions Runner ({runner})\n\
         After=network.target\n\
         {limit}\n\
         [Service]\n\
         ExecStart={root}/runsvc.sh\n\
         WorkingDirectory={root}\n\
         KillMode=process\n\
         KillSignal=SIGTERM\n\
         TimeoutStopSec=5min\n\
         Restart={restart}\n\
         RestartSec={restart_ms}ms\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        root = root.display(),
        restart = opts.restart,
        restart_ms = opts.restart_sec.as_millis(),
    )
}

/// The stand-in for the runner's `runsvc.sh` (which runs node
/// `RunnerService.js`, which runs `bin/Runner.Listener run`).
fn runsvc(version: &str) -> String {
    format!(
        r#"#!/bin/bash
# Stand-in for the GitHub runner's runsvc.sh, written by testkit.
cd "$(dirname "$0")"
log="_diag/Runner_$(date -u +%Y%m%d-%H%M%S)-utc.log"
stamp() {{ date -u '+%Y-%m-%d %H:%M:%SZ'; }}
trace() {{ printf '[%s %s %s] %s\n' "$(stamp)" "$1" "$2" "$3" >> "$log"; }}
trace INFO Terminal "WRITE LINE: Current runner version: '{version}'"
if [ -e runsvc.crash ]; then
  trace 'ERR ' Terminal 'WRITE ERROR: An error occurred: Not configured. Run config.(sh/cmd) to configure the runner.'
  trace INFO Listener 'Runner execution has finished with return code 1'
  exit 1
fi
./bin/Runner.Listener infinity &
listener=$!
trap 'kill -TERM "$listener"; wait "$listener"; exit 0' TERM INT
trace INFO Terminal "WRITE LINE: $(stamp): Listening for Jobs"
wait "$listener"
code=$?
trace INFO Listener "Runner execution has finished with return code $code"
exit "$code"
"#
    )
}

/// A runner unit written by [`SystemdManager::runner_unit`].
#[derive(Clone, Debug)]
pub struct RunnerUnit {
    pub name: String,
    pub root: PathBuf,
}

impl RunnerUnit {
    /// From its next start on, `runsvc.sh` exits 1 right away (true) or
    /// runs the listener (false).
    pub fn set_crashing(&self, crash: bool) -> Result<()> {
        let flag = self.root.join("runsvc.crash");
        if crash {
            std::fs::write(&flag, "").context(|| format!("writing {}", flag.display()))
        } else {
            match std::fs::remove_file(&flag) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error(format!("removing {}: {e}", flag.display()))),
            }
        }
    }

    /// Every line of the runner's `_diag/Runner_*.log` files, oldest file
    /// first.
    pub fn log_lines(&self) -> Result<Vec<String>> {
        let diag = self.root.join("_diag");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&diag)
            .context(|| format!("reading {}", diag.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("Runner_") && n.ends_with(".log"))
            })
            .collect();
        files.sort();
        let mut lines = Vec::new();
        for f in files {
            let text =
                std::fs::read_to_string(&f).context(|| format!("reading {}", f.display()))?;
            lines.extend(text.lines().map(str::to_string));
        }
        Ok(lines)
    }
}

/// One signal seen by a [`BusWatch`].
#[derive(Clone, Debug, PartialEq)]
pub struct BusEvent {
    pub at: Instant,
    /// `NameOwnerChanged`, `Reloading`, `UnitNew`, `UnitRemoved`,
    /// `JobNew`, `JobRemoved`, `StartupFinished`, `UnitFilesChanged`...
    pub member: String,
    /// The arguments that matter: NameOwnerChanged's old and new owner,
    /// Reloading's flag (`true`/`false`), the unit name of UnitNew and
    /// UnitRemoved, the unit name of JobNew and JobRemoved (and the job's
    /// result), PropertiesChanged's object path and interface.
    pub args: Vec<String>,
}

/// A bus client that subscribed to systemd and records what it hears: the
/// manager's signals and the owner changes of `org.freedesktop.systemd1`.
/// Like the exporter, it is one connection that does not reconnect.
pub struct BusWatch {
    rt: tokio::runtime::Runtime,
    conn: zbus::Connection,
    events: Arc<Mutex<Vec<BusEvent>>>,
    /// Set when the stream of signals ended (the connection closed).
    ended: Arc<Mutex<Option<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

fn event_args(msg: &zbus::Message, member: &str) -> Vec<String> {
    let body = msg.body();
    match member {
        "NameOwnerChanged" => body
            .deserialize::<(String, String, String)>()
            .map(|(_, old, new)| vec![old, new])
            .unwrap_or_default(),
        "Reloading" => body
            .deserialize::<bool>()
            .map(|b| vec![b.to_string()])
            .unwrap_or_default(),
        "UnitNew" | "UnitRemoved" => body
            .deserialize::<(String, zbus::OwnedObjectPath)>()
            .map(|(n, _)| vec![n])
            .unwrap_or_default(),
        "JobNew" => body
            .deserialize::<(u32, zbus::OwnedObjectPath, String)>()
            .map(|(_, _, unit)| vec![unit])
            .unwrap_or_default(),
        "JobRemoved" => body
            .deserialize::<(u32, zbus::OwnedObjectPath, String, String)>()
            .map(|(_, _, unit, result)| vec![unit, result])
            .unwrap_or_default(),
        "PropertiesChanged" => {
            let path = msg
                .header()
                .path()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            let iface = body
                .deserialize::<(String, HashMap<String, zbus::OwnedVariant>, Vec<String>)>()
                .map(|(i, _, _)| i)
                .unwrap_or_default();
            vec![path, iface]
        }
        _ => Vec::new(),
    }
}

impl BusWatch {
    fn connect(address: &str) -> Result<BusWatch> {
        use futures_util::StreamExt;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context(|| "building a tokio runtime".into())?;
        let events = Arc::new(Mutex::new(Vec::new()));
        let ended = Arc::new(Mutex::new(None));
        let (conn, task) = rt.block_on(async {
            let conn = tokio::time::timeout(
                STEP_TIMEOUT,
                zbus::connection::Builder::address(address).build(),
            )
            .await
            .context(|| format!("connecting to {address}"))?
            .context(|| format!("connecting to {address}"))?;
            let rules = [
                format!("type='signal',sender='{SYSTEMD_NAME}',path='/org/freedesktop/systemd1',interface='org.freedesktop.systemd1.Manager'"),
                format!("type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='{SYSTEMD_NAME}'"),
                format!("type='signal',sender='{SYSTEMD_NAME}',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',path_namespace='/org/freedesktop/systemd1/unit'"),
            ];
            let mut streams = Vec::new();
            for rule in rules {
                let r = zbus::MatchRule::try_from(rule.as_str())
                    .context(|| format!("parsing the match rule {rule}"))?;
                let s = zbus::MessageStream::for_match_rule(r, &conn, None)
                    .await
                    .context(|| format!("adding the match rule {rule}"))?;
                streams.push(s);
            }
            let (ev, end) = (Arc::clone(&events), Arc::clone(&ended));
            let task = tokio::spawn(async move {
                let mut all = futures_util::stream::select_all(streams);
                while let Some(Ok(msg)) = all.next().await {
                    let at = Instant::now();
                    let member = msg
                        .header()
                        .member()
                        .map(|m| m.as_str().to_string())
                        .unwrap_or_default();
                    let args = event_args(&msg, &member);
                    if let Ok(mut v) = ev.lock() {
                        v.push(BusEvent { at, member, args });
                    }
                }
                if let Ok(mut e) = end.lock() {
                    *e = Some(Instant::now());
                }
            });
            Ok::<_, Error>((conn, task))
        })?;
        let watch = BusWatch {
            rt,
            conn,
            events,
            ended,
            task,
        };
        watch.subscribe()?;
        Ok(watch)
    }

    /// Calls systemd's `Subscribe` (systemd sends its signals on the bus
    /// only while some client is subscribed).
    pub fn subscribe(&self) -> Result<()> {
        self.rt.block_on(async {
            let reply = tokio::time::timeout(
                STEP_TIMEOUT,
                self.conn.call_method(
                    Some(SYSTEMD_NAME),
                    "/org/freedesktop/systemd1",
                    Some("org.freedesktop.systemd1.Manager"),
                    "Subscribe",
                    &(),
                ),
            )
            .await
            .context(|| "calling Subscribe".into())?;
            match reply {
                Ok(_) => Ok(()),
                Err(zbus::Error::MethodError(name, _, _))
                    if name.as_str() == "org.freedesktop.systemd1.AlreadySubscribed" =>
                {
                    Ok(())
                }
                Err(e) => Err(Error(format!("calling Subscribe: {e}"))),
            }
        })
    }

    /// Everything recorded so far.
    pub fn events(&self) -> Vec<BusEvent> {
        self.events.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        if let Ok(mut v) = self.events.lock() {
            v.clear();
        }
    }

    /// Waits for a recorded event that satisfies `f`.
    pub fn wait_event(&self, timeout: Duration, f: impl Fn(&BusEvent) -> bool) -> Option<BusEvent> {
        crate::wait_for(timeout, || self.events().into_iter().find(|e| f(e)))
    }

    /// When the connection ended, if it did.
    pub fn ended(&self) -> Option<Instant> {
        self.ended.lock().ok().and_then(|e| *e)
    }
}

impl Drop for BusWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_file_follows_the_runner_template() {
        let text = runner_unit_text(
            "actions.runner.acme-app.r1.service",
            Path::new("/srv/r1"),
            &RunnerOptions {
                restart: "always".into(),
                restart_sec: Duration::from_millis(250),
                ..RunnerOptions::default()
            },
        );
        for line in [
            "Description=GitHub Actions Runner (acme-app.r1)",
            "ExecStart=/srv/r1/runsvc.sh",
            "WorkingDirectory=/srv/r1",
            "KillMode=process",
            "Restart=always",
            "RestartSec=250ms",
            "StartLimitIntervalSec=0",
            "WantedBy=default.target",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }

    #[test]
    fn the_script_writes_the_runners_log_format() {
        let s = runsvc("2.330.0");
        assert!(
            s.contains("WRITE LINE: Current runner version: '2.330.0'"),
            "{s}"
        );
        assert!(
            s.contains("WRITE LINE: $(stamp): Listening for Jobs"),
            "{s}"
        );
        assert!(
            s.contains("_diag/Runner_$(date -u +%Y%m%d-%H%M%S)-utc.log"),
            "{s}"
        );
    }
}
