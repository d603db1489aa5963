//! Fuzz target `logs_insights`: a Logs Insights query (first line of the input) is parsed and, when
//! it parses, executed over a few fixed log events plus the rest of the input as one more event
//! (`opsloop_logs::insights::fuzzing::insights`). Parse errors are fine; panics are not.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = opsloop_logs::insights::fuzzing::insights(data);
});
