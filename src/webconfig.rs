//! `--web.config.file`: TLS, client certificates, basic auth and extra
//! response headers, in the file format of the Prometheus exporter-toolkit
//! (the one `promtool check web-config` validates).
//!
//! Supported: `tls_server_config` (`cert_file`/`cert`, `key_file`/`key`,
//! `client_auth_type`, `client_ca_file`/`client_ca`, `min_version`,
//! `max_version`, `cipher_suites`, `curve_preferences`,
//! `prefer_server_cipher_suites`), `http_server_config` (`headers`, `http2`:
//! accepted, the server speaks HTTP/1.1), and `basic_auth_users` (bcrypt).
//! Unknown keys, invalid values, and the few toolkit settings this exporter
//! cannot honour (`client_allowed_sans`, TLS 1.0/1.1, the P-521 curve,
//! cipher suites rustls does not implement) fail at start with the reason.

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use hyper::header::{HeaderName, HeaderValue};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tls_server_config: Option<TlsFile>,
    #[serde(default)]
    http_server_config: Option<HttpFile>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    #[serde(default)]
    cert: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    cert_file: Option<String>,
    #[serde(default)]
    key_file: Option<String>,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    client_ca_file: Option<String>,
    #[serde(default)]
    client_ca: Option<String>,
    #[serde(default)]
    cipher_suites: Option<Vec<String>>,
    #[serde(default)]
    curve_preferences: Option<Vec<String>>,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
    #[serde(default)]
    prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    #[serde(default)]
    http2: Option<bool>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
}

/// The response headers the toolkit allows, with their allowed values
/// (empty: any value).
const ALLOWED_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// A loaded, validated web config.
pub struct WebConfig {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub auth: Option<BasicAuth>,
}

impl WebConfig {
    /// Plain HTTP, no auth, no extra headers (no `--web.config.file`).
    pub fn none() -> WebConfig {
        WebConfig {
            tls: None,
            headers: Vec::new(),
            auth: None,
        }
    }
}

fn resolve(dir: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

fn read_pem(
    dir: &Path,
    file: Option<&str>,
    inline: Option<&str>,
    what: &str,
) -> anyhow::Result<Option<Vec<u8>>> {
    match (
        file.filter(|f| !f.is_empty()),
        inline.filter(|s| !s.is_empty()),
    ) {
        (Some(_), Some(_)) => bail!("both {what}_file and {what} are set; use one"),
        (Some(f), None) => {
            let path = resolve(dir, f);
            let data = std::fs::read(&path)
                .with_context(|| format!("cannot read {what}_file {}", path.display()))?;
            Ok(Some(data))
        }
        (None, Some(s)) => Ok(Some(s.as_bytes().to_vec())),
        (None, None) => Ok(None),
    }
}

fn tls_version(s: &str, key: &str) -> anyhow::Result<&'static rustls::SupportedProtocolVersion> {
    match s {
        "TLS13" => Ok(&rustls::version::TLS13),
        "TLS12" => Ok(&rustls::version::TLS12),
        "TLS10" | "TLS11" => bail!("tls_server_config.{key}: {s} is not supported (TLS 1.2 is the oldest this exporter speaks)"),
        other => bail!("tls_server_config.{key}: unknown TLS version {other:?} (expected TLS12 or TLS13)"),
    }
}

fn cipher_suite(name: &str) -> anyhow::Result<rustls::SupportedCipherSuite> {
    use rustls::crypto::ring::cipher_suite as cs;
    let all = [
        (
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        ("TLS_AES_128_GCM_SHA256", cs::TLS13_AES_128_GCM_SHA256),
        ("TLS_AES_256_GCM_SHA384", cs::TLS13_AES_256_GCM_SHA384),
        (
            "TLS_CHACHA20_POLY1305_SHA256",
            cs::TLS13_CHACHA20_POLY1305_SHA256,
        ),
    ];
    all.into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| s)
        .ok_or_else(|| anyhow!("tls_server_config.cipher_suites: {name:?} is not supported (rustls offers only AEAD ECDHE suites)"))
}

