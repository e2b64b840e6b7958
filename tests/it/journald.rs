//! Under systemd with a journal (JOURNAL_STREAM names the exporter's
//! stderr), the exporter logs native journald fields to the journal socket
//! instead of plain lines. The test runs the exporter in a private mount
//! namespace where /run/systemd/journal is a directory of the test's, with
//! a datagram socket the test reads (needs root and unshare; skipped
//! otherwise).

use std::collections::HashMap;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_runner-health-exporter");

/// Parses one native journal datagram: `KEY=value\n`, or `KEY\n` + 64-bit
/// little-endian length + value + `\n` for values with newlines.
fn parse(mut b: &[u8]) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    while !b.is_empty() {
        let Some(nl) = b.iter().position(|c| *c == b'\n') else {
            break;
        };
        let line = &b[..nl];
        if let Some(eq) = line.iter().position(|c| *c == b'=') {
            fields.insert(
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            );
            b = &b[nl + 1..];
        } else {
            let key = String::from_utf8_lossy(line).into_owned();
            let rest = &b[nl + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            fields.insert(key, String::from_utf8_lossy(&rest[8..8 + len]).into_owned());
            b = &rest[8 + len + 1..];
        }
    }
    fields
}

#[test]
fn logs_go_to_the_journal_with_fields() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || Command::new("unshare").arg("--version").output().is_err()
    {
        eprintln!("SKIPPED: needs root and unshare");
        return;
    }
    let probe = Command::new("unshare").args(["-m", "true"]).status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: cannot create a mount namespace here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = UnixDatagram::bind(dir.path().join("socket")).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();

    // The exporter's stderr: a pipe whose device and inode go into
    // JOURNAL_STREAM, as systemd does.
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: pipe(2) succeeded, so both descriptors are open and ours.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: write_end is an open descriptor and st a valid stat buffer.
    assert_eq!(unsafe { libc::fstat(fds[1], &mut st) }, 0);
    let journal_stream = format!("{}:{}", st.st_dev, st.st_ino);

    let script = format!(
        "mkdir -p /run/systemd/journal && mount --bind {} /run/systemd/journal && exec {BIN} --web.listen-address=127.0.0.1:0 --config.file=/dev/null --log.level=debug",
        dir.path().display()
    );
    let mut child = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env("JOURNAL_STREAM", &journal_stream)
        .env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .stdout(Stdio::null())
        .stderr(Stdio::from(write_end))
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(15);
    let mut messages: Vec<HashMap<String, String>> = Vec::new();
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            messages.push(parse(&buf[..n]));
        }
        let saw_listening = messages
            .iter()
            .any(|m| m.get("MESSAGE").is_some_and(|v| v == "listening"));
        let saw_collector = messages.iter().any(|m| m.contains_key("COLLECTOR"));
        if saw_listening && saw_collector {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();

    let listening = messages
        .iter()
        .find(|m| m.get("MESSAGE").is_some_and(|v| v == "listening"))
        .unwrap_or_else(|| panic!("no 'listening' entry in the journal: {messages:?}"));
    // systemd-journal-logger maps info to NOTICE (5); warnings are 4.
    assert_eq!(listening.get("PRIORITY").map(String::as_str), Some("5"));
    assert_eq!(
        listening.get("SYSLOG_IDENTIFIER").map(String::as_str),
        Some("runner-health-exporter")
    );
    assert!(
        listening
            .get("ADDRESS")
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{listening:?}"
    );
    // The systemd collector cannot reach the bus: its failure carries the
    // collector as a field and warning priority.
    let failure = messages
        .iter()
        .find(|m| m.get("COLLECTOR").is_some_and(|c| c == "systemd"))
        .unwrap_or_else(|| panic!("no systemd collector entry: {messages:?}"));
    assert_eq!(
        failure.get("PRIORITY").map(String::as_str),
        Some("4"),
        "{failure:?}"
    );
    assert!(failure.contains_key("ERROR"));

    // Nothing went to stderr as plain lines.
    drop(child);
    let mut stderr = std::fs::File::from(read_end);
    // SAFETY: the descriptor is open; O_NONBLOCK only changes read behaviour.
    unsafe {
        libc::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&stderr),
            libc::F_SETFL,
            libc::O_NONBLOCK,
        )
    };
    let mut out = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stderr, &mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(
        !text.contains("msg=listening"),
        "plain lines on stderr: {text}"
    );
}
