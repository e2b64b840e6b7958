//! Following the newest `Runner_*.log` / `Worker_*.log` of a `_diag` folder.
//!
//! A log is opened with `O_NOFOLLOW | O_NONBLOCK` and checked with `fstat`:
//! only regular files are read, so a FIFO or a symlink (to `/dev/zero`, say)
//! can neither block nor flood the exporter. The open file is kept between
//! polls; each poll costs one `fstat` and reads only the bytes appended
//! since the last one (at most [`MAX_TICK_BYTES`]). A file that shrank was
//! truncated (read again from the start), a file whose link count is 0 was
//! deleted (its rest is read, then it is closed), and a newer file name is
//! followed once the current file is drained. Lines longer than the limit
//! are dropped up to their newline, so memory stays bounded.

use super::parse::Mode;
use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Most bytes read from one file in one poll; the rest waits for the next.
pub const MAX_TICK_BYTES: u64 = 8 * 1024 * 1024;
/// At start-up, at most this much of the end of the newest file is read
/// (the agent starts a new file at 8 MB)...
pub const STARTUP_TAIL: u64 = 9 * 1024 * 1024;
/// ...plus this much of its beginning, where the version line is.
pub const HEAD_BYTES: u64 = 64 * 1024;
/// Older files read at start-up to find the listener's start (its version
/// line) when the newest file is a continuation after rotation.
pub const STARTUP_CHAIN: usize = 3;
/// Candidates tried when the newest name is not a regular file.
const MAX_CANDIDATES: usize = 4;
const CHUNK: usize = 64 * 1024;

/// Why a file was not opened as a log.
#[derive(Debug)]
pub enum OpenError {
    /// A FIFO, device, directory, socket or symlink.
    NotRegular,
    Io(io::Error),
}

/// Opens `path` for reading if, and only if, it is a regular file that is
/// not a symlink. Never blocks on a FIFO.
pub fn open_regular(path: &Path) -> Result<(File, std::fs::Metadata), OpenError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => OpenError::NotRegular,
            _ => OpenError::Io(e),
        })?;
    let meta = file.metadata().map_err(OpenError::Io)?;
    if !meta.file_type().is_file() {
        return Err(OpenError::NotRegular);
    }
    Ok((file, meta))
}

/// One line handed to the consumer.
pub enum LineEvent<'a> {
    /// A complete line, without its newline.
    Line(&'a [u8]),
    /// A line longer than the limit was dropped (counted once, when the
    /// limit is passed; the rest up to its newline is discarded).
    TooLong,
}

/// Splits a byte stream into lines, keeping at most `max` bytes of a
/// partial line.
#[derive(Debug)]
pub struct LineReader {
    max: usize,
    pending: Vec<u8>,
    /// Dropping an over-long line until its newline.
    discarding: bool,
    /// Dropping a partial line silently (after seeking into a file).
    resync: bool,
}

impl LineReader {
    /// A reader for lines of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        LineReader {
            max,
            pending: Vec::new(),
            discarding: false,
            resync: false,
        }
    }

    /// A reader that starts mid-file: the first (partial) line is dropped.
    pub fn mid_line(max: usize) -> Self {
        LineReader {
            resync: true,
            ..LineReader::new(max)
        }
    }

    pub fn feed(&mut self, mut data: &[u8], on: &mut dyn FnMut(LineEvent<'_>)) {
        let max = self.max;
        while !data.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let seg = &data[..i];
                    data = &data[i + 1..];
                    if self.resync || self.discarding {
                        self.resync = false;
                        self.discarding = false;
                        continue;
                    }
                    if self.pending.len() + seg.len() > max {
                        self.pending.clear();
                        on(LineEvent::TooLong);
                    } else if self.pending.is_empty() {
                        on(LineEvent::Line(seg));
                    } else {
                        self.pending.extend_from_slice(seg);
                        on(LineEvent::Line(&self.pending));
                        self.pending.clear();
                    }
                }
                None => {
                    if self.resync || self.discarding {
                        return;
                    }
                    if self.pending.len() + data.len() > max {
                        self.pending.clear();
                        self.pending.shrink_to(CHUNK);
                        self.discarding = true;
                        on(LineEvent::TooLong);
                    } else {
                        self.pending.extend_from_slice(data);
                    }
                    return;
                }
            }
        }
    }
}

