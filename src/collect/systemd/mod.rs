//! systemd collector: the state of every runner unit, over D-Bus, live.
//!
//! Runner units are the loaded units matching `[systemd] unit_patterns`
//! (asked with `ListUnitsByPatterns`, or `ListUnits` filtered here when
//! systemd is older than 230 and lacks it) plus the units named for a
//! runner: by `[[runner]] unit`, by the `.service` file of a runner root
//! (from the runner collector's section, which this collector subscribes
//! to), or seen earlier with a working directory. A named unit missing from
//! the list is found with `GetUnit`, or `LoadUnit` when systemd has not
//! loaded it: a stopped, disabled unit is unloaded and drops out of the
//! list, and must still be reported `inactive`; one that does not exist
//! comes back with LoadState `not-found`, a failing state of its own. Object
//! paths always come from systemd, never from unit names.
//!
//! Besides the runner units, the units runners depend on (`[docker] units`:
//! docker.service, containerd.service) are looked up by name the same way
//! and published apart (`SystemdState::dependencies`, exported as
//! `github_runner_dependency_state`): they are no runner's unit, take no
//! part in joining runners, and only their load, active and sub-states are
//! read. One that does not exist comes back `not-found` (Docker not
//! installed). Nothing else is read or exported.
//!
//! Per unit the collector reads ActiveState, SubState, LoadState (from the
//! list, or with `Get` for named units), ActiveEnterTimestamp (and its
//! monotonic twin), NRestarts, ExecMainStatus, WorkingDirectory,
//! ControlGroup, MainPID and User (the runner's user, for the Docker check;
//! empty in a user manager),
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
//! Restarts: `restarts_total` never decreases (a drop of NRestarts is a
//! reset by `systemctl reset-failed` or an explicit start, not negative
//! restarts); the crash-loop count starts over at a reset, and a unit seen
//! for the first time while it is not stably active counts all of its
//! NRestarts, so a one-shot `check` sees a crash loop too.
//!
//! Failure (no bus, systemd not on it, a call timing out, a missing method
//! or required property): the run fails, the supervisor reports
//! `collector_success 0`, the units are dropped from the snapshot (their
//! states are unknown: the gate fails closed) and the collector tries a
//! new connection every second, so it is back within about a second of
//! systemd, whatever the length of the outage. A re-exec or a reload of
//! systemd is not a failure: their signals are waited out, and a call that
//! meets systemd in the middle of one (no reply, no owner for a moment)
//! holds the last state for up to `[systemd] reexec_grace`; longer, it
//! fails like any other outage.

mod bus;
mod procs;

use super::{Collector, Failure, Mode, OnFailure, Outcome};
use crate::config::SystemdConfig;
use crate::settings::Settings;
use crate::snapshot::{Data, RunnerState, Store, SystemdState, UnitState};
use anyhow::{anyhow, Context};
use bus::{Bus, CallError, Interest, ListedUnit, MANAGER, MANAGER_PATH, SERVICE, UNIT};
use futures_util::StreamExt;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
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
/// After a failure: a new connection this often, so the collector is back
/// within about a second of the bus or systemd coming back.
const RETRY: Duration = Duration::from_secs(1);
/// While a re-exec is held: ask again this often.
const HOLD_RETRY: Duration = Duration::from_millis(200);
/// Units whose properties are read at the same time.
const PARALLEL_UNITS: usize = 8;

/// Properties every unit must have.
const REQUIRED: [(&str, &str); 3] = [
    (UNIT, "LoadState"),
    (UNIT, "ActiveState"),
    (UNIT, "SubState"),
];
/// Properties reported when systemd has them.
const OPTIONAL: [(&str, &str); 8] = [
    (UNIT, "ActiveEnterTimestamp"),
    (UNIT, "ActiveEnterTimestampMonotonic"),
    (SERVICE, "NRestarts"),
    (SERVICE, "ExecMainStatus"),
    (SERVICE, "WorkingDirectory"),
    (SERVICE, "ControlGroup"),
    (SERVICE, "MainPID"),
    (SERVICE, "User"),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    Resync,
    Processes,
}

