//! The exporter's own `process_*` metrics, read from /proc/self. Sampled in
//! the background like everything else, so scrapes stay free of I/O.

use crate::snapshot::ProcessStats;
use anyhow::Context;

/// Parses the fields of /proc/self/stat that matter: utime, stime,
/// starttime (ticks) and vsize, rss (pages).
pub fn parse_stat(text: &str) -> Option<(u64, u64, u64, u64, u64)> {
    // The command name may contain spaces and parentheses: skip past the
    // last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // Field numbers from proc(5), minus 3 for pid, comm and the offset.
    let get = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some((get(14)?, get(15)?, get(22)?, get(23)?, get(24)?))
}

fn max_fds() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: r is a valid rlimit to fill in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0 {
        r.rlim_cur
    } else {
        0
    }
}

pub fn sample(boot_time: u64) -> anyhow::Result<ProcessStats> {
    let text = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    let (utime, stime, start, vsize, rss) = parse_stat(&text).context("parsing /proc/self/stat")?;
    // SAFETY: sysconf has no preconditions.
    let hz = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        n if n > 0 => n as f64,
        _ => 100.0,
    };
    // SAFETY: as above.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as u64,
        _ => 4096,
    };
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    Ok(ProcessStats {
        cpu_seconds: (utime + stime) as f64 / hz,
        resident_bytes: rss * page,
        virtual_bytes: vsize,
        open_fds,
        max_fds: max_fds(),
        start_time: boot_time as f64 + start as f64 / hz,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_names() {
        let line = "1234 (a b) c)) S 1 1 1 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 9000 123456789 2048 18446744073709551615";
        let (u, s, start, vsize, rss) = parse_stat(line).unwrap();
        assert_eq!((u, s, start, vsize, rss), (250, 50, 9000, 123456789, 2048));
    }

    #[test]
    fn own_process_sample() {
        let p = sample(0).unwrap();
        assert!(p.resident_bytes > 0);
        assert!(p.open_fds >= 3);
        assert!(p.max_fds >= p.open_fds);
    }
}
