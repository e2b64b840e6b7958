//! inotify watches on runner roots and their `_diag` folders, so that an
//! idle root costs nothing between rescans.
//!
//! One inotify instance serves every root. A directory watch reports
//! changes of the files directly inside it (a log appended to, `.runner`
//! rewritten, `_diag` created), so two watches per root suffice. Watches
//! are added by the root's poll, on the blocking thread that already reads
//! the root (`inotify_add_watch` looks the path up and can hang on a hung
//! mount); the events are read by a task of their own, which only marks
//! roots dirty and wakes the collector. Anything that goes wrong (no
//! inotify, the watch limit, a filesystem that does not report changes
//! made elsewhere) leaves the root polled every `log_poll_interval`.

use futures_util::StreamExt;
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::task::JoinHandle;

/// Changes of the entries of a watched directory, and of the directory
/// itself going away.
const MASK: WatchMask = WatchMask::MODIFY
    .union(WatchMask::ATTRIB)
    .union(WatchMask::CLOSE_WRITE)
    .union(WatchMask::CREATE)
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVE_SELF)
    .union(WatchMask::ONLYDIR);

/// Filesystems whose changes made by another host (or through another
/// mount of the same files) are not reported: polled instead.
const UNWATCHABLE_FS: &[u32] = &[
    0x6969,      // NFS
    0x517b,      // SMB
    0xff53_4d42, // CIFS
    0xfe53_4d42, // SMB2
    0x6573_5546, // FUSE (bindfs, sshfs, ...)
    0x00c3_6400, // Ceph
    0x0102_1997, // 9p
    0x6b41_4653, // kAFS
    0x5346_414f, // AFS
    0x7375_7245, // Coda
    0x0116_1970, // GFS2
    0x7461_636f, // OCFS2
    0x0bd0_0bd0, // Lustre
];

/// Whether inotify sees every change of the filesystem holding `dir`
/// (an open directory: no path lookup).
pub fn local_filesystem(dir: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: statfs is plain data; fstatfs fills it or fails.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid open descriptor and a valid out pointer.
    let r = unsafe { libc::fstatfs(dir.as_raw_fd(), &mut st) };
    r == 0 && watchable(&st)
}

/// The same for a path (`_diag` may be a mount or a symlink of its own).
fn local_path(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs is plain data; statfs(2) fills it or fails.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a valid out pointer.
    let r = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    r == 0 && watchable(&st)
}

fn watchable(st: &libc::statfs) -> bool {
    // f_type's width differs between targets; the magic numbers are u32.
    #[allow(clippy::unnecessary_cast)]
    let magic = st.f_type as u32;
    !UNWATCHABLE_FS.contains(&magic)
}

/// What the event task and the polls share.
#[derive(Default)]
struct State {
    /// Each watch and the root it belongs to.
    roots: HashMap<WatchDescriptor, PathBuf>,
    /// Roots with events since the collector last took them.
    dirty: HashSet<PathBuf>,
    /// Events were lost (queue overflow): poll every root.
    all_dirty: bool,
    /// The event stream ended: no root is watched any more.
    failed: bool,
}

struct Shared {
    state: Mutex<State>,
    notify: tokio::sync::Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The collector's side: one inotify instance and its event task.
pub struct Watcher {
    shared: Arc<Shared>,
    watches: Option<Watches>,
    task: Option<JoinHandle<()>>,
}

impl Default for Watcher {
    /// A watcher that watches nothing (every root polled).
    fn default() -> Self {
        Watcher {
            shared: Arc::new(Shared {
                state: Mutex::default(),
                notify: tokio::sync::Notify::new(),
            }),
            watches: None,
            task: None,
        }
    }
}

impl Watcher {
    /// Starts the inotify instance and its event task (on the current
    /// runtime). On failure every root is polled; said once, at info.
    pub fn start() -> Watcher {
        let mut w = Watcher::default();
        let stream = Inotify::init().and_then(|i| {
            let watches = i.watches();
            i.into_event_stream(vec![0u8; 16 * 1024])
                .map(|s| (watches, s))
        });
        let (watches, mut stream) = match stream {
            Ok(x) => x,
            Err(e) => {
                tracing::info!(error = %e, "inotify unavailable: runner roots are polled every log_poll_interval");
                return w;
            }
        };
        let shared = Arc::clone(&w.shared);
        w.task = Some(tokio::spawn(async move {
            loop {
                match stream.next().await {
                    Some(Ok(ev)) => {
                        let mut s = shared.lock();
                        if ev.mask.contains(EventMask::Q_OVERFLOW) {
                            s.all_dirty = true;
                        } else if ev.mask.contains(EventMask::IGNORED) {
                            // The directory went away (or the watch was
                            // removed): its root's next poll watches again.
                            if let Some(root) = s.roots.remove(&ev.wd) {
                                s.dirty.insert(root);
                            }
                        } else if let Some(root) = s.roots.get(&ev.wd).cloned() {
                            s.dirty.insert(root);
                        } else {
                            continue;
                        }
                        drop(s);
                        shared.notify.notify_one();
                    }
                    Some(Err(e)) => {
                        tracing::info!(error = %e, "reading inotify events failed: runner roots are polled every log_poll_interval");
                        break;
                    }
                    None => break,
                }
            }
            let mut s = shared.lock();
            s.failed = true;
            s.all_dirty = true;
            drop(s);
            shared.notify.notify_one();
        }));
        w.watches = Some(watches);
        w
    }

