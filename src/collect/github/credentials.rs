//! What a request to GitHub is signed with: the token from its source (read
//! on each use, so a rotated file takes effect), or a GitHub App's
//! installation token for the owner asked about. The github and queue
//! collectors each hold one.

use super::app::AppAuth;
use super::auth::{self, Secret, TokenSource};
use super::client::{ApiError, Client, ErrorKind};
use super::scope::Owner;
use crate::settings::Settings;
use crate::snapshot::ApiStats;

pub enum Credentials {
    Token(Option<TokenSource>),
    App(Box<AppAuth>),
}

impl Credentials {
    /// `[github.app]` when set, else the token source resolved once in the
    /// settings.
    pub fn new(settings: &Settings) -> Credentials {
        match &settings.config.github.app {
            Some(app) => Credentials::App(Box::new(AppAuth::new(app))),
            None => Credentials::Token(settings.token.clone()),
        }
    }

    /// One token serves every owner (an App's token is per installation).
    pub fn same_for_every_owner(&self) -> bool {
        matches!(self, Credentials::Token(_))
    }

    /// The secret to ask `base` about `owner` with. An App asks GitHub for
    /// the installation token through `client`, counted in `stats`.
    pub async fn secret(
        &mut self,
        client: Option<&mut Client>,
        base: &str,
        owner: &Owner,
        stats: &mut ApiStats,
        now: f64,
    ) -> Result<Secret, ApiError> {
        match self {
            Credentials::Token(Some(src)) => auth::read_token(src).map_err(ApiError::setup),
            Credentials::Token(None) => Err(ApiError::new(
                ErrorKind::Setup,
                "no GitHub credentials: set [github] token_file or [github.app], \
                 provide the systemd credential github-token, or set $GITHUB_TOKEN",
            )),
            Credentials::App(app) => {
                let client =
                    client.ok_or_else(|| ApiError::new(ErrorKind::Setup, "no HTTP client"))?;
                app.token(client, base, owner, stats, now).await
            }
        }
    }

    /// After GitHub refused a secret for `owner` (401): an App's token is
    /// forgotten so the next poll asks for a new one; a token is read again
    /// anyway.
    pub fn refused(&mut self, owner: &Owner) {
        if let Credentials::App(app) = self {
            app.invalidate(owner);
        }
    }
}
