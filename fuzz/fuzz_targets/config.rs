#![no_main]
//! Fuzz target `config`: the harness is runner_health_exporter::fuzzing::config,
//! shared with tests/it/fuzz_regressions.rs.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| runner_health_exporter::fuzzing::config(data));
