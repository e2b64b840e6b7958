//! Starts the real exporter binary and keeps what it logs.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Proxy and trust variables of the machine running the tests: never
/// passed on, so each test sets exactly the ones it is about.
pub const OUTBOUND_VARS: &[&str] = &[
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// A running exporter. Killed on drop.
pub struct Exporter {
    pub child: Child,
    pub addr: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<String>>>,
}

fn collect_lines<R: std::io::Read + Send + 'static>(r: R, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if std::env::var_os("RHE_TEST_ECHO").is_some() {
                eprintln!("[exporter] {line}");
            }
            into.lock().unwrap().push(line);
        }
    });
}

/// The address from the exporter's `msg=listening address=...` log line.
fn listening_address(line: &str) -> Option<SocketAddr> {
    if line.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        if v["msg"] != "listening" {
            return None;
        }
        return v["address"].as_str()?.parse().ok();
    }
    if !line.contains("msg=listening") && !line.contains("\"msg\":\"listening\"") {
        return None;
    }
    let start = line.find("address=")? + "address=".len();
    line[start..].split([' ', '"']).next()?.parse().ok()
}

impl Exporter {
    /// Starts `bin serve` on an ephemeral loopback port (unless `args`
    /// name a `--web.listen-address`) with `args` and `envs`, and waits
    /// until it listens.
    pub fn start(bin: &str, args: &[&str], envs: &[(&str, &str)]) -> Exporter {
        Self::try_start(bin, args, envs).expect("exporter starts and listens")
    }

    pub fn try_start(bin: &str, args: &[&str], envs: &[(&str, &str)]) -> Result<Exporter, String> {
        let mut cmd = Command::new(bin);
        if !args.iter().any(|a| a.starts_with("--web.listen-address")) {
            cmd.arg("--web.listen-address=127.0.0.1:0");
        }
        cmd.arg("--log.format=logfmt")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("GITHUB_TOKEN")
            .env_remove("CREDENTIALS_DIRECTORY");
        for v in OUTBOUND_VARS {
            cmd.env_remove(v);
        }
        if !args.iter().any(|a| a.starts_with("--config.file")) {
            // Never pick up a config installed on the test machine.
            cmd.arg("--config.file=/dev/null");
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| format!("spawn {bin}: {e}"))?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        collect_lines(child.stderr.take().unwrap(), Arc::clone(&logs));
        collect_lines(child.stdout.take().unwrap(), Arc::clone(&stdout));
        let found = crate::wait_for(Duration::from_secs(20), || {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(Err(format!("exporter exited with {status}")));
            }
            logs.lock()
                .unwrap()
                .iter()
                .find_map(|l| listening_address(l))
                .map(Ok)
        });
        match found {
            Some(Ok(addr)) => Ok(Exporter {
                child,
                addr,
                logs,
                stdout,
            }),
            Some(Err(e)) => {
                std::thread::sleep(Duration::from_millis(100));
                Err(format!("{e}; log:\n{}", logs.lock().unwrap().join("\n")))
            }
            None => {
                let _ = child.kill();
                Err(format!(
                    "exporter did not listen within 20 s; log:\n{}",
                    logs.lock().unwrap().join("\n")
                ))
            }
        }
    }

    pub fn get(&self, path: &str) -> crate::Response {
        crate::get(self.addr, path).expect("request to exporter")
    }

    pub fn get_with(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> crate::Response {
        crate::get_with(self.addr, method, path, headers).expect("request to exporter")
    }

    /// The 0.0.4 text exposition. Every scrape a test makes through here
    /// fails the test if it holds a series twice.
    pub fn metrics(&self) -> String {
        let r = self.get("/metrics");
        assert_eq!(r.status, 200, "GET /metrics");
        let m = r.body();
        crate::assert_unique_series(&m);
        m
    }

    /// Waits until a scrape satisfies `f`; returns that scrape. Every
    /// scrape is checked for duplicate series.
    pub fn wait_metrics(&self, timeout: Duration, f: impl Fn(&str) -> bool) -> Option<String> {
        crate::wait_for(timeout, || {
            let m = crate::get(self.addr, "/metrics").ok()?.body();
            crate::assert_unique_series(&m);
            f(&m).then_some(m)
        })
    }

    /// Everything logged on stderr so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal to the exporter.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        crate::wait_for(timeout, || self.child.try_wait().ok().flatten())
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary to completion (for `config check`, `check`, `generate`).
pub fn run(bin: &str, args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env_remove("JOURNAL_STREAM")
        .env_remove("GITHUB_TOKEN");
    for v in OUTBOUND_VARS {
        cmd.env_remove(v);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("binary runs")
}

/// True when `p` exists and is executable by someone.
pub fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
