#![no_main]
//! sigv4_parse: parse_authorization / parse_credential on arbitrary strings, and parse_scope /
//! verify / explain on a request built from the input. Must never panic.

use libfuzzer_sys::fuzz_target;
use opsloop_fuzz::wire::sigv4_input;

fuzz_target!(|data: &[u8]| {
    let _ = sigv4_input(data);
});
