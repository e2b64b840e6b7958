//! The runner root's own files: `.runner` (the registration) and
//! `.service` (the unit name). Nothing else in the root is ever opened: the
//! credential files (`.credentials`, `.credentials_rsaparams`,
//! `.credential_store*`, `*_migrated`) and `.env` / `.path` are not read.

use super::tail::{open_regular, OpenError};
use crate::snapshot::Registration;
use anyhow::Context;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};

/// `.runner` is a few hundred bytes; more than this is not a registration.
const MAX_RUNNER_FILE: u64 = 64 * 1024;
const MAX_SERVICE_FILE: u64 = 4 * 1024;
/// The agent's default work folder, relative to the root.
pub const DEFAULT_WORK_FOLDER: &str = "_work";

/// Reads a small regular file (never a FIFO or symlink), at most `max`
/// bytes. `Ok(None)` when it does not exist.
fn read_small(path: &Path, max: u64) -> anyhow::Result<Option<Vec<u8>>> {
    let (file, meta) = match open_regular(path) {
        Ok(x) => x,
        Err(OpenError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(OpenError::Io(e)) => {
            return Err(e).with_context(|| format!("cannot open {}", path.display()))
        }
        Err(OpenError::NotRegular) => anyhow::bail!("{} is not a regular file", path.display()),
    };
    if meta.len() > max {
        anyhow::bail!(
            "{} is {} bytes, more than the {max} expected",
            path.display(),
            meta.len()
        );
    }
    let mut out = Vec::new();
    file.take(max)
        .read_to_end(&mut out)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Some(out))
}

/// Parses `.runner`: JSON with a UTF-8 BOM, camelCase fields, any of them
/// absent (the agent omits 0, false and null). A field of the wrong type is
/// treated as absent; text that is not a JSON object is an error.
pub fn parse_runner_file(bytes: &[u8]) -> anyhow::Result<Registration> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let v: Value = serde_json::from_slice(bytes).context("not valid JSON")?;
    let Value::Object(o) = v else {
        anyhow::bail!("not a JSON object");
    };
    let s = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
    let n = |k: &str| o.get(k).and_then(Value::as_u64);
    let b = |k: &str| o.get(k).and_then(Value::as_bool);
    Ok(Registration {
        agent_id: n("agentId"),
        agent_name: s("agentName").filter(|a| !a.is_empty()),
        pool_id: n("poolId"),
        pool_name: s("poolName"),
        server_url: s("serverUrl"),
        github_url: s("gitHubUrl"),
        work_folder: s("workFolder").filter(|w| !w.is_empty()),
        ephemeral: b("ephemeral").unwrap_or(false),
        disable_update: b("disableUpdate").unwrap_or(false),
        is_hosted_server: b("isHostedServer"),
    })
}

/// Reads and parses `<root>/.runner`; `Ok(None)` when it does not exist.
pub fn read_runner_file(root: &Path) -> anyhow::Result<Option<Registration>> {
    let path = root.join(".runner");
    let Some(bytes) = read_small(&path, MAX_RUNNER_FILE)? else {
        return Ok(None);
    };
    parse_runner_file(&bytes)
        .map(Some)
        .with_context(|| format!("cannot parse {}", path.display()))
}

/// Parses `.service`: the unit name and a newline.
pub fn parse_service_file(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let name = text.lines().next()?.trim();
    let ok = !name.is_empty()
        && name.len() <= 256
        && !name.contains(|c: char| c.is_whitespace() || c.is_control() || c == '/');
    ok.then(|| name.to_string())
}

/// Reads `<root>/.service`; `Ok(None)` when it does not exist or holds no
/// unit name.
pub fn read_service_file(root: &Path) -> anyhow::Result<Option<String>> {
    Ok(read_small(&root.join(".service"), MAX_SERVICE_FILE)?.and_then(|b| parse_service_file(&b)))
}

/// The work folder: `workFolder` relative to the root, or absolute.
pub fn work_dir(root: &Path, work_folder: Option<&str>) -> PathBuf {
    let wf = Path::new(work_folder.unwrap_or(DEFAULT_WORK_FOLDER));
    if wf.is_absolute() {
        wf.to_path_buf()
    } else {
        root.join(wf)
    }
}

/// statvfs of `dir`, or of its nearest existing ancestor when it does not
/// exist (yet): that is the filesystem it will be created on.
pub fn work_filesystem(dir: &Path) -> std::io::Result<crate::snapshot::FsUsage> {
    let mut last = None;
    for p in dir.ancestors() {
        match crate::collect::host::statvfs(p) {
            Ok(u) => return Ok(u),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_file_with_bom_and_missing_fields() {
        let r = parse_runner_file(
            b"\xEF\xBB\xBF{\"agentId\": 41, \"agentName\": \"deploy-primary\", \"poolName\": \"Default\", \"gitHubUrl\": \"https://github.com/acme\", \"workFolder\": \"/srv/runner-work\"}",
        )
        .unwrap();
        assert_eq!(r.agent_id, Some(41));
        assert_eq!(r.agent_name.as_deref(), Some("deploy-primary"));
        assert_eq!(r.pool_id, None);
        assert_eq!(r.github_url.as_deref(), Some("https://github.com/acme"));
        assert_eq!(r.work_folder.as_deref(), Some("/srv/runner-work"));
        assert!(!r.ephemeral && !r.disable_update);
        assert_eq!(r.is_hosted_server, None);

        let r = parse_runner_file(
            b"{\"ephemeral\": true, \"isHostedServer\": false, \"agentId\": \"x\"}",
        )
        .unwrap();
        assert!(r.ephemeral);
        assert_eq!(r.is_hosted_server, Some(false));
        assert_eq!(r.agent_id, None, "a field of the wrong type is absent");
        assert_eq!(parse_runner_file(b"{}").unwrap(), Registration::default());
    }

    #[test]
    fn corrupt_runner_files_are_errors() {
        for bad in [
            &b""[..],
            b"\xEF\xBB\xBF",
            b"{\"agentName\": ",
            b"[1]",
            b"\x00\x01garbage",
        ] {
            assert!(parse_runner_file(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn service_file_and_work_dir() {
        assert_eq!(
            parse_service_file(b"actions.runner.acme-app.linux_runner.service\n").as_deref(),
            Some("actions.runner.acme-app.linux_runner.service")
        );
        assert_eq!(parse_service_file(b"\n"), None);
        assert_eq!(parse_service_file(b"a b.service\n"), None);
        assert_eq!(parse_service_file(b"\xff\xfe"), None);
        let root = Path::new("/home/r/actions-runner");
        assert_eq!(work_dir(root, None), root.join("_work"));
        assert_eq!(work_dir(root, Some("w")), root.join("w"));
        assert_eq!(work_dir(root, Some("/srv/w")), Path::new("/srv/w"));
    }

    #[test]
    fn work_filesystem_falls_back_to_an_existing_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not/yet/created");
        let a = work_filesystem(&missing).unwrap();
        let b = crate::collect::host::statvfs(dir.path()).unwrap();
        assert_eq!(a.size, b.size);
    }
}
