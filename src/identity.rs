//! One `runner` label everywhere.
//!
//! A runner is seen by three collectors: systemd (its unit), the runner
//! files (its root, `.runner` and logs) and GitHub (its registration). This
//! module joins them into one list of runners, each with one name: the
//! `agentName` from `.runner` (remembered after the file vanishes), else the
//! name GitHub lists, else a name taken from the unit, else the root's
//! directory name. Every collector's metrics use that name.
//!
//! Runner names are unique only within one repository, organization or
//! enterprise. In fleet scope a runner GitHub lists is joined to a local
//! runner of the same name only when their owners agree, and runners only
//! GitHub knows that share a name are told apart by their owner:
//! `linux_runner (acme/app)`, whatever order the owners answer in.

use crate::config::RunnerConfig;
use crate::snapshot::{
    GithubRunner, GithubState, RunnerRoot, RunnerState, Snapshot, SystemdState, UnitState,
};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// One runner as all collectors see it.
#[derive(Debug)]
pub struct RunnerView<'a> {
    pub name: String,
    pub root: Option<&'a RunnerRoot>,
    pub unit: Option<&'a UnitState>,
    pub github: Option<&'a GithubRunner>,
    pub config: Option<&'a RunnerConfig>,
}

/// Where a runner is in its life, as GitHub runs it: registered (waiting
/// for a job), busy (running one), and, for an ephemeral or JIT runner,
/// finished after its one job (it deleted its `.runner` and exited, by
/// design). Then gone: its root removed, its series end. A runner whose
/// `.runner` is missing without having finished so is unregistered (its
/// registration was deleted, or it was never configured).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    Registered,
    Busy,
    Finished,
    Unregistered,
}

impl Lifecycle {
    /// Every state, in the order they are exported.
    pub const ALL: [Lifecycle; 4] = [
        Lifecycle::Registered,
        Lifecycle::Busy,
        Lifecycle::Finished,
        Lifecycle::Unregistered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Registered => "registered",
            Lifecycle::Busy => "busy",
            Lifecycle::Finished => "finished",
            Lifecycle::Unregistered => "unregistered",
        }
    }
}

impl RunnerView<'_> {
    /// The runner's lifecycle state; None when nothing tells (no root and
    /// no GitHub data, or a root the exporter cannot read).
    ///
    /// Finished: `.runner` is gone and the log says the listener exited
    /// after its one job (`... running under onetime use mode.`), or the
    /// last `.runner` seen was ephemeral and the listener exited with
    /// return code 0.
    pub fn lifecycle(&self) -> Option<Lifecycle> {
        let busy = || {
            self.root.is_some_and(|r| r.logs.current_job.is_some())
                || self.github.is_some_and(|g| g.registered && g.busy)
        };
        if let Some(r) = self.root {
            if r.registration.is_some() {
                // GitHub answers 404: deleted there, whatever the file says.
                if self.github.is_some_and(|g| !g.registered) {
                    return Some(Lifecycle::Unregistered);
                }
                return Some(if busy() {
                    Lifecycle::Busy
                } else {
                    Lifecycle::Registered
                });
            }
            if !r.accessible {
                return None;
            }
            let finished = r.logs.onetime_exit_at.is_some()
                || (r.ephemeral_seen && r.logs.listener_exit_code == Some(0));
            return Some(if finished {
                Lifecycle::Finished
            } else {
                Lifecycle::Unregistered
            });
        }
        let g = self.github?;
        Some(if !g.registered {
            Lifecycle::Unregistered
        } else if g.busy {
            Lifecycle::Busy
        } else {
            Lifecycle::Registered
        })
    }

    pub fn role(&self) -> &str {
        self.config.and_then(|c| c.role.as_deref()).unwrap_or("")
    }

    pub fn environment(&self) -> &str {
        self.config
            .and_then(|c| c.environment.as_deref())
            .unwrap_or("")
    }
}

