#![no_main]
//! Fuzz target `log_line`: the harness is runner_health_exporter::fuzzing::log_line,
//! shared with tests/it/fuzz_regressions.rs.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| runner_health_exporter::fuzzing::log_line(data));