fn kx_group(name: &str) -> anyhow::Result<&'static dyn rustls::crypto::SupportedKxGroup> {
    use rustls::crypto::ring::kx_group as kx;
    match name {
        "X25519" => Ok(kx::X25519),
        "CurveP256" => Ok(kx::SECP256R1),
        "CurveP384" => Ok(kx::SECP384R1),
        "CurveP521" => bail!("tls_server_config.curve_preferences: CurveP521 is not supported by this exporter's TLS library"),
        other => bail!("tls_server_config.curve_preferences: unknown curve {other:?}"),
    }
}

/// Accepts any client certificate without verifying it: the toolkit's
/// `RequestClientCert` and `RequireAnyClientCert`.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    schemes: Vec<SignatureScheme>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

fn tls_config(dir: &Path, t: &TlsFile) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    let enabled = [
        &t.cert_file,
        &t.cert,
        &t.key_file,
        &t.key,
        &t.client_ca_file,
        &t.client_ca,
        &t.client_auth_type,
    ]
    .iter()
    .any(|v| v.as_deref().is_some_and(|s| !s.is_empty()));
    if !enabled {
        return Ok(None);
    }
    if t.client_allowed_sans.is_some() {
        bail!("tls_server_config.client_allowed_sans is not supported by runner-health-exporter; use RequireAndVerifyClientCert with a dedicated client CA");
    }
    let cert_pem = read_pem(dir, t.cert_file.as_deref(), t.cert.as_deref(), "cert")?
        .ok_or_else(|| anyhow!("tls_server_config: missing one of cert or cert_file"))?;
    let key_pem = read_pem(dir, t.key_file.as_deref(), t.key.as_deref(), "key")?
        .ok_or_else(|| anyhow!("tls_server_config: missing one of key or key_file"))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!("tls_server_config: cannot parse the certificate: {e}"))?;
    if certs.is_empty() {
        bail!("tls_server_config: the certificate file holds no PEM certificate");
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| anyhow!("tls_server_config: cannot parse the private key: {e}"))?;

    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(suites) = t.cipher_suites.as_ref().filter(|s| !s.is_empty()) {
        let mut chosen: Vec<rustls::SupportedCipherSuite> = suites
            .iter()
            .map(|s| cipher_suite(s))
            .collect::<Result<_, _>>()?;
        // Go applies cipher_suites to TLS 1.2 only; keep TLS 1.3 suites.
        for s in rustls::crypto::ring::DEFAULT_CIPHER_SUITES {
            if s.version() == &rustls::version::TLS13 && !chosen.contains(s) {
                chosen.push(*s);
            }
        }
        provider.cipher_suites = chosen;
    }
    if let Some(curves) = t.curve_preferences.as_ref().filter(|c| !c.is_empty()) {
        provider.kx_groups = curves
            .iter()
            .map(|c| kx_group(c))
            .collect::<Result<_, _>>()?;
    }
    let provider = Arc::new(provider);

    let min = tls_version(t.min_version.as_deref().unwrap_or("TLS12"), "min_version")?;
    let max = tls_version(t.max_version.as_deref().unwrap_or("TLS13"), "max_version")?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [&rustls::version::TLS12, &rustls::version::TLS13]
            .into_iter()
            .filter(|v| {
                let rank = |x: &rustls::SupportedProtocolVersion| {
                    if x.version == rustls::ProtocolVersion::TLSv1_3 {
                        1
                    } else {
                        0
                    }
                };
                rank(v) >= rank(min) && rank(v) <= rank(max)
            })
            .collect();
    if versions.is_empty() {
        bail!("tls_server_config: min_version is above max_version");
    }

    let ca_pem = read_pem(
        dir,
        t.client_ca_file.as_deref(),
        t.client_ca.as_deref(),
        "client_ca",
    )?;
    let auth_type = t.client_auth_type.as_deref().unwrap_or("");
    let roots = || -> anyhow::Result<Arc<rustls::RootCertStore>> {
        let pem = ca_pem.as_ref().ok_or_else(|| {
            anyhow!("tls_server_config: client_auth_type {auth_type} needs client_ca_file")
        })?;
        let mut store = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(pem) {
            let c =
                c.map_err(|e| anyhow!("tls_server_config: cannot parse client_ca_file: {e}"))?;
            store
                .add(c)
                .map_err(|e| anyhow!("tls_server_config: bad client CA certificate: {e}"))?;
        }
        if store.is_empty() {
            bail!("tls_server_config: client_ca_file holds no certificate");
        }
        Ok(Arc::new(store))
    };
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| anyhow!("tls_server_config: {e}"))?;
    let schemes = provider
        .signature_verification_algorithms
        .supported_schemes();
    let builder = match auth_type {
        "" | "NoClientCert" => {
            if ca_pem.is_some() {
                bail!("tls_server_config: client CAs are configured without a client_auth_type");
            }
            builder.with_no_client_auth()
        }
        "RequestClientCert" | "RequireAnyClientCert" | "RequireClientCert" => builder.with_client_cert_verifier(Arc::new(AnyClientCert {
            mandatory: auth_type != "RequestClientCert",
            schemes,
            provider: Arc::clone(&provider),
        })),
        "VerifyClientCertIfGiven" | "RequireAndVerifyClientCert" => {
            let mut v = WebPkiClientVerifier::builder_with_provider(roots()?, Arc::clone(&provider));
            if auth_type == "VerifyClientCertIfGiven" {
                v = v.allow_unauthenticated();
            }
            builder.with_client_cert_verifier(v.build().map_err(|e| anyhow!("tls_server_config: {e}"))?)
        }
        other => bail!("tls_server_config.client_auth_type: invalid value {other:?} (expected NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert)"),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        anyhow!("tls_server_config: certificate and key do not match or are unusable: {e}")
    })?;
    config.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// Parses and validates a web config file.
