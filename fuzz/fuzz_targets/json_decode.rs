#![no_main]
//! json_decode: first byte picks a CloudWatch operation, the rest is its request body; decoded
//! documents are validated. Must never panic.

use libfuzzer_sys::fuzz_target;
use opsloop_fuzz::wire::{decode_body, BodyProtocol};

fuzz_target!(|data: &[u8]| {
    let _ = decode_body(BodyProtocol::Json, data);
});
