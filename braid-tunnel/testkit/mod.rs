//! Test and benchmark helpers for braid-tunnel: a tiny HTTP/1.1 server and client, an echo
//! server, a killable TCP proxy, deterministic payloads, and a harness that starts a tunnel
//! server and client in-process.
//!
//! Included by path (`#[path = "../testkit/mod.rs"] mod testkit;`) from `tests/tunnel_*.rs`
//! and `benches/tunnel.rs`: helpers shared by tests and a bench, not part of the library.

pub mod echo;
pub mod harness;
pub mod http;
pub mod payload;
pub mod proxy;

/// Sends the tunnel's logs to the test output (shown for failing tests).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_test_writer()
        .try_init();
}

/// A free loopback address (bound, then released; a race with other binders is possible
/// but harmless in tests).
pub fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free loopback port")
}
