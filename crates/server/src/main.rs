//! `opsloop`: one binary that speaks the AWS wire APIs and implements them on your machines.
//! Everything lives in the library half (`opsloop::cli`).

use std::process::ExitCode;

/// mimalloc instead of the system allocator: request decoding builds (and drops) a document of many
/// small strings, maps and vectors per request, and glibc malloc took about a third of the server's
/// CPU under PutMetricData load (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match opsloop::cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("opsloop: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
