//! Turns a snapshot into metric families. The only place that maps state to
//! series; runs when the snapshot changes, never per scrape.

use super::catalog as c;
use super::encode::{Encoded, Encoder};
use crate::identity::{self, RunnerView};
use crate::snapshot::{GithubState, HostState, RunnerState, Snapshot, Variants, UNIT_STATES};

/// Version, git revision and compiler of this build.
pub struct BuildInfo;

impl BuildInfo {
    pub const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    pub const REVISION: &'static str = env!("RHE_GIT_REVISION");
    pub const RUSTC: &'static str = env!("RHE_RUSTC_VERSION");
}

pub fn render(snap: &Snapshot) -> Encoded {
    let mut e = Encoder::new();
    let runners = identity::runners(snap);
    host(&mut e, snap);
    systemd(&mut e, &runners);
    runner_files(&mut e, &runners);
    github(&mut e, snap, &runners);
    exporter(&mut e, snap, &runners);
    process(&mut e, snap);
    e.finish()
}

fn host(e: &mut Encoder, snap: &Snapshot) {
    let Some(h) = snap.state::<HostState>() else {
        return;
    };
    if let Some(r) = h.cpu_usage_ratio {
        e.family(&c::HOST_CPU_USAGE_RATIO).sample(&[], r);
    }
    let mut f = e.family(&c::HOST_CPU_SECONDS);
    for (mode, secs) in &h.cpu_seconds {
        f.sample(&[mode], *secs);
    }
    e.family(&c::HOST_CPU_CORES).sample(&[], h.cpu_cores as f64);
    e.family(&c::HOST_LOAD1).sample(&[], h.load[0]);
    e.family(&c::HOST_LOAD5).sample(&[], h.load[1]);
    e.family(&c::HOST_LOAD15).sample(&[], h.load[2]);
    e.family(&c::HOST_MEMORY_TOTAL)
        .sample(&[], h.memory_total as f64);
    e.family(&c::HOST_MEMORY_AVAILABLE)
        .sample(&[], h.memory_available as f64);
    e.family(&c::HOST_SWAP_TOTAL)
        .sample(&[], h.swap_total as f64);
    e.family(&c::HOST_SWAP_FREE).sample(&[], h.swap_free as f64);
    e.family(&c::HOST_BOOT_TIME).sample(&[], h.boot_time as f64);
    type Pick = fn(&crate::snapshot::FsUsage) -> u64;
    let fields: [(&'static c::Family, Pick); 5] = [
        (&c::HOST_FS_SIZE, |u| u.size),
        (&c::HOST_FS_FREE, |u| u.free),
        (&c::HOST_FS_AVAIL, |u| u.avail),
        (&c::HOST_FS_FILES, |u| u.files),
        (&c::HOST_FS_FILES_FREE, |u| u.files_free),
    ];
    for (family, pick) in fields {
        let mut f = e.family(family);
        for fs in &h.filesystems {
            if let Some(u) = &fs.usage {
                f.sample(&[&fs.mountpoint, &fs.fstype, &fs.device], pick(u) as f64);
            }
        }
    }
    let mut f = e.family(&c::HOST_FS_DEVICE_ERROR);
    for fs in &h.filesystems {
        f.flag(
            &[&fs.mountpoint, &fs.fstype, &fs.device],
            fs.usage.is_none(),
        );
    }
}

fn systemd(e: &mut Encoder, runners: &[RunnerView<'_>]) {
    let units: Vec<(&str, &crate::snapshot::UnitState)> = runners
        .iter()
        .filter_map(|v| v.unit.map(|u| (v.name.as_str(), u)))
        .collect();
    let mut f = e.family(&c::SERVICE_STATE);
    for (runner, u) in &units {
        for state in UNIT_STATES {
            f.flag(&[runner, &u.name, state], u.active_state == state);
        }
    }
    let mut f = e.family(&c::SERVICE_INFO);
    for (runner, u) in &units {
        let wd = u
            .working_directory
            .as_deref()
            .map(|p| p.to_string_lossy())
            .unwrap_or_default();
        f.sample(&[runner, &u.name, &u.load_state, &u.sub_state, &wd], 1.0);
    }
    let mut f = e.family(&c::SERVICE_RESTARTS);
    for (runner, u) in &units {
        if let Some(n) = u.n_restarts {
            f.sample(&[runner, &u.name], f64::from(n));
        }
    }
    let mut f = e.family(&c::SERVICE_ACTIVE_SINCE);
    for (runner, u) in &units {
        f.sample(&[runner, &u.name], u.active_since.unwrap_or(0.0));
    }
    let mut f = e.family(&c::SERVICE_EXIT_STATUS);
    for (runner, u) in &units {
        if let Some(s) = u.exec_main_status {
            f.sample(&[runner, &u.name], f64::from(s));
        }
    }
    let procs = |u: &crate::snapshot::UnitState| [("listener", u.listener), ("worker", u.worker)];
    let mut f = e.family(&c::PROCESS_RUNNING);
    for (runner, u) in &units {
        for (p, s) in procs(u) {
            f.flag(&[runner, p], s.is_some());
        }
    }
    let mut f = e.family(&c::PROCESS_RESIDENT);
    for (runner, u) in &units {
        for (p, s) in procs(u) {
            if let Some(s) = s {
                f.sample(&[runner, p], s.resident_bytes as f64);
            }
        }
    }
    let mut f = e.family(&c::PROCESS_CPU);
    for (runner, u) in &units {
        for (p, s) in procs(u) {
            if let Some(s) = s {
                f.sample(&[runner, p], s.cpu_seconds);
            }
        }
    }
}

fn runner_files(e: &mut Encoder, runners: &[RunnerView<'_>]) {
    let roots: Vec<(&RunnerView<'_>, &crate::snapshot::RunnerRoot)> = runners
        .iter()
        .filter_map(|v| v.root.map(|r| (v, r)))
        .collect();
    let mut f = e.family(&c::RUNNER_INFO);
    for (v, r) in &roots {
        let reg = r.registration.as_ref();
        let version = r.logs.version.as_deref().unwrap_or("");
        f.sample(
            &[
                &v.name,
                reg.and_then(|g| g.github_url.as_deref()).unwrap_or(""),
                reg.and_then(|g| g.pool_name.as_deref()).unwrap_or(""),
                version,
                if reg.is_some_and(|g| g.ephemeral) {
                    "true"
                } else {
                    "false"
                },
                v.role(),
                v.environment(),
            ],
            1.0,
        );
    }
    let mut f = e.family(&c::RUNNER_CONFIGURED);
    for (v, r) in &roots {
        f.flag(&[&v.name], r.registration.is_some());
    }
    let mut f = e.family(&c::RUNNER_ROOT_ACCESSIBLE);
    for (v, r) in &roots {
        f.flag(&[&v.name], r.accessible);
    }
    let mut f = e.family(&c::RUNNER_WORK_FS_AVAIL);
    for (v, r) in &roots {
        if let Some(u) = &r.work_fs {
            f.sample(&[&v.name], u.avail as f64);
        }
    }
    let mut f = e.family(&c::RUNNER_WORK_FS_SIZE);
    for (v, r) in &roots {
        if let Some(u) = &r.work_fs {
            f.sample(&[&v.name], u.size as f64);
        }
    }
    let mut f = e.family(&c::RUNNER_JOBS);
    for (v, r) in &roots {
        for (res, n) in r.logs.jobs.iter() {
            f.sample(&[&v.name, res.as_str()], n as f64);
        }
    }
    let mut f = e.family(&c::RUNNER_JOB_DURATION);
    for (v, r) in &roots {
        f.histogram(&[&v.name], &r.logs.durations);
    }
    let mut f = e.family(&c::RUNNER_JOB_RUNNING);
    for (v, r) in &roots {
        f.flag(&[&v.name], r.logs.current_job.is_some());
    }
    let mut f = e.family(&c::RUNNER_JOB_STARTED);
    for (v, r) in &roots {
        if let Some(j) = &r.logs.current_job {
            f.sample(&[&v.name], j.started);
        }
    }
    let mut f = e.family(&c::RUNNER_LAST_JOB_COMPLETED);
    for (v, r) in &roots {
        if let Some(t) = r.logs.last_job_completed {
            f.sample(&[&v.name], t);
        }
    }
    let mut f = e.family(&c::RUNNER_CURRENT_JOB_INFO);
    for (v, r) in &roots {
        if let Some(j) = &r.logs.current_job {
            f.sample(&[&v.name, &j.name], 1.0);
        }
    }
    let mut f = e.family(&c::RUNNER_LISTENER_CONNECTED);
    for (v, r) in &roots {
        if let Some(conn) = r.logs.connected {
            f.flag(&[&v.name], conn);
        }
    }
    let mut f = e.family(&c::RUNNER_LOG_EVENTS);
    for (v, r) in &roots {
        for (ev, n) in r.logs.events.iter() {
            f.sample(&[&v.name, ev.as_str()], n as f64);
        }
    }
    let mut f = e.family(&c::RUNNER_LOG_LAST_ENTRY);
    for (v, r) in &roots {
        if let Some(t) = r.logs.last_entry {
            f.sample(&[&v.name], t);
        }
    }
}

fn github(e: &mut Encoder, snap: &Snapshot, runners: &[RunnerView<'_>]) {
    let gh: Vec<(&str, &crate::snapshot::GithubRunner)> = runners
        .iter()
        .filter_map(|v| v.github.map(|g| (v.name.as_str(), g)))
        .collect();
    let mut f = e.family(&c::GITHUB_REGISTERED);
    for (n, g) in &gh {
        f.flag(&[n], g.registered);
    }
    let mut f = e.family(&c::GITHUB_ONLINE);
    for (n, g) in &gh {
        if g.registered {
            f.flag(&[n], g.online);
        }
    }
    let mut f = e.family(&c::GITHUB_BUSY);
    for (n, g) in &gh {
        if g.registered {
            f.flag(&[n], g.busy);
        }
    }
    let mut f = e.family(&c::GITHUB_LABEL_INFO);
    for (n, g) in &gh {
        for l in &g.labels {
            f.sample(&[n, l], 1.0);
        }
    }
    let mut f = e.family(&c::GITHUB_INFO);
    for (n, g) in &gh {
        if let (true, Some(id)) = (g.registered, g.id.as_ref()) {
            let eph = if g.ephemeral { "true" } else { "false" };
            f.sample(&[n, id.as_str(), &g.os, eph, &g.owner], 1.0);
        }
    }
    let Some(state) = snap.state::<GithubState>() else {
        return;
    };
    let api = &state.api;
    let mut f = e.family(&c::GITHUB_API_REQUESTS);
    for (code, n) in &api.requests {
        f.sample(&[code], *n as f64);
    }
    let mut f = e.family(&c::GITHUB_API_ERRORS);
    for (reason, n) in api.errors.iter().filter(|(_, n)| *n > 0) {
        f.sample(&[reason.as_str()], n as f64);
    }
    let mut f = e.family(&c::GITHUB_OWNER_SUCCESS);
    for o in &state.owners {
        f.flag(&[&o.owner], o.success);
    }
    let mut f = e.family(&c::GITHUB_OWNER_LAST_SUCCESS);
    for o in &state.owners {
        if let Some(t) = o.last_success {
            f.sample(&[&o.owner], t);
        }
    }
    let mut f = e.family(&c::GITHUB_OWNER_ERRORS);
    for o in &state.owners {
        for (reason, n) in o.errors.iter().filter(|(_, n)| *n > 0) {
            f.sample(&[&o.owner, reason.as_str()], n as f64);
        }
    }
    let mut f = e.family(&c::GITHUB_OWNER_UNREADABLE);
    for o in &state.owners {
        f.sample(&[&o.owner], o.unreadable as f64);
    }
    if let Some(v) = api.rate_remaining {
        e.family(&c::GITHUB_RATE_REMAINING).sample(&[], v as f64);
    }
    if let Some(v) = api.rate_limit {
        e.family(&c::GITHUB_RATE_LIMIT).sample(&[], v as f64);
    }
    if let Some(v) = api.rate_reset {
        e.family(&c::GITHUB_RATE_RESET).sample(&[], v as f64);
    }
    if let Some(v) = api.last_success {
        e.family(&c::GITHUB_LAST_SUCCESS).sample(&[], v);
    }
    e.family(&c::GITHUB_BACKOFF)
        .sample(&[], api.backoff_seconds);
    if let Some(clock) = &api.clock {
        e.family(&c::HOST_CLOCK_OFFSET).sample(&[], clock.offset);
    }
}

fn exporter(e: &mut Encoder, snap: &Snapshot, runners: &[RunnerView<'_>]) {
    e.family(&c::EXPORTER_BUILD_INFO).sample(
        &[BuildInfo::VERSION, BuildInfo::REVISION, BuildInfo::RUSTC],
        1.0,
    );
    let sections = &snap.sections;
    let mut f = e.family(&c::EXPORTER_COLLECTOR_ENABLED);
    for s in sections {
        f.flag(&[s.name], s.meta.enabled);
    }
    let enabled = || sections.iter().filter(|s| s.meta.enabled);
    let mut f = e.family(&c::EXPORTER_COLLECTOR_SUCCESS);
    for s in enabled() {
        f.flag(&[s.name], s.meta.success);
    }
    let mut f = e.family(&c::EXPORTER_COLLECTOR_DURATION);
    for s in enabled() {
        f.sample(&[s.name], s.meta.duration.as_secs_f64());
    }
    let mut f = e.family(&c::EXPORTER_COLLECTOR_LAST_SUCCESS);
    for s in enabled() {
        f.sample(&[s.name], s.meta.last_success.unwrap_or(0.0));
    }
    let mut f = e.family(&c::EXPORTER_COLLECTOR_ERRORS);
    for s in enabled() {
        f.sample(&[s.name], s.meta.errors_total as f64);
    }
    let mut f = e.family(&c::EXPORTER_COLLECTOR_TARGETS);
    for s in enabled() {
        f.sample(&[s.name], s.meta.targets.unwrap_or(0) as f64);
    }
    let roots: Vec<(&str, &crate::snapshot::RunnerRoot)> = runners
        .iter()
        .filter_map(|v| v.root.map(|r| (v.name.as_str(), r)))
        .collect();
    let mut f = e.family(&c::EXPORTER_LOG_BYTES);
    for (n, r) in &roots {
        f.sample(&[n], r.logs.bytes_read as f64);
    }
    let mut f = e.family(&c::EXPORTER_LOG_SKIPPED);
    for (n, r) in &roots {
        for (reason, count) in r.logs.skipped.iter() {
            f.sample(&[n, reason.as_str()], count as f64);
        }
    }
    if let Some(s) = snap.state::<RunnerState>() {
        let watched = s.roots.iter().filter(|r| r.watched).count();
        e.family(&c::EXPORTER_RUNNER_WATCHED_ROOTS)
            .sample(&[], watched as f64);
    }
    e.family(&c::EXPORTER_CONFIG_RELOAD_OK)
        .flag(&[], snap.reload.last_ok);
    e.family(&c::EXPORTER_CONFIG_RELOAD_TS)
        .sample(&[], snap.reload.last_success);
}

fn process(e: &mut Encoder, snap: &Snapshot) {
    let Some(p) = &snap.process else { return };
    e.family(&c::PROCESS_CPU_SECONDS).sample(&[], p.cpu_seconds);
    e.family(&c::PROCESS_RESIDENT_MEMORY)
        .sample(&[], p.resident_bytes as f64);
    e.family(&c::PROCESS_VIRTUAL_MEMORY)
        .sample(&[], p.virtual_bytes as f64);
    e.family(&c::PROCESS_OPEN_FDS)
        .sample(&[], p.open_fds as f64);
    e.family(&c::PROCESS_MAX_FDS).sample(&[], p.max_fds as f64);
    e.family(&c::PROCESS_START_TIME).sample(&[], p.start_time);
}
