//! The runner's processes: `Runner.Listener` (always running while the
//! runner is up) and `Runner.Worker` (running while a job runs).
//!
//! They are looked up in the unit's cgroup first (`cgroup.procs` of the
//! unit's ControlGroup and everything below it; readable by any user) and
//! identified by their command name. When the unit has no readable cgroup
//! (stopped, or cgroups not mounted where expected), every process whose
//! executable is `<root>/bin/Runner.Listener` or `<root>/bin/Runner.Worker`
//! is taken instead, the root being the unit's WorkingDirectory.

use crate::snapshot::{ProcStats, UnitState};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub const LISTENER: &str = "Runner.Listener";
pub const WORKER: &str = "Runner.Worker";

/// Deepest cgroup nesting followed below a unit's cgroup.
const MAX_CGROUP_DEPTH: usize = 32;

/// Longest the collector waits for a process lookup.
const LOOKUP_WAIT: Duration = Duration::from_secs(2);

/// Runs process lookups off the async workers: they read /proc, /sys and
/// the runner root, and a hung filesystem must not stall the runtime. A
/// lookup still running when the next one is due makes that one skip.
#[derive(Default)]
pub struct ProcLookup {
    reader: Arc<ProcReader>,
    busy: Arc<AtomicBool>,
    warned: bool,
}

impl ProcLookup {
    /// Fills `listener` and `worker` of every unit; on a lookup that does
    /// not finish in time they stay empty.
    pub async fn fill(&mut self, units: &mut Vec<UnitState>) {
        if self.busy.swap(true, Ordering::AcqRel) {
            self.warn("the previous lookup of runner processes has not finished");
            return;
        }
        let reader = Arc::clone(&self.reader);
        let busy = Arc::clone(&self.busy);
        let mut copy = units.clone();
        let task = tokio::task::spawn_blocking(move || {
            reader.fill(&mut copy);
            busy.store(false, Ordering::Release);
            copy
        });
        match tokio::time::timeout(LOOKUP_WAIT, task).await {
            Ok(Ok(filled)) => {
                *units = filled;
                self.warned = false;
            }
            Ok(Err(_)) => {
                self.busy.store(false, Ordering::Release);
                self.warn("the lookup of runner processes failed");
            }
            Err(_) => self.warn("the lookup of runner processes did not finish within 2s"),
        }
    }

    fn warn(&mut self, what: &str) {
        if !self.warned {
            self.warned = true;
            tracing::warn!("{what} (a hung filesystem?); processes are reported as not running");
        }
    }
}

pub struct ProcReader {
    proc_root: PathBuf,
    /// Where cgroup hierarchies may be mounted, most likely first: the
    /// unified hierarchy (cgroup v2), its hybrid-mode mount point, and
    /// systemd's named v1 hierarchy.
    cgroup_roots: Vec<PathBuf>,
    ticks_per_second: f64,
    page_size: u64,
}

impl Default for ProcReader {
    fn default() -> Self {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        // SAFETY: as above.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        ProcReader {
            proc_root: PathBuf::from("/proc"),
            cgroup_roots: [
                "/sys/fs/cgroup",
                "/sys/fs/cgroup/unified",
                "/sys/fs/cgroup/systemd",
            ]
            .map(PathBuf::from)
            .to_vec(),
            ticks_per_second: if hz > 0 { hz as f64 } else { 100.0 },
            page_size: if page > 0 { page as u64 } else { 4096 },
        }
    }
}

/// A candidate process with its start time (to prefer the oldest).
struct Found {
    pid: u32,
    start: u64,
    stats: ProcStats,
}

