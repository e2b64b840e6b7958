//! Reaching GitHub from where runners live, with real parts: a real
//! tinyproxy (Debian package) between the exporter and the test GitHub
//! server, real TLS with a CA made in the test (openssl), and the real
//! binary. The test server listens on a non-loopback address of this host,
//! since some clients never send loopback through a proxy (the exporter, as
//! the runner, reaches loopback directly). The address needs root, as CI
//! runs the tests.
//!
//! The GitHub API is the only fake: `testkit::FakeGithub`, answering with
//! the official payloads, here over HTTPS.

use crate::github::{value, wait_at_least, wait_value};
use std::path::PathBuf;
use testkit::fake_github::official_runners;
use testkit::net::{free_port, LocalAddr, Tinyproxy};
use testkit::pki::Pki;
use testkit::{copy_dir, Exporter, FakeGithub};

const BIN: &str = env!("CARGO_BIN_EXE_runner-health-exporter");
const TOKEN: &str = "ghp_nettest0123456789";

/// A non-loopback address, a CA, and the fake GitHub on that address.
struct Site {
    addr: LocalAddr,
    dir: tempfile::TempDir,
    pki: Pki,
    github: FakeGithub,
}

impl Site {
    /// The fake GitHub over HTTPS, its certificate from the test CA.
    fn https() -> Site {
        let addr = LocalAddr::new();
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path());
        let (cert, key) = pki.server_for("github", addr.ip);
        let github = FakeGithub::start_https(&format!("{}:0", addr.ip), &cert, &key)
            .expect("the fake GitHub serves HTTPS");
        github.set_runners("repos/acme/app", official_runners());
        Site {
            addr,
            dir,
            pki,
            github,
        }
    }

    /// The fake GitHub over plain HTTP.
    fn http() -> Site {
        let addr = LocalAddr::new();
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path());
        let github = FakeGithub::start_on(&format!("{}:0", addr.ip)).expect("the fake GitHub");
        github.set_runners("repos/acme/app", official_runners());
        Site {
            addr,
            dir,
            pki,
            github,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn ca(&self) -> String {
        self.pki.path("ca.pem")
    }

    /// A config polling the fake every second: fleet scope over
    /// acme/app, or (`local`) self scope for a copy of the basic runner
    /// root, so that `/health` has a runner to report on. `github` adds
    /// `[github]` keys.
    fn config(&self, local: bool, github: &str) -> String {
        let token = self.path("token");
        std::fs::write(&token, TOKEN).unwrap();
        let (scope, other) = if local {
            let root = self.path("actions-runner");
            if !root.exists() {
                copy_dir(&testkit::fixtures_dir().join("runner/basic"), &root);
            }
            (
                "scope = \"self\"".to_string(),
                format!("[[runner]]\nroot = \"{}\"\n", root.display()),
            )
        } else {
            (
                "scope = \"fleet\"\nrepositories = [\"acme/app\"]".to_string(),
                "[runner_files]\nenabled = false\n".to_string(),
            )
        };
        let text = format!(
            "[host]\nenabled = false\n[systemd]\nenabled = false\n{other}\n[github]\napi_url = \"{}\"\n{scope}\ntoken_file = \"{}\"\npoll_interval = \"1s\"\nrequest_timeout = \"3s\"\nconnect_timeout = \"2s\"\n{github}\n",
            self.github.url(),
            token.display(),
        );
        let p = self.path("config.toml");
        std::fs::write(&p, text).unwrap();
        format!("--config.file={}", p.display())
    }

    /// `host:port` of the fake, as a proxy's log names it.
    fn authority(&self) -> String {
        self.github.addr.to_string()
    }
}