pub struct SystemdCollector {
    config: SystemdConfig,
    crashloop_window: Duration,
    /// How long a unit must stay active to count as stable.
    clear_after: Duration,
    /// Units named in `[[runner]] unit`.
    configured: Vec<String>,
    /// Units runners depend on (`[docker] units`), reported apart.
    dependencies: Vec<String>,
    /// The runner collector's roots: their `.service` files name units.
    roots: Option<tokio::sync::watch::Receiver<Data<RunnerState>>>,
    /// Units named by the roots' `.service` at the last resync.
    root_units: BTreeSet<String>,
    /// Runner units seen with a working directory: looked up by name when
    /// they drop out of the list (stopped and disabled).
    seen: BTreeSet<String>,
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
    /// Since when the last state is held through a re-exec.
    holding_since: Option<Instant>,
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
        settings: &Settings,
        roots: Option<tokio::sync::watch::Receiver<Data<RunnerState>>>,
    ) -> Self {
        let now = Instant::now();
        let h = &settings.config.health;
        SystemdCollector {
            config: settings.config.systemd.clone(),
            crashloop_window: h.crashloop_window.get(),
            clear_after: h.crashloop_clear_after.get(),
            configured: configured_units(settings),
            dependencies: settings.config.docker.units.clone(),
            roots,
            root_units: BTreeSet::new(),
            seen: BTreeSet::new(),
            bus: None,
            by_patterns: true,
            interest: Arc::new(Mutex::new(Interest::default())),
            last: None,
            healthy: true,
            holding_since: None,
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

    /// The `.service` names of the runner roots, as the runner collector
    /// last published them (read without waiting).
    fn current_root_units(&self) -> BTreeSet<String> {
        let Some(roots) = &self.roots else {
            return BTreeSet::new();
        };
        let Some(state) = roots.borrow().clone() else {
            return self.root_units.clone();
        };
        state
            .roots
            .iter()
            .filter_map(|r| r.service_unit.clone())
            .collect()
    }

    async fn resync(&mut self) -> anyhow::Result<SystemdState> {
        if let Some(r) = &mut self.roots {
            r.borrow_and_update();
        }
        self.root_units = self.current_root_units();
        // Named: configured, named by a root, or seen earlier.
        let named: BTreeSet<String> = self
            .configured
            .iter()
            .chain(&self.root_units)
            .chain(&self.seen)
            .cloned()
            .collect();
        {
            let mut i = self.interest();
            i.patterns = unit_globs(&self.config.unit_patterns);
            i.named = named.iter().chain(&self.dependencies).cloned().collect();
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
        for name in &named {
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
                Err(e @ CallError::Reply { .. }) if !e.is_transient() => {
                    if self.warned.insert(format!("unit:{name}")) {
                        tracing::warn!(unit = %name, error = %e, "a unit named for a runner cannot be looked up in systemd");
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
        // A unit known only because it was seen earlier, and now gone from
        // disk, was removed on purpose (the runner was uninstalled): forget
        // it. One a root or the config names stays, as not-found.
        let keep_named: BTreeSet<&String> =
            self.configured.iter().chain(&self.root_units).collect();
        units.retain(|u| {
            u.load_state != "not-found"
                || keep_named.contains(&u.name)
                || !self.seen.contains(&u.name)
        });
        let gone: Vec<String> = self
            .seen
            .iter()
            .filter(|n| !units.iter().any(|u| &u.name == *n))
            .cloned()
            .collect();
        for n in gone {
            self.seen.remove(&n);
        }
        for u in &units {
            if u.working_directory.is_some() && u.load_state != "not-found" {
                self.seen.insert(u.name.clone());
            }
        }

        let now = Instant::now();
        self.restarts
            .retain(|name, _| units.iter().any(|u| &u.name == name));
        for u in &mut units {
            if let Some(n) = u.n_restarts {
                let stable = u.active_state == "active"
                    && u.active_for()
                        .is_some_and(|t| t >= self.clear_after.as_secs_f64());
                let h = self.restarts.entry(u.name.clone()).or_default();
                u.recent_restarts = h.observe(now, n, self.crashloop_window, stable);
                u.restarts_total = Some(h.total);
            }
        }
        self.procs.fill(&mut units).await;
        let mut dependencies = Vec::with_capacity(self.dependencies.len());
        for name in &self.dependencies {
            if units.iter().any(|u| &u.name == name) {
                // Configured as a runner unit too: reported as one.
                continue;
            }
            match read_dependency(bus, name).await {
                Ok(Some(u)) => dependencies.push(u),
                Ok(None) => {}
                Err(e @ CallError::Reply { .. }) if !e.is_transient() => {
                    if self.warned.insert(format!("dependency:{name}")) {
                        tracing::warn!(unit = %name, error = %e, "a unit of [docker] units cannot be looked up in systemd");
                    }
                }
                Err(e) => return Err(e).with_context(|| format!("looking up unit {name}")),
            }
        }
        {
            let mut i = self.interest();
            // A dependency's state changes are followed by path, like a
            // runner unit's; one that does not exist has none.
            i.paths = units
                .iter()
                .chain(dependencies.iter().filter(|d| d.load_state != "not-found"))
                .map(|u| u.object_path.clone())
                .collect();
            i.names = units.iter().map(|u| u.name.clone()).collect();
        }
        self.next_resync = now + self.config.resync_interval.get();
        self.next_processes = now + PROCESS_REFRESH;
        Ok(SystemdState {
            units,
            dependencies,
        })
    }
}

/// A unit runners depend on (docker.service): found by name like a named
/// runner unit, with its load, active and sub-state only. None when it
/// vanished between the lookup and the reads.
async fn read_dependency(bus: &Bus, name: &str) -> Result<Option<UnitState>, CallError> {
    let path = find_unit(bus, name).await?;
    let mut states = Vec::with_capacity(REQUIRED.len());
    for (iface, prop) in REQUIRED {
        match bus.get(&path, iface, prop).await {
            Ok(v) => states.push(String::try_from(v).unwrap_or_default()),
            Err(e) if e.is(bus::UNKNOWN_OBJECT) || e.is(bus::NO_SUCH_UNIT) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    let mut states = states.into_iter();
    let mut next = || states.next().unwrap_or_default();
    Ok(Some(UnitState {
        name: name.to_string(),
        object_path: path,
        load_state: next(),
        active_state: next(),
        sub_state: next(),
        ..Default::default()
    }))
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
    let active_enter_monotonic_us =
        take::<u64>(&mut values, "ActiveEnterTimestampMonotonic", &name)?.filter(|us| *us > 0);
    let working_directory = take::<String>(&mut values, "WorkingDirectory", &name)?
        .and_then(|wd| working_directory(&wd));
    let unit = UnitState {
        object_path: l.path,
        load_state,
        active_state,
        sub_state,
        n_restarts: take::<u32>(&mut values, "NRestarts", &name)?,
        restarts_total: None,
        recent_restarts: 0,
        active_since,
        active_enter_monotonic_us,
        exec_main_status: take::<i32>(&mut values, "ExecMainStatus", &name)?,
        working_directory,
        control_group: take::<String>(&mut values, "ControlGroup", &name)?
            .filter(|c| !c.is_empty()),
        main_pid: take::<u32>(&mut values, "MainPID", &name)?.filter(|p| *p > 0),
        user: take::<String>(&mut values, "User", &name)?.filter(|u| !u.is_empty()),
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

/// NRestarts observations of one unit: the never-decreasing total, and the
/// restarts that count towards a crash loop.
#[derive(Debug, Default)]
struct RestartHistory {
    /// When each new value was first seen since the last reset. The oldest
    /// one kept may lie before the window: it is the baseline.
    samples: VecDeque<(Instant, u32)>,
    /// Restarts seen since the exporter started (the first observation
    /// counts in full), never decreasing.
    total: u64,
    last: Option<u32>,
}

impl RestartHistory {
    /// Records the current NRestarts and returns the restarts that count
    /// towards a crash loop: the increase within `window` before `now`. A
    /// decrease is a reset (`reset-failed`, an explicit start): the
    /// restarts before it still count within the window (the verdict
    /// clears when the unit has stayed active long enough, which the
    /// health check decides), and counting goes on from the new value.
    /// The first observation of a unit that
    /// is not `stable` (active for long enough) counts all of NRestarts, so
    /// a crash loop already under way when the exporter (or a one-shot
    /// `check`) starts is seen at once; of a stable unit, none.
    fn observe(&mut self, now: Instant, n: u32, window: Duration, stable: bool) -> u32 {
        match self.last {
            None => {
                self.total = u64::from(n);
                if !stable {
                    self.samples.push_back((now, 0));
                }
            }
            Some(l) if n < l => {
                self.total += u64::from(n);
                self.samples.push_back((now, 0));
            }
            Some(l) => self.total += u64::from(n - l),
        }
        self.last = Some(n);
        if self.samples.back().map(|s| s.1) != Some(n) {
            self.samples.push_back((now, n));
        }
        let start = now.checked_sub(window);
        if let Some(start) = start {
            while self.samples.len() >= 2 && self.samples[1].0 <= start {
                self.samples.pop_front();
            }
        }
        let mut recent = 0u32;
        for (a, b) in self.samples.iter().zip(self.samples.iter().skip(1)) {
            if start.is_none_or(|s| b.0 > s) {
                recent = recent.saturating_add(b.1.saturating_sub(a.1));
            }
        }
        recent
    }
}

/// True when `e` (or what caused it) is a transient failure of the bus or
/// of systemd's presence on it.
fn is_transient(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<CallError>()
            .is_some_and(CallError::is_transient)
    })
}

impl Collector for SystemdCollector {
    type State = SystemdState;
    const NAME: &'static str = NAME;
    /// The roots' `.service` files name units to look up (a feedback edge:
    /// the runner collector reads the units' working directories).
    const READS: &'static [&'static str] = &[super::runner::NAME];
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
            &c.docker.units,
            c.health.crashloop_window,
            c.health.crashloop_clear_after,
            c.runner_files.enabled,
        ))
    }

    fn new(settings: &Settings, store: &Store, _: Mode) -> Self {
        let roots = settings
            .config
            .runner_files
            .enabled
            .then(|| store.channel::<RunnerState>().map(|c| c.subscribe()))
            .flatten();
        SystemdCollector::with_config(settings, roots)
    }

    fn timeout(&self) -> Duration {
        // Connecting, the owner check, three match rules, Subscribe, the
        // list, lookups and the property reads each get the call timeout.
        self.config.call_timeout.get() * 10 + Duration::from_secs(5)
    }

    async fn wait(&mut self) {
        if self.holding_since.is_some() {
            tokio::time::sleep(HOLD_RETRY).await;
            self.next = Next::Resync;
            return;
        }
        if !self.healthy {
            tokio::time::sleep(RETRY).await;
            self.next = Next::Resync;
            return;
        }
        let resync_at = self.next_resync;
        let processes_at = self.next_processes;
        let root_units = self.root_units.clone();
        loop {
            let Some(bus) = self.bus.as_mut() else {
                self.next = Next::Resync;
                return;
            };
            if bus.is_stale() {
                self.next = Next::Resync;
                return;
            }
            let roots = async {
                match &mut self.roots {
                    Some(r) => r.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = bus.events.changed() => {
                    if r.is_ok() {
                        // Let a burst (a restart changes several properties)
                        // settle, then resync once for all of it.
                        tokio::time::sleep(DEBOUNCE).await;
                        bus.events.borrow_and_update();
                    }
                    self.next = Next::Resync;
                    return;
                }
                _ = tokio::time::sleep_until(resync_at.into()) => {
                    self.next = Next::Resync;
                    return;
                }
                _ = tokio::time::sleep_until(processes_at.into()), if processes_at < resync_at => {
                    self.next = Next::Processes;
                    return;
                }
                open = roots => {
                    if !open {
                        self.roots = None;
                    }
                    // A root names a unit not looked up yet.
                    if self.current_root_units() != root_units {
                        self.next = Next::Resync;
                        return;
                    }
                }
            }
        }
    }

    async fn collect(&mut self) -> Result<Outcome<SystemdState>, Failure<SystemdState>> {
        let was_healthy = std::mem::replace(&mut self.healthy, false);
        if !was_healthy {
            // After a failure or a cancelled run, start from a fresh
            // connection.
            self.bus = None;
        }
        // Mid-reload: wait for its end (a bounded time) rather than read
        // half-reloaded units.
        if self.bus.as_ref().is_some_and(Bus::is_reloading) {
            let since = *self.holding_since.get_or_insert_with(Instant::now);
            if since.elapsed() < self.config.reexec_grace.get() {
                self.healthy = true;
                return Ok(Outcome::Held);
            }
        }
        let bus_ok = self.bus.as_ref().is_some_and(|b| !b.is_stale());
        let state = match &self.last {
            Some(p) if self.next == Next::Processes && bus_ok => {
                let mut s = p.clone();
                self.procs.fill(&mut s.units).await;
                self.next_processes = Instant::now() + PROCESS_REFRESH;
                s
            }
            _ => match self.resync().await {
                Ok(s) => s,
                Err(e) => {
                    self.bus = None;
                    // A re-exec (or a restart of the bus) seen mid-call:
                    // hold the last state for a bounded time.
                    if self.last.is_some() && is_transient(&e) {
                        let since = *self.holding_since.get_or_insert_with(Instant::now);
                        if since.elapsed() < self.config.reexec_grace.get() {
                            tracing::debug!(error = %format!("{e:#}"), "systemd away for a moment; holding the last state");
                            return Ok(Outcome::Held);
                        }
                    }
                    self.holding_since = None;
                    self.last = None;
                    return Err(e.into());
                }
            },
        };
        self.healthy = true;
        self.holding_since = None;
        let prev = self.last.replace(state.clone());
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
        // A stable unit's first observation is the baseline, not restarts.
        assert_eq!(h.observe(at(0), 5, window, true), 0);
        assert_eq!(h.observe(at(30), 6, window, false), 1);
        assert_eq!(h.observe(at(60), 8, window, false), 3);
        assert_eq!(h.observe(at(90), 8, window, false), 3);
        assert_eq!(h.total, 8);
        // 15 minutes after the first increase, it leaves the window.
        assert_eq!(h.observe(at(931), 8, window, true), 2);
        assert_eq!(h.observe(at(961), 8, window, true), 0);
        // A reset (reset-failed, an explicit start) followed by new
        // restarts: the total never goes down.
        assert_eq!(h.observe(at(1000), 0, window, false), 0);
        assert_eq!(h.total, 8);
        assert_eq!(h.observe(at(1030), 2, window, false), 2);
        assert_eq!(h.total, 10);
        assert!(h.samples.len() <= 5, "{:?}", h.samples);
    }

    #[test]
    fn a_loop_under_way_is_seen_at_the_first_observation() {
        let window = Duration::from_secs(900);
        let t0 = Instant::now();
        let mut h = RestartHistory::default();
        // Not stably active (auto-restart, or active for a few seconds):
        // all of NRestarts counts, as a one-shot check needs.
        assert_eq!(h.observe(t0, 5, window, false), 5);
        assert_eq!(h.total, 5);
        // The fix, then reset-failed and a restart: NRestarts drops to 0,
        // the restarts before still count within the window (the health
        // check clears the verdict once the unit stays active long
        // enough), the total never decreases.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(h.observe(later, 0, window, false), 5);
        assert_eq!(h.total, 5);
        assert_eq!(
            h.observe(later + Duration::from_secs(900), 0, window, true),
            0
        );
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
