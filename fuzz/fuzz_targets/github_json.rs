#![no_main]
//! Fuzz target `github_json`: the harness is runner_health_exporter::fuzzing::github_json,
//! shared with tests/it/fuzz_regressions.rs.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| runner_health_exporter::fuzzing::github_json(data));
