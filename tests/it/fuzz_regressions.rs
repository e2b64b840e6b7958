//! The fuzz corpus as regression tests: every input kept under
//! `fuzz/seeds/<target>/` (hand-written and fixture seeds) and
//! `fuzz/corpus/<target>/` (inputs the fuzzer found interesting, including
//! the ones that once crashed) goes through the same harness the cargo-fuzz
//! target runs (`runner_health_exporter::fuzzing`), so a fixed crash or
//! broken invariant cannot come back. No fuzzing engine is needed.

use runner_health_exporter::fuzzing::TARGETS;
use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for dir in ["seeds", "corpus"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        for e in entries {
            let path = e.expect("corpus entry").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn replay(target: &str) {
    let (_, harness) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a harness for every target");
    let files = inputs(target);
    assert!(
        !files.is_empty(),
        "no corpus for {target} under fuzz/seeds or fuzz/corpus"
    );
    for path in &files {
        let data = std::fs::read(path).expect("read corpus file");
        let result = std::panic::catch_unwind(|| harness(&data));
        assert!(
            result.is_ok(),
            "{target}: {} breaks the harness (run `cargo fuzz run {target} {}` in fuzz/ to see why)",
            path.display(),
            path.display()
        );
    }
}

#[test]
fn every_target_has_a_test_here() {
    let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        ["log_line", "runner_file", "config", "github_json", "accept"]
    );
    let targets = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    for name in names {
        assert!(
            targets.join(format!("{name}.rs")).is_file(),
            "fuzz/fuzz_targets/{name}.rs missing"
        );
    }
}

#[test]
fn log_line_corpus() {
    replay("log_line");
}

#[test]
fn runner_file_corpus() {
    replay("runner_file");
}

#[test]
fn config_corpus() {
    replay("config");
}

#[test]
fn github_json_corpus() {
    replay("github_json");
}

#[test]
fn accept_corpus() {
    replay("accept");
}
