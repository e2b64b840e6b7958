//! Everything the exporter keeps about one runner root between polls, and
//! one poll of it. A poll runs on a blocking thread (file I/O); the
//! collector never waits on it for long, so a hung filesystem stalls only
//! this root.

use super::parse::{self, Line, Mode, ParseAux, ReadAt};
use super::registration;
use super::tail::{self, LineEvent, Sink, Tail};
use super::watch::{self, RootWatch};
use crate::snapshot::{LogState, Registration, RunnerRoot, SkipReason};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A directory whose mtime is this recent may change again within the
/// same timestamp tick: list it again on the next poll.
const RECENT_MTIME_SECS: i64 = 2;
/// `_diag` is listed at least once every this many polls (10 minutes for
/// a root polled every 1 s; a watched root is polled on its events and
/// rescans, and every change of `_diag` is an event).
const FORCE_LIST_POLLS: u32 = 600;

/// What a file looked like last time: changes mean "read it again".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sig {
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Sig {
    fn of(m: &std::fs::Metadata) -> Sig {
        Sig {
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// Which log a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `Runner_*.log`: the listener; its messages drive the state.
    Runner,
    /// `Worker_*.log`: one per job; its entries show activity, container
    /// jobs and failing `docker` commands.
    Worker,
}

/// Applies what a tail reads to the log state.
pub(crate) struct Consumer<'a> {
    pub(crate) logs: &'a mut LogState,
    pub(crate) aux: &'a mut ParseAux,
    pub(crate) kind: Kind,
}

impl Sink for Consumer<'_> {
    fn bytes(&mut self, n: u64) {
        self.logs.bytes_read += n;
    }

    fn not_regular(&mut self) {
        self.logs.skipped.add(SkipReason::NotRegularFile, 1);
    }

    fn line(&mut self, ev: LineEvent<'_>, mode: Mode) {
        let bytes = match ev {
            LineEvent::TooLong => {
                self.logs.skipped.add(SkipReason::TooLong, 1);
                return;
            }
            LineEvent::Line(b) => b,
        };
        let Ok(text) = std::str::from_utf8(bytes) else {
            self.logs.skipped.add(SkipReason::InvalidUtf8, 1);
            return;
        };
        let entry = match parse::parse_line(text) {
            Line::Entry(e) => e,
            Line::Continuation => return,
            Line::Malformed => {
                self.logs.skipped.add(SkipReason::Malformed, 1);
                return;
            }
        };
        if self.logs.last_entry.is_none_or(|t| entry.ts > t) {
            self.logs.last_entry = Some(entry.ts);
        }
        match self.kind {
            Kind::Runner => {
                if let Some(msg) = parse::interpret(entry.message) {
                    parse::apply(self.logs, self.aux, entry.ts, msg, mode);
                }
            }
            Kind::Worker => {
                if let Some(msg) = parse::interpret_worker(entry.source, entry.message) {
                    parse::apply_worker(self.logs, self.aux, entry.ts, msg, mode);
                }
            }
        }
    }
}

/// The result of one poll.
pub struct PollOutput {
    pub root: RunnerRoot,
    /// The work folder, for the filesystem sample.
    pub work_dir: PathBuf,
    /// Bytes are left to read: poll again soon.
    pub backlog: bool,
    /// Every change of the root will be reported by inotify: it need not
    /// be polled until then.
    pub watched: bool,
}

/// One runner root and its open logs.
pub struct RootTracker {
    root: PathBuf,
    max_line: usize,
    polled: bool,
    accessible: bool,
    root_error: Option<String>,
    /// The root's filesystem reports every change to inotify.
    local_fs: bool,
    watch: RootWatch,
    registration_error: Option<String>,
    diag_error: Option<String>,
    registration: Option<Registration>,
    agent_name: Option<String>,
    ephemeral_seen: bool,
    work_folder: Option<String>,
    service_unit: Option<String>,
    runner_file: Option<Sig>,
    diag: Option<Sig>,
    relist: bool,
    polls_since_list: u32,
    runner_log: Tail,
    worker_log: Tail,
    logs: LogState,
    aux: ParseAux,
    buf: Vec<u8>,
}

