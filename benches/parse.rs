//! Parsing `_diag` log lines: splitting a line into its parts
//! (`parse_line`), recognising the listener's messages (`interpret`) and
//! applying them to the runner's state (`apply`), as the runner collector
//! does for every line it tails.
//!
//! The corpus is the `basic` fixture's listener log (jobs, a multi-line
//! exception, a reconnect, non-ASCII job names) followed by job cycles in
//! the agent's format, the mix a busy runner writes.
//!
//!     cargo bench --bench parse

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use runner_health_exporter::collect::runner::parse::{
    apply, interpret, parse_line, Line, Mode, ParseAux,
};
use runner_health_exporter::snapshot::LogState;
use std::hint::black_box;

mod support;
use support::job_cycle;

/// The fixture's listener log followed by `jobs` job cycles.
pub fn corpus(jobs: usize) -> String {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/runner/basic/_diag/Runner_20260105-090000-utc.log"
    );
    let mut s = std::fs::read_to_string(fixture).unwrap_or_else(|e| panic!("{fixture}: {e}"));
    for i in 0..jobs {
        s.push_str(&job_cycle(i));
    }
    s
}

fn apply_all(lines: &[&str]) -> LogState {
    let mut logs = LogState::default();
    let mut aux = ParseAux::default();
    for l in lines {
        if let Line::Entry(e) = parse_line(black_box(l)) {
            if let Some(msg) = interpret(e.message) {
                apply(&mut logs, &mut aux, e.ts, msg, Mode::Live);
            }
        }
    }
    logs
}

fn benches(c: &mut Criterion) {
    let text = corpus(100);
    let lines: Vec<&str> = text.lines().collect();
    // The corpus holds what it claims: 100 jobs plus the fixture's 3.
    let jobs = apply_all(&lines).jobs;
    assert_eq!(jobs.iter().map(|(_, n)| n).sum::<u64>(), 103, "{jobs:?}");
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("parse_line", |b| {
        b.iter(|| {
            let mut entries = 0usize;
            for l in &lines {
                if let Line::Entry(e) = parse_line(black_box(l)) {
                    entries += e.message.len();
                }
            }
            entries
        })
    });
    // What the collector does per line of a listener log.
    g.bench_function("parse_interpret_apply", |b| b.iter(|| apply_all(&lines)));
    g.finish();
}

criterion_group!(benchmarks, benches);
criterion_main!(benchmarks);
