//! Host collector: CPU, load, memory, swap, boot time and filesystems.
//!
//! Memory, swap, load and boot time come from sysinfo; per-mode CPU seconds
//! from /proc/stat (sysinfo has no per-mode counters); filesystems from the
//! mount table with one `statvfs` each for sizes and inodes. A `statvfs`
//! that hangs (a dead NFS server) is never waited on twice: the mount is
//! reported with `device_error` until the call returns.

use super::{Collector, Failure, Mode, Outcome};
use crate::config::HostConfig;
use crate::settings::Settings;
use crate::snapshot::{Filesystem, FsUsage, HostState, Store};
use anyhow::Context;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The collector's name: its section and its `collector` label.
pub const NAME: &str = "host";

/// The /proc/stat columns, in order, that are reported as modes. `guest`
/// and `guest_nice` are already included in `user` and `nice`.
const CPU_MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

pub struct HostCollector {
    config: HostConfig,
    /// Created on first use: creation can fail (no /proc).
    system: Option<sysinfo::System>,
    prev_cpu: Option<[u64; 8]>,
    ticks_per_second: f64,
    /// Mount points whose statvfs has not returned yet.
    pending: Arc<Mutex<HashSet<String>>>,
    first: bool,
}

impl HostCollector {
    pub fn with_config(config: HostConfig) -> Self {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        HostCollector {
            config,
            system: None,
            prev_cpu: None,
            ticks_per_second: if hz > 0 { hz as f64 } else { 100.0 },
            pending: Arc::new(Mutex::new(HashSet::new())),
            first: true,
        }
    }

    fn sample_sync(&mut self) -> anyhow::Result<HostState> {
        let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
        let (cpu, cores) = parse_proc_stat(&stat).context("parsing /proc/stat")?;
        let cpu_usage_ratio = self.prev_cpu.map(|prev| usage_ratio(&prev, &cpu));
        self.prev_cpu = Some(cpu);
        let cpu_seconds = CPU_MODES
            .iter()
            .zip(cpu)
            .map(|(m, t)| (*m, t as f64 / self.ticks_per_second))
            .collect();
        if self.system.is_none() {
            self.system = Some(sysinfo::System::new().context("initialising sysinfo")?);
        }
        let Some(system) = self.system.as_mut() else {
            anyhow::bail!("sysinfo unavailable");
        };
        system.refresh_memory();
        let load = sysinfo::System::load_average().context("reading load averages")?;
        Ok(HostState {
            cpu_usage_ratio,
            cpu_seconds,
            cpu_cores: cores,
            load: [load.one, load.five, load.fifteen],
            memory_total: system.total_memory(),
            memory_available: system.available_memory(),
            swap_total: system.total_swap(),
            swap_free: system.free_swap(),
            boot_time: sysinfo::System::boot_time().context("reading boot time")?,
            filesystems: Vec::new(),
        })
    }
}

/// Sums the aggregate `cpu` line into mode ticks and counts `cpuN` lines.
pub fn parse_proc_stat(text: &str) -> Option<([u64; 8], usize)> {
    let mut total = None;
    let mut cores = 0;
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        match fields.next() {
            Some("cpu") => {
                let mut t = [0u64; 8];
                for (slot, v) in t.iter_mut().zip(fields) {
                    *slot = v.parse().ok()?;
                }
                total = Some(t);
            }
            Some(name) if name.starts_with("cpu") => cores += 1,
            _ => {}
        }
    }
    total.map(|t| (t, cores))
}

/// Busy share between two /proc/stat samples: everything but idle and iowait.
pub fn usage_ratio(prev: &[u64; 8], cur: &[u64; 8]) -> f64 {
    let delta: Vec<u64> = cur
        .iter()
        .zip(prev)
        .map(|(c, p)| c.saturating_sub(*p))
        .collect();
    let total: u64 = delta.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let idle = delta[3] + delta[4];
    (1.0 - idle as f64 / total as f64).clamp(0.0, 1.0)
}

/// One mount from /proc/self/mountinfo.
#[derive(Debug, PartialEq)]
pub struct Mount {
    pub mountpoint: String,
    pub fstype: String,
    pub device: String,
}

/// Parses /proc/self/mountinfo (see proc(5)); later mounts on the same
/// mount point hide earlier ones, so the last one wins.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut by_point: HashMap<String, usize> = HashMap::new();
    let mut mounts: Vec<Mount> = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mountpoint) = left.split(' ').nth(4) else {
            continue;
        };
        let mut r = right.split(' ');
        let (Some(fstype), Some(device)) = (r.next(), r.next()) else {
            continue;
        };
        let m = Mount {
            mountpoint: unescape_octal(mountpoint),
            fstype: unescape_octal(fstype),
            device: unescape_octal(device),
        };
        match by_point.get(&m.mountpoint) {
            Some(&i) => mounts[i] = m,
            None => {
                by_point.insert(m.mountpoint.clone(), mounts.len());
                mounts.push(m);
            }
        }
    }
    mounts
}

