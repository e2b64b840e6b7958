//! Real network parts for the proxy and TLS tests: a non-loopback address
//! of this host (some clients never send loopback through a proxy), and a
//! real tinyproxy (Debian package `tinyproxy`) with its own access log.
//!
//! Both need root (CAP_NET_ADMIN for the address), as CI runs the tests.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {args:?}: {e} (Debian package iproute2)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// An IPv4 address from 10.213.0.0/16 added to this host (on the `lo`
/// device, which needs no kernel module) for the life of the value.
/// Traffic to it is local, but it is not a loopback address: clients
/// treat it as any other host.
pub struct LocalAddr {
    pub ip: IpAddr,
    cidr: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl LocalAddr {
    /// Adds a fresh address; panics with the reason when it cannot (not
    /// root, no `ip`).
    pub fn new() -> LocalAddr {
        let pid = std::process::id();
        let mut last = String::new();
        for _ in 0..64 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let a = Ipv4Addr::new(10, 213, (pid % 250) as u8 + 1, (n % 250) as u8 + 1);
            let cidr = format!("{a}/32");
            match ip(&["addr", "add", &cidr, "dev", "lo"]) {
                Ok(()) => {
                    return LocalAddr {
                        ip: IpAddr::V4(a),
                        cidr,
                    }
                }
                // Taken (by another test, or left over): try the next.
                Err(e) if e.contains("File exists") => last = e,
                Err(e) => panic!(
                    "cannot add a non-loopback address to this host (the tests need root): {e}"
                ),
            }
        }
        panic!("no free address in 10.213.0.0/16: {last}");
    }
}

impl Default for LocalAddr {
    fn default() -> Self {
        LocalAddr::new()
    }
}

impl Drop for LocalAddr {
    fn drop(&mut self) {
        let _ = ip(&["addr", "del", &self.cidr, "dev", "lo"]);
    }
}

/// A free TCP port on `ip` (bound and released: good enough for a test).
pub fn free_port(ip: IpAddr) -> u16 {
    TcpListener::bind(SocketAddr::new(ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A tinyproxy process in the foreground with a config of its own.
pub struct Tinyproxy {
    pub addr: SocketAddr,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    /// Starts tinyproxy on `ip`, optionally asking for `user:password`
    /// (`BasicAuth`: requests without them get 407).
    pub fn start(ip: IpAddr, auth: Option<(&str, &str)>) -> Tinyproxy {
        let dir = tempfile::tempdir().expect("a temp dir");
        let log = dir.path().join("access.log");
        let port = free_port(ip);
        // No `User`: it keeps running as the test's user (it warns about
        // that), so it can write its log in the test's directory.
        let mut conf = format!(
            "Port {port}\nListen {ip}\nTimeout 30\nMaxClients 64\nLogFile \"{}\"\nLogLevel Connect\nDisableViaHeader Yes\n",
            log.display()
        );
        if let Some((u, p)) = auth {
            conf.push_str(&format!("BasicAuth {u} {p}\n"));
        }
        let conf_path = dir.path().join("tinyproxy.conf");
        std::fs::write(&conf_path, conf).expect("write tinyproxy.conf");
        let child = Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tinyproxy runs (Debian package tinyproxy)");
        let addr = SocketAddr::new(ip, port);
        let mut p = Tinyproxy {
            addr,
            child,
            log,
            _dir: dir,
        };
        let up = crate::wait_for(Duration::from_secs(10), || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        });
        if up.is_none() {
            let _ = p.child.kill();
            let mut err = String::new();
            if let Some(mut e) = p.child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("tinyproxy did not listen on {addr}: {err}\n{}", p.log());
        }
        p
    }

    /// `http://HOST:PORT`, optionally with credentials.
    pub fn url(&self, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((u, p)) => format!("http://{u}:{p}@{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    /// The access log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The requests the log shows (`Request (file descriptor N): LINE`):
    /// `CONNECT host:port HTTP/1.1` for a tunnel, `GET http://...` for a
    /// plain request it relayed.
    pub fn requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| {
                l.split_once("): ")
                    .map(|(head, line)| (head, line.to_string()))
            })
            .filter(|(head, _)| head.contains("Request (file descriptor"))
            .map(|(_, line)| line)
            .collect()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
