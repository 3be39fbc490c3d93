//! braid-tunnel's logic, independent of the command line: [`server::Server`] and
//! [`client::Client`], the tunnel's wire messages, authentication, relaying and status.
//! `main.rs` wraps it in a CLI; the integration tests (`tests/tunnel_*.rs`) and the
//! `tunnel` bench (`benches/tunnel.rs`) include this file by path and drive it directly.

#[path = "auth.rs"]
pub mod auth;
#[path = "backoff.rs"]
pub mod backoff;
#[path = "client.rs"]
pub mod client;
#[path = "forward.rs"]
pub mod forward;
#[path = "metrics.rs"]
pub mod metrics;
#[path = "relay.rs"]
pub mod relay;
#[path = "rules.rs"]
pub mod rules;
#[path = "server.rs"]
pub mod server;
#[path = "tls.rs"]
pub mod tls;
#[path = "wire.rs"]
pub mod wire;
