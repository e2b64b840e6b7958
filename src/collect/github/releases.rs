//! The latest actions/runner release (`GET /repos/actions/runner/releases/
//! latest`), asked at most hourly by the GitHub collector after a poll, with
//! the ETag of the last answer (an unchanged release is a free 304).
//!
//! It keeps a [`Client`] of its own: the poll's client forgets the ETag of
//! every URL a poll does not ask for (`Client::end_poll`), and this URL is
//! asked once an hour. A failure is logged once, keeps the last known
//! release and is retried an hour later; it never fails the poll. While
//! polls are stretched to keep the rate-limit reserve, it is not asked.
//! (Once the GitHub client goes through proxies, this client must be built
//! the same way.)

use super::auth::Secret;
use super::client::{ApiError, Client, ErrorKind};
use crate::net::Network;
use crate::snapshot::{ApiStats, LatestRunner};
use hyper::Method;
use std::time::Duration;
use tokio::time::Instant;

/// The release API path of the runner.
pub const LATEST_PATH: &str = "/repos/actions/runner/releases/latest";
/// How often GitHub is asked.
pub const INTERVAL: Duration = Duration::from_secs(3600);

#[derive(serde::Deserialize)]
struct Release {
    tag_name: String,
}

/// What the collector keeps between polls.
#[derive(Default)]
pub struct LatestRelease {
    client: Option<Client>,
    next: Option<Instant>,
    known: Option<LatestRunner>,
    /// The last failure logged (not repeated while it stays the same).
    logged: Option<String>,
}

impl LatestRelease {
    /// Whether an hour has passed since the last request (or none was made).
    pub fn due(&self) -> bool {
        self.next.is_none_or(|n| Instant::now() >= n)
    }

    /// The release last learned.
    pub fn known(&self) -> Option<LatestRunner> {
        self.known.clone()
    }

    /// A failure before any request (no credential for the API): logged
    /// once, tried again an hour later.
    pub fn skipped(&mut self, why: &str) {
        self.next = Some(Instant::now() + INTERVAL);
        self.log_failure(why.to_string());
    }

    fn log_failure(&mut self, message: String) {
        if self.logged.as_deref() != Some(message.as_str()) {
            tracing::warn!(error = %message, "cannot learn the latest actions/runner release; asking again in an hour (or set [github] runner_latest_version)");
            self.logged = Some(message);
        }
    }

    /// Asks `base` for the latest release with `token`, counting the
    /// request in `stats`.
    pub async fn check(
        &mut self,
        base: &str,
        token: &Secret,
        stats: &mut ApiStats,
        (timeouts, network): ((Duration, Duration), &Network),
        now: f64,
    ) {
        self.next = Some(Instant::now() + INTERVAL);
        match self.ask(base, token, stats, (timeouts, network), now).await {
            Ok(r) => {
                if self.known.as_ref().map(|k| &k.version) != Some(&r.version) {
                    tracing::info!(version = %r.version, "latest actions/runner release");
                }
                if self.logged.take().is_some() {
                    tracing::info!("the latest actions/runner release is known again");
                }
                self.known = Some(r);
            }
            Err(e) => self.log_failure(e.message),
        }
    }

    async fn ask(
        &mut self,
        base: &str,
        token: &Secret,
        stats: &mut ApiStats,
        ((connect, request), network): ((Duration, Duration), &Network),
        now: f64,
    ) -> Result<LatestRunner, ApiError> {
        // Through the same proxies and trust as the runner polls.
        if self.client.is_none() {
            self.client = Some(Client::with_network(connect, request, network)?);
        }
        let Some(client) = self.client.as_mut() else {
            return Err(ApiError::new(ErrorKind::Setup, "no HTTP client"));
        };
        let url = format!("{}{LATEST_PATH}", base.trim_end_matches('/'));
        let reply = client.send(Method::GET, &url, token, stats).await?;
        if !reply.ok() {
            return Err(reply.error(token));
        }
        let release: Release = reply.json()?;
        let version = crate::version::from_tag(&release.tag_name).ok_or_else(|| {
            ApiError::new(
                ErrorKind::Malformed,
                format!(
                    "GET {url}: tag_name {:?} is not a version",
                    release.tag_name.chars().take(64).collect::<String>()
                ),
            )
        })?;
        Ok(LatestRunner {
            version,
            checked_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::FakeGithub;

    #[tokio::test]
    async fn the_latest_release_is_asked_with_an_etag_and_parsed_from_its_tag() {
        let fake = FakeGithub::start();
        fake.set_latest_release(Some(FakeGithub::fixture_latest_release()));
        let mut r = LatestRelease::default();
        let mut stats = ApiStats::default();
        let token = Secret::new("t".into());
        let network = crate::net::Network::resolve(&Default::default(), &|_| None);
        let t = ((Duration::from_secs(2), Duration::from_secs(5)), &network);
        assert!(r.due());
        r.check(&fake.url(), &token, &mut stats, t, 7.0).await;
        assert_eq!(
            r.known(),
            Some(LatestRunner {
                version: "2.330.0".into(),
                checked_at: 7.0
            })
        );
        assert!(!r.due(), "asked again only in an hour");
        // Asked again: conditional, a 304 that keeps the version.
        r.next = None;
        r.check(&fake.url(), &token, &mut stats, t, 8.0).await;
        assert_eq!(r.known().map(|k| k.checked_at), Some(8.0));
        let reqs = fake.requests();
        assert_eq!(reqs.len(), 2);
        assert!(reqs.iter().all(|q| q.route() == LATEST_PATH));
        assert!(reqs[1].header("if-none-match").is_some());
        assert_eq!(reqs[1].status, 304);
        assert_eq!(stats.requests.get("304"), Some(&1));
        // A failure keeps what is known.
        fake.set_latest_release(None);
        r.next = None;
        r.check(&fake.url(), &token, &mut stats, t, 9.0).await;
        assert_eq!(r.known().map(|k| k.version), Some("2.330.0".into()));
        assert_eq!(r.logged.as_deref().map(|m| m.contains("404")), Some(true));
    }
}
