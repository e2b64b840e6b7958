//! Finding runner roots: `[[runner]] root`, unit working directories and
//! the `[runner_files] root_patterns` globs. A glob match is a root when it
//! is a directory holding `.runner` or `_diag` (checked with `stat`, never
//! by opening anything).

use std::path::{Component, Path, PathBuf};

/// Most directory entries looked at per directory while expanding a glob.
const MAX_ENTRIES_PER_DIR: usize = 10_000;
/// Most roots one pattern can yield.
const MAX_MATCHES: usize = 256;

/// A path with `.` components and trailing slashes removed, so that the
/// same root written two ways is one root.
pub fn normalize(p: &Path) -> PathBuf {
    p.components().filter(|c| *c != Component::CurDir).collect()
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// How one path component is matched: a hidden name only by a pattern
/// component that starts with a dot.
const MATCH: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: true,
};

/// Directories matching an absolute glob pattern (`glob` crate syntax:
/// `*`, `?`, `[...]`, `[!...]`), expanded one component at a time with a
/// bound on the entries read per directory and on the matches, so a
/// directory with a million entries cannot stall discovery. Hidden names
/// match only a pattern component that starts with a dot. Unreadable
/// directories are skipped; so is a pattern that is not a valid glob (the
/// config rejects those).
pub fn glob_dirs(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    if !path.is_absolute() {
        return Vec::new();
    }
    let mut current: Vec<PathBuf> = vec![PathBuf::from("/")];
    for comp in path.components().skip(1) {
        let Component::Normal(part) = comp else {
            continue;
        };
        let part = part.to_string_lossy();
        let matcher = if has_wildcard(&part) {
            match glob::Pattern::new(&part) {
                Ok(p) => Some(p),
                Err(_) => return Vec::new(),
            }
        } else {
            None
        };
        let mut next = Vec::new();
        for dir in &current {
            let Some(matcher) = &matcher else {
                next.push(dir.join(part.as_ref()));
                continue;
            };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.take(MAX_ENTRIES_PER_DIR).flatten() {
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if matcher.matches_with(name, MATCH) {
                    next.push(dir.join(name));
                }
            }
        }
        next.sort();
        next.truncate(MAX_MATCHES);
        current = next;
        if current.is_empty() {
            break;
        }
    }
    current.retain(|p| p.is_dir());
    current
}

/// True when `dir` looks like a runner root: it holds `.runner` or a
/// `_diag` directory.
pub fn is_runner_root(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir.join(".runner")).is_ok()
        || std::fs::metadata(dir.join("_diag")).is_ok_and(|m| m.is_dir())
}

/// Runner roots matching any of `patterns`, sorted, without duplicates.
pub fn glob_roots(patterns: &[String]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = patterns
        .iter()
        .flat_map(|p| glob_dirs(p))
        .filter(|d| is_runner_root(d))
        .map(|d| normalize(&d))
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(p: &str, n: &str) -> bool {
        glob::Pattern::new(p).is_ok_and(|p| p.matches_with(n, MATCH))
    }

    #[test]
    fn wildcards() {
        for (p, n) in [
            ("actions-runner*", "actions-runner"),
            ("actions-runner*", "actions-runner-2"),
            ("*", "x"),
            ("a?c", "abc"),
            ("[ab]x", "bx"),
            ("r[0-9]", "r7"),
            ("r[!0-9]", "rx"),
            ("*-runner-*", "gh-runner-1"),
            ("a*b*c", "aXbYbZc"),
            (".hidden*", ".hidden-runner"),
        ] {
            assert!(matches(p, n), "{p} should match {n}");
        }
        for (p, n) in [
            ("actions-runner*", "my-actions-runner"),
            ("a?c", "ac"),
            ("r[0-9]", "rx"),
            ("r[!0-9]", "r1"),
            ("a*b", "abc"),
            ("*", ".hidden"),
            ("[", "["),
        ] {
            assert!(!matches(p, n), "{p} should not match {n}");
        }
    }

    #[test]
    fn globs_find_roots_with_runner_or_diag() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path();
        for d in [
            "home/alice/actions-runner/_diag",
            "home/bob/actions-runner-2",
            "home/bob/actions-runner-empty",
            "home/.hidden/actions-runner/_diag",
            "opt/other",
        ] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        std::fs::write(base.join("home/bob/actions-runner-2/.runner"), b"{}").unwrap();
        std::fs::write(base.join("home/bob/actions-runner-file"), b"").unwrap();
        let pattern = format!("{}/home/*/actions-runner*", base.display());
        let roots = glob_roots(&[pattern, format!("{}/nowhere/*", base.display())]);
        assert_eq!(
            roots,
            [
                base.join("home/alice/actions-runner"),
                base.join("home/bob/actions-runner-2")
            ]
        );
        assert!(glob_dirs("relative/*").is_empty());
    }

    #[test]
    fn normalized_paths() {
        assert_eq!(normalize(Path::new("/opt/r/")), Path::new("/opt/r"));
        assert_eq!(normalize(Path::new("/opt/./r")), Path::new("/opt/r"));
    }
}