/// The kernel writes space, tab, newline and backslash as `\040` etc.
fn unescape_octal(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// statvfs(3) of a path.
// The field types differ between targets; the casts are needed on some.
#[allow(clippy::unnecessary_cast)]
pub fn statvfs(path: &Path) -> std::io::Result<FsUsage> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let mut s = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: c is a valid NUL-terminated path and s points to writable
    // memory of the right size; statvfs initialises it on success.
    let rc = unsafe { libc::statvfs(c.as_ptr(), s.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so the struct is initialised.
    let s = unsafe { s.assume_init() };
    let frsize = if s.f_frsize > 0 {
        s.f_frsize
    } else {
        s.f_bsize
    } as u64;
    Ok(FsUsage {
        size: s.f_blocks as u64 * frsize,
        free: s.f_bfree as u64 * frsize,
        avail: s.f_bavail as u64 * frsize,
        files: s.f_files as u64,
        files_free: s.f_ffree as u64,
    })
}

/// How long one statvfs may take before the mount is reported as failing
/// for this sample (the call keeps running in the background).
const STATVFS_WAIT: Duration = Duration::from_secs(1);

async fn filesystems(
    config: &HostConfig,
    pending: &Arc<Mutex<HashSet<String>>>,
) -> anyhow::Result<Vec<Filesystem>> {
    let text = tokio::fs::read_to_string("/proc/self/mountinfo")
        .await
        .context("reading /proc/self/mountinfo")?;
    let mounts: Vec<Mount> = parse_mountinfo(&text)
        .into_iter()
        .filter(|m| config.includes(&m.mountpoint, &m.fstype))
        .collect();
    let mut out = Vec::with_capacity(mounts.len());
    for m in mounts {
        let busy = pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&m.mountpoint);
        let usage = if busy {
            None
        } else {
            pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(m.mountpoint.clone());
            let point = m.mountpoint.clone();
            let pend = Arc::clone(pending);
            let task = tokio::task::spawn_blocking(move || {
                let r = statvfs(Path::new(&point));
                pend.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&point);
                r
            });
            match tokio::time::timeout(STATVFS_WAIT, task).await {
                Ok(Ok(Ok(u))) => Some(u),
                Ok(Ok(Err(e))) => {
                    tracing::debug!(mountpoint = %m.mountpoint, error = %e, "statvfs failed");
                    None
                }
                Ok(Err(_)) | Err(_) => {
                    tracing::debug!(mountpoint = %m.mountpoint, "statvfs did not return in time");
                    None
                }
            }
        };
        out.push(Filesystem {
            mountpoint: m.mountpoint,
            fstype: m.fstype,
            device: m.device,
            usage,
        });
    }
    Ok(out)
}

impl Collector for HostCollector {
    type State = HostState;
    const NAME: &'static str = NAME;

    fn enabled(settings: &Settings) -> bool {
        settings.config.host.enabled
    }

    fn interval(settings: &Settings) -> Duration {
        settings.config.host.sample_interval.get()
    }

    fn config_key(settings: &Settings) -> String {
        super::key(&settings.config.host)
    }

    fn new(settings: &Settings, _: &Store, _: Mode) -> Self {
        HostCollector::with_config(settings.config.host.clone())
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(10)
    }

    async fn wait(&mut self) {
        if self.first {
            // A second sample soon after start gives a CPU usage ratio early.
            self.first = false;
            tokio::time::sleep(Duration::from_secs(1).min(self.config.sample_interval.get())).await;
        } else {
            tokio::time::sleep(self.config.sample_interval.get()).await;
        }
    }

    async fn collect(&mut self) -> Result<Outcome<HostState>, Failure<HostState>> {
        let mut state = self.sample_sync()?;
        state.filesystems = filesystems(&self.config, &self.pending).await?;
        Ok(Outcome::Changed(state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_modes_and_cores() {
        let text = "cpu  100 5 50 800 20 1 2 3 0 0\ncpu0 50 2 25 400 10 0 1 1 0 0\ncpu1 50 3 25 400 10 1 1 2 0 0\nintr 1 2 3\n";
        let (t, cores) = parse_proc_stat(text).unwrap();
        assert_eq!(t, [100, 5, 50, 800, 20, 1, 2, 3]);
        assert_eq!(cores, 2);
        let later = [150, 5, 70, 870, 30, 1, 2, 3];
        // 70 busy of 150 ticks.
        assert!((usage_ratio(&t, &later) - 70.0 / 150.0).abs() < 1e-9);
        assert_eq!(usage_ratio(&t, &t), 0.0);
    }

    #[test]
    fn mountinfo_parses_escapes_and_overmounts() {
        let text = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                    30 22 0:5 / /mnt/my\\040disk rw - xfs /dev/sdb1 rw\n\
                    31 22 0:6 / /mnt/my\\040disk rw - tmpfs tmpfs rw\n\
                    garbage line\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mountpoint, "/");
        assert_eq!(m[1].mountpoint, "/mnt/my disk");
        assert_eq!(m[1].fstype, "tmpfs");
    }

    #[test]
    fn statvfs_of_root_is_sane() {
        let u = statvfs(Path::new("/")).unwrap();
        assert!(u.size > 0 && u.avail <= u.free && u.free <= u.size);
        assert!(statvfs(Path::new("/nonexistent/path")).is_err());
    }
}
