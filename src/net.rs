//! Outgoing HTTPS, for the GitHub client and `check --url`: which proxy a
//! request goes through and which certificate authorities are trusted.
//!
//! Proxies follow the runner ("Using a proxy server with self-hosted
//! runners"; actions/runner `RunnerWebProxy`): `https_proxy` for https://
//! URLs and `http_proxy` for http:// URLs, the lower-case variable before
//! the upper-case one, and `no_proxy` for hosts reached directly. Beyond
//! the runner, `all_proxy`/`ALL_PROXY` stands in for a missing scheme
//! variable, and `no_proxy` also takes IP addresses, CIDR blocks and `*`
//! (the runner ignores IP entries). `[github] proxy` and `[github]
//! no_proxy` replace their variables. Loopback is always reached directly,
//! as by the runner.
//!
//! Trust: the operating system's certificate store, read the way
//! `rustls-native-certs` reads it (so `SSL_CERT_FILE` and `SSL_CERT_DIR`
//! apply), plus the PEM bundle `[github] ca_file`.
//!
//! A proxy's password is a secret: [`ProxyUrl`] never prints it, and
//! [`Network::scrub`] removes it from any text before it is logged or
//! exported.

use crate::collect::github::auth::Secret;
use crate::config::GithubConfig;
use reqwest::Url;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A proxy URL: `http://[user[:password]@]host[:port]` (or `https://`; a
/// missing scheme means `http://`, a missing port the scheme's). It prints
/// as `http://user:***@host:port`.
#[derive(Clone)]
pub struct ProxyUrl {
    /// With the credentials, percent-encoded as given.
    url: Url,
    /// Without the password.
    shown: String,
    /// The password as written (percent-encoded) and decoded: what
    /// [`Network::scrub`] removes.
    secrets: Vec<Secret>,
}

impl ProxyUrl {
    /// Parses a proxy URL. Errors never contain the URL (it may hold a
    /// password).
    pub fn parse(text: &str) -> Result<ProxyUrl, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the proxy URL is empty".into());
        }
        let with_scheme = if text.contains("://") {
            text.to_string()
        } else {
            format!("http://{text}")
        };
        let url = Url::parse(&with_scheme).map_err(|e| format!("not a proxy URL: {e}"))?;
        match url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(format!(
                    "unsupported proxy scheme {other:?}: use an http:// or https:// proxy"
                ))
            }
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("the proxy URL has no host")?;
        if !(url.path().is_empty() || url.path() == "/")
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(
                "a proxy URL is scheme://[user:password@]host[:port], without a path".into(),
            );
        }
        let port = url
            .port_or_known_default()
            .ok_or("the proxy URL has no port")?;
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let user = decode(url.username());
        let mut secrets = Vec::new();
        let credentials = match url.password() {
            Some(p) => {
                for s in [p.to_string(), decode(p)] {
                    if !s.is_empty() && !secrets.iter().any(|x: &Secret| x.expose() == s) {
                        secrets.push(Secret::new(s));
                    }
                }
                format!("{user}:***@")
            }
            None if !user.is_empty() => format!("{user}@"),
            None => String::new(),
        };
        let shown = format!("{}://{credentials}{host}:{port}", url.scheme());
        Ok(ProxyUrl {
            url,
            shown,
            secrets,
        })
    }

    /// The URL with its credentials, for the HTTP client only.
    pub fn with_credentials(&self) -> &Url {
        &self.url
    }

    pub fn has_password(&self) -> bool {
        !self.secrets.is_empty()
    }
}

impl PartialEq for ProxyUrl {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({:?})", self.shown)
    }
}

impl Serialize for ProxyUrl {
    /// The URL without its password (`config check` prints it).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.shown)
    }
}

impl<'de> Deserialize<'de> for ProxyUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let parsed = ProxyUrl::parse(&s).map_err(serde::de::Error::custom);
        drop(Secret::new(s));
        parsed
    }
}

/// One `no_proxy` entry.
#[derive(Clone, Debug, PartialEq)]
enum Bypass {
    /// `*`: every host.
    All,
    /// An IP address, with a port or any port.
    Ip(IpAddr, Option<u16>),
    /// A CIDR block.
    Net(IpAddr, u8),
    /// `example.com` (the host and its subdomains) or `.example.com` (its
    /// subdomains only; `*.example.com` means the same), with a port or
    /// any port.
    Domain {
        name: String,
        subdomains_only: bool,
        port: Option<u16>,
    },
}

