//! Fuzzing harnesses for opsloop. Each module is also compiled into a crate's regression tests
//! (`crates/wire/tests/fuzz_regressions.rs`, `crates/cloudwatch/tests/fuzz_regressions.rs`) via
//! `#[path]`, so stored inputs replay through exactly the code the fuzzer ran.

#[cfg(feature = "math")]
pub mod math;
pub mod wire;
