//! systemd collector: the state of every runner unit, over D-Bus, live.
//!
//! Runner units are the loaded units matching `[systemd] unit_patterns`
//! (asked with `ListUnitsByPatterns`, or `ListUnits` filtered here when
//! systemd is older than 230 and lacks it) plus the units named in
//! `[[runner]] unit` (found with `GetUnit`, or `LoadUnit` when systemd has
//! not loaded them, as after a reboot for a disabled unit). Object paths
//! always come from systemd, never from unit names. Nothing else is read or
//! exported.
//!
//! Per unit the collector reads ActiveState, SubState, LoadState (from the
//! list, or with `Get` for configured units), ActiveEnterTimestamp,
//! NRestarts, ExecMainStatus, WorkingDirectory, ControlGroup and MainPID,
//! each `Get` under `[systemd] call_timeout`. The first three are required:
//! without them the run fails. The others are optional (NRestarts, for
//! example, only exists since systemd 235): a missing one is logged once
//! and its series is left out, the rest of the unit is still reported.
//!
//! Live: the collector calls `Subscribe` and follows `PropertiesChanged` of
//! the runner units' objects and `UnitNew`/`UnitRemoved`/`Reloading` of the
//! manager. A relevant signal triggers a full resync after a short debounce,
//! so a change reaches `/metrics` well within a second; without signals it
//! resyncs every `[systemd] resync_interval`. Runner processes are
//! refreshed every few seconds in between, without any D-Bus call.
//!
//! Failure (no bus, the bus going away, a call timing out, a missing method
//! or required property): the run fails, the supervisor reports
//! `collector_success 0`, the units are dropped from the snapshot (their
//! states are unknown) and the collector reconnects with a backoff of 1 s
//! doubling up to 30 s.

mod bus;
mod procs;

use super::{Collector, Failure, Mode, OnFailure, Outcome};
use crate::config::SystemdConfig;
use crate::settings::Settings;
use crate::snapshot::{Store, SystemdState, UnitState};
use anyhow::{anyhow, Context};
use bus::{Bus, CallError, Interest, ListedUnit, MANAGER, MANAGER_PATH, SERVICE, UNIT};
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zbus::{OwnedObjectPath, OwnedVariant};

/// The collector's name: its section and its `collector` label.
pub const NAME: &str = "systemd";

/// How long a burst of signals may last before the resync starts.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// How often runner processes are refreshed between resyncs.
const PROCESS_REFRESH: Duration = Duration::from_secs(5);
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Units whose properties are read at the same time.
const PARALLEL_UNITS: usize = 8;

/// Properties every unit must have.
const REQUIRED: [(&str, &str); 3] = [
    (UNIT, "LoadState"),
    (UNIT, "ActiveState"),
    (UNIT, "SubState"),
];
/// Properties reported when systemd has them.
const OPTIONAL: [(&str, &str); 6] = [
    (UNIT, "ActiveEnterTimestamp"),
    (SERVICE, "NRestarts"),
    (SERVICE, "ExecMainStatus"),
    (SERVICE, "WorkingDirectory"),
    (SERVICE, "ControlGroup"),
    (SERVICE, "MainPID"),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    Resync,
    Processes,
}

pub struct SystemdCollector {
    config: SystemdConfig,
    crashloop_window: Duration,
    /// Units named in `[[runner]] unit`.
    configured: Vec<String>,
    bus: Option<Bus>,
    /// False once systemd said it has no ListUnitsByPatterns (until the
    /// next connection).
    by_patterns: bool,
    interest: Arc<Mutex<Interest>>,
    /// The state last reported; None after a failure.
    last: Option<SystemdState>,
    /// False from the start of a run until it succeeds (a run cancelled by
    /// the supervisor's timeout counts as failed).
    healthy: bool,
    backoff: Duration,
    next: Next,
    next_resync: Instant,
    next_processes: Instant,
    restarts: HashMap<String, RestartHistory>,
    /// Things logged once: missing properties, unusable configured units.
    warned: HashSet<String>,
    procs: procs::ProcLookup,
}

impl SystemdCollector {
    pub fn with_config(
        config: SystemdConfig,
        crashloop_window: Duration,
        configured: Vec<String>,
    ) -> Self {
        let now = Instant::now();
        SystemdCollector {
            config,
            crashloop_window,
            configured,
            bus: None,
            by_patterns: true,
            interest: Arc::new(Mutex::new(Interest::default())),
            last: None,
            healthy: true,
            backoff: Duration::ZERO,
            next: Next::Resync,
            next_resync: now,
            next_processes: now,
            restarts: HashMap::new(),
            warned: HashSet::new(),
            procs: procs::ProcLookup::default(),
        }
    }

