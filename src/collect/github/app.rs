//! GitHub App credentials: an RS256 JWT signed with the App's private key
//! (PKCS#1 or PKCS#8 PEM) is exchanged for an installation token valid one
//! hour, cached and renewed five minutes before it expires. The
//! installation is configured, or found per account with
//! `GET /repos/{o}/{r}/installation` or `GET /orgs/{org}/installation`.

use super::auth::{warn_if_readable, Secret};
use super::client::{ApiError, Client, ErrorKind};
use super::scope::Owner;
use crate::config::GithubAppConfig;
use crate::snapshot::ApiStats;
use anyhow::{bail, Context};
use base64::Engine as _;
use hyper::Method;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Renew an installation token this long before it expires.
const RENEW_BEFORE: f64 = 300.0;
/// GitHub accepts a JWT that expires at most ten minutes after `iat`;
/// `iat` is set a minute in the past against clock drift.
const JWT_BACKDATE: u64 = 60;
const JWT_LIFETIME: u64 = 600;

/// Reads an RSA private key from a PEM file (`BEGIN RSA PRIVATE KEY` or
/// `BEGIN PRIVATE KEY`). Errors never contain key material.
pub fn load_key(path: &Path) -> anyhow::Result<RsaKeyPair> {
    let pem = std::fs::read(path)
        .with_context(|| format!("cannot read GitHub App private key {}", path.display()))?;
    let parsed = PrivateKeyDer::from_pem_slice(&pem);
    drop(Secret::new(String::from_utf8_lossy(&pem).into_owned()));
    let key = match parsed {
        Ok(PrivateKeyDer::Pkcs1(k)) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        Ok(PrivateKeyDer::Pkcs8(k)) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        Ok(_) => bail!(
            "GitHub App private key {} is not an RSA key",
            path.display()
        ),
        Err(_) => bail!(
            "GitHub App private key {} is not a PEM-encoded RSA private key (PKCS#1 or PKCS#8)",
            path.display()
        ),
    };
    key.map_err(|e| anyhow::anyhow!("GitHub App private key {} rejected: {e}", path.display()))
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// The App's JWT at `now` (epoch seconds).
pub fn jwt(app_id: u64, key: &RsaKeyPair, now: u64) -> anyhow::Result<Secret> {
    let header = b64(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "iat": now.saturating_sub(JWT_BACKDATE),
        "exp": now.saturating_sub(JWT_BACKDATE) + JWT_LIFETIME,
        "iss": app_id.to_string(),
    });
    let signing_input = format!("{header}.{}", b64(claims.to_string().as_bytes()));
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| anyhow::anyhow!("signing the GitHub App JWT failed"))?;
    Ok(Secret::new(format!("{signing_input}.{}", b64(&sig))))
}

#[derive(serde::Deserialize)]
struct Installation {
    id: u64,
}

#[derive(serde::Deserialize)]
struct AccessToken {
    token: String,
    expires_at: Option<String>,
}

pub struct AppAuth {
    app_id: u64,
    key_file: PathBuf,
    key: Option<RsaKeyPair>,
    installation_id: Option<u64>,
    /// Discovered installations by account.
    installations: HashMap<String, u64>,
    /// Installation tokens and when they expire (epoch seconds).
    tokens: HashMap<u64, (Secret, f64)>,
}

impl AppAuth {
    pub fn new(c: &GithubAppConfig) -> AppAuth {
        AppAuth {
            app_id: c.app_id,
            key_file: c.private_key_file.clone(),
            key: None,
            installation_id: c.installation_id,
            installations: HashMap::new(),
            tokens: HashMap::new(),
        }
    }

    fn key(&mut self) -> Result<&RsaKeyPair, ApiError> {
        if self.key.is_none() {
            warn_if_readable(&self.key_file, "the GitHub App private key");
            self.key = Some(load_key(&self.key_file).map_err(ApiError::setup)?);
        }
        self.key
            .as_ref()
            .ok_or_else(|| ApiError::new(ErrorKind::Setup, "no GitHub App key"))
    }

