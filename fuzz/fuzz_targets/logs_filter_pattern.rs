//! Fuzz target `logs_filter_pattern` (placeholder: its owner writes the body).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = data;
});