/// Receives what a tail reads.
pub trait Sink {
    fn bytes(&mut self, n: u64);
    fn line(&mut self, ev: LineEvent<'_>, mode: Mode);
    fn not_regular(&mut self);
}

/// Reads `[from, to)` of `file` into `reader`; returns the offset reached
/// (less than `to` at end of file).
pub fn read_range(
    file: &File,
    from: u64,
    to: u64,
    reader: &mut LineReader,
    mode: Mode,
    buf: &mut Vec<u8>,
    sink: &mut dyn Sink,
) -> io::Result<u64> {
    buf.resize(CHUNK, 0);
    let mut off = from;
    while off < to {
        let want = usize::try_from((to - off).min(CHUNK as u64)).unwrap_or(CHUNK);
        let n = match file.read_at(&mut buf[..want], off) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        off += n as u64;
        sink.bytes(n as u64);
        reader.feed(&buf[..n], &mut |ev| sink.line(ev, mode));
    }
    Ok(off)
}

/// Reads a file the way start-up does: all of it when small, else its
/// head and its last [`STARTUP_TAIL`] bytes. Returns the offset reached
/// and the reader (holding a partial last line, if any).
pub fn read_startup(
    file: &File,
    size: u64,
    max_line: usize,
    buf: &mut Vec<u8>,
    sink: &mut dyn Sink,
) -> io::Result<(u64, LineReader)> {
    let mut reader = LineReader::new(max_line);
    if size <= STARTUP_TAIL + HEAD_BYTES {
        let off = read_range(file, 0, size, &mut reader, Mode::Startup, buf, sink)?;
        return Ok((off, reader));
    }
    read_range(file, 0, HEAD_BYTES, &mut reader, Mode::Startup, buf, sink)?;
    let mut reader = LineReader::mid_line(max_line);
    let from = size - STARTUP_TAIL;
    let off = read_range(file, from, size, &mut reader, Mode::Startup, buf, sink)?;
    Ok((off, reader))
}

/// True when the first [`HEAD_BYTES`] of a file hold a listener start.
pub fn head_has_version(file: &File, buf: &mut Vec<u8>) -> bool {
    const NEEDLE: &[u8] = b"Current runner version: '";
    buf.resize(HEAD_BYTES as usize, 0);
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], got as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    buf[..got].windows(NEEDLE.len()).any(|w| w == NEEDLE)
}

/// A `_diag` entry: file name and inode number.
pub type Listed = (String, u64);

/// Lists `_diag`: the log files of both kinds, newest name first.
pub fn list_diag(diag: &Path) -> io::Result<(Vec<Listed>, Vec<Listed>)> {
    use std::os::unix::fs::DirEntryExt;
    let mut runner = Vec::new();
    let mut worker = Vec::new();
    for entry in std::fs::read_dir(diag)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !name.ends_with(".log") {
            continue;
        }
        if name.starts_with("Runner_") {
            runner.push((name, entry.ino()));
        } else if name.starts_with("Worker_") {
            worker.push((name, entry.ino()));
        }
    }
    // The names embed a UTC timestamp (yyyyMMdd-HHmmss): newest sorts last.
    runner.sort_unstable_by(|a, b| b.0.cmp(&a.0));
    worker.sort_unstable_by(|a, b| b.0.cmp(&a.0));
    Ok((runner, worker))
}

/// Start-up after a rotation: reads the older files (newest first in
/// `older`) back to the one holding the listener's start, oldest first,
/// so the version and a job in progress are known.
fn read_older(
    diag: &Path,
    older: &[Listed],
    max_line: usize,
    buf: &mut Vec<u8>,
    sink: &mut dyn Sink,
) {
    let mut files = Vec::new();
    for (name, _) in older.iter().take(STARTUP_CHAIN) {
        match open_regular(&diag.join(name)) {
            Ok((f, m)) => {
                let start = head_has_version(&f, buf);
                files.push((f, m.len()));
                if start {
                    break;
                }
            }
            Err(_) => continue,
        }
    }
    for (f, size) in files.iter().rev() {
        let _ = read_startup(f, *size, max_line, buf, sink);
    }
}

