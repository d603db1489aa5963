//! Fuzz target `logs_filter_pattern`: a filter pattern (first line of the input) is parsed and,
//! when it parses, matched and extracted against a few fixed log events plus the rest of the input
//! (`opsloop_logs::insights::fuzzing::filter_pattern`); `matches` and `extract` must agree.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = opsloop_logs::insights::fuzzing::filter_pattern(data);
});