impl RootTracker {
    pub fn new(root: PathBuf, max_line: usize, watch: RootWatch) -> Self {
        RootTracker {
            root,
            max_line,
            polled: false,
            accessible: false,
            root_error: None,
            local_fs: false,
            watch,
            registration_error: None,
            diag_error: None,
            registration: None,
            agent_name: None,
            ephemeral_seen: false,
            work_folder: None,
            service_unit: None,
            runner_file: None,
            diag: None,
            relist: false,
            polls_since_list: 0,
            runner_log: Tail::default(),
            worker_log: Tail::default(),
            logs: LogState::default(),
            aux: ParseAux::default(),
            buf: Vec::new(),
        }
    }

    /// One poll: the root, its watches, `.runner` (when it changed),
    /// `.service` (on a rescan), then new bytes of the logs.
    pub fn poll(&mut self, rescan: bool) -> PollOutput {
        let first = !self.polled;
        self.polled = true;
        self.aux.read_at = Some(ReadAt::now());
        self.check_root();
        // Watches first: whatever changes after this is reported.
        let watched = self.watch.renew(self.root_error.is_none() && self.local_fs);
        self.check_registration();
        if self.root_error.is_none() && (first || rescan) {
            self.read_service();
        }
        // `_diag` is listed when its mtime changes; a full listing now and
        // then guards against a filesystem whose mtime lags.
        self.polls_since_list += 1;
        let force_list = first || self.polls_since_list >= FORCE_LIST_POLLS;
        let backlog = self.poll_logs(force_list);
        let was_accessible = self.accessible;
        self.accessible = self.root_error.is_none() && self.diag_error.is_none();
        if was_accessible && !self.accessible {
            tracing::debug!(root = %self.root.display(), "runner root not accessible");
        }
        PollOutput {
            root: self.snapshot(),
            work_dir: registration::work_dir(&self.root, self.work_folder.as_deref()),
            backlog,
            watched,
        }
    }

