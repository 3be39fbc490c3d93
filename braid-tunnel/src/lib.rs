//! braid-tunnel's logic, independent of the command line: [`server::Server`] and
//! [`client::Client`], the tunnel's wire messages, authentication, relaying and status.
//! The `braid-tunnel` binary (`main.rs`) wraps it in the command line defined in [`cli`]; the
//! integration tests and the `tunnel` bench drive the library directly.

pub mod auth;
pub mod backoff;
pub mod cli;
pub mod client;
pub mod forward;
pub mod metrics;
pub mod relay;
pub mod rules;
pub mod server;
pub mod tls;
pub mod wire;
