//! Run Command and the managed-node side of the agent protocol (owned by the Run Command / agent engineer).
//! (SKELETON: `OPERATIONS`, `State`, `handle`, `start` and `shutdown` are what lib.rs calls; keep
//! their signatures, extend the rest freely.)

use std::sync::Arc;

use opsloop_core::{ApiError, RequestContext, Value};

use crate::{Scope, Ssm};

/// The operations this module answers (lib.rs dispatches them here).
pub const OPERATIONS: &[&str] = &[
    "SendCommand",
    "ListCommands",
    "ListCommandInvocations",
    "GetCommandInvocation",
    "CancelCommand",
    "UpdateInstanceInformation",
];

/// In-memory state of this module.
#[derive(Default)]
pub struct State {}

/// Answer one of [`OPERATIONS`].
pub async fn handle(
    ssm: &Ssm,
    ctx: &RequestContext,
    scope: &Scope,
    input: Value,
) -> Result<Value, ApiError> {
    let _ = (ssm, scope, input);
    Err(ApiError::with_status(
        "NotImplemented",
        501,
        format!(
            "Operation {} is not implemented by this opsloop release.",
            ctx.operation
        ),
    ))
}

/// Start this module's background work (called from `Ssm::start`).
pub fn start(ssm: &Arc<Ssm>) -> Result<(), String> {
    let _ = ssm;
    Ok(())
}

/// Stop this module's background work (called from `Ssm::shutdown`).
pub fn shutdown(ssm: &Ssm) {
    let _ = ssm;
}