/// Hosts reached without the proxy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NoProxy {
    entries: Vec<Bypass>,
}

fn parse_port(p: &str, entry: &str) -> Result<u16, String> {
    p.parse::<u16>()
        .map_err(|_| format!("{entry:?}: {p:?} is not a port"))
}

fn parse_bypass(entry: &str) -> Result<Bypass, String> {
    if entry == "*" {
        return Ok(Bypass::All);
    }
    if let Some((addr, bits)) = entry.split_once('/') {
        let ip: IpAddr = addr
            .trim_matches(['[', ']'])
            .parse()
            .map_err(|_| format!("{entry:?} is not a CIDR block"))?;
        let bits: u8 = bits
            .parse()
            .map_err(|_| format!("{entry:?} is not a CIDR block"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if bits > max {
            return Err(format!("{entry:?}: the prefix is longer than {max} bits"));
        }
        return Ok(Bypass::Net(ip, bits));
    }
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Ok(Bypass::Ip(ip, None));
    }
    if let Some(rest) = entry.strip_prefix('[') {
        let (ip, port) = rest
            .split_once(']')
            .ok_or_else(|| format!("{entry:?}: unclosed ["))?;
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| format!("{entry:?} is not an IP address"))?;
        let port = match port.strip_prefix(':') {
            Some(p) => Some(parse_port(p, entry)?),
            None if port.is_empty() => None,
            None => return Err(format!("{entry:?} is not an address")),
        };
        return Ok(Bypass::Ip(ip, port));
    }
    let (host, port) = match entry.rsplit_once(':') {
        Some((h, p)) => (h, Some(parse_port(p, entry)?)),
        None => (entry, None),
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Bypass::Ip(ip, port));
    }
    let (name, subdomains_only) = match host.strip_prefix("*.").or_else(|| host.strip_prefix('.')) {
        Some(n) => (n, true),
        None => (host, false),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !valid {
        return Err(format!(
            "{entry:?} is not a host name, IP address or CIDR block"
        ));
    }
    Ok(Bypass::Domain {
        name,
        subdomains_only,
        port,
    })
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl NoProxy {
    /// Entries as a list (`[github] no_proxy`); an invalid entry is an
    /// error naming it.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<NoProxy, String> {
        let mut out = NoProxy::default();
        for e in entries {
            let e = e.as_ref().trim();
            if !e.is_empty() {
                out.entries.push(parse_bypass(e)?);
            }
        }
        Ok(out)
    }

    /// A comma-separated list (`$no_proxy`): invalid entries are left out
    /// and returned, as the runner ignores what it cannot use.
    pub fn parse_lenient(list: &str) -> (NoProxy, Vec<String>) {
        let mut out = NoProxy::default();
        let mut bad = Vec::new();
        for e in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match parse_bypass(e) {
                Ok(b) => out.entries.push(b),
                Err(why) => bad.push(why),
            }
        }
        (out, bad)
    }

    /// Whether `host` (a name, an IP address, or a bracketed IPv6 address)
    /// at `port` is reached directly.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        let port_ok = |p: &Option<u16>| p.is_none_or(|p| p == port);
        self.entries.iter().any(|e| match e {
            Bypass::All => true,
            Bypass::Ip(a, p) => ip == Some(*a) && port_ok(p),
            Bypass::Net(n, bits) => ip.is_some_and(|ip| in_net(ip, *n, *bits)),
            Bypass::Domain {
                name,
                subdomains_only,
                port: p,
            } => {
                let sub = host.len() > name.len()
                    && host.ends_with(name.as_str())
                    && host.as_bytes()[host.len() - name.len() - 1] == b'.';
                port_ok(p) && (sub || (!subdomains_only && host == *name))
            }
        })
    }
}

/// Where a setting came from, for messages: a config key or an
/// environment variable.
pub type Origin = &'static str;

/// The proxies of one config load.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProxyRules {
    pub https: Option<(ProxyUrl, Origin)>,
    pub http: Option<(ProxyUrl, Origin)>,
    pub no_proxy: NoProxy,
    pub no_proxy_origin: Option<Origin>,
    /// Proxy variables that are set but cannot be used: requests fail
    /// with these rather than silently bypassing the proxy meant.
    pub errors: Vec<String>,
    /// `no_proxy` entries left out.
    pub warnings: Vec<String>,
}

fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl ProxyRules {
    /// Resolves the proxies from the config and an environment lookup.
    pub fn resolve(config: &GithubConfig, env: &dyn Fn(&str) -> Option<String>) -> ProxyRules {
        let mut rules = ProxyRules::default();
        let var = |names: &[&'static str]| -> Option<(String, Origin)> {
            names.iter().find_map(|n| {
                env(n)
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .map(|v| (v, *n))
            })
        };
        match &config.proxy {
            Some(p) => {
                rules.https = Some((p.clone(), "[github] proxy"));
                rules.http = Some((p.clone(), "[github] proxy"));
            }
            None => {
                let mut from_env = |names: &[&'static str]| match var(names) {
                    Some((v, origin)) => {
                        let parsed = ProxyUrl::parse(&v);
                        drop(Secret::new(v));
                        match parsed {
                            Ok(p) => Some((p, origin)),
                            Err(e) => {
                                rules.errors.push(format!("${origin}: {e}"));
                                None
                            }
                        }
                    }
                    None => None,
                };
                let https = from_env(&["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]);
                let http = from_env(&["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]);
                rules.https = https;
                rules.http = http;
            }
        }
        match &config.no_proxy {
            Some(list) => {
                // Validated when the config was loaded.
                let (np, bad) = NoProxy::parse_lenient(&list.join(","));
                rules.no_proxy = np;
                rules.warnings = bad;
                rules.no_proxy_origin = Some("[github] no_proxy");
            }
            None => {
                if let Some((v, origin)) = var(&["no_proxy", "NO_PROXY"]) {
                    let (np, bad) = NoProxy::parse_lenient(&v);
                    rules.no_proxy = np;
                    rules.warnings = bad
                        .into_iter()
                        .map(|b| format!("${origin}: left out {b}"))
                        .collect();
                    rules.no_proxy_origin = Some(origin);
                }
            }
        }
        rules
    }

    /// The proxy for `url`, if it is not reached directly.
    pub fn proxy_for(&self, url: &Url) -> Option<&ProxyUrl> {
        let proxy = match url.scheme() {
            "https" => self.https.as_ref(),
            "http" => self.http.as_ref(),
            _ => None,
        }?;
        let host = url.host_str()?;
        let port = url.port_or_known_default()?;
        if is_loopback(host) || self.no_proxy.matches(host, port) {
            return None;
        }
        Some(&proxy.0)
    }

    fn proxies(&self) -> impl Iterator<Item = &ProxyUrl> {
        self.https.iter().chain(self.http.iter()).map(|(p, _)| p)
    }
}

/// How the exporter reaches the outside: proxies and trusted CAs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Network {
    pub proxies: ProxyRules,
    /// `[github] ca_file`.
    pub ca_file: Option<PathBuf>,
}

/// Why a client could not be built, or a request failed on its way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The proxy: unreachable, refused the tunnel, or its settings are
    /// unusable.
    Proxy,
    /// The proxy wants credentials (407).
    ProxyAuth,
    /// The server's certificate is not trusted, or the trust settings are
    /// unusable.
    Tls,
    /// No connection to the server itself.
    Connect,
    Timeout,
    Other,
}

/// A [`Failure`] with its message (secrets already removed).
#[derive(Clone, Debug)]
pub struct NetError {
    pub failure: Failure,
    pub message: String,
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NetError {}

/// What the client trusts, for the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trust {
    /// Certificates taken from the system store.
    pub system: usize,
    /// Certificates taken from `[github] ca_file`.
    pub ca_file: usize,
    /// Problems reading the system store (unreadable files), logged.
    pub system_errors: Vec<String>,
}

impl Network {
    /// The network settings of a config, with the environment read by
    /// `env` (`Settings::resolve` passes the process environment).
    pub fn resolve(config: &GithubConfig, env: &dyn Fn(&str) -> Option<String>) -> Network {
        Network {
            proxies: ProxyRules::resolve(config, env),
            ca_file: config.ca_file.clone(),
        }
    }

    /// Without a config: the process environment only.
    pub fn from_process_env() -> Network {
        Network::resolve(&GithubConfig::default(), &|k| std::env::var(k).ok())
    }

    /// Changes whenever a proxy URL (password included), `no_proxy` or
    /// the CA file changes; holds no secret.
    pub fn fingerprint(&self) -> String {
        let mut text = String::new();
        for (p, origin) in self.proxies.https.iter().chain(self.proxies.http.iter()) {
            text.push_str(origin);
            text.push(' ');
            text.push_str(p.url.as_str());
            text.push('\n');
        }
        text.push_str(&format!(
            "{:?}\n{:?}\n{:?}\n{:?}",
            self.proxies.no_proxy, self.proxies.no_proxy_origin, self.proxies.errors, self.ca_file
        ));
        let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
        drop(Secret::new(text));
        digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// One line for the log: the proxies, where they came from, `no_proxy`
    /// and the CA file. No password.
    pub fn describe(&self) -> String {
        let p = &self.proxies;
        let one = |x: &Option<(ProxyUrl, Origin)>| match x {
            Some((u, o)) => format!("{u} (from {o})"),
            None => "none".to_string(),
        };
        let mut s = format!("https proxy {}, http proxy {}", one(&p.https), one(&p.http));
        if let Some(o) = p.no_proxy_origin {
            s.push_str(&format!(
                ", no_proxy from {o} ({} entries)",
                p.no_proxy.entries.len()
            ));
        }
        match &self.ca_file {
            Some(f) => s.push_str(&format!(", CAs: system store and {}", f.display())),
            None => s.push_str(", CAs: system store"),
        }
        s
    }

    /// The proxy a request to `url` goes through.
    pub fn proxy_for(&self, url: &Url) -> Option<&ProxyUrl> {
        self.proxies.proxy_for(url)
    }

    /// `text` without any proxy password (as written or decoded).
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for p in self.proxies.proxies() {
            for s in &p.secrets {
                if out.contains(s.expose()) {
                    out = out.replace(s.expose(), "***");
                }
            }
        }
        out
    }

    /// The rustls configuration: ring, the system store and the CA file,
    /// HTTP/1.1.
    pub fn tls_config(&self) -> Result<(rustls::ClientConfig, Trust), NetError> {
        let tls_error = |message: String| NetError {
            failure: Failure::Tls,
            message,
        };
        let mut roots = rustls::RootCertStore::empty();
        let mut trust = Trust::default();
        let native = rustls_native_certs::load_native_certs();
        trust.system_errors = native.errors.iter().map(|e| e.to_string()).collect();
        let (added, _ignored) = roots.add_parsable_certificates(native.certs);
        trust.system = added;
        if let Some(path) = &self.ca_file {
            trust.ca_file = add_ca_file(&mut roots, path).map_err(tls_error)?;
        }
        if roots.is_empty() {
            return Err(tls_error(format!(
                "no trusted CA certificates: the system store has none{} and [github] ca_file is not set; install the ca-certificates package or set [github] ca_file",
                if trust.system_errors.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", trust.system_errors.join("; "))
                }
            )));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(format!("setting up TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok((config, trust))
    }

    /// An HTTP client that goes through the proxies and trusts the CAs of
    /// these settings. No redirects are followed (a token must not go
    /// anywhere else), HTTP/1.1 only.
    pub fn http_client(
        &self,
        connect_timeout: Duration,
        user_agent: &str,
    ) -> Result<(reqwest::Client, Trust), NetError> {
        if let Some(e) = self.proxies.errors.first() {
            return Err(NetError {
                failure: Failure::Proxy,
                message: format!("cannot use the proxy setting {e}"),
            });
        }
        let (tls, trust) = self.tls_config()?;
        let rules = Arc::new(self.proxies.clone());
        let proxy = reqwest::Proxy::custom(move |url| rules.proxy_for(url).map(|p| p.url.clone()));
        let client = reqwest::Client::builder()
            .no_proxy()
            .proxy(proxy)
            .tls_backend_preconfigured(tls)
            .http1_only()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(4)
            .tcp_nodelay(true)
            .user_agent(user_agent)
            .build()
            .map_err(|e| NetError {
                failure: Failure::Other,
                message: format!("building the HTTP client: {}", self.scrub(&chain(&e))),
            })?;
        Ok((client, trust))
    }

    /// Why a request to `url` failed, in words that say what to fix.
    pub fn classify(&self, url: &Url, e: &reqwest::Error) -> NetError {
        let proxy = self.proxy_for(url);
        let detail = self.scrub(&chain(e));
        let via = proxy
            .map(|p| format!(" through the proxy {p}"))
            .unwrap_or_default();
        let host = url.host_str().unwrap_or("");
        let (failure, message) = if let Some(tls) = find_tls_error(e) {
            (Failure::Tls, tls_message(tls, host, &via, &self.ca_file))
        } else if detail.contains("proxy authorization required") {
            (
                Failure::ProxyAuth,
                format!(
                    "the proxy {} answered 407 Proxy Authentication Required: {}",
                    proxy.map(ToString::to_string).unwrap_or_default(),
                    if proxy.is_some_and(ProxyUrl::has_password) {
                        "it refused the user and password in the proxy URL"
                    } else {
                        "it wants a user and password (http://user:password@host:port in [github] proxy or $https_proxy)"
                    }
                ),
            )
        } else if let Some(p) = proxy.filter(|_| e.is_connect() || detail.contains("tunnel error"))
        {
            let what = if detail.contains("tunnel error: unsuccessful") {
                // The proxy's status is not kept by the tunnel; some
                // proxies answer wrong credentials with 401 or 403.
                format!(
                    "the proxy {p} refused to open a tunnel to {host} (its answer to CONNECT was not 200: {})",
                    if p.has_password() {
                        format!("it refused the user and password in the proxy URL, does not allow {host}, or cannot reach it")
                    } else {
                        format!("it does not allow {host}, or cannot reach it")
                    }
                )
            } else if detail.contains("tunnel error: unexpected end of file") {
                format!("the proxy {p} closed the connection while opening a tunnel to {host}")
            } else {
                format!("cannot connect to the proxy {p}: {}", io_reason(&detail))
            };
            (Failure::Proxy, what)
        } else if e.is_timeout() {
            (
                Failure::Timeout,
                format!("no answer in time{via}: {detail}"),
            )
        } else if e.is_connect() {
            (Failure::Connect, format!("cannot connect{via}: {detail}"))
        } else {
            (Failure::Other, detail)
        };
        NetError { failure, message }
    }
}

fn add_ca_file(roots: &mut rustls::RootCertStore, path: &Path) -> Result<usize, String> {
    let key = "[github] ca_file";
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read {key} {}: {e}", path.display()))?;
    let mut n = 0;
    for (i, cert) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
        let cert = cert.map_err(|e| {
            format!(
                "{key} {}: certificate {} is not valid PEM: {e}",
                path.display(),
                i + 1
            )
        })?;
        roots.add(cert).map_err(|e| {
            format!(
                "{key} {}: certificate {} cannot be used as a CA: {e}",
                path.display(),
                i + 1
            )
        })?;
        n += 1;
    }
    if n == 0 {
        return Err(format!(
            "{key} {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(n)
}

/// The rustls error behind a failed request, if there is one. An
/// `io::Error` hides the error it wraps from `source()` (and the TLS
/// stream's error comes wrapped twice), so each is opened.
fn find_tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut depth = 0;
    while let Some(err) = cur {
        depth += 1;
        if depth > 32 {
            return None;
        }
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        cur = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

fn tls_message(e: &rustls::Error, host: &str, via: &str, ca_file: &Option<PathBuf>) -> String {
    use rustls::CertificateError as C;
    let trusted = match ca_file {
        Some(f) => format!("the system store or [github] ca_file {}", f.display()),
        None => "the system store ([github] ca_file is not set)".to_string(),
    };
    match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => format!(
            "TLS: the certificate of {host}{via} is from an unknown issuer: no CA in {trusted} signed it"
        ),
        rustls::Error::InvalidCertificate(C::NotValidForName)
        | rustls::Error::InvalidCertificate(C::NotValidForNameContext { .. }) => {
            format!("TLS: the certificate of {host}{via} is not valid for the name {host}")
        }
        rustls::Error::InvalidCertificate(C::Expired)
        | rustls::Error::InvalidCertificate(C::ExpiredContext { .. }) => {
            format!("TLS: the certificate of {host}{via} has expired (or this host's clock is wrong)")
        }
        rustls::Error::InvalidCertificate(C::NotValidYet)
        | rustls::Error::InvalidCertificate(C::NotValidYetContext { .. }) => format!(
            "TLS: the certificate of {host}{via} is not valid yet (or this host's clock is wrong)"
        ),
        other => format!("TLS handshake with {host}{via} failed: {other}"),
    }
}

/// "Connection refused" and the like from an error chain's text.
fn io_reason(detail: &str) -> String {
    for known in [
        "Connection refused",
        "Connection reset by peer",
        "No route to host",
        "Network is unreachable",
        "timed out",
        "failed to lookup address information",
    ] {
        if detail.contains(known) {
            return known.to_string();
        }
    }
    detail.to_string()
}

/// The error and its sources on one line, each said once.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s.chars().filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn shown(p: Option<&ProxyUrl>) -> Option<String> {
        p.map(ToString::to_string)
    }

    #[test]
    fn proxy_urls_parse_and_never_print_their_password() {
        let p = ProxyUrl::parse("http://alice:p%40SENTINEL@proxy.corp:3128").unwrap();
        assert_eq!(p.to_string(), "http://alice:***@proxy.corp:3128");
        assert_eq!(
            format!("{p:?}"),
            "ProxyUrl(\"http://alice:***@proxy.corp:3128\")"
        );
        let toml = toml::to_string(&std::collections::BTreeMap::from([("proxy", &p)])).unwrap();
        assert!(!toml.contains("SENTINEL"), "{toml}");
        assert_eq!(p.with_credentials().password(), Some("p%40SENTINEL"));
        // Both spellings of the password are scrubbed.
        let c = GithubConfig {
            proxy: Some(p),
            ..Default::default()
        };
        let n = Network::resolve(&c, &|_| None);
        assert_eq!(n.scrub("a p%40SENTINEL b p@SENTINEL c"), "a *** b *** c");
        // No scheme: http, the scheme's port when none is given.
        assert_eq!(
            ProxyUrl::parse("proxy:8080").unwrap().to_string(),
            "http://proxy:8080"
        );
        assert_eq!(
            ProxyUrl::parse("https://u@proxy").unwrap().to_string(),
            "https://u@proxy:443"
        );
        for bad in [
            "",
            "socks5://proxy:1080",
            "http://proxy:3128/path",
            "http://:3128",
            "http://u:SENTINEL@proxy:99999",
        ] {
            let e = ProxyUrl::parse(bad).unwrap_err();
            assert!(!e.contains("SENTINEL"), "{e}");
        }
    }

    #[test]
    fn environment_variables_follow_the_runner_lower_case_first() {
        let c = GithubConfig::default();
        let r = ProxyRules::resolve(
            &c,
            &env(&[
                ("https_proxy", "http://lower:3128"),
                ("HTTPS_PROXY", "http://upper:3128"),
                ("HTTP_PROXY", "http://plain:8080"),
                ("NO_PROXY", "internal.example, .corp"),
            ]),
        );
        assert_eq!(
            shown(r.proxy_for(&url("https://api.github.com/x"))),
            Some("http://lower:3128".into())
        );
        assert_eq!(r.https.as_ref().map(|x| x.1), Some("https_proxy"));
        assert_eq!(
            shown(r.proxy_for(&url("http://ghes.example/api/v3"))),
            Some("http://plain:8080".into())
        );
        assert_eq!(r.no_proxy_origin, Some("NO_PROXY"));
        assert_eq!(r.proxy_for(&url("https://internal.example/x")), None);
        assert_eq!(r.proxy_for(&url("https://ghes.internal.example/x")), None);
        assert_eq!(r.proxy_for(&url("https://a.corp/x")), None);
        assert!(
            r.proxy_for(&url("https://corp/x")).is_some(),
            ".corp: subdomains only"
        );
        // Loopback is always direct, as for the runner.
        assert_eq!(r.proxy_for(&url("https://127.0.0.1:9/x")), None);
        assert_eq!(r.proxy_for(&url("https://localhost/x")), None);
        assert_eq!(r.proxy_for(&url("https://[::1]:9/x")), None);
    }

    #[test]
    fn all_proxy_fills_in_and_the_config_wins() {
        let r = ProxyRules::resolve(
            &GithubConfig::default(),
            &env(&[("ALL_PROXY", "http://all:1"), ("http_proxy", "http://h:2")]),
        );
        assert_eq!(
            shown(r.proxy_for(&url("https://api.github.com"))),
            Some("http://all:1".into())
        );
        assert_eq!(
            shown(r.proxy_for(&url("http://ghes/api/v3"))),
            Some("http://h:2".into())
        );
        let c = GithubConfig {
            proxy: Some(ProxyUrl::parse("http://cfg:3").unwrap()),
            no_proxy: Some(vec!["10.0.0.0/8".into()]),
            ..Default::default()
        };
        let vars = [
            ("https_proxy", "http://env:4"),
            ("no_proxy", "api.github.com"),
        ];
        let r = ProxyRules::resolve(&c, &env(&vars));
        assert_eq!(
            shown(r.proxy_for(&url("https://api.github.com"))),
            Some("http://cfg:3".into()),
            "[github] no_proxy replaces $no_proxy"
        );
        assert_eq!(r.proxy_for(&url("https://10.1.2.3:8443/api/v3")), None);
        assert_eq!(r.https.as_ref().map(|x| x.1), Some("[github] proxy"));
    }

    #[test]
    fn unusable_environment_proxies_are_errors_not_silence() {
        let r = ProxyRules::resolve(
            &GithubConfig::default(),
            &env(&[("https_proxy", "socks5://u:SENTINEL@p:1080")]),
        );
        assert_eq!(r.https, None);
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        assert!(r.errors[0].starts_with("$https_proxy: unsupported proxy scheme"));
        assert!(!r.errors[0].contains("SENTINEL"));
        let n = Network {
            proxies: r,
            ca_file: None,
        };
        let e = n.http_client(Duration::from_secs(1), "t").unwrap_err();
        assert_eq!(e.failure, Failure::Proxy);
    }

    #[test]
    fn no_proxy_entries() {
        let np = NoProxy::parse(&[
            "example.com",
            ".sub.org",
            "*.star.net",
            "ghes.local:8443",
            "10.0.0.0/8",
            "192.168.1.5",
            "[fd00::1]:443",
            "fd00:1::/32",
        ])
        .unwrap();
        for (host, port, want) in [
            ("example.com", 443, true),
            ("API.Example.com", 443, true),
            ("notexample.com", 443, false),
            ("sub.org", 443, false),
            ("a.sub.org", 443, true),
            ("x.star.net", 443, true),
            ("star.net", 443, false),
            ("ghes.local", 8443, true),
            ("ghes.local", 443, false),
            ("10.9.8.7", 443, true),
            ("11.0.0.1", 443, false),
            ("192.168.1.5", 80, true),
            ("[fd00::1]", 443, true),
            ("fd00::1", 80, false),
            ("[fd00:1:2::3]", 1, true),
        ] {
            assert_eq!(np.matches(host, port), want, "{host}:{port}");
        }
        assert!(NoProxy::parse(&["*"]).unwrap().matches("anything", 1));
        for bad in ["a b", "10.0.0.0/33", "host:port", "/8"] {
            assert!(NoProxy::parse(&[bad]).is_err(), "{bad}");
        }
        let (np, bad) = NoProxy::parse_lenient("good.example, bad entry,,10.1.0.0/16");
        assert_eq!(bad.len(), 1);
        assert!(np.matches("good.example", 1) && np.matches("10.1.2.3", 1));
    }

    #[test]
    fn the_fingerprint_follows_the_password_without_holding_it() {
        let mk = |p: &str| {
            let c = GithubConfig {
                proxy: Some(ProxyUrl::parse(p).unwrap()),
                ..Default::default()
            };
            Network::resolve(&c, &|_| None)
        };
        let a = mk("http://u:SENTINEL1@p:1");
        let b = mk("http://u:SENTINEL2@p:1");
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert!(!a.fingerprint().contains("SENTINEL"));
        assert!(!a.describe().contains("SENTINEL"), "{}", a.describe());
        assert!(!format!("{a:?}").contains("SENTINEL"));
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ca.pem");
        std::fs::write(&f, "not a certificate\n").unwrap();
        let n = Network {
            ca_file: Some(f.clone()),
            ..Default::default()
        };
        let e = n.tls_config().unwrap_err();
        assert_eq!(e.failure, Failure::Tls);
        assert!(e.message.contains("holds no PEM certificate"), "{e}");
        let n = Network {
            ca_file: Some(dir.path().join("missing.pem")),
            ..Default::default()
        };
        let e = n.tls_config().unwrap_err();
        assert!(e.message.contains("cannot read [github] ca_file"), "{e}");
    }
}
