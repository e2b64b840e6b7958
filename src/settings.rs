//! The effective configuration: the config file's values plus what they
//! leave to the environment, resolved once when the config is loaded (at
//! start and on each reload) and shared. Nothing else reads the
//! environment or the credentials directory to decide what to do.

use crate::collect::github::auth::{self, TokenSource};
use crate::config::{Config, Scope};
use crate::net::Network;
use std::sync::Arc;

/// A loaded config and what it resolved to.
#[derive(Debug, PartialEq)]
pub struct Settings {
    pub config: Config,
    /// `[github] scope`, or `self` when credentials are configured or
    /// found in the environment, else `off`.
    pub github_scope: Scope,
    /// Where the GitHub token comes from (None with a GitHub App, or no
    /// credentials at all).
    pub token: Option<TokenSource>,
    /// Proxies and trusted CAs for GitHub (and `check --url`): `[github]
    /// proxy`, `no_proxy`, `ca_file` and the proxy variables.
    pub network: Network,
}

impl Settings {
    /// Resolves `config` against the process environment
    /// (`$CREDENTIALS_DIRECTORY`, `$GITHUB_TOKEN`, the proxy variables).
    pub fn resolve(config: Config) -> Arc<Settings> {
        let token = if config.github.app.is_some() {
            None
        } else {
            auth::token_source_from_env(config.github.token_file.as_deref())
        };
        let network = Network::resolve(&config.github, &|k| std::env::var(k).ok());
        let mut settings = Self::with_token(config, token);
        settings.network = network;
        Arc::new(settings)
    }

    /// Resolves `config` with the token source given (tests, and the
    /// environment read by [`Settings::resolve`]); proxies from the config
    /// alone.
    pub fn with_token(config: Config, token: Option<TokenSource>) -> Settings {
        let credentials = token.is_some() || config.github.app.is_some();
        let github_scope = config.github.scope.unwrap_or(if credentials {
            Scope::SelfScope
        } else {
            Scope::Off
        });
        let network = Network::resolve(&config.github, &|_| None);
        Settings {
            config,
            github_scope,
            token,
            network,
        }
    }
}

impl Default for Settings {
    /// The defaults, without credentials.
    fn default() -> Self {
        Settings::with_token(Config::default(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::github::auth::Secret;

    #[test]
    fn scope_defaults_follow_credentials() {
        let env = Some(TokenSource::Env(Secret::new("t".into())));
        assert_eq!(Settings::default().github_scope, Scope::Off);
        assert_eq!(
            Settings::with_token(Config::default(), env.clone()).github_scope,
            Scope::SelfScope
        );
        let mut c = Config::default();
        c.github.token_file = Some("/etc/token".into());
        let file = Some(TokenSource::File("/etc/token".into()));
        assert_eq!(
            Settings::with_token(c.clone(), file).github_scope,
            Scope::SelfScope
        );
        c.github.scope = Some(Scope::Off);
        assert_eq!(Settings::with_token(c, env).github_scope, Scope::Off);
    }
}
