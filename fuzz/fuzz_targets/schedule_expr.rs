//! Fuzz target `schedule_expr` (placeholder: its owner writes the body).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = data;
});