pub fn load(path: &Path) -> anyhow::Result<WebConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read web config {}", path.display()))?;
    parse(&text, path.parent().unwrap_or(Path::new(".")))
        .with_context(|| format!("invalid web config {}", path.display()))
}

/// Parses a web config; relative paths are resolved against `dir`.
pub fn parse(text: &str, dir: &Path) -> anyhow::Result<WebConfig> {
    let file: File = if text.trim().is_empty() {
        File::default()
    } else {
        serde_saphyr::from_str(text).map_err(|e| anyhow!("{e}"))?
    };
    let tls = match &file.tls_server_config {
        Some(t) => tls_config(dir, t)?,
        None => None,
    };
    let mut headers = Vec::new();
    if let Some(h) = file
        .http_server_config
        .as_ref()
        .and_then(|h| h.headers.as_ref())
    {
        for (k, v) in h {
            let Some((_, allowed)) = ALLOWED_HEADERS.iter().find(|(n, _)| n == k) else {
                bail!("http_server_config.headers: HTTP header {k:?} can not be configured");
            };
            if !allowed.is_empty() && !allowed.contains(&v.as_str()) {
                bail!("http_server_config.headers: invalid value for {k}: expected one of {allowed:?}, got {v:?}");
            }
            let name =
                HeaderName::from_bytes(k.as_bytes()).map_err(|e| anyhow!("header {k:?}: {e}"))?;
            let value = HeaderValue::from_str(v).map_err(|e| anyhow!("header {k:?}: {e}"))?;
            headers.push((name, value));
        }
    }
    let _ = file.http_server_config.as_ref().and_then(|h| h.http2);
    let auth = match file.basic_auth_users {
        Some(users) if !users.is_empty() => {
            for (user, hash) in &users {
                hash.parse::<bcrypt::HashParts>()
                    .map_err(|e| anyhow!("basic_auth_users.{user}: not a bcrypt hash: {e}"))?;
            }
            Some(BasicAuth::new(users))
        }
        _ => None,
    };
    Ok(WebConfig { tls, headers, auth })
}

/// Basic auth against bcrypt hashes.
///
/// A bcrypt hash takes a quarter of a second at cost 12, so it never runs
/// on the async workers: [`BasicAuth::verify`] runs it on the blocking
/// pool, one at a time, and the request waits for it without holding a
/// worker. Results are cached by a digest of (user, hash, password), so a
/// scraper sending the same credentials costs one bcrypt per config.
/// Accepted and refused credentials are cached apart: a flood of distinct
/// wrong passwords fills and clears only the refusals, and never evicts
/// the scraper's entry, whose requests therefore never wait behind the
/// flood's hashes. Unknown users are checked against a dummy hash so
/// timing does not reveal which users exist.
pub struct BasicAuth {
    users: BTreeMap<String, String>,
    accepted: Mutex<HashSet<[u8; 32]>>,
    refused: Mutex<HashSet<[u8; 32]>>,
    /// One hash at a time: a flood cannot take the blocking pool.
    hashing: Arc<tokio::sync::Semaphore>,
}

