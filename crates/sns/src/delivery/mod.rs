//! Delivery.
pub mod policy;