impl ProcReader {
    /// Fills `listener` and `worker` of every unit.
    pub fn fill(&self, units: &mut [UnitState]) {
        // Built on first need: one pass over /proc serves every unit.
        let mut by_exe: Option<HashMap<PathBuf, Vec<u32>>> = None;
        for u in units.iter_mut() {
            let mut listener: Option<Found> = None;
            let mut worker: Option<Found> = None;
            let mut consider = |kind: &str, pid: u32| {
                let slot = match kind {
                    LISTENER => &mut listener,
                    WORKER => &mut worker,
                    _ => return,
                };
                if let Some(f) = self.stats(pid) {
                    if slot
                        .as_ref()
                        .is_none_or(|s| (f.start, f.pid) < (s.start, s.pid))
                    {
                        *slot = Some(f);
                    }
                }
            };
            match u
                .control_group
                .as_deref()
                .and_then(|cg| self.cgroup_pids(cg))
            {
                Some(pids) => {
                    for pid in pids {
                        if let Some(comm) = self.comm(pid) {
                            consider(&comm, pid);
                        }
                    }
                }
                None => {
                    if let Some(root) = &u.working_directory {
                        let map = by_exe.get_or_insert_with(|| self.runner_executables());
                        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.clone());
                        for kind in [LISTENER, WORKER] {
                            let exe = root.join("bin").join(kind);
                            for pid in map.get(&exe).into_iter().flatten() {
                                consider(kind, *pid);
                            }
                        }
                    }
                    // A unit may run the listener as its main process.
                    if let Some(pid) = u.main_pid {
                        if let Some(comm) = self.comm(pid) {
                            consider(&comm, pid);
                        }
                    }
                }
            }
            u.listener = listener.map(|f| f.stats);
            u.worker = worker.map(|f| f.stats);
        }
    }

    /// Every process in the cgroup and below it, or None when the cgroup
    /// cannot be found under any hierarchy.
    pub fn cgroup_pids(&self, control_group: &str) -> Option<Vec<u32>> {
        let rel = control_group.trim_start_matches('/');
        self.cgroup_roots.iter().find_map(|root| {
            let dir = root.join(rel);
            let mut pids = Vec::new();
            read_cgroup(&dir, 0, &mut pids).ok()?;
            Some(pids)
        })
    }

    fn comm(&self, pid: u32) -> Option<String> {
        let text =
            std::fs::read_to_string(self.proc_root.join(pid.to_string()).join("comm")).ok()?;
        Some(text.trim_end_matches('\n').to_string())
    }

    fn stats(&self, pid: u32) -> Option<Found> {
        let text =
            std::fs::read_to_string(self.proc_root.join(pid.to_string()).join("stat")).ok()?;
        let (utime, stime, start, _vsize, rss) = crate::collect::process::parse_stat(&text)?;
        Some(Found {
            pid,
            start,
            stats: ProcStats {
                pid,
                resident_bytes: rss * self.page_size,
                cpu_seconds: (utime + stime) as f64 / self.ticks_per_second,
            },
        })
    }

    /// Processes running a `Runner.Listener` or `Runner.Worker`, by
    /// executable path. The executable link needs the right to trace the
    /// process; when that is refused, the command name and the first
    /// argument (the runner starts both with an absolute path) stand in.
    fn runner_executables(&self) -> HashMap<PathBuf, Vec<u32>> {
        let mut out: HashMap<PathBuf, Vec<u32>> = HashMap::new();
        let Ok(dir) = std::fs::read_dir(&self.proc_root) else {
            return out;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let base = entry.path();
            let exe = match std::fs::read_link(base.join("exe")) {
                Ok(p) => Some(strip_deleted(p)),
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    match self.comm(pid).as_deref() {
                        Some(LISTENER) | Some(WORKER) => std::fs::read(base.join("cmdline"))
                            .ok()
                            .and_then(|c| argv0(&c)),
                        _ => None,
                    }
                }
                Err(_) => None,
            };
            let Some(exe) = exe else { continue };
            if matches!(
                exe.file_name().and_then(|n| n.to_str()),
                Some(LISTENER) | Some(WORKER)
            ) {
                out.entry(exe).or_default().push(pid);
            }
        }
        out
    }
}

/// Reads `cgroup.procs` of `dir` and of every cgroup below it.
fn read_cgroup(dir: &Path, depth: usize, pids: &mut Vec<u32>) -> std::io::Result<()> {
    let text = std::fs::read_to_string(dir.join("cgroup.procs"))?;
    pids.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    if depth >= MAX_CGROUP_DEPTH {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)?.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            // A child cgroup may vanish while it is read.
            let _ = read_cgroup(&entry.path(), depth + 1, pids);
        }
    }
    Ok(())
}

/// The kernel appends ` (deleted)` to the link of an executable that was
/// replaced (the runner updates itself in place).
fn strip_deleted(p: PathBuf) -> PathBuf {
    match p.to_str().and_then(|s| s.strip_suffix(" (deleted)")) {
        Some(s) => PathBuf::from(s),
        None => p,
    }
}

/// The first argument, if it is an absolute path, with `.` and `..`
/// resolved lexically.
fn argv0(cmdline: &[u8]) -> Option<PathBuf> {
    let first = cmdline.split(|b| *b == 0).next()?;
    let s = std::str::from_utf8(first).ok()?;
    if !s.starts_with('/') {
        return None;
    }
    let mut out = PathBuf::new();
    for c in Path::new(s).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn cgroup_processes_are_read_recursively() {
        let t = tempfile::tempdir().unwrap();
        let unit = t.path().join("system.slice/actions.runner.a.b.service");
        fs::create_dir_all(unit.join("job/inner")).unwrap();
        fs::write(unit.join("cgroup.procs"), "10\n11\n").unwrap();
        fs::write(unit.join("job/cgroup.procs"), "").unwrap();
        fs::write(unit.join("job/inner/cgroup.procs"), "12\n").unwrap();
        let r = ProcReader {
            cgroup_roots: vec![t.path().join("missing"), t.path().to_path_buf()],
            ..ProcReader::default()
        };
        let mut pids = r
            .cgroup_pids("/system.slice/actions.runner.a.b.service")
            .unwrap();
        pids.sort();
        assert_eq!(pids, [10, 11, 12]);
        assert_eq!(r.cgroup_pids("/system.slice/gone.service"), None);
    }

    #[test]
    fn executable_paths_are_normalised() {
        assert_eq!(
            strip_deleted(PathBuf::from("/opt/r/bin/Runner.Listener (deleted)")),
            PathBuf::from("/opt/r/bin/Runner.Listener")
        );
        assert_eq!(
            argv0(b"/opt/r/bin/../bin/./Runner.Worker\0spawnclient\0"),
            Some(PathBuf::from("/opt/r/bin/Runner.Worker"))
        );
        assert_eq!(argv0(b"Runner.Worker\0"), None);
    }

    #[test]
    fn own_process_has_stats() {
        let r = ProcReader::default();
        let f = r.stats(std::process::id()).unwrap();
        assert!(f.stats.resident_bytes > 0);
        assert!(f.stats.cpu_seconds >= 0.0);
    }
}
