//! The web config (exporter-toolkit format) and hostile clients: TLS, client
//! certificates, basic auth, headers, limits.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};
use testkit::pki::Pki;
use testkit::Exporter;

const BIN: &str = env!("CARGO_BIN_EXE_runner-health-exporter");

fn curl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl is installed");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn promtool_accepts(path: &std::path::Path) -> bool {
    Command::new("promtool")
        .args(["check", "web-config"])
        .arg(path)
        .output()
        .expect("promtool runs")
        .status
        .success()
}

fn start_with(dir: &std::path::Path, web_config: &str) -> Exporter {
    let path = dir.join("web.yml");
    std::fs::write(&path, web_config).unwrap();
    assert!(
        promtool_accepts(&path),
        "promtool rejects the test's own web config:\n{web_config}"
    );
    Exporter::start(
        BIN,
        &[&format!("--web.config.file={}", path.display())],
        &[],
    )
}

#[test]
fn tls_serves_https_only() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let e = start_with(
        dir.path(),
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n",
    );
    let url = format!("https://127.0.0.1:{}/metrics", e.addr.port());
    let (code, body, err) = curl(&["--cacert", &pki.path("ca.pem"), &url]);
    assert_eq!(code, 0, "{err}");
    assert!(body.contains("github_runner_exporter_build_info"));
    // Plain HTTP to the TLS port gets no metrics.
    let plain = testkit::get(e.addr, "/metrics");
    assert!(plain.map(|r| r.status != 200).unwrap_or(true));
    // A client that does not trust the CA refuses.
    let (code, _, _) = curl(&[&url]);
    assert_ne!(code, 0);
}

#[test]
fn client_certificates_are_required_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let e = start_with(
        dir.path(),
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  min_version: TLS13\n",
    );
    let url = format!("https://127.0.0.1:{}/metrics", e.addr.port());
    let ca = pki.path("ca.pem");
    let (code, body, err) = curl(&[
        "--cacert",
        &ca,
        "--cert",
        &pki.path("client.pem"),
        "--key",
        &pki.path("client.key"),
        &url,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(body.contains("# HELP"));
    let (code, _, _) = curl(&["--cacert", &ca, &url]);
    assert_ne!(code, 0, "no client certificate must fail");
    let (code, _, _) = curl(&[
        "--cacert",
        &ca,
        "--cert",
        &pki.path("stranger.pem"),
        "--key",
        &pki.path("stranger.key"),
        &url,
    ]);
    assert_ne!(code, 0, "a certificate from another CA must fail");
    let (code, _, _) = curl(&[
        "--cacert",
        &ca,
        "--cert",
        &pki.path("client.pem"),
        "--key",
        &pki.path("client.key"),
        "--tls-max",
        "1.2",
        &url,
    ]);
    assert_ne!(code, 0, "min_version TLS13 refuses TLS 1.2");
}

#[test]
fn basic_auth_and_headers() {
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("scrape-pass", 4).unwrap();
    let e = start_with(
        dir.path(),
        &format!("basic_auth_users:\n  prometheus: {hash}\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n    Content-Security-Policy: \"default-src 'none'\"\n"),
    );
    let base = format!("http://127.0.0.1:{}", e.addr.port());
    let r = e.get("/metrics");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"runner-health-exporter\"")
    );
    assert_eq!(r.header("x-frame-options"), Some("deny"));
    assert_eq!(e.get("/health").status, 401, "every path is protected");
    // A wrong password, and the right password for the wrong user.
    for user in ["prometheus:wrong", "nobody:scrape-pass"] {
        let (code, out, _) = curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-u",
            user,
            &format!("{base}/metrics"),
        ]);
        assert_eq!((code, out.as_str()), (0, "401"), "{user}");
    }
    let (code, out, _) = curl(&[
        "-D",
        "-",
        "-u",
        "prometheus:scrape-pass",
        &format!("{base}/metrics"),
    ]);
    assert_eq!(code, 0);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        out.to_lowercase()
            .contains("content-security-policy: default-src 'none'"),
        "{out}"
    );
    // Cached: many scrapes with the same credentials stay cheap.
    let t = Instant::now();
    for _ in 0..50 {
        let (code, _, _) = curl(&[
            "-o",
            "/dev/null",
            "-u",
            "prometheus:scrape-pass",
            &format!("{base}/metrics"),
        ]);
        assert_eq!(code, 0);
    }
    assert!(t.elapsed() < Duration::from_secs(30));
}

