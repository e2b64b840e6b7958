//! Encoding a snapshot: what the renderer does each time a collector reports
//! a change (never per scrape), and the gzip a scrape with
//! `Accept-Encoding: gzip` computes once per version.
//!
//! The snapshot is a realistic host with 10 runners, each seen by all three
//! collectors (unit, root with logs, GitHub self scope), built with the
//! public types of `snapshot`.
//!
//!     cargo bench --bench render

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use runner_health_exporter::collect::{github, host, registry, runner, systemd};
use runner_health_exporter::config::{Config, RunnerConfig, Scope};
use runner_health_exporter::metrics::catalog::JOB_DURATION_BUCKETS;
use runner_health_exporter::metrics::render::render;
use runner_health_exporter::metrics::rendered::Rendered;
use runner_health_exporter::settings::Settings;
use runner_health_exporter::snapshot::{
    ApiStats, Counts, CurrentJob, Filesystem, FsUsage, GithubRunner, GithubState, HostState,
    JobResult, LogEvent, LogState, Meta, ProcStats, ProcessStats, Registration, RootSources,
    RunnerRoot, RunnerState, Snapshot, SystemdState, UnitState, Variants, UNIT_STATES,
};
use runner_health_exporter::timefmt::now_unix;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const RUNNERS: usize = 10;

fn succeeded(meta: &mut Meta, at: f64) {
    meta.success = true;
    meta.last_attempt = Some(at);
    meta.last_success = Some(at);
    meta.duration = Duration::from_micros(850);
}

/// Counts given in the order of `E::ALL`.
fn counts<E: Variants, const N: usize>(values: [u64; N]) -> Counts<E, N> {
    let mut c = Counts::default();
    for (e, n) in E::ALL.iter().zip(values) {
        c.add(*e, n);
    }
    c
}

fn host() -> HostState {
    let mounts = [
        ("/", "ext4", "/dev/vda1"),
        ("/boot", "ext4", "/dev/vda2"),
        ("/boot/efi", "vfat", "/dev/vda15"),
        ("/home", "ext4", "/dev/vdb1"),
        ("/var/lib/docker", "xfs", "/dev/vdc1"),
        ("/srv", "ext4", "/dev/vdd1"),
        ("/run", "tmpfs", "tmpfs"),
        ("/tmp", "tmpfs", "tmpfs"),
    ];
    HostState {
        cpu_usage_ratio: Some(0.173),
        cpu_seconds: [
            "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
        ]
        .iter()
        .enumerate()
        .map(|(i, m)| (*m, 12_345.67 * (i + 1) as f64))
        .collect(),
        cpu_cores: 8,
        load: [1.25, 0.98, 0.77],
        memory_total: 33_554_432_000,
        memory_available: 21_474_836_480,
        swap_total: 4_294_967_296,
        swap_free: 4_194_304_000,
        boot_time: 1_767_225_600,
        filesystems: mounts
            .iter()
            .enumerate()
            .map(|(i, (m, t, d))| Filesystem {
                mountpoint: m.to_string(),
                fstype: t.to_string(),
                device: d.to_string(),
                usage: Some(FsUsage {
                    size: 107_374_182_400 + i as u64,
                    free: 53_687_091_200,
                    avail: 48_318_382_080,
                    files: 6_553_600,
                    files_free: 6_000_000,
                }),
            })
            .collect(),
    }
}

fn name(i: usize) -> String {
    format!("build-{i:02}")
}

fn root_path(i: usize) -> PathBuf {
    PathBuf::from(format!("/home/runner/actions-runner-{i:02}"))
}

fn unit_name(i: usize) -> String {
    format!("actions.runner.acme-app.{}.service", name(i))
}

fn unit(i: usize, now: f64) -> UnitState {
    UnitState {
        name: unit_name(i),
        object_path: format!("/org/freedesktop/systemd1/unit/actions_2erunner_{i}"),
        load_state: "loaded".into(),
        active_state: UNIT_STATES[0].into(),
        sub_state: "running".into(),
        n_restarts: Some(i as u32),
        restarts_total: Some(i as u64),
        recent_restarts: 0,
        active_since: Some(now - 86_400.0),
        active_enter_monotonic_us: Some(1_000_000),
        exec_main_status: Some(0),
        working_directory: Some(root_path(i)),
        control_group: Some(format!("/system.slice/{}", unit_name(i))),
        main_pid: Some(1000 + i as u32),
        listener: Some(ProcStats {
            pid: 1001 + i as u32,
            resident_bytes: 120_000_000,
            cpu_seconds: 321.5,
        }),
        worker: (i % 2 == 0).then_some(ProcStats {
            pid: 2001 + i as u32,
            resident_bytes: 250_000_000,
            cpu_seconds: 12.25,
        }),
        user: Some("runner".into()),
    }
}