/// The runner name a unit implies when nothing better is known:
/// `actions.runner.<owner-repo>.<name>.service` gives `<name>`, and
/// `actions.runner._services.<name>.service` (GHES) gives `<name>`.
pub fn name_from_unit(unit: &str) -> String {
    let core = unit
        .strip_prefix("actions.runner.")
        .unwrap_or(unit)
        .strip_suffix(".service")
        .unwrap_or(unit);
    match core.split_once('.') {
        Some((_, name)) if !name.is_empty() => name.to_string(),
        _ => core.to_string(),
    }
}

fn same_path(a: &Path, b: &Path) -> bool {
    a == b || a.components().eq(b.components())
}

fn config_for<'a>(
    configs: &'a [RunnerConfig],
    root: Option<&Path>,
    units: &[&str],
) -> Option<&'a RunnerConfig> {
    configs.iter().find(|c| {
        c.root
            .as_deref()
            .zip(root)
            .is_some_and(|(a, b)| same_path(a, b))
            || c.unit.as_deref().is_some_and(|u| units.contains(&u))
    })
}

/// Joins the collectors' views of runners. Deterministic: roots first in
/// the order the runner collector lists them, then units nobody claimed,
/// then runners only GitHub knows.
pub fn runners(snap: &Snapshot) -> Vec<RunnerView<'_>> {
    let roots: &[RunnerRoot] = snap
        .state::<RunnerState>()
        .map_or(&[], |s| s.roots.as_slice());
    let units: &[UnitState] = snap
        .state::<SystemdState>()
        .map_or(&[], |s| s.units.as_slice());
    let github: &[GithubRunner] = snap
        .state::<GithubState>()
        .map_or(&[], |s| s.runners.as_slice());
    let configs = snap.settings.config.runners.as_slice();

    let mut views: Vec<RunnerView<'_>> = Vec::new();
    let mut unit_taken = vec![false; units.len()];

    for root in roots {
        // The unit running in the root wins over the one its `.service`
        // names (they differ only when the root was copied or the unit
        // reinstalled under another name).
        let free = |i: &usize| !unit_taken[*i];
        let unit_idx = (0..units.len())
            .filter(free)
            .find(|&i| {
                units[i]
                    .working_directory
                    .as_deref()
                    .is_some_and(|wd| same_path(wd, &root.root))
            })
            .or_else(|| {
                (0..units.len())
                    .filter(free)
                    .find(|&i| root.service_unit.as_deref() == Some(units[i].name.as_str()))
            });
        if let Some(i) = unit_idx {
            unit_taken[i] = true;
        }
        let unit = unit_idx.map(|i| &units[i]);
        let mut unit_names: Vec<&str> = Vec::new();
        if let Some(u) = unit {
            unit_names.push(&u.name);
        }
        if let Some(s) = root.service_unit.as_deref() {
            unit_names.push(s);
        }
        views.push(RunnerView {
            name: String::new(),
            root: Some(root),
            unit,
            github: None,
            config: config_for(configs, Some(&root.root), &unit_names),
        });
    }
    for (i, u) in units.iter().enumerate() {
        if unit_taken[i] {
            continue;
        }
        views.push(RunnerView {
            name: String::new(),
            root: None,
            unit: Some(u),
            github: None,
            config: config_for(configs, u.working_directory.as_deref(), &[&u.name]),
        });
    }
    // Self scope: attach by root. Fleet scope: by name, below.
    let mut fleet: Vec<&GithubRunner> = Vec::new();
    for g in github {
        let by_root = g.root.as_deref().and_then(|r| {
            views
                .iter_mut()
                .find(|v| v.github.is_none() && v.root.is_some_and(|x| same_path(&x.root, r)))
        });
        match by_root {
            Some(v) => v.github = Some(g),
            None => fleet.push(g),
        }
    }
    for v in &mut views {
        v.name = local_name(v);
    }
    for g in fleet {
        match views
            .iter_mut()
            .find(|v| v.github.is_none() && v.name == g.name && same_owner(v, g))
        {
            Some(v) => v.github = Some(g),
            None => views.push(RunnerView {
                name: g.name.clone(),
                root: None,
                unit: None,
                github: Some(g),
                config: None,
            }),
        }
    }
    // Runners only GitHub knows, sharing a name with another runner: each
    // is named with its owner. Every one of them, not all but the first,
    // so a name does not depend on which owner answered first.
    let mut count: HashMap<String, usize> = HashMap::new();
    for v in &views {
        *count.entry(v.name.clone()).or_default() += 1;
    }
    for v in &mut views {
        if v.root.is_none() && v.unit.is_none() && count.get(&v.name).is_some_and(|n| *n > 1) {
            if let Some(g) = v.github.filter(|g| !g.owner.is_empty()) {
                v.name = format!("{} ({})", v.name, g.owner);
            }
        }
    }
    // Two roots registered under one name must still give distinct series;
    // whatever is left over gets a number.
    let mut seen: HashSet<String> = HashSet::new();
    for v in &mut views {
        if !seen.insert(v.name.clone()) {
            let place = v
                .root
                .map(|r| r.root.display().to_string())
                .or_else(|| v.unit.map(|u| u.name.clone()))
                .or_else(|| {
                    v.github
                        .and_then(|g| g.id.as_ref())
                        .map(|id| format!("id {id}"))
                })
                .unwrap_or_default();
            let mut name = format!("{} ({place})", v.name);
            let mut n = 2;
            while seen.contains(&name) {
                name = format!("{} ({place} #{n})", v.name);
                n += 1;
            }
            v.name = name;
            seen.insert(v.name.clone());
        }
    }
    views
}

