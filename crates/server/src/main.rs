//! `opsloop`: one binary that speaks the AWS wire APIs and implements them on your machines.
//! Everything lives in the library half (`opsloop::cli`).

use std::process::ExitCode;

fn main() -> ExitCode {
    match opsloop::cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("opsloop: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
