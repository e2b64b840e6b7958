//! The fake systemd as a program, for the end-to-end tests and benchmarks.
//!
//! ```text
//! fake-systemd [UNIT[=WORKING_DIRECTORY]]...
//! ```
//!
//! Starts a private dbus-daemon with the fake systemd on it, every UNIT
//! loaded and running, prints the bus address (for
//! `DBUS_SYSTEM_BUS_ADDRESS`) on the first line of stdout, then reads
//! commands on stdin, one per line, and answers each with `ok` or
//! `error: ...`:
//!
//! ```text
//! start UNIT | stop UNIT | fail UNIT [STATUS] | restart UNIT
//! add UNIT [WORKING_DIRECTORY] | remove UNIT
//! delay MILLISECONDS | missing-method NAME | missing-property NAME
//! kill-bus | restart-bus
//! calls [METHOD]   (answers `calls N`: all calls, or those of METHOD)
//! quit
//! ```
//!
//! `restart` counts an automatic restart (NRestarts + 1). End of input
//! quits too.

use std::io::{BufRead, Write};
use std::time::Duration;
use testkit::{FakeSystemd, Unit};

fn unit_arg(arg: &str) -> Unit {
    match arg.split_once('=') {
        Some((name, wd)) => Unit::running(name).with_working_directory(wd),
        None => Unit::running(arg),
    }
}

fn run(fake: &FakeSystemd, line: &str) -> Result<Option<String>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let known = |name: &str| {
        fake.unit(name)
            .map(|_| ())
            .ok_or_else(|| format!("no unit {name}"))
    };
    match words.as_slice() {
        [] => Ok(None),
        ["start", u] => known(u).map(|_| fake.start_unit(u)).map(|_| None),
        ["stop", u] => known(u).map(|_| fake.stop_unit(u)).map(|_| None),
        ["fail", u] => known(u).map(|_| fake.fail_unit(u, 1)).map(|_| None),
        ["fail", u, status] => {
            let status: i32 = status.parse().map_err(|_| format!("bad status {status}"))?;
            known(u)?;
            fake.fail_unit(u, status);
            Ok(None)
        }
        ["restart", u] => {
            known(u)?;
            fake.update(u, |x| {
                x.n_restarts += 1;
                x.start();
            });
            Ok(None)
        }
        ["add", u] => {
            fake.add_unit(Unit::running(u));
            Ok(None)
        }
        ["add", u, wd] => {
            fake.add_unit(Unit::running(u).with_working_directory(wd));
            Ok(None)
        }
        ["remove", u] => known(u).map(|_| fake.remove_unit(u)).map(|_| None),
        ["delay", ms] => {
            let ms: u64 = ms.parse().map_err(|_| format!("bad delay {ms}"))?;
            fake.set_delay(Duration::from_millis(ms));
            Ok(None)
        }
        ["missing-method", m] => {
            fake.set_method_missing(m, true);
            Ok(None)
        }
        ["missing-property", p] => {
            fake.set_property_missing(p, true);
            Ok(None)
        }
        ["kill-bus"] => {
            fake.kill_bus();
            Ok(None)
        }
        ["restart-bus"] => {
            fake.restart_bus();
            Ok(None)
        }
        ["calls"] => Ok(Some(format!("calls {}", fake.total_calls()))),
        ["calls", method] => Ok(Some(format!("calls {}", fake.calls(method)))),
        _ => Err(format!("unknown command: {line}")),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!(
            "usage: fake-systemd [UNIT[=WORKING_DIRECTORY]]...  (commands on stdin; see source)"
        );
        return;
    }
    let fake = FakeSystemd::start(args.iter().map(|a| unit_arg(a)));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = writeln!(out, "{}", fake.address());
    let _ = out.flush();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim() == "quit" {
            break;
        }
        let answer = match run(&fake, line.trim()) {
            Ok(Some(text)) => text,
            Ok(None) => "ok".to_string(),
            Err(e) => format!("error: {e}"),
        };
        let _ = writeln!(out, "{answer}");
        let _ = out.flush();
    }
}