    fn check_root(&mut self) {
        // Opening the directory itself proves it can be read; nothing in
        // it is opened.
        let r = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&self.root);
        self.local_fs = r.as_ref().is_ok_and(watch::local_filesystem);
        self.root_error = r
            .err()
            .map(|e| format!("cannot read runner root {}: {e}", self.root.display()));
    }

    fn check_registration(&mut self) {
        let path = self.root.join(".runner");
        let sig = match std::fs::symlink_metadata(&path) {
            Ok(m) => Sig::of(&m),
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    self.registration_error = Some(format!("cannot stat {}: {e}", path.display()));
                } else {
                    // Gone: an ephemeral runner finished or the
                    // registration was removed. The name stays known.
                    if self.registration.is_some() {
                        tracing::info!(root = %self.root.display(), "runner registration (.runner) removed");
                    }
                    self.registration = None;
                    self.registration_error = None;
                }
                self.runner_file = None;
                return;
            }
        };
        if self.runner_file == Some(sig) {
            return;
        }
        self.runner_file = Some(sig);
        match registration::read_runner_file(&self.root) {
            Ok(Some(reg)) => {
                if let Some(n) = &reg.agent_name {
                    self.agent_name = Some(n.clone());
                }
                self.ephemeral_seen = reg.ephemeral;
                if reg.work_folder.is_some() {
                    self.work_folder = reg.work_folder.clone();
                }
                self.registration = Some(reg);
                self.registration_error = None;
            }
            Ok(None) => {
                self.registration = None;
                self.registration_error = None;
            }
            Err(e) => {
                // Keep the last good registration: the agent rewrites the
                // file in place, so a read can see it half written. A new
                // change is read again.
                self.registration_error = Some(format!("{e:#}"));
            }
        }
    }

    fn read_service(&mut self) {
        match registration::read_service_file(&self.root) {
            Ok(s) => self.service_unit = s,
            Err(e) => {
                tracing::debug!(root = %self.root.display(), error = %format!("{e:#}"), "cannot read .service")
            }
        }
    }

    /// Returns true when bytes are left for the next poll.
    fn poll_logs(&mut self, force_list: bool) -> bool {
        let diag = self.root.join("_diag");
        // Truncation and deletion of the open files first: a deleted file
        // means a new one may exist.
        let mut relist = force_list | std::mem::take(&mut self.relist);
        let mut waiting = false;
        relist |= self.runner_log.check();
        relist |= self.worker_log.check();
        match std::fs::metadata(&diag) {
            Ok(m) if m.is_dir() => {
                self.diag_error = None;
                let sig = Sig::of(&m);
                if self.diag != Some(sig) {
                    relist = true;
                }
                self.diag = Some(sig);
                if relist {
                    self.polls_since_list = 0;
                    // A change within the same timestamp tick would not
                    // change the mtime: look again next time.
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs() as i64);
                    if now - m.mtime() <= RECENT_MTIME_SECS {
                        self.relist = true;
                    }
                    waiting = self.list_and_follow(&diag);
                }
            }
            Ok(_) => {
                self.diag_error = Some(format!("{} is not a directory", diag.display()));
                self.close_logs();
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Not started yet, or gone with the root (whose error says
                // so). Whatever appears later is new and is counted.
                self.diag_error = None;
                self.diag = None;
                self.close_logs();
                self.runner_log.mark_started();
                self.worker_log.mark_started();
            }
            Err(e) => {
                self.diag_error = Some(format!("cannot read {}: {e}", diag.display()));
                self.diag = None;
                self.close_logs();
            }
        }
        let mut more = waiting;
        for (tail, kind) in [
            (&mut self.runner_log, Kind::Runner),
            (&mut self.worker_log, Kind::Worker),
        ] {
            let mut sink = Consumer {
                logs: &mut self.logs,
                aux: &mut self.aux,
                kind,
            };
            more |= tail.read(&mut self.buf, &mut sink);
        }
        self.logs.runner_log = self.runner_log.current.as_ref().map(|c| c.path.clone());
        self.logs.worker_log = self.worker_log.current.as_ref().map(|c| c.path.clone());
        more
    }

    /// Returns true when a newer file waits for the current one to be
    /// drained.
    fn list_and_follow(&mut self, diag: &Path) -> bool {
        let (runners, workers) = match tail::list_diag(diag) {
            Ok(x) => x,
            Err(e) => {
                self.diag_error = Some(format!("cannot list {}: {e}", diag.display()));
                self.diag = None;
                return false;
            }
        };
        let mut waiting = false;
        let max = self.max_line;
        for (tail, kind, listed) in [
            (&mut self.runner_log, Kind::Runner, &runners),
            (&mut self.worker_log, Kind::Worker, &workers),
        ] {
            let mut sink = Consumer {
                logs: &mut self.logs,
                aux: &mut self.aux,
                kind,
            };
            if tail.follow(
                diag,
                listed,
                kind == Kind::Runner,
                max,
                &mut self.buf,
                &mut sink,
            ) {
                // A newer file waits until the current one is drained.
                self.relist = true;
                waiting = true;
            }
        }
        waiting
    }

    fn close_logs(&mut self) {
        self.runner_log.close();
        self.worker_log.close();
    }

    fn snapshot(&self) -> RunnerRoot {
        let error = [&self.root_error, &self.diag_error, &self.registration_error]
            .into_iter()
            .flatten()
            .cloned()
            .collect::<Vec<_>>();
        RunnerRoot {
            root: self.root.clone(),
            sources: Default::default(),
            accessible: self.accessible,
            error: (!error.is_empty()).then(|| error.join("; ")),
            registration: self.registration.clone(),
            agent_name: self.agent_name.clone(),
            ephemeral_seen: self.ephemeral_seen,
            service_unit: self.service_unit.clone(),
            work_fs: None,
            logs: self.logs.clone(),
            watched: false,
            docker: None,
        }
    }
}