fn root(i: usize, now: f64) -> RunnerRoot {
    let mut logs = LogState {
        version: Some("2.330.0".into()),
        connected: Some(true),
        current_job: (i % 2 == 0).then(|| CurrentJob {
            name: format!("build / test (ubuntu-24.04, stable) #{i}"),
            started: now - 120.0,
            seen: None,
        }),
        jobs: counts::<JobResult, { JobResult::COUNT }>([120, 3, 7, 2, 0, 1]),
        last_job_completed: Some(now - 300.0),
        events: counts::<LogEvent, { LogEvent::COUNT }>([2, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0]),
        recent: vec![
            (LogEvent::ConnectError, now - 4000.0),
            (LogEvent::Reconnected, now - 3990.0),
        ],
        last_entry: Some(now - 1.0),
        bytes_read: 48_000_000,
        runner_log: Some(root_path(i).join("_diag/Runner_20260105-090000-utc.log")),
        worker_log: Some(root_path(i).join("_diag/Worker_20260105-112000-utc.log")),
        ..LogState::default()
    };
    for k in 0..133 {
        logs.durations
            .observe(JOB_DURATION_BUCKETS, 30.0 + 17.0 * k as f64);
    }
    RunnerRoot {
        root: root_path(i),
        sources: RootSources {
            config: false,
            unit: true,
            glob: true,
        },
        accessible: true,
        error: None,
        registration: Some(Registration {
            agent_id: Some(100 + i as u64),
            agent_name: Some(name(i)),
            pool_id: Some(1),
            pool_name: Some("Default".into()),
            server_url: Some("https://pipelines.actions.githubusercontent.com/abc/".into()),
            github_url: Some("https://github.com/acme/app".into()),
            work_folder: Some("_work".into()),
            ephemeral: false,
            disable_update: false,
            is_hosted_server: None,
        }),
        agent_name: Some(name(i)),
        ephemeral_seen: false,
        service_unit: Some(unit_name(i)),
        work_fs: Some(FsUsage {
            size: 107_374_182_400,
            free: 53_687_091_200,
            avail: 48_318_382_080,
            files: 6_553_600,
            files_free: 6_000_000,
        }),
        logs,
        watched: true,
        docker: None,
    }
}

fn github_runner(i: usize, now: f64) -> GithubRunner {
    GithubRunner {
        name: name(i),
        root: Some(root_path(i)),
        id: Some((100 + i as u64).into()),
        owner: "acme/app".into(),
        registered: true,
        online: true,
        busy: i % 2 == 0,
        os: "Linux".into(),
        ephemeral: false,
        labels: ["self-hosted", "Linux", "X64", "gpu"]
            .map(String::from)
            .to_vec(),
        checked_at: now - 20.0,
    }
}

/// A host with 10 runners, every collector reporting.
pub fn snapshot() -> Snapshot {
    let mut config = Config {
        runners: (0..RUNNERS)
            .map(|i| RunnerConfig {
                root: Some(root_path(i)),
                role: Some(if i == 0 { "primary" } else { "pool" }.into()),
                environment: Some("production".into()),
                ..RunnerConfig::default()
            })
            .collect(),
        ..Config::default()
    };
    config.github.scope = Some(Scope::SelfScope);
    let now = now_unix();
    let mut s = registry::empty_snapshot(Arc::new(Settings::with_token(config, None)));
    s.set(host::NAME, host());
    s.set(
        systemd::NAME,
        SystemdState {
            units: (0..RUNNERS).map(|i| unit(i, now)).collect(),
            ..Default::default()
        },
    );
    s.set(
        runner::NAME,
        RunnerState {
            roots: (0..RUNNERS).map(|i| root(i, now)).collect(),
        },
    );
    let mut api = ApiStats {
        rate_remaining: Some(4_990),
        rate_limit: Some(5_000),
        rate_reset: Some(now as u64 + 1_800),
        last_success: Some(now),
        ..ApiStats::default()
    };
    api.requests.insert("200".into(), 10);
    api.requests.insert("304".into(), 590);
    s.set(
        github::NAME,
        GithubState {
            runners: (0..RUNNERS).map(|i| github_runner(i, now)).collect(),
            api,
            ..Default::default()
        },
    );
    for section in &mut s.sections {
        succeeded(&mut section.meta, now);
    }
    s.process = Some(ProcessStats {
        cpu_seconds: 1.23,
        resident_bytes: 5_000_000,
        virtual_bytes: 300_000_000,
        open_fds: 24,
        max_fds: 1024,
        start_time: now - 3_600.0,
    });
    s
}

fn benches(c: &mut Criterion) {
    let snap = snapshot();
    let encoded = render(&snap);
    // Guard against benchmarking an empty rendering.
    assert!(encoded
        .text
        .contains("github_runner_jobs_total{runner=\"build-09\""));
    let mut g = c.benchmark_group("render");
    g.throughput(Throughput::Bytes(encoded.text.len() as u64));
    // One call encodes both formats (text 0.0.4 and OpenMetrics).
    g.bench_function("snapshot_10_runners_text_and_openmetrics", |b| {
        b.iter(|| render(black_box(&snap)))
    });
    // What the first `Accept-Encoding: gzip` scrape of a version computes
    // (later ones get the cached bytes).
    g.bench_function("gzip_text_body", |b| {
        b.iter_batched(
            || Rendered::new(1, encoded.text.clone(), String::new()),
            |r| r.gzip(false),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benchmarks, benches);
criterion_main!(benchmarks);