/// The file being followed.
#[derive(Debug)]
pub struct OpenLog {
    pub name: String,
    pub path: PathBuf,
    file: File,
    /// The inode number as the directory listing gives it (compared only
    /// with listings: on overlayfs it may differ from `st_ino`).
    ino: u64,
    offset: u64,
    size: u64,
    deleted: bool,
    reader: LineReader,
}

/// Follows the newest log of one kind.
#[derive(Debug, Default)]
pub struct Tail {
    pub current: Option<OpenLog>,
    /// The newest file seen so far (name, inode): a file with a newer name,
    /// or the same name on another inode, is new (read from its start and
    /// counted); one with an older name is history.
    high_water: Option<Listed>,
    /// Candidates that were not regular files, already counted.
    rejected: HashSet<Listed>,
    /// Start-up reading done.
    started: bool,
}

impl Tail {
    /// Checks the open file: truncated (read again from the start) or
    /// deleted. Returns true when `_diag` should be listed again.
    pub fn check(&mut self) -> bool {
        let Some(cur) = &mut self.current else {
            return false;
        };
        match cur.file.metadata() {
            Ok(m) => {
                if m.len() < cur.offset {
                    tracing::debug!(log = %cur.path.display(), offset = cur.offset, size = m.len(), "log truncated; reading it from the start");
                    cur.offset = 0;
                    cur.reader = LineReader::new(cur.reader.max);
                }
                cur.size = m.len();
                cur.deleted = m.nlink() == 0;
            }
            Err(_) => cur.deleted = true,
        }
        cur.deleted
    }

    /// True when the open file has bytes not read yet.
    pub fn has_unread(&self) -> bool {
        self.current.as_ref().is_some_and(|c| c.size > c.offset)
    }

    fn is_new(&self, name: &str, ino: u64) -> bool {
        match &self.high_water {
            None => true,
            Some((hn, hi)) => name > hn.as_str() || (name == hn && ino != *hi),
        }
    }

