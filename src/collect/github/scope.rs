//! Where to ask: the API base URL and the runner paths of a repository,
//! organization or enterprise, derived from a runner's `gitHubUrl` or from
//! the fleet lists in the config. Pure functions, no I/O.

use anyhow::{bail, Context};

/// Who a runner is registered with.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Owner {
    Repo { owner: String, repo: String },
    Org(String),
    Enterprise(String),
}

impl Owner {
    /// The path prefix of this owner's runner endpoints.
    pub fn path(&self) -> String {
        match self {
            Owner::Repo { owner, repo } => format!("/repos/{owner}/{repo}"),
            Owner::Org(org) => format!("/orgs/{org}"),
            Owner::Enterprise(slug) => format!("/enterprises/{slug}"),
        }
    }

    /// `GET {base}{path}/actions/runners/{id}`.
    pub fn runner_path(&self, id: u64) -> String {
        format!("{}/actions/runners/{id}", self.path())
    }

    /// The first page of the runner list, 100 runners per page.
    pub fn list_path(&self) -> String {
        format!("{}/actions/runners?per_page=100", self.path())
    }

    /// Where a GitHub App finds its installation for this owner; None for
    /// enterprises, which have no such endpoint (configure
    /// `installation_id`).
    pub fn installation_path(&self) -> Option<String> {
        match self {
            Owner::Repo { .. } | Owner::Org(_) => Some(format!("{}/installation", self.path())),
            Owner::Enterprise(_) => None,
        }
    }

    /// The account an App installation belongs to (repository owner or
    /// organization); installation ids are cached by it.
    pub fn account(&self) -> String {
        match self {
            Owner::Repo { owner, .. } => owner.to_ascii_lowercase(),
            Owner::Org(org) => org.to_ascii_lowercase(),
            Owner::Enterprise(slug) => format!("enterprises/{}", slug.to_ascii_lowercase()),
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Repo { owner, repo } => write!(f, "{owner}/{repo}"),
            Owner::Org(org) => write!(f, "{org}"),
            Owner::Enterprise(slug) => write!(f, "enterprises/{slug}"),
        }
    }
}

/// Owner, repository, organization and enterprise names as GitHub allows
/// them; anything else would change the request path.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn checked(s: &str, what: &str) -> anyhow::Result<String> {
    if !valid_name(s) {
        bail!("{what} {s:?} is not a valid GitHub name");
    }
    Ok(s.to_string())
}

/// `owner/repo` from `[github] repositories`.
pub fn repo_owner(entry: &str) -> anyhow::Result<Owner> {
    let (o, r) = entry
        .split_once('/')
        .with_context(|| format!("repository {entry:?} is not of the form owner/repo"))?;
    Ok(Owner::Repo {
        owner: checked(o, "owner")?,
        repo: checked(r, "repository")?,
    })
}

pub fn org_owner(org: &str) -> anyhow::Result<Owner> {
    Ok(Owner::Org(checked(org, "organization")?))
}

pub fn enterprise_owner(slug: &str) -> anyhow::Result<Owner> {
    Ok(Owner::Enterprise(checked(slug, "enterprise")?))
}

/// The REST API base for a GitHub host: github.com has `api.github.com`,
/// GitHub Enterprise Cloud with data residency (`*.ghe.com`) has
/// `api.HOST`, and GitHub Enterprise Server serves it under `/api/v3`.
pub fn api_base_for_host(scheme: &str, host: &str) -> String {
    let h = host.to_ascii_lowercase();
    if h == "github.com" || h == "www.github.com" {
        "https://api.github.com".to_string()
    } else if h.ends_with(".ghe.com") {
        format!("https://api.{h}")
    } else {
        format!("{scheme}://{host}/api/v3")
    }
}