/// The `github_reachable` check of the first runner in `/health`:
/// status, reason, remediation, runbook.
fn reachable(e: &Exporter) -> (String, String, String, String) {
    let r = e.get_with("GET", "/health", &[("Accept", "application/json")]);
    let report: serde_json::Value = serde_json::from_str(&r.body()).expect("a JSON report");
    let c = report["runners"][0]["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["check"] == "github_reachable"))
        .unwrap_or_else(|| panic!("no github_reachable check: {report:#}"))
        .clone();
    let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
    (s("status"), s("reason"), s("remediation"), s("runbook"))
}

#[test]
fn https_through_a_real_proxy_with_the_ca_from_ca_file() {
    let site = Site::https();
    let proxy = Tinyproxy::start("127.0.0.1".parse().unwrap(), None);
    let closed = format!(
        "http://127.0.0.1:{}",
        free_port("127.0.0.1".parse().unwrap())
    );
    let arg = site.config(false, &format!("ca_file = \"{}\"", site.ca()));
    // As for the runner, the lower-case variable wins over the upper-case.
    let e = Exporter::start(
        BIN,
        &[&arg],
        &[("https_proxy", &proxy.url(None)), ("HTTPS_PROXY", &closed)],
    );
    wait_value(&e, "github_runner_registered{runner=\"linux_runner\"}", 1.0);
    let m = wait_at_least(
        &e,
        "github_runner_github_api_requests_total{code=\"304\"}",
        2.0,
    );
    assert_eq!(
        value(&m, "github_runner_github_info{runner=\"mac_runner\",id=\"24\",os=\"macos\",ephemeral=\"false\",owner=\"acme/app\"}"),
        Some(1.0)
    );
    drop(e);
    // Every connection the fake accepted is a tunnel the proxy logged.
    let tunnels = proxy.requests();
    assert!(!tunnels.is_empty(), "{}", proxy.log());
    for t in &tunnels {
        assert_eq!(
            t,
            &format!("CONNECT {} HTTP/1.1", site.authority()),
            "{}",
            proxy.log()
        );
    }
    assert_eq!(tunnels.len(), site.github.connections(), "{}", proxy.log());
    assert!(site.github.requests().len() >= 3);
}

#[test]
fn plain_http_requests_each_appear_in_the_proxy_log() {
    let site = Site::http();
    let proxy = Tinyproxy::start("127.0.0.1".parse().unwrap(), None);
    let arg = site.config(false, "");
    let e = Exporter::start(BIN, &[&arg], &[("ALL_PROXY", &proxy.url(None))]);
    wait_at_least(
        &e,
        "github_runner_github_api_requests_total{code=\"304\"}",
        2.0,
    );
    drop(e);
    let logged = proxy.requests();
    let sent = site.github.requests();
    assert_eq!(logged.len(), sent.len(), "{}", proxy.log());
    for (line, req) in logged.iter().zip(&sent) {
        assert_eq!(
            line,
            &format!("GET http://{}{} HTTP/1.1", site.authority(), req.path),
            "{}",
            proxy.log()
        );
    }
}

#[test]
fn a_no_proxy_match_goes_direct() {
    let site = Site::https();
    let proxy = Tinyproxy::start("127.0.0.1".parse().unwrap(), None);
    let arg = site.config(false, &format!("ca_file = \"{}\"", site.ca()));
    let e = Exporter::start(
        BIN,
        &[&arg],
        &[
            ("HTTPS_PROXY", &proxy.url(None)),
            ("NO_PROXY", &format!("ghes.example, {}", site.addr.ip)),
        ],
    );
    wait_at_least(
        &e,
        "github_runner_github_api_requests_total{code=\"304\"}",
        1.0,
    );
    drop(e);
    assert!(proxy.requests().is_empty(), "{}", proxy.log());
    assert!(site.github.requests().len() >= 2);
}

#[test]
fn a_proxy_asking_for_credentials_gives_a_clear_reason() {
    let site = Site::https();
    let proxy = Tinyproxy::start("127.0.0.1".parse().unwrap(), Some(("runner", "right-pass")));
    // No credentials: 407.
    let arg = site.config(
        true,
        &format!(
            "ca_file = \"{}\"\nproxy = \"{}\"",
            site.ca(),
            proxy.url(None)
        ),
    );
    let e = Exporter::start(BIN, &[&arg], &[]);
    let m = wait_value(
        &e,
        "github_runner_github_api_errors_total{reason=\"proxy_auth\"}",
        1.0,
    );
    assert_eq!(
        value(&m, "github_runner_github_owner_success{owner=\"acme/app\"}"),
        Some(0.0)
    );
    let (status, reason, fix, runbook) = reachable(&e);
    assert_eq!(status, "warn");
    assert!(
        reason.contains(&format!(
            "the proxy http://{} answered 407 Proxy Authentication Required: it wants a user and password",
            proxy.addr
        )),
        "{reason}"
    );
    assert!(fix.contains("[github] proxy"), "{fix}");
    assert!(runbook.ends_with("/github-proxy.md"), "{runbook}");
    drop(e);
    // Wrong credentials: tinyproxy answers them with 401, which the
    // tunnel does not pass on; the reason still names the credentials.
    let wrong = proxy.url(Some(("runner", "wrong-pass")));
    let arg = site.config(
        true,
        &format!("ca_file = \"{}\"\nproxy = \"{wrong}\"", site.ca()),
    );
    let e = Exporter::start(BIN, &[&arg], &[]);
    wait_value(
        &e,
        "github_runner_github_api_errors_total{reason=\"proxy\"}",
        1.0,
    );
    let (status, reason, _, _) = reachable(&e);
    assert_eq!(status, "warn");
    assert!(
        reason.contains(&format!(
            "the proxy http://runner:***@{} refused to open a tunnel",
            proxy.addr
        )) && reason.contains("it refused the user and password in the proxy URL"),
        "{reason}"
    );
    assert!(!e.logs().contains("wrong-pass"));
    assert!(
        site.github.requests().is_empty(),
        "nothing got past the proxy"
    );
    drop(e);
    // The right credentials, from the environment this time.
    let arg = site.config(true, &format!("ca_file = \"{}\"", site.ca()));
    let e = Exporter::start(
        BIN,
        &[&arg],
        &[("https_proxy", &proxy.url(Some(("runner", "right-pass"))))],
    );
    wait_value(&e, "github_runner_registered{runner=\"linux_runner\"}", 1.0);
    let (status, _, _, _) = reachable(&e);
    assert_eq!(status, "ok");
    assert!(!proxy.requests().is_empty());
    assert!(!e.logs().contains("right-pass"));
}

#[test]
fn an_unreachable_proxy_is_named_as_the_proxy() {
    let site = Site::https();
    let port = free_port("127.0.0.1".parse().unwrap());
    let arg = site.config(true, &format!("ca_file = \"{}\"", site.ca()));
    let e = Exporter::start(
        BIN,
        &[&arg],
        &[("HTTPS_PROXY", &format!("http://127.0.0.1:{port}"))],
    );
    wait_value(
        &e,
        "github_runner_github_api_errors_total{reason=\"proxy\"}",
        1.0,
    );
    let (status, reason, _, runbook) = reachable(&e);
    assert_eq!(status, "warn");
    assert!(
        reason.contains(&format!(
            "cannot connect to the proxy http://127.0.0.1:{port}: Connection refused"
        )),
        "{reason}"
    );
    assert!(runbook.ends_with("/github-proxy.md"));
}

#[test]
fn an_untrusted_certificate_is_an_unknown_issuer() {
    let site = Site::https();
    let arg = site.config(true, "");
    // The system store, as rustls-native-certs reads it, holds only an
    // unrelated CA.
    let e = Exporter::start(
        BIN,
        &[&arg],
        &[("SSL_CERT_FILE", &site.pki.path("other-ca.pem"))],
    );
    let m = wait_value(
        &e,
        "github_runner_github_api_errors_total{reason=\"tls\"}",
        1.0,
    );
    assert_eq!(
        value(
            &m,
            "github_runner_github_api_requests_total{code=\"error\"}"
        ),
        Some(1.0)
    );
    let (status, reason, fix, runbook) = reachable(&e);
    assert_eq!(status, "warn");
    assert!(
        reason.contains(&format!(
            "TLS: the certificate of {} is from an unknown issuer",
            site.addr.ip
        )),
        "{reason}"
    );
    assert!(fix.contains("[github] ca_file"), "{fix}");
    assert!(runbook.ends_with("/github-tls.md"), "{runbook}");
    assert!(site.github.requests().is_empty(), "no request got through");
    assert!(site.github.connections() >= 1, "the handshake was tried");
}

#[test]
fn the_system_store_is_trusted_through_ssl_cert_file() {
    let site = Site::https();
    let arg = site.config(false, "");
    let e = Exporter::start(BIN, &[&arg], &[("SSL_CERT_FILE", &site.ca())]);
    let m = wait_value(&e, "github_runner_registered{runner=\"linux_runner\"}", 1.0);
    assert_eq!(
        value(
            &m,
            "github_runner_exporter_collector_success{collector=\"github\"}"
        ),
        Some(1.0)
    );
}

#[test]
fn check_url_uses_the_same_proxy_and_ca_settings() {
    let site = Site::https();
    let proxy = Tinyproxy::start("127.0.0.1".parse().unwrap(), None);
    // The exporter itself serves HTTPS on the non-loopback address, with a
    // certificate from the test CA.
    let (cert, key) = site.pki.server_for("exporter", site.addr.ip);
    let web = site.path("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let arg = site.config(true, &format!("ca_file = \"{}\"", site.ca()));
    let e = Exporter::start(
        BIN,
        &[
            &arg,
            &format!("--web.config.file={}", web.display()),
            &format!("--web.listen-address={}:0", site.addr.ip),
        ],
        &[("SSL_CERT_FILE", &site.ca())],
    );
    assert_eq!(e.addr.ip(), site.addr.ip);
    let url = format!("https://{}", e.addr);
    // Through the proxy, trusting [github] ca_file: a report.
    let envs = [
        ("https_proxy", proxy.url(None)),
        ("SSL_CERT_FILE", site.pki.path("other-ca.pem")),
    ];
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = testkit::process::run(BIN, &["check", "--json", "--url", &url, &arg], &envs);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("check --url: {e}: {stderr}"));
    assert!(report["runners"].is_array(), "{report:#}");
    assert!(
        proxy
            .requests()
            .contains(&format!("CONNECT {} HTTP/1.1", e.addr)),
        "{}",
        proxy.log()
    );
    // Without the CA file: an unknown issuer, said so.
    let bare = site.path("bare.toml");
    std::fs::write(&bare, "").unwrap();
    let out = testkit::process::run(
        BIN,
        &[
            "check",
            "--url",
            &url,
            &format!("--config.file={}", bare.display()),
        ],
        &envs,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown issuer"), "{stderr}");
    // A no_proxy match goes direct: the proxy sees nothing more.
    let before = proxy.requests().len();
    let mut direct = envs.clone();
    let ip = site.addr.ip.to_string();
    direct.push(("no_proxy", &ip));
    let out = testkit::process::run(BIN, &["check", "--json", "--url", &url, &arg], &direct);
    assert!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(proxy.requests().len(), before, "{}", proxy.log());
}
