//! Runner versions (`2.330.0`, a release tag `v2.330.0`), compared
//! numerically: 2.330.0 is newer than 2.99.0.

use std::cmp::Ordering;
use std::fmt;

/// `major.minor.patch` of an actions/runner release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    /// Parses `2.330.0`, `v2.330.0` or `2.330.0-rc1` (a pre-release or
    /// build suffix after `-` or `+` is ignored). Exactly three numeric
    /// parts; anything else is None.
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let core = s.split(['-', '+']).next().unwrap_or(s);
        let mut parts = core.split('.');
        let mut num = || -> Option<u64> {
            let p = parts.next()?;
            if p.is_empty() || p.len() > 9 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            p.parse().ok()
        };
        let v = Version {
            major: num()?,
            minor: num()?,
            patch: num()?,
        };
        parts.next().is_none().then_some(v)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// How `current` compares with `latest`, when both parse.
pub fn compare(current: &str, latest: &str) -> Option<Ordering> {
    Some(Version::parse(current)?.cmp(&Version::parse(latest)?))
}

/// The version of a release tag (`v2.330.0` gives `2.330.0`).
pub fn from_tag(tag: &str) -> Option<String> {
    Version::parse(tag).map(|v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically_not_as_text() {
        assert_eq!(compare("2.99.0", "2.330.0"), Some(Ordering::Less));
        assert_eq!(compare("2.330.0", "2.330.0"), Some(Ordering::Equal));
        assert_eq!(compare("2.330.1", "v2.330.0"), Some(Ordering::Greater));
        assert_eq!(compare("3.0.0", "2.999.999"), Some(Ordering::Greater));
        assert_eq!(compare("2.317.0", "2.330.0"), Some(Ordering::Less));
        assert_eq!(compare("2.330.0-rc1", "2.330.0"), Some(Ordering::Equal));
        assert_eq!(compare("garbage", "2.330.0"), None);
    }

    #[test]
    fn only_three_numeric_parts_parse() {
        for bad in [
            "",
            "v",
            "2",
            "2.330",
            "2.330.0.1",
            "2..0",
            "2.x.0",
            "-1.0.0",
            " 2 .1.0",
            "99999999999.0.0",
        ] {
            assert_eq!(Version::parse(bad), None, "{bad:?}");
        }
        assert_eq!(from_tag("v2.330.0").as_deref(), Some("2.330.0"));
        assert_eq!(from_tag("2.317.0").as_deref(), Some("2.317.0"));
        assert_eq!(from_tag("latest"), None);
    }
}