    /// After a listing (`listed`: this kind's files, newest first): follows
    /// the newest regular file. At start-up it is read to learn the present
    /// state; with `chain`, older files are read first when the newest does
    /// not begin with the listener's start (it continues after a rotation).
    /// Returns true when a newer file waits for the current one to be
    /// drained.
    #[allow(clippy::too_many_arguments)]
    pub fn follow(
        &mut self,
        diag: &Path,
        listed: &[Listed],
        chain: bool,
        max_line: usize,
        buf: &mut Vec<u8>,
        sink: &mut dyn Sink,
    ) -> bool {
        self.rejected.retain(|r| listed.contains(r));
        let startup = !self.started;
        self.started = true;
        if startup {
            self.high_water = listed.first().cloned();
        }
        // Names already found not to be regular files are passed over
        // without using up the candidates tried per listing.
        let candidates: Vec<(usize, &Listed)> = listed
            .iter()
            .enumerate()
            .filter(|(_, l)| !self.rejected.contains(*l))
            .take(MAX_CANDIDATES)
            .collect();
        for (idx, (name, ino)) in candidates {
            if self.current.is_some() {
                // Fresh size: bytes written just before the switch count.
                self.check();
            }
            if let Some(cur) = &self.current {
                if cur.name == *name && cur.ino == *ino && !cur.deleted {
                    return false;
                }
                if !cur.deleted && cur.name.as_str() > name.as_str() {
                    // The newest name is older than the file followed.
                    return false;
                }
                if self.has_unread() {
                    return true;
                }
            }
            let path = diag.join(name);
            let (file, meta) = match open_regular(&path) {
                Ok(x) => x,
                Err(OpenError::NotRegular) => {
                    tracing::debug!(log = %path.display(), "not a regular file; skipped");
                    sink.not_regular();
                    self.rejected.insert((name.clone(), *ino));
                    continue;
                }
                Err(OpenError::Io(e)) => {
                    tracing::debug!(log = %path.display(), error = %e, "cannot open log");
                    continue;
                }
            };
            let size = meta.len();
            let (offset, reader) = if startup {
                if chain && !head_has_version(&file, buf) {
                    read_older(diag, &listed[idx + 1..], max_line, buf, sink);
                }
                match read_startup(&file, size, max_line, buf, sink) {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::debug!(log = %path.display(), error = %e, "cannot read log");
                        (size, LineReader::mid_line(max_line))
                    }
                }
            } else if self.is_new(name, *ino) {
                // A new process or a rotation: everything in it is new.
                (0, LineReader::new(max_line))
            } else {
                // An older file became the newest (the newest was deleted):
                // its content is history.
                (size, LineReader::mid_line(max_line))
            };
            if self.is_new(name, *ino) {
                self.high_water = Some((name.clone(), *ino));
            }
            tracing::debug!(log = %path.display(), offset, "following log");
            self.current = Some(OpenLog {
                name: name.clone(),
                path,
                file,
                ino: *ino,
                offset,
                size,
                deleted: false,
                reader,
            });
            return false;
        }
        // Nothing (else) to follow; a deleted file is closed in `read`.
        false
    }

    /// Reads what was appended (at most [`MAX_TICK_BYTES`]). Returns true
    /// when more is left for the next poll.
    pub fn read(&mut self, buf: &mut Vec<u8>, sink: &mut dyn Sink) -> bool {
        let Some(cur) = &mut self.current else {
            return false;
        };
        let mut more = false;
        if cur.size > cur.offset {
            let to = cur.size.min(cur.offset + MAX_TICK_BYTES);
            match read_range(
                &cur.file,
                cur.offset,
                to,
                &mut cur.reader,
                Mode::Live,
                buf,
                sink,
            ) {
                Ok(off) => {
                    more = off < cur.size && off == to;
                    cur.offset = off;
                }
                Err(e) => {
                    tracing::debug!(log = %cur.path.display(), error = %e, "cannot read log");
                }
            }
        }
        if cur.deleted && !more {
            tracing::debug!(log = %cur.path.display(), "log deleted; closed");
            self.current = None;
        }
        more
    }

    /// From now on every file is new: there was nothing to learn at
    /// start-up (no `_diag` yet).
    pub fn mark_started(&mut self) {
        self.started = true;
    }

    /// Closes the file (the root vanished).
    pub fn close(&mut self) {
        self.current = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(r: &mut LineReader, data: &[u8], max: usize) -> Vec<String> {
        let mut out = Vec::new();
        r.max = max;
        r.feed(data, &mut |ev| match ev {
            LineEvent::Line(l) => out.push(String::from_utf8_lossy(l).into_owned()),
            LineEvent::TooLong => out.push("<too long>".into()),
        });
        out
    }

    #[test]
    fn partial_lines_wait_for_their_newline() {
        let mut r = LineReader::new(100);
        assert_eq!(lines(&mut r, b"one\ntw", 100), ["one"]);
        assert!(lines(&mut r, b"o", 100).is_empty());
        assert_eq!(lines(&mut r, b"\nthree\n", 100), ["two", "three"]);
        assert_eq!(lines(&mut r, b"\n", 100), [""]);
    }

    #[test]
    fn long_lines_are_dropped_once_and_memory_stays_bounded() {
        let mut r = LineReader::new(100);
        let mut out = lines(&mut r, b"ok\n", 8);
        // 1000 bytes without a newline, fed in pieces: counted once.
        for _ in 0..100 {
            out.extend(lines(&mut r, b"xxxxxxxxxx", 8));
            assert!(r.pending.len() <= 8);
        }
        out.extend(lines(&mut r, b"tail of the long one\nnext\n", 8));
        assert_eq!(out, ["ok", "<too long>", "next"]);
        // A long line inside one chunk.
        assert_eq!(lines(&mut r, b"0123456789\nab\n", 8), ["<too long>", "ab"]);
    }

    #[test]
    fn mid_line_reader_drops_the_first_partial_line() {
        let mut r = LineReader::mid_line(100);
        assert_eq!(lines(&mut r, b"rest of a line\nfull\n", 100), ["full"]);
    }

    #[test]
    fn only_regular_files_open() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.log");
        std::fs::write(&file, b"x\n").unwrap();
        assert!(open_regular(&file).is_ok());
        let link = dir.path().join("zero.log");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(matches!(open_regular(&link), Err(OpenError::NotRegular)));
        let fifo = dir.path().join("fifo.log");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: c is a valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(open_regular(&fifo), Err(OpenError::NotRegular)));
        assert!(matches!(
            open_regular(dir.path()),
            Err(OpenError::NotRegular)
        ));
        assert!(matches!(
            open_regular(&dir.path().join("missing")),
            Err(OpenError::Io(_))
        ));
    }
}
