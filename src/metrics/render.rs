//! Turns a snapshot into metric families. The only place that maps state to
//! series; runs when the snapshot changes, never per scrape.

use super::catalog as c;
use super::encode::{Encoded, Encoder};
use crate::health::{Report, Status};
use crate::identity::{self, Lifecycle, RunnerView};
use crate::snapshot::{
    GithubState, HostState, QueueState, RunnerState, Snapshot, SystemdState, Variants, UNIT_STATES,
};

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
    // The gate's verdict per runner, as `/health` would give it now.
    let report = crate::health::evaluate_views(
        snap,
        &runners,
        &crate::health::Selector::default(),
        crate::timefmt::now_unix(),
    );
    host(&mut e, snap);
    systemd(&mut e, snap, &runners);
    runner_files(&mut e, snap, &runners, &report);
    github(&mut e, snap, &runners);
    health(&mut e, &report);
    queue(&mut e, snap);
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

fn systemd(e: &mut Encoder, snap: &Snapshot, runners: &[RunnerView<'_>]) {
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
        if let Some(n) = u.restarts_total {
            f.sample(&[runner, &u.name], n as f64);
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
    let mut f = e.family(&c::DEPENDENCY_STATE);
    let deps = snap
        .state::<SystemdState>()
        .map_or(&[][..], |s| s.dependencies.as_slice());
    for u in deps.iter().filter(|u| u.load_state != "not-found") {
        for state in UNIT_STATES {
            f.flag(&[&u.name, state], u.active_state == state);
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

fn runner_files(e: &mut Encoder, snap: &Snapshot, runners: &[RunnerView<'_>], report: &Report) {
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
    let mut f = e.family(&c::RUNNER_LIFECYCLE_STATE);
    for v in runners {
        if let Some(l) = v.lifecycle() {
            for state in Lifecycle::ALL {
                f.flag(&[&v.name, state.as_str()], l == state);
            }
        }
    }
    let mut f = e.family(&c::RUNNER_UPDATE_DISABLED);
    for (v, r) in &roots {
        if let Some(reg) = &r.registration {
            f.flag(&[&v.name], reg.disable_update);
        }
    }
    let latest = crate::health::latest_version(snap);
    let mut f = e.family(&c::RUNNER_UPDATE_AVAILABLE);
    for (v, r) in &roots {
        let behind = r
            .logs
            .version
            .as_deref()
            .zip(latest.as_ref())
            .and_then(|(ver, l)| crate::version::compare(ver, &l.version));
        if let Some(o) = behind {
            f.flag(&[&v.name], o == std::cmp::Ordering::Less);
        }
    }
    if let Some(l) = &latest {
        e.family(&c::RUNNER_LATEST_VERSION)
            .sample(&[&l.version, l.source], 1.0);
    }
    let mut f = e.family(&c::RUNNER_VERSION_DEPRECATED);
    for (v, r) in &roots {
        if r.logs.version.is_some() || r.logs.deprecated_at.is_some() {
            f.flag(&[&v.name], r.logs.deprecated_at.is_some());
        }
    }
    let mut f = e.family(&c::RUNNER_ROOT_ACCESSIBLE);
    for (v, r) in &roots {
        f.flag(&[&v.name], r.accessible);
    }
    type Pick = fn(&crate::snapshot::FsUsage) -> u64;
    let work: [(&'static c::Family, Pick); 4] = [
        (&c::RUNNER_WORK_FS_AVAIL, |u| u.avail),
        (&c::RUNNER_WORK_FS_SIZE, |u| u.size),
        (&c::RUNNER_WORK_FS_FILES, |u| u.files),
        (&c::RUNNER_WORK_FS_FILES_FREE, |u| u.files_free),
    ];
    for (family, pick) in work {
        let mut f = e.family(family);
        for (v, r) in &roots {
            if let Some(u) = &r.work_fs {
                f.sample(&[&v.name], pick(u) as f64);
            }
        }
    }
    docker(e, snap, runners, report);
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

/// Docker for the runners that watch it: whether it is usable (the
/// verdict of the `docker_available` check), whether the runner needs it,
/// and the filesystem of its data-root.
fn docker(e: &mut Encoder, snap: &Snapshot, runners: &[RunnerView<'_>], report: &Report) {
    let deps = snap
        .state::<SystemdState>()
        .map_or(&[][..], |s| s.dependencies.as_slice());
    let watched: Vec<(&RunnerView<'_>, crate::health::DockerWatch)> = runners
        .iter()
        .filter_map(|v| crate::health::docker_watch(v, deps).map(|w| (v, w)))
        .collect();
    let mut f = e.family(&c::RUNNER_DOCKER_USABLE);
    for (v, _) in &watched {
        let status = report
            .runners
            .iter()
            .find(|r| r.runner == v.name)
            .and_then(|r| r.checks.iter().find(|c| c.check == "docker_available"))
            .map(|c| c.status);
        match status {
            Some(Status::Ok) => f.flag(&[&v.name], true),
            Some(Status::Warn | Status::Fail) => f.flag(&[&v.name], false),
            _ => {}
        }
    }
    let mut f = e.family(&c::RUNNER_DOCKER_REQUIRED);
    for (v, w) in &watched {
        f.flag(&[&v.name], w.required);
    }
    type Pick = fn(&crate::snapshot::FsUsage) -> u64;
    let fields: [(&'static c::Family, Pick); 4] = [
        (&c::RUNNER_DOCKER_FS_AVAIL, |u| u.avail),
        (&c::RUNNER_DOCKER_FS_SIZE, |u| u.size),
        (&c::RUNNER_DOCKER_FS_FILES, |u| u.files),
        (&c::RUNNER_DOCKER_FS_FILES_FREE, |u| u.files_free),
    ];
    for (family, pick) in fields {
        let mut f = e.family(family);
        for (v, _) in &watched {
            let Some(p) = v.root.and_then(|r| r.docker.as_ref()) else {
                continue;
            };
            if let Some(u) = &p.data_fs {
                let root = p.data_root.to_string_lossy();
                f.sample(&[&v.name, &root], pick(u) as f64);
            }
        }
    }
}

/// The gate's verdict per runner, as `/health` would give it now.
fn health(e: &mut Encoder, report: &Report) {
    let mut f = e.family(&c::RUNNER_HEALTHY);
    for r in &report.runners {
        f.flag(&[&r.runner], r.healthy);
    }
}

fn queue(e: &mut Encoder, snap: &Snapshot) {
    let Some(q) = snap.state::<QueueState>() else {
        return;
    };
    let since = q.since_poll().unwrap_or(0.0);
    let mut f = e.family(&c::QUEUE_JOBS);
    for s in &q.label_sets {
        f.sample(&[&s.labels], s.queued as f64);
    }
    let mut f = e.family(&c::QUEUE_OLDEST_AGE);
    for s in &q.label_sets {
        if let Some(w) = s.oldest_wait_now(since) {
            f.sample(&[&s.labels], w);
        }
    }
    e.family(&c::QUEUE_TIME).histogram(&[], &q.queue_time);
    e.family(&c::QUEUE_TIME_UNMEASURED)
        .sample(&[], q.queue_time_unmeasured as f64);
    let mut f = e.family(&c::QUEUE_RUNS);
    f.sample(&["queued"], q.runs_queued as f64);
    f.sample(&["in_progress"], q.runs_in_progress as f64);
    let mut f = e.family(&c::LABELSET_RUNNERS);
    for s in &q.label_sets {
        if let Some((online, idle)) = s.runners {
            f.sample(&[&s.labels, "online"], online as f64);
            f.sample(&[&s.labels, "idle"], idle as f64);
        }
    }
    let mut f = e.family(&c::QUEUE_API_REQUESTS);
    for (code, n) in &q.api.requests {
        f.sample(&[code], *n as f64);
    }
    e.family(&c::QUEUE_API_CHARGED)
        .sample(&[], q.charged_total as f64);
    let mut f = e.family(&c::QUEUE_API_ERRORS);
    for (reason, n) in q.api.errors.iter().filter(|(_, n)| *n > 0) {
        f.sample(&[reason.as_str()], n as f64);
    }
    e.family(&c::QUEUE_API_BUDGET)
        .sample(&[], q.budget_per_hour);
    e.family(&c::QUEUE_POLL_INTERVAL)
        .sample(&[], q.interval_seconds);
    let mut f = e.family(&c::WORKFLOW_JOBS);
    for w in &q.workflows {
        for (result, n) in w.results.iter() {
            f.sample(&[&w.workflow, result.as_str()], n as f64);
        }
    }
    let mut f = e.family(&c::WORKFLOW_JOB_DURATION);
    for w in &q.workflows {
        f.histogram(&[&w.workflow], &w.durations);
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
