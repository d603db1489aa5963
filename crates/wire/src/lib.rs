//! The AWS wire layer. One [`Gateway`] serves every registered service: it detects the protocol of a
//! request (awsJson 1.0/1.1 by `X-Amz-Target`, Smithy RPC v2 CBOR by the `smithy-protocol` header and
//! `/service/<Svc>/operation/<Op>` path, awsQuery by `Action=` form bodies, restJson by the model's
//! HTTP routes), authenticates it (SigV4), decodes it through the service's botocore model into the
//! protocol-neutral document of [`opsloop_core::Service`], calls the service and encodes the answer
//! (or error) the way botocore and the other SDKs parse it.
//!
//! Architecture invariant: this crate knows no service. Everything service-specific comes from the
//! model a service hands over.

pub mod codec;
pub mod dispatch;
pub mod error;
pub mod model;
pub mod sigv4;
pub mod validate;

pub use dispatch::{AuthMode, CredentialStore, Credentials, Gateway, GatewayConfig};
pub use model::{Model, ModelError};