    /// The handle a root's poll uses to watch it.
    pub fn for_root(&self, root: &Path) -> RootWatch {
        RootWatch {
            root: root.to_path_buf(),
            watches: self.watches.clone(),
            shared: Arc::clone(&self.shared),
            root_wd: None,
            diag_wd: None,
            logged: false,
        }
    }

    /// Takes the roots with events: `None` means every root.
    pub fn take_dirty(&self) -> Option<HashSet<PathBuf>> {
        let mut s = self.shared.lock();
        if std::mem::take(&mut s.all_dirty) {
            s.dirty.clear();
            return None;
        }
        Some(std::mem::take(&mut s.dirty))
    }

    /// Whether events are waiting to be taken.
    pub fn has_dirty(&self) -> bool {
        let s = self.shared.lock();
        s.all_dirty || !s.dirty.is_empty()
    }

    /// Waits for an event (may return spuriously).
    pub async fn notified(&self) {
        self.shared.notify.notified().await;
    }

    /// Removes the watches of a root no longer followed (no path lookup).
    pub fn forget(&self, root: &Path) {
        let gone: Vec<WatchDescriptor> = {
            let mut s = self.shared.lock();
            s.dirty.remove(root);
            let gone = s
                .roots
                .iter()
                .filter(|(_, r)| r.as_path() == root)
                .map(|(wd, _)| wd.clone())
                .collect::<Vec<_>>();
            for wd in &gone {
                s.roots.remove(wd);
            }
            gone
        };
        if let Some(w) = &self.watches {
            let mut w = w.clone();
            for wd in gone {
                // Already gone with its directory: nothing to do.
                let _ = w.remove(wd);
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// One root's watches, kept by its tracker and renewed by each poll.
pub struct RootWatch {
    root: PathBuf,
    watches: Option<Watches>,
    shared: Arc<Shared>,
    root_wd: Option<WatchDescriptor>,
    diag_wd: Option<WatchDescriptor>,
    /// A failure was logged (once per root until watching works again).
    logged: bool,
}

impl RootWatch {
    /// Watches the root and its `_diag` (again: a directory replaced by
    /// another of the same name gets a new watch). Runs on the poll's
    /// blocking thread, before anything is read, so no change made after
    /// it goes unreported. Returns true when every change of the root
    /// will be reported: the root is watched, and `_diag` is watched or
    /// does not exist yet (its creation is reported on the root).
    pub fn renew(&mut self, local: bool) -> bool {
        let Some(watches) = self.watches.clone() else {
            return false;
        };
        if self.shared.lock().failed || !local {
            self.clear();
            return false;
        }
        let root = self.root.clone();
        let ok = match self.add(&watches, &root, true) {
            Ok(()) => match self.add(&watches, &root.join("_diag"), false) {
                Ok(()) if local_path(&root.join("_diag")) => true,
                Ok(()) => {
                    self.drop_wd(false);
                    false
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    self.drop_wd(false);
                    true
                }
                Err(e) => {
                    self.failed(&e, "_diag");
                    false
                }
            },
            Err(e) => {
                // A missing root is reported by the poll itself.
                if e.raw_os_error() != Some(libc::ENOENT) {
                    self.failed(&e, "the root");
                }
                self.clear();
                false
            }
        };
        if ok {
            self.logged = false;
        }
        ok
    }

    fn failed(&mut self, e: &std::io::Error, what: &str) {
        if !self.logged {
            self.logged = true;
            tracing::debug!(root = %self.root.display(), error = %e, "cannot watch {what} of the runner root: polled every log_poll_interval");
        }
    }

    /// Adds (or renews) the watch on `path` and records it.
    fn add(&mut self, watches: &Watches, path: &Path, is_root: bool) -> std::io::Result<()> {
        let wd = watches.clone().add(path, MASK)?;
        let old = if is_root {
            self.root_wd.replace(wd.clone())
        } else {
            self.diag_wd.replace(wd.clone())
        };
        let mut s = self.shared.lock();
        if let Some(other) = s.roots.get(&wd).filter(|r| **r != self.root).cloned() {
            // The same directory is another root's (a symlink): that root
            // keeps it, this one is polled.
            drop(s);
            if is_root {
                self.root_wd = old;
            } else {
                self.diag_wd = old;
            }
            self.drop_wd(is_root);
            return Err(std::io::Error::other(format!(
                "{} is watched for {} already",
                path.display(),
                other.display()
            )));
        }
        s.roots.insert(wd.clone(), self.root.clone());
        if let Some(old) = old.filter(|o| *o != wd) {
            // The directory was replaced: the old one is not ours now.
            if s.roots.get(&old) == Some(&self.root) {
                s.roots.remove(&old);
                drop(s);
                let _ = watches.clone().remove(old);
            }
        }
        Ok(())
    }

    fn drop_wd(&mut self, is_root: bool) {
        let wd = if is_root {
            self.root_wd.take()
        } else {
            self.diag_wd.take()
        };
        let Some(wd) = wd else {
            return;
        };
        let mut s = self.shared.lock();
        if s.roots.get(&wd) == Some(&self.root) {
            s.roots.remove(&wd);
            drop(s);
            if let Some(w) = &self.watches {
                let _ = w.clone().remove(wd);
            }
        }
    }

    fn clear(&mut self) {
        self.drop_wd(true);
        self.drop_wd(false);
    }
}
