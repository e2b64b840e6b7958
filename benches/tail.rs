//! Tailing appended bytes: splitting a byte stream into lines
//! (`LineReader::feed`) and reading an appended range of a real log file
//! with `read_range` (pread in 64 KiB chunks, line splitting, and each line
//! parsed and applied to the runner's state as the collector does).
//!
//!     cargo bench --bench tail

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use runner_health_exporter::collect::runner::parse::{
    apply, interpret, parse_line, Line, Mode, ParseAux,
};
use runner_health_exporter::collect::runner::tail::{read_range, LineEvent, LineReader, Sink};
use runner_health_exporter::snapshot::{JobResult, LogState};
use std::hint::black_box;
use std::io::Write;

mod support;
use support::job_cycle;

const MAX_LINE: usize = 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// At least `size` bytes of listener log, whole job cycles.
fn log_bytes(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 2048);
    let mut i = 0;
    while out.len() < size {
        out.extend_from_slice(job_cycle(i).as_bytes());
        i += 1;
    }
    out
}

/// Parses each line into the runner's state, like the collector's consumer
/// of a listener log.
#[derive(Default)]
struct Parsing {
    logs: LogState,
    aux: ParseAux,
}

impl Sink for Parsing {
    fn bytes(&mut self, n: u64) {
        self.logs.bytes_read += n;
    }

    fn line(&mut self, ev: LineEvent<'_>, mode: Mode) {
        let LineEvent::Line(bytes) = ev else { return };
        let Ok(text) = std::str::from_utf8(bytes) else {
            return;
        };
        if let Line::Entry(e) = parse_line(text) {
            if self.logs.last_entry.is_none_or(|t| e.ts > t) {
                self.logs.last_entry = Some(e.ts);
            }
            if let Some(msg) = interpret(e.message) {
                apply(&mut self.logs, &mut self.aux, e.ts, msg, mode);
            }
        }
    }

    fn not_regular(&mut self) {}
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("tail");

    // Line splitting alone, in the chunks read_range hands over.
    let data = log_bytes(1024 * 1024);
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("line_reader_1MiB", |b| {
        b.iter(|| {
            let mut reader = LineReader::new(MAX_LINE);
            let mut lines = 0usize;
            for chunk in data.chunks(CHUNK) {
                reader.feed(black_box(chunk), &mut |ev| {
                    if let LineEvent::Line(l) = ev {
                        lines += l.len();
                    }
                });
            }
            lines
        })
    });

    // A log file with old content, then appended bytes read from the
    // previous end, as one poll does (page cache warm).
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("Runner_20260105-000000-utc.log");
    let old = log_bytes(4 * 1024 * 1024);
    for (label, appended) in [
        ("1KiB", job_cycle(1_000_000).into_bytes()),
        ("1MiB", data.clone()),
    ] {
        let mut f = std::fs::File::create(&path).expect("create log");
        f.write_all(&old).expect("write log");
        f.write_all(&appended).expect("append");
        drop(f);
        let file = std::fs::File::open(&path).expect("open log");
        let from = old.len() as u64;
        let to = from + appended.len() as u64;
        let mut buf = Vec::new();
        // Check once that every job of the appended bytes is counted.
        let mut sink = Parsing::default();
        let mut reader = LineReader::new(MAX_LINE);
        let reached = read_range(
            &file,
            from,
            to,
            &mut reader,
            Mode::Live,
            &mut buf,
            &mut sink,
        )
        .expect("read_range");
        assert_eq!(reached, to);
        let jobs = appended
            .windows(21)
            .filter(|w| w == b"completed with result")
            .count();
        assert_eq!(sink.logs.jobs.get(JobResult::Succeeded), jobs as u64);
        g.throughput(Throughput::Bytes(appended.len() as u64));
        g.bench_function(format!("read_range_parse_appended_{label}"), |b| {
            b.iter(|| {
                let mut sink = Parsing::default();
                let mut reader = LineReader::new(MAX_LINE);
                read_range(
                    &file,
                    from,
                    to,
                    &mut reader,
                    Mode::Live,
                    &mut buf,
                    &mut sink,
                )
                .expect("read_range");
                sink.logs.jobs.get(JobResult::Succeeded)
            })
        });
    }
    g.finish();
}

criterion_group!(benchmarks, benches);
criterion_main!(benchmarks);