    fn interest(&self) -> std::sync::MutexGuard<'_, Interest> {
        self.interest.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn resync(&mut self, configured: &[String]) -> anyhow::Result<SystemdState> {
        {
            let mut i = self.interest();
            i.patterns = unit_globs(&self.config.unit_patterns);
            i.configured = configured.iter().cloned().collect();
        }
        if self.bus.as_ref().is_some_and(Bus::is_stale) {
            self.bus = None;
        }
        if self.bus.is_none() {
            let bus =
                Bus::connect(self.config.call_timeout.get(), Arc::clone(&self.interest)).await?;
            self.by_patterns = true;
            self.bus = Some(bus);
        }
        let Some(bus) = self.bus.as_ref() else {
            anyhow::bail!("not connected to the system bus");
        };
        let listed = list_units(bus, &self.config.unit_patterns, &mut self.by_patterns).await?;
        let mut todo: Vec<Listed> = listed;
        for name in configured {
            if todo.iter().any(|l| &l.name == name) {
                continue;
            }
            match find_unit(bus, name).await {
                Ok(path) => todo.push(Listed {
                    name: name.clone(),
                    path,
                    states: None,
                }),
                // systemd refused the name (invalid, masked...): report
                // the others.
                Err(e @ CallError::Reply { .. }) => {
                    if self.warned.insert(format!("unit:{name}")) {
                        tracing::warn!(unit = %name, error = %e, "configured unit not found in systemd");
                    }
                }
                Err(e) => return Err(e).with_context(|| format!("looking up unit {name}")),
            }
        }
        let results: Vec<anyhow::Result<Option<ReadUnit>>> =
            futures_util::stream::iter(todo.into_iter().map(|l| read_unit(bus, l)))
                .buffer_unordered(PARALLEL_UNITS)
                .collect()
                .await;
        let mut units = Vec::with_capacity(results.len());
        for r in results {
            let Some((unit, missing)) = r? else { continue };
            for prop in missing {
                if self.warned.insert(format!("property:{prop}")) {
                    tracing::warn!(
                        unit = %unit.name,
                        property = prop,
                        "systemd does not provide this property (older systemd, or not a service unit); its series are left out"
                    );
                }
            }
            units.push(unit);
        }
        units.sort_by(|a, b| a.name.cmp(&b.name));
        units.dedup_by(|a, b| a.name == b.name);

        let now = Instant::now();
        self.restarts
            .retain(|name, _| units.iter().any(|u| &u.name == name));
        for u in &mut units {
            if let Some(n) = u.n_restarts {
                u.recent_restarts = self.restarts.entry(u.name.clone()).or_default().observe(
                    now,
                    n,
                    self.crashloop_window,
                );
            }
        }
        self.procs.fill(&mut units).await;
        {
            let mut i = self.interest();
            i.paths = units.iter().map(|u| u.object_path.clone()).collect();
            i.names = units.iter().map(|u| u.name.clone()).collect();
        }
        self.next_resync = now + self.config.resync_interval.get();
        self.next_processes = now + PROCESS_REFRESH;
        Ok(SystemdState { units })
    }
}

/// A unit to read: its name and object path as systemd gave them, and its
/// states when the list call already returned them.
struct Listed {
    name: String,
    path: String,
    /// Load state, active state, sub-state.
    states: Option<(String, String, String)>,
}

fn listed(u: ListedUnit) -> Listed {
    Listed {
        name: u.0,
        path: u.6.to_string(),
        states: Some((u.2, u.3, u.4)),
    }
}

