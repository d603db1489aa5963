#![no_main]
//! math_parse: metric math `parse` and `parse_search` on arbitrary UTF-8; parsed expressions are
//! also evaluated over a small fixed environment. Must never panic.

use libfuzzer_sys::fuzz_target;
use opsloop_fuzz::math::math_input;

fuzz_target!(|data: &[u8]| {
    let _ = math_input(data);
});