/// Whether a runner GitHub lists can be the local runner of a view: the
/// owner of the local registration's gitHubUrl is the listed runner's
/// owner (or either is unknown).
fn same_owner(v: &RunnerView<'_>, g: &GithubRunner) -> bool {
    let local = v
        .root
        .and_then(|r| r.registration.as_ref())
        .and_then(|reg| reg.github_url.as_deref())
        .and_then(|url| crate::collect::github::scope::parse_github_url(url).ok())
        .map(|(_, owner)| owner.to_string());
    match local {
        Some(owner) if !g.owner.is_empty() => owner.eq_ignore_ascii_case(&g.owner),
        _ => true,
    }
}

fn local_name(v: &RunnerView<'_>) -> String {
    if let Some(n) = v.root.and_then(|r| {
        r.registration
            .as_ref()
            .and_then(|reg| reg.agent_name.clone())
            .or_else(|| r.agent_name.clone())
    }) {
        return n;
    }
    if let Some(g) = v.github {
        return g.name.clone();
    }
    if let Some(u) = v.unit {
        return name_from_unit(&u.name);
    }
    if let Some(s) = v.root.and_then(|r| r.service_unit.as_deref()) {
        return name_from_unit(s);
    }
    v.root
        .and_then(|r| r.root.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::snapshot::{Registration, RunnerState, SystemdState};
    use std::path::PathBuf;

    fn unit(name: &str, wd: Option<&str>) -> UnitState {
        UnitState {
            name: name.into(),
            working_directory: wd.map(PathBuf::from),
            ..Default::default()
        }
    }

    fn snapshot(config: Config) -> Snapshot {
        let settings = crate::settings::Settings::with_token(config, None);
        crate::collect::registry::empty_snapshot(std::sync::Arc::new(settings))
    }

    fn root(path: &str, agent: Option<&str>, service: Option<&str>) -> RunnerRoot {
        RunnerRoot {
            root: path.into(),
            registration: agent.map(|a| Registration {
                agent_name: Some(a.into()),
                ..Default::default()
            }),
            service_unit: service.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn unit_names_give_runner_names() {
        assert_eq!(
            name_from_unit("actions.runner.acme-app.linux_runner.service"),
            "linux_runner"
        );
        assert_eq!(
            name_from_unit("actions.runner._services.ghes-1.service"),
            "ghes-1"
        );
        assert_eq!(name_from_unit("custom.service"), "custom");
    }

    #[test]
    fn a_unit_and_its_root_are_one_runner_named_by_agent_name() {
        let mut config = Config::default();
        config.runners.push(RunnerConfig {
            unit: Some("actions.runner.acme-app.x1.service".into()),
            role: Some("primary".into()),
            ..Default::default()
        });
        let mut snap = snapshot(config);
        snap.set(
            "systemd",
            SystemdState {
                units: vec![
                    unit("actions.runner.acme-app.x1.service", Some("/opt/a")),
                    unit("actions.runner.acme-app.y2.service", Some("/opt/b")),
                ],
                ..Default::default()
            },
        );
        snap.set(
            "runner",
            RunnerState {
                roots: vec![
                    root("/opt/a", Some("deploy-primary"), None),
                    root("/opt/c", None, Some("actions.runner.acme-app.y2.service")),
                ],
            },
        );
        let v = runners(&snap);
        let names: Vec<&str> = v.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["deploy-primary", "y2"]);
        assert_eq!(v[0].role(), "primary");
        assert_eq!(
            v[1].unit.map(|u| u.name.as_str()),
            Some("actions.runner.acme-app.y2.service")
        );
    }

    fn listed(name: &str, owner: &str, id: u64) -> GithubRunner {
        GithubRunner {
            name: name.into(),
            id: Some(id.into()),
            owner: owner.into(),
            registered: true,
            ..Default::default()
        }
    }

    #[test]
    fn fleet_runners_sharing_a_name_are_named_by_owner_in_any_order() {
        let owners = ["acme/app1", "acme/app2", "acme/app3"];
        let mut first: Option<Vec<String>> = None;
        for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0]] {
            let mut snap = snapshot(Config::default());
            snap.set(
                "github",
                GithubState {
                    runners: order
                        .iter()
                        .map(|&i| listed("linux_runner", owners[i], 23 + i as u64))
                        .chain(std::iter::once(listed("mac_runner", "acme/app1", 30)))
                        .collect(),
                    ..Default::default()
                },
            );
            let mut names: Vec<String> = runners(&snap).into_iter().map(|v| v.name).collect();
            names.sort();
            assert_eq!(
                names,
                [
                    "linux_runner (acme/app1)",
                    "linux_runner (acme/app2)",
                    "linux_runner (acme/app3)",
                    "mac_runner",
                ]
            );
            assert_eq!(first.get_or_insert(names.clone()), &names, "stable");
        }
    }

    #[test]
    fn a_listed_runner_joins_the_local_one_of_its_own_owner() {
        let mut snap = snapshot(Config::default());
        let mut r = root("/opt/a", Some("linux_runner"), None);
        if let Some(reg) = r.registration.as_mut() {
            reg.github_url = Some("https://github.com/acme/app2".into());
        }
        snap.set("runner", RunnerState { roots: vec![r] });
        snap.set(
            "github",
            GithubState {
                runners: vec![
                    listed("linux_runner", "acme/app1", 23),
                    listed("linux_runner", "acme/app2", 24),
                ],
                ..Default::default()
            },
        );
        let v = runners(&snap);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].name, "linux_runner");
        assert_eq!(
            v[0].github
                .and_then(|g| g.id.as_ref())
                .map(|i| i.to_string()),
            Some("24".into())
        );
        assert_eq!(v[1].name, "linux_runner (acme/app1)");
    }

    #[test]
    fn duplicate_names_stay_distinct() {
        let mut snap = snapshot(Config::default());
        snap.set(
            "runner",
            RunnerState {
                roots: vec![
                    root("/opt/a", Some("r"), None),
                    root("/opt/b", Some("r"), None),
                ],
            },
        );
        let v = runners(&snap);
        assert_eq!(v[0].name, "r");
        assert_eq!(v[1].name, "r (/opt/b)");
    }
}