    fn jwt(&mut self, now: u64) -> Result<Secret, ApiError> {
        let app_id = self.app_id;
        let key = self.key()?;
        jwt(app_id, key, now).map_err(ApiError::setup)
    }

    /// Forgets the token used for `owner` (after a 401), so the next poll
    /// asks for a new one.
    pub fn invalidate(&mut self, owner: &Owner) {
        if let Some(id) = self.installation_for(owner) {
            self.tokens.remove(&id);
        }
    }

    fn installation_for(&self, owner: &Owner) -> Option<u64> {
        self.installation_id
            .or_else(|| self.installations.get(&owner.account()).copied())
    }

    /// An installation token for requests about `owner`.
    pub async fn token(
        &mut self,
        client: &mut Client,
        base: &str,
        owner: &Owner,
        stats: &mut ApiStats,
        now: f64,
    ) -> Result<Secret, ApiError> {
        let id = match self.installation_for(owner) {
            Some(id) => id,
            None => {
                let path = owner.installation_path().ok_or_else(|| {
                    ApiError::new(
                        ErrorKind::Setup,
                        format!("GitHub App: set [github.app] installation_id to reach {owner} (enterprises have no installation lookup)"),
                    )
                })?;
                let jwt = self.jwt(now as u64)?;
                let url = format!("{base}{path}");
                let reply = client.send(Method::GET, &url, &jwt, stats).await?;
                if reply.status == 404 {
                    return Err(ApiError {
                        message: format!(
                            "{}; is the GitHub App {} installed on {owner}?",
                            reply.error(&jwt).message,
                            self.app_id
                        ),
                        ..reply.error(&jwt)
                    });
                }
                if !reply.ok() {
                    return Err(reply.error(&jwt));
                }
                let inst: Installation = reply.json()?;
                tracing::info!(app_id = self.app_id, account = %owner.account(), installation_id = inst.id, "found GitHub App installation");
                self.installations.insert(owner.account(), inst.id);
                inst.id
            }
        };
        if let Some((token, expires)) = self.tokens.get(&id) {
            if *expires - now > RENEW_BEFORE {
                return Ok(token.clone());
            }
        }
        let jwt = self.jwt(now as u64)?;
        let url = format!("{base}/app/installations/{id}/access_tokens");
        let reply = client.send(Method::POST, &url, &jwt, stats).await?;
        if !reply.ok() {
            return Err(reply.error(&jwt));
        }
        let t: AccessToken = reply.json()?;
        let token = Secret::new(t.token);
        if token.expose().is_empty() {
            return Err(ApiError::new(
                ErrorKind::Malformed,
                format!("POST {url}: the answer holds no token"),
            ));
        }
        let expires = t
            .expires_at
            .as_deref()
            .and_then(crate::timefmt::parse_log_timestamp)
            .unwrap_or(now + 3600.0);
        tracing::debug!(
            installation_id = id,
            expires_in = expires - now,
            "new GitHub App installation token"
        );
        self.tokens.insert(id, (token.clone(), expires));
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn openssl(args: &[&str]) {
        let st = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
    }

    #[test]
    fn jwt_from_pkcs1_and_pkcs8_keys_verifies_with_the_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
        openssl(&["genrsa", "-traditional", "-out", &p("pkcs1.pem"), "2048"]);
        openssl(&[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            &p("pkcs1.pem"),
            "-out",
            &p("pkcs8.pem"),
        ]);
        openssl(&[
            "rsa",
            "-in",
            &p("pkcs1.pem"),
            "-RSAPublicKey_out",
            "-outform",
            "DER",
            "-out",
            &p("pub.der"),
        ]);
        assert!(std::fs::read_to_string(p("pkcs1.pem"))
            .unwrap()
            .contains("BEGIN RSA PRIVATE KEY"));
        assert!(std::fs::read_to_string(p("pkcs8.pem"))
            .unwrap()
            .contains("BEGIN PRIVATE KEY"));
        let public = std::fs::read(p("pub.der")).unwrap();
        for file in ["pkcs1.pem", "pkcs8.pem"] {
            let key = load_key(Path::new(&p(file))).unwrap();
            let token = jwt(4242, &key, 1_700_000_000).unwrap();
            let parts: Vec<&str> = token.expose().split('.').collect();
            assert_eq!(parts.len(), 3);
            let dec = |s: &str| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(s)
                    .unwrap()
            };
            let header: serde_json::Value = serde_json::from_slice(&dec(parts[0])).unwrap();
            assert_eq!(header["alg"], "RS256");
            let claims: serde_json::Value = serde_json::from_slice(&dec(parts[1])).unwrap();
            assert_eq!(claims["iat"], 1_700_000_000u64 - 60);
            assert_eq!(claims["exp"], 1_700_000_000u64 + 540);
            assert_eq!(claims["iss"], "4242");
            let signed = format!("{}.{}", parts[0], parts[1]);
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                &public,
            )
            .verify(signed.as_bytes(), &dec(parts[2]))
            .expect("signature verifies");
        }
    }

    #[test]
    fn unusable_keys_are_clear_errors_without_key_material() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("key.pem");
        std::fs::write(
            &f,
            "-----BEGIN RSA PRIVATE KEY-----\nSENTINELSENTINEL\n-----END RSA PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = format!("{:#}", load_key(&f).unwrap_err());
        assert!(e.contains("key.pem"), "{e}");
        assert!(!e.contains("SENTINEL"), "{e}");
        let e = format!("{:#}", load_key(&dir.path().join("none.pem")).unwrap_err());
        assert!(e.contains("cannot read GitHub App private key"), "{e}");
    }

    #[tokio::test]
    async fn installation_tokens_are_cached_and_renewed_before_they_expire() {
        use testkit::fake_github::FakeApp;
        let fake = testkit::FakeGithub::start();
        fake.enable_app(FakeApp {
            app_id: 9,
            installation_id: 5,
        });
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("app.pem");
        openssl(&["genrsa", "-out", key.to_str().unwrap(), "2048"]);
        let mut app = AppAuth::new(&GithubAppConfig {
            app_id: 9,
            private_key_file: key,
            installation_id: None,
        });
        let mut client = Client::new(
            std::time::Duration::from_secs(5),
            std::time::Duration::from_secs(5),
        )
        .unwrap();
        let mut stats = ApiStats::default();
        let owner = Owner::Org("acme".into());
        let base = fake.url();
        let now = crate::timefmt::now_unix();
        macro_rules! token {
            ($at:expr) => {
                app.token(&mut client, &base, &owner, &mut stats, $at)
                    .await
                    .unwrap()
            };
        }
        let t1 = token!(now);
        assert!(t1.expose().starts_with("ghs_"));
        // 50 minutes later the token still has 10 minutes: reused.
        assert_eq!(token!(now + 3000.0), t1);
        let routes = |f: &testkit::FakeGithub| -> Vec<String> {
            f.requests()
                .iter()
                .map(|r| format!("{} {}", r.method, r.route()))
                .collect()
        };
        assert_eq!(
            routes(&fake),
            [
                "GET /orgs/acme/installation",
                "POST /app/installations/5/access_tokens"
            ]
        );
        // Under five minutes left: renewed; the installation is remembered.
        let t2 = token!(now + 3400.0);
        assert_ne!(t2, t1);
        assert_eq!(routes(&fake).len(), 3);
        assert_eq!(routes(&fake)[2], "POST /app/installations/5/access_tokens");
        // After a 401 the cached token is dropped.
        app.invalidate(&owner);
        let t3 = token!(now + 3400.0);
        assert_ne!(t3, t2);
        assert_eq!(stats.requests.get("201"), Some(&3));
        // Enterprises have no installation lookup.
        let e = app
            .token(
                &mut client,
                &base,
                &Owner::Enterprise("big".into()),
                &mut stats,
                now,
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Setup);
        assert!(e.message.contains("installation_id"), "{}", e.message);
    }
}