/// Splits a runner's `gitHubUrl` (`https://HOST/owner/repo`,
/// `https://HOST/org` or `https://HOST/enterprises/slug`) into the API
/// base and the owner.
pub fn parse_github_url(url: &str) -> anyhow::Result<(String, Owner)> {
    let (scheme, rest) = url
        .split_once("://")
        .filter(|(s, _)| *s == "https" || *s == "http")
        .with_context(|| format!("gitHubUrl {url:?} is not an http(s) URL"))?;
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() || host.contains('@') {
        bail!("gitHubUrl {url:?} has no usable host");
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let owner = match parts.as_slice() {
        ["enterprises", slug] => enterprise_owner(slug)?,
        [org] => org_owner(org)?,
        [owner, repo] => Owner::Repo {
            owner: checked(owner, "owner")?,
            repo: checked(repo.trim_end_matches(".git"), "repository")?,
        },
        _ => bail!(
            "gitHubUrl {url:?} names no repository, organization or enterprise \
             (expected https://HOST/owner/repo, https://HOST/org or https://HOST/enterprises/slug)"
        ),
    };
    Ok((api_base_for_host(scheme, host), owner))
}

/// The scheme, host and port of a URL: requests and pagination links are
/// only followed within the configured API origin, so the token never goes
/// anywhere else.
pub fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// The `rel="next"` target of a `Link` header.
pub fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p == "rel=\"next\"" || p == "rel=next"
        });
        if !is_next {
            return None;
        }
        let t = target.trim();
        t.strip_prefix('<')?.strip_suffix('>').map(String::from)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(o: &str, r: &str) -> Owner {
        Owner::Repo {
            owner: o.into(),
            repo: r.into(),
        }
    }

    #[test]
    fn github_urls_map_to_api_bases_and_owners() {
        let cases = [
            (
                "https://github.com/acme/app",
                "https://api.github.com",
                repo("acme", "app"),
            ),
            (
                "https://github.com/acme/",
                "https://api.github.com",
                Owner::Org("acme".into()),
            ),
            (
                "https://github.com/enterprises/big-co",
                "https://api.github.com",
                Owner::Enterprise("big-co".into()),
            ),
            (
                "https://octo.ghe.com/acme/app",
                "https://api.octo.ghe.com",
                repo("acme", "app"),
            ),
            (
                "https://ghes.example.internal/acme",
                "https://ghes.example.internal/api/v3",
                Owner::Org("acme".into()),
            ),
            (
                "http://ghes:8080/acme/app.git",
                "http://ghes:8080/api/v3",
                repo("acme", "app"),
            ),
        ];
        for (url, base, owner) in cases {
            let (b, o) = parse_github_url(url).unwrap();
            assert_eq!((b.as_str(), &o), (base, &owner), "{url}");
        }
    }

    #[test]
    fn unusable_github_urls_are_errors() {
        for url in [
            "github.com/acme/app",
            "ftp://github.com/acme",
            "https://github.com",
            "https://github.com/a/b/c",
            "https://github.com/acme/a%2Fb",
            "https://github.com/../x",
            "https://user@github.com/acme",
        ] {
            assert!(parse_github_url(url).is_err(), "{url}");
        }
    }

    #[test]
    fn paths_for_each_owner_kind() {
        assert_eq!(
            repo("acme", "app").runner_path(23),
            "/repos/acme/app/actions/runners/23"
        );
        assert_eq!(
            Owner::Org("acme".into()).list_path(),
            "/orgs/acme/actions/runners?per_page=100"
        );
        assert_eq!(
            Owner::Enterprise("big".into()).runner_path(5),
            "/enterprises/big/actions/runners/5"
        );
        assert_eq!(
            repo("acme", "app").installation_path().as_deref(),
            Some("/repos/acme/app/installation")
        );
        assert_eq!(Owner::Enterprise("big".into()).installation_path(), None);
        assert!(repo_owner("acme").is_err());
        assert!(repo_owner("acme/app x").is_err());
    }

    #[test]
    fn next_links_are_found_among_others() {
        let h = "<https://api.github.com/repositories/1/actions/runners?per_page=100&page=2>; rel=\"next\", <https://api.github.com/repositories/1/actions/runners?per_page=100&page=10>; rel=\"last\"";
        assert_eq!(
            next_link(h).as_deref(),
            Some("https://api.github.com/repositories/1/actions/runners?per_page=100&page=2")
        );
        let last_page = "<https://x/a?page=1>; rel=\"prev\", <https://x/a?page=1>; rel=\"first\"";
        assert_eq!(next_link(last_page), None);
        assert_eq!(next_link(""), None);
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin("https://api.github.com/repos/a/b"),
            "https://api.github.com"
        );
        assert_eq!(origin("http://127.0.0.1:99/x?y=/z"), "http://127.0.0.1:99");
        assert_eq!(origin("http://127.0.0.1:99"), "http://127.0.0.1:99");
    }
}
