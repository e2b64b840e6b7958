#![no_main]
//! Fuzz target `accept`: the harness is runner_health_exporter::fuzzing::accept,
//! shared with tests/it/fuzz_regressions.rs.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| runner_health_exporter::fuzzing::accept(data));
