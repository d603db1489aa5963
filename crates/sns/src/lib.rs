//! SNS.
pub mod arn;
pub mod delivery;
pub mod error;
pub mod filter;
pub mod signing;
pub mod state;