/// The loaded units matching the patterns.
async fn list_units(
    bus: &Bus,
    patterns: &[String],
    by_patterns: &mut bool,
) -> anyhow::Result<Vec<Listed>> {
    if patterns.is_empty() {
        // ListUnitsByPatterns treats no patterns as "every unit".
        return Ok(Vec::new());
    }
    if *by_patterns {
        let states: Vec<String> = Vec::new();
        match bus
            .call::<_, Vec<ListedUnit>>(
                MANAGER_PATH,
                MANAGER,
                "ListUnitsByPatterns",
                &(states, patterns.to_vec()),
            )
            .await
        {
            Ok(v) => return Ok(v.into_iter().map(listed).collect()),
            Err(e) if e.is(bus::UNKNOWN_METHOD) => {
                tracing::info!(
                    "systemd has no ListUnitsByPatterns (older than 230); listing all units and filtering"
                );
                *by_patterns = false;
            }
            Err(e) => {
                return Err(e)
                    .context("calling org.freedesktop.systemd1.Manager.ListUnitsByPatterns")
            }
        }
    }
    let all: Vec<ListedUnit> = bus
        .call(MANAGER_PATH, MANAGER, "ListUnits", &())
        .await
        .context("calling org.freedesktop.systemd1.Manager.ListUnits")?;
    Ok(all
        .into_iter()
        .filter(|u| matches_any(&unit_globs(patterns), &u.0))
        .map(listed)
        .collect())
}

/// The object path of a configured unit: `GetUnit` if systemd has it
/// loaded, else `LoadUnit`.
async fn find_unit(bus: &Bus, name: &str) -> Result<String, CallError> {
    match bus
        .call::<_, OwnedObjectPath>(MANAGER_PATH, MANAGER, "GetUnit", &name)
        .await
    {
        Ok(p) => Ok(p.to_string()),
        Err(e) if e.is(bus::NO_SUCH_UNIT) => bus
            .call::<_, OwnedObjectPath>(MANAGER_PATH, MANAGER, "LoadUnit", &name)
            .await
            .map(|p| p.to_string()),
        Err(e) => Err(e),
    }
}

