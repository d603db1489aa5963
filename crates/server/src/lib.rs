//! The `opsloop` binary's library half: configuration, key pair, wiring of stores, services and the
//! wire gateway ([`app::build`]), the HTTP surface ([`http::router`]) and the serve loop with graceful
//! shutdown ([`serve::run`]). `main.rs` only calls [`cli::main`]; tests drive the stack in-process
//! through [`app::build`] and [`serve::serve`].

pub mod app;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod http;
pub mod logging;
pub mod serve;