/// bcrypt at cost 12 takes a quarter of a second or more. A flood of
/// requests with distinct wrong passwords must not make an authorised
/// scraper, whose credentials are cached, wait behind those hashes.
#[test]
fn a_flood_of_wrong_passwords_does_not_stall_an_authorised_scrape() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("scrape-pass", 12).unwrap();
    let e = start_with(
        dir.path(),
        &format!("basic_auth_users:\n  prometheus: {hash}\n"),
    );
    let basic = |user: &str, pass: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    };
    let good = basic("prometheus", "scrape-pass");
    // The first scrape pays for its hash; later ones hit the cache.
    let first = e.get_with("GET", "/metrics", &[("Authorization", &good)]);
    assert_eq!(first.status, 200);
    let addr = e.addr;
    let flood: Vec<_> = (0..40)
        .map(|i| {
            let header = basic("prometheus", &format!("wrong-{i}"));
            std::thread::spawn(move || {
                testkit::http::get_with(addr, "GET", "/metrics", &[("Authorization", &header)])
                    .map(|r| r.status)
            })
        })
        .collect();
    // Let the flood reach the server and queue its hashes.
    std::thread::sleep(Duration::from_millis(300));
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let t = Instant::now();
        let r = e.get_with("GET", "/metrics", &[("Authorization", &good)]);
        slowest = slowest.max(t.elapsed());
        assert_eq!(r.status, 200);
        assert!(r.body().contains("github_runner_exporter_build_info"));
    }
    eprintln!("slowest authorised scrape during the flood: {slowest:?}");
    assert!(
        slowest < Duration::from_millis(100),
        "an authorised scrape took {slowest:?} while wrong passwords were hashed"
    );
    // Every wrong password is refused (they queue; 10 s per request is
    // the test client's read timeout, so only those answered count).
    let refused = flood
        .into_iter()
        .filter_map(|h| h.join().ok()?.ok())
        .filter(|status| *status == 401)
        .count();
    assert!(refused > 0, "no wrong password was answered with 401");
}

#[test]
fn invalid_web_configs_fail_at_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (text, needle) in [
        (
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  bogus: 1\n",
            "bogus",
        ),
        ("basic_auth_users:\n  alice: not-a-hash\n", "bcrypt"),
        (
            "http_server_config:\n  headers:\n    Server: nginx\n",
            "can not be configured",
        ),
        (
            "tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.key\n",
            "missing.pem",
        ),
    ] {
        let path = dir.path().join("web.yml");
        std::fs::write(&path, text).unwrap();
        let out = testkit::process::run(
            BIN,
            &[
                &format!("--web.config.file={}", path.display()),
                "--web.listen-address=127.0.0.1:0",
                "--config.file=/dev/null",
            ],
            &[],
        );
        assert_ne!(out.status.code(), Some(0), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{text}: {stderr}");
    }
}

#[test]
fn only_get_and_head_and_bounded_headers() {
    let e = Exporter::start(BIN, &[], &[]);
    for m in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
        assert_eq!(e.get_with(m, "/metrics", &[]).status, 405, "{m}");
    }
    let big = "x".repeat(64 * 1024);
    let r = testkit::get_with(e.addr, "GET", "/metrics", &[("X-Big", &big)]);
    assert!(
        r.map(|r| r.status == 431 || r.status == 400)
            .unwrap_or(true),
        "oversized headers refused"
    );
    assert_eq!(e.get("/metrics").status, 200, "still serving");
}

#[test]
fn idle_connections_do_not_slow_a_scrape() {
    let e = Exporter::start(BIN, &[], &[]);
    let baseline = {
        let t = Instant::now();
        for _ in 0..20 {
            assert_eq!(e.get("/metrics").status, 200);
        }
        t.elapsed() / 20
    };
    // 300 connections that never send a request.
    let idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(e.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    for _ in 0..20 {
        assert_eq!(e.get("/metrics").status, 200);
    }
    let loaded = t.elapsed() / 20;
    assert!(
        loaded < baseline * 5 + Duration::from_millis(20),
        "scrapes slowed from {baseline:?} to {loaded:?} with 300 idle connections"
    );
    drop(idle);
}

#[test]
fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let e = Exporter::start(BIN, &[], &[]);
    let mut s = TcpStream::connect(e.addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let t = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let waited = t.elapsed();
    assert!(
        waited < Duration::from_secs(15),
        "connection held {waited:?}"
    );
    assert!(
        waited >= Duration::from_secs(5),
        "closed too early: {waited:?}"
    );
}
