//! Credentials: the redacting [`Secret`] and where a token comes from.
//!
//! A token is read from `[github] token_file`, else from the systemd
//! credential `$CREDENTIALS_DIRECTORY/github-token` (`LoadCredential=`),
//! else from `$GITHUB_TOKEN`. Which one is decided once, when the config
//! is loaded ([`crate::settings::Settings`]); a file is re-read on every
//! poll, so a rotated file takes effect without a restart, and
//! `$GITHUB_TOKEN` is taken when the config is loaded. Nothing here ever
//! formats the token: errors name the file, never its content.

use anyhow::{bail, Context};
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// The systemd credential name the exporter looks for.
pub const CREDENTIAL_NAME: &str = "github-token";

/// A credential (token or JWT). `Debug` and `Display` print `[REDACTED]`;
/// the value is only reachable through [`Secret::expose`], whose one
/// caller puts it into a sensitive `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Best effort: overwrite the bytes before the allocation is freed.
        // SAFETY: zero bytes are valid UTF-8.
        unsafe { self.0.as_bytes_mut() }.fill(0);
    }
}

/// Where the token is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// `[github] token_file`.
    File(PathBuf),
    /// `$CREDENTIALS_DIRECTORY/github-token`.
    Credential(PathBuf),
    /// `$GITHUB_TOKEN`, as it was when the config was loaded.
    Env(Secret),
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::File(p) => write!(f, "token file {}", p.display()),
            TokenSource::Credential(p) => write!(f, "systemd credential {}", p.display()),
            TokenSource::Env(_) => f.write_str("$GITHUB_TOKEN"),
        }
    }
}

/// The first available source, in order of precedence.
pub fn token_source(
    token_file: Option<&Path>,
    credentials_dir: Option<&Path>,
    env_token: Option<Secret>,
) -> Option<TokenSource> {
    if let Some(p) = token_file {
        return Some(TokenSource::File(p.to_path_buf()));
    }
    if let Some(dir) = credentials_dir {
        let p = dir.join(CREDENTIAL_NAME);
        if p.exists() {
            return Some(TokenSource::Credential(p));
        }
    }
    env_token.map(TokenSource::Env)
}

/// The source from the process environment.
pub fn token_source_from_env(token_file: Option<&Path>) -> Option<TokenSource> {
    let creds = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    let env_token = std::env::var("GITHUB_TOKEN")
        .ok()
        .filter(|v| !v.is_empty())
        .map(Secret::new);
    token_source(token_file, creds.as_deref(), env_token)
}

/// True when a file mode lets group or others read.
pub fn readable_by_others(mode: u32) -> bool {
    mode & 0o044 != 0
}

/// Warns when a secret file is readable beyond its owner: once per process
/// for each path and mode, however many collectors (github, queue) read the
/// file, and again if its mode changes to another readable one.
pub fn warn_if_readable(path: &Path, what: &str) {
    use std::os::unix::fs::PermissionsExt;
    /// The paths and modes already warned about.
    static WARNED: std::sync::Mutex<Option<HashSet<(PathBuf, u32)>>> = std::sync::Mutex::new(None);
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o7777;
    if !readable_by_others(mode) {
        return;
    }
    let first = WARNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get_or_insert_with(HashSet::new)
        .insert((path.to_path_buf(), mode));
    if first {
        tracing::warn!(
            file = %path.display(),
            mode = %format!("{mode:04o}"),
            "{what} is readable by group or others; restrict it with chmod 600 (or 640 for a dedicated group)"
        );
    }
}

/// Trims a token read from a file or the environment and checks that it
/// fits in an HTTP header.
fn clean(raw: String, source: &TokenSource) -> anyhow::Result<Secret> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        bail!("{source} is empty");
    }
    if !trimmed.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        bail!("{source} holds characters that cannot be sent in an HTTP header");
    }
    let s = Secret::new(trimmed.to_string());
    drop(Secret::new(raw));
    Ok(s)
}

/// Reads the token from its source.
pub fn read_token(source: &TokenSource) -> anyhow::Result<Secret> {
    let raw = match source {
        TokenSource::File(p) | TokenSource::Credential(p) => {
            if matches!(source, TokenSource::File(_)) {
                warn_if_readable(p, "the GitHub token file");
            }
            std::fs::read_to_string(p).with_context(|| format!("cannot read {source}"))?
        }
        TokenSource::Env(token) => token.expose().to_string(),
    };
    clean(raw, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_format() {
        let s = Secret::new("ghp_SENTINEL".into());
        assert_eq!(
            format!("{s} {s:?} {:?}", Some(&s)),
            "[REDACTED] [REDACTED] Some([REDACTED])"
        );
        assert_eq!(s.expose(), "ghp_SENTINEL");
    }

    #[test]
    fn sources_in_order_of_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let file = Path::new("/etc/rhe/token");
        let env = || Some(Secret::new("ghp_env".into()));
        assert_eq!(
            token_source(Some(file), Some(dir.path()), env()),
            Some(TokenSource::File(file.into()))
        );
        // The credentials directory counts only when it holds github-token.
        assert_eq!(
            token_source(None, Some(dir.path()), env()),
            Some(TokenSource::Env(Secret::new("ghp_env".into())))
        );
        std::fs::write(dir.path().join(CREDENTIAL_NAME), "t").unwrap();
        assert_eq!(
            token_source(None, Some(dir.path()), env()),
            Some(TokenSource::Credential(dir.path().join(CREDENTIAL_NAME)))
        );
        assert_eq!(token_source(None, None, None), None);
        // The environment's token never prints.
        assert_eq!(
            format!("{:?}", env().map(TokenSource::Env)),
            "Some(Env([REDACTED]))"
        );
    }

    #[test]
    fn tokens_are_trimmed_and_checked_without_echoing_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        let src = TokenSource::File(p.clone());
        std::fs::write(&p, "ghp_abc\n").unwrap();
        assert_eq!(read_token(&src).unwrap().expose(), "ghp_abc");
        std::fs::write(&p, "  \n").unwrap();
        let e = read_token(&src).unwrap_err().to_string();
        assert!(e.contains("is empty"), "{e}");
        std::fs::write(&p, "ghp_SENTINEL with space").unwrap();
        let e = format!("{:#}", read_token(&src).unwrap_err());
        assert!(e.contains("cannot be sent"), "{e}");
        assert!(!e.contains("SENTINEL"), "{e}");
        let missing = TokenSource::File(dir.path().join("missing"));
        let e = format!("{:#}", read_token(&missing).unwrap_err());
        assert!(e.contains("cannot read token file"), "{e}");
    }

    #[test]
    fn modes_readable_by_others() {
        assert!(!readable_by_others(0o100600));
        assert!(!readable_by_others(0o100400));
        assert!(readable_by_others(0o100640));
        assert!(readable_by_others(0o100604));
    }
}