/// Bounded caches: each is cleared when it reaches this many entries.
const AUTH_CACHE_MAX: usize = 1024;

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| bcrypt::hash("not a real password", 10).unwrap_or_default())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn remember(cache: &Mutex<HashSet<[u8; 32]>>, key: [u8; 32]) {
    let mut c = lock(cache);
    if c.len() >= AUTH_CACHE_MAX {
        c.clear();
    }
    c.insert(key);
}

impl BasicAuth {
    fn new(users: BTreeMap<String, String>) -> BasicAuth {
        BasicAuth {
            users,
            accepted: Mutex::new(HashSet::new()),
            refused: Mutex::new(HashSet::new()),
            hashing: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    /// Checks an `Authorization` header value.
    pub async fn verify(&self, authorization: Option<&[u8]>) -> bool {
        let Some((user, pass)) = authorization.and_then(parse_basic) else {
            return false;
        };
        let known = self.users.get(&user);
        let hash: String = match known {
            Some(h) => h.clone(),
            None => dummy_hash().to_string(),
        };
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for part in [
            user.as_bytes(),
            b"\0",
            hash.as_bytes(),
            b"\0",
            pass.as_slice(),
        ] {
            ctx.update(part);
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        if lock(&self.accepted).contains(&key) {
            return known.is_some();
        }
        if lock(&self.refused).contains(&key) {
            return false;
        }
        // Waiting here holds no worker; the hash runs on the blocking pool.
        let Ok(_permit) = Arc::clone(&self.hashing).acquire_owned().await else {
            return false;
        };
        let matches =
            tokio::task::spawn_blocking(move || bcrypt::verify(&pass, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        let ok = matches && known.is_some();
        remember(if ok { &self.accepted } else { &self.refused }, key);
        ok
    }
}

/// `Basic base64(user:password)` → (user, password).
fn parse_basic(value: &[u8]) -> Option<(String, Vec<u8>)> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header() {
        let (u, p) = parse_basic(b"Basic YWxpY2U6c2U6Y3JldA==").unwrap();
        assert_eq!((u.as_str(), p.as_slice()), ("alice", b"se:cret".as_slice()));
        assert!(parse_basic(b"Bearer abc").is_none());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        let dir = Path::new("/");
        for (text, needle) in [
            ("bogus: 1\n", "bogus"),
            ("tls_server_config:\n  certfile: x\n", "certfile"),
            (
                "http_server_config:\n  headers:\n    X-Powered-By: me\n",
                "can not be configured",
            ),
            (
                "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
                "invalid value",
            ),
            ("basic_auth_users:\n  alice: plaintext\n", "bcrypt"),
            (
                "tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n",
                "/nonexistent.crt",
            ),
            (
                "tls_server_config:\n  key_file: /x.key\n",
                "missing one of cert",
            ),
        ] {
            let err = format!(
                "{:#}",
                parse(text, dir)
                    .err()
                    .unwrap_or_else(|| panic!("accepted {text:?}"))
            );
            assert!(err.contains(needle), "{text:?}: {err}");
        }
        assert!(parse("", dir).unwrap().tls.is_none());
    }

    #[tokio::test]
    async fn basic_auth_checks_and_caches() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let cfg = parse(
            &format!("basic_auth_users:\n  alice: {hash}\n"),
            Path::new("/"),
        )
        .unwrap();
        let auth = cfg.auth.unwrap();
        let header = |u: &str, p: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        assert!(
            auth.verify(Some(header("alice", "s3cret").as_bytes()))
                .await
        );
        assert!(
            auth.verify(Some(header("alice", "s3cret").as_bytes()))
                .await,
            "cached"
        );
        assert!(!auth.verify(Some(header("alice", "wrong").as_bytes())).await);
        assert!(!auth.verify(Some(header("bob", "s3cret").as_bytes())).await);
        assert!(!auth.verify(None).await);
        assert_eq!(auth.accepted.lock().unwrap().len(), 1);
        assert_eq!(auth.refused.lock().unwrap().len(), 2);
        // A flood of distinct wrong passwords never evicts the good entry.
        for i in 0..AUTH_CACHE_MAX as u64 + 5 {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&i.to_le_bytes());
            remember(&auth.refused, key);
        }
        assert_eq!(auth.accepted.lock().unwrap().len(), 1);
    }
}