/// A unit as read, with the optional properties systemd does not have.
type ReadUnit = (UnitState, Vec<&'static str>);

/// Reads one unit's properties. None when the unit vanished meanwhile;
/// also returns the optional properties systemd does not have.
async fn read_unit(bus: &Bus, l: Listed) -> anyhow::Result<Option<ReadUnit>> {
    let mut wanted: Vec<(&'static str, &'static str)> = OPTIONAL.to_vec();
    if l.states.is_none() {
        wanted.extend(REQUIRED);
    }
    let replies =
        futures_util::future::join_all(wanted.iter().map(|(i, p)| bus.get(&l.path, i, p))).await;
    let mut values: HashMap<&'static str, OwnedVariant> = HashMap::new();
    let mut missing = Vec::new();
    for ((iface, prop), reply) in wanted.iter().zip(replies) {
        match reply {
            Ok(v) => {
                values.insert(prop, v);
            }
            Err(e) if e.is(bus::UNKNOWN_OBJECT) || e.is(bus::NO_SUCH_UNIT) => return Ok(None),
            Err(e) if e.is(bus::UNKNOWN_PROPERTY) || e.is(bus::UNKNOWN_INTERFACE) => {
                if REQUIRED.iter().any(|(_, p)| p == prop) {
                    return Err(anyhow!(
                        "unit {}: systemd has no property {iface}.{prop} ({e})",
                        l.name
                    ));
                }
                missing.push(*prop);
            }
            Err(e) => {
                return Err(anyhow!(e))
                    .with_context(|| format!("reading property {iface}.{prop} of unit {}", l.name))
            }
        }
    }
    let name = l.name;
    let (load_state, active_state, sub_state) = match l.states {
        Some(s) => s,
        None => (
            take::<String>(&mut values, "LoadState", &name)?.unwrap_or_default(),
            take::<String>(&mut values, "ActiveState", &name)?.unwrap_or_default(),
            take::<String>(&mut values, "SubState", &name)?.unwrap_or_default(),
        ),
    };
    let active_since = take::<u64>(&mut values, "ActiveEnterTimestamp", &name)?
        .filter(|us| *us > 0)
        .map(|us| us as f64 / 1e6);
    let working_directory = take::<String>(&mut values, "WorkingDirectory", &name)?
        .and_then(|wd| working_directory(&wd));
    let unit = UnitState {
        object_path: l.path,
        load_state,
        active_state,
        sub_state,
        n_restarts: take::<u32>(&mut values, "NRestarts", &name)?,
        recent_restarts: 0,
        active_since,
        exec_main_status: take::<i32>(&mut values, "ExecMainStatus", &name)?,
        working_directory,
        control_group: take::<String>(&mut values, "ControlGroup", &name)?
            .filter(|c| !c.is_empty()),
        main_pid: take::<u32>(&mut values, "MainPID", &name)?.filter(|p| *p > 0),
        listener: None,
        worker: None,
        name,
    };
    Ok(Some((unit, missing)))
}

fn take<T>(
    values: &mut HashMap<&'static str, OwnedVariant>,
    prop: &str,
    unit: &str,
) -> anyhow::Result<Option<T>>
where
    T: TryFrom<OwnedVariant, Error = zbus::Error>,
{
    let Some(v) = values.remove(prop) else {
        return Ok(None);
    };
    let signature = v.value_signature().to_string();
    T::try_from(v)
        .map(Some)
        .map_err(|_| anyhow!("unit {unit}: property {prop} has unexpected type {signature}"))
}

/// WorkingDirectory as systemd reports it: `!` marks a directory that may
/// be missing (`-` in the unit file); `~` is the user's home, which is not
/// resolved here.
fn working_directory(wd: &str) -> Option<PathBuf> {
    let wd = wd.strip_prefix('!').unwrap_or(wd);
    if wd.starts_with('/') {
        Some(PathBuf::from(wd))
    } else {
        None
    }
}

/// NRestarts observations of one unit, to count restarts within the
/// crash-loop window.
#[derive(Debug, Default)]
struct RestartHistory {
    /// When each new value was first seen. The oldest one kept may lie
    /// before the window: it is the baseline.
    samples: VecDeque<(Instant, u32)>,
}

impl RestartHistory {
    /// Records the current NRestarts and returns the increase seen within
    /// `window` before `now`. A decrease is a reset (an explicit start
    /// clears the counter): the new value counts as restarts since then.
    fn observe(&mut self, now: Instant, n: u32, window: Duration) -> u32 {
        if self.samples.back().map(|s| s.1) != Some(n) {
            self.samples.push_back((now, n));
        }
        let start = now.checked_sub(window);
        if let Some(start) = start {
            while self.samples.len() >= 2 && self.samples[1].0 <= start {
                self.samples.pop_front();
            }
        }
        let mut total = 0u32;
        for (a, b) in self.samples.iter().zip(self.samples.iter().skip(1)) {
            if start.is_none_or(|s| b.0 > s) {
                let delta = if b.1 >= a.1 { b.1 - a.1 } else { b.1 };
                total = total.saturating_add(delta);
            }
        }
        total
    }
}

impl Collector for SystemdCollector {
    type State = SystemdState;
    const NAME: &'static str = NAME;
    /// Without systemd, unit states are unknown: report none rather than
    /// stale ones.
    const ON_FAILURE: OnFailure = OnFailure::Clear;

    fn enabled(settings: &Settings) -> bool {
        settings.config.systemd.enabled
    }

    fn interval(settings: &Settings) -> Duration {
        settings.config.systemd.resync_interval.get()
    }

    fn config_key(settings: &Settings) -> String {
        let c = &settings.config;
        super::key((
            &c.systemd,
            configured_units(settings),
            c.health.crashloop_window,
        ))
    }

    fn new(settings: &Settings, _: &Store, _: Mode) -> Self {
        SystemdCollector::with_config(
            settings.config.systemd.clone(),
            settings.config.health.crashloop_window.get(),
            configured_units(settings),
        )
    }

    fn timeout(&self) -> Duration {
        // Connecting, three match rules, Subscribe, the list, two lookups
        // and the property reads each get the call timeout.
        self.config.call_timeout.get() * 10 + Duration::from_secs(5)
    }

    async fn wait(&mut self) {
        if !self.healthy {
            self.backoff = (self.backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
            tokio::time::sleep(self.backoff).await;
            self.next = Next::Resync;
            return;
        }
        self.backoff = Duration::ZERO;
        let Some(bus) = self.bus.as_mut() else {
            self.next = Next::Resync;
            return;
        };
        if bus.is_stale() {
            self.next = Next::Resync;
            return;
        }
        let resync_at = self.next_resync;
        let processes_at = self.next_processes;
        tokio::select! {
            r = bus.events.changed() => {
                if r.is_ok() {
                    // Let a burst (a restart changes several properties)
                    // settle, then resync once for all of it.
                    tokio::time::sleep(DEBOUNCE).await;
                    bus.events.borrow_and_update();
                }
                self.next = Next::Resync;
            }
            _ = tokio::time::sleep_until(resync_at.into()) => self.next = Next::Resync,
            _ = tokio::time::sleep_until(processes_at.into()), if processes_at < resync_at => {
                self.next = Next::Processes;
            }
        }
    }

    async fn collect(&mut self) -> Result<Outcome<SystemdState>, Failure<SystemdState>> {
        let prev = self.last.take();
        let was_healthy = std::mem::replace(&mut self.healthy, false);
        if !was_healthy {
            // After a failure or a cancelled run, start from a fresh
            // connection.
            self.bus = None;
        }
        let bus_ok = self.bus.as_ref().is_some_and(|b| !b.is_stale());
        let state = match &prev {
            Some(p) if self.next == Next::Processes && bus_ok => {
                let mut s = p.clone();
                self.procs.fill(&mut s.units).await;
                self.next_processes = Instant::now() + PROCESS_REFRESH;
                s
            }
            _ => {
                let configured = self.configured.clone();
                match self.resync(&configured).await {
                    Ok(s) => s,
                    Err(e) => {
                        self.bus = None;
                        return Err(e.into());
                    }
                }
            }
        };
        self.healthy = true;
        self.last = Some(state.clone());
        if prev.as_ref() == Some(&state) {
            Ok(Outcome::Unchanged)
        } else {
            Ok(Outcome::Changed(state))
        }
    }
}

/// `[systemd] unit_patterns` as globs, as `fnmatch(3)` reads them for
/// systemd (the `glob` crate's syntax: `*`, `?`, `[...]`, `[!...]`). The
/// config rejects a pattern that is not a valid glob; one that slipped
/// through matches nothing.
pub(crate) fn unit_globs(patterns: &[String]) -> Vec<glob::Pattern> {
    patterns
        .iter()
        .filter_map(|p| glob::Pattern::new(p).ok())
        .collect()
}

/// True when a unit name matches one of `patterns`.
pub(crate) fn matches_any(patterns: &[glob::Pattern], name: &str) -> bool {
    patterns.iter().any(|p| p.matches(name))
}

/// The units named in `[[runner]] unit`.
fn configured_units(settings: &Settings) -> Vec<String> {
    settings
        .config
        .runners
        .iter()
        .filter_map(|r| r.unit.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_are_counted_within_the_window() {
        let window = Duration::from_secs(900);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut h = RestartHistory::default();
        // The first observation is the baseline, not restarts.
        assert_eq!(h.observe(at(0), 5, window), 0);
        assert_eq!(h.observe(at(30), 6, window), 1);
        assert_eq!(h.observe(at(60), 8, window), 3);
        assert_eq!(h.observe(at(90), 8, window), 3);
        // 15 minutes after the first increase, it leaves the window.
        assert_eq!(h.observe(at(931), 8, window), 2);
        assert_eq!(h.observe(at(961), 8, window), 0);
        // A reset (explicit start) followed by new restarts.
        assert_eq!(h.observe(at(1000), 0, window), 0);
        assert_eq!(h.observe(at(1030), 2, window), 2);
        assert!(h.samples.len() <= 4, "{:?}", h.samples);
    }

    #[test]
    fn unit_patterns_match_as_systemd_matches_them() {
        let p = unit_globs(&["actions.runner.*.service".to_string()]);
        for name in [
            "actions.runner.acme-app.linux-1.service",
            "actions.runner._services.ghes-1.service",
            "actions.runner.x.service",
        ] {
            assert!(matches_any(&p, name), "{name}");
        }
        for name in [
            "actions.runner.service",
            "actions.runner.acme.x.socket",
            "ssh.service",
            "xactions.runner.a.service",
        ] {
            assert!(!matches_any(&p, name), "{name}");
        }
        let classes = unit_globs(&["r[0-9].service".to_string(), "q[!0-9].service".to_string()]);
        assert!(matches_any(&classes, "r7.service") && matches_any(&classes, "qx.service"));
        assert!(!matches_any(&classes, "q7.service"));
        // A backslash is an ordinary character in unit names.
        let escaped = unit_globs(&["foo\\x2dbar.service".to_string()]);
        assert!(matches_any(&escaped, "foo\\x2dbar.service"));
        assert!(
            unit_globs(&["a[b".to_string()]).is_empty(),
            "invalid: matches nothing"
        );
    }

    #[test]
    fn working_directory_forms() {
        assert_eq!(
            working_directory("/opt/actions-runner"),
            Some(PathBuf::from("/opt/actions-runner"))
        );
        assert_eq!(
            working_directory("!/opt/actions-runner"),
            Some(PathBuf::from("/opt/actions-runner"))
        );
        assert_eq!(working_directory(""), None);
        assert_eq!(working_directory("~"), None);
    }
}
