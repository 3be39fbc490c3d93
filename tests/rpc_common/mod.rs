//! Helpers shared by the `rpc_*` integration tests: in-memory session pairs, a served
//! `rpc::Server`, metadata shorthand, and waiting until streams are freed.

#![allow(dead_code)]

use std::time::Duration;

use braid::rpc::{Client, MetadataMap, Server, ServerStream};
use braid::{Config, Session};

/// A client and a server session over an in-memory pipe.
pub fn sessions() -> (Session, Session) {
    sessions_with(Config::default())
}

/// A client and a server session with `config` over an in-memory pipe.
pub fn sessions_with(config: Config) -> (Session, Session) {
    let (a, b) = tokio::io::duplex(256 * 1024);
    let client = Session::client(a, config.clone()).unwrap();
    let server = Session::server(b, config).unwrap();
    (client, server)
}

/// Serves `server` on a fresh session pair; returns the client and both sessions.
pub fn start(server: Server) -> (Client, Session, Session) {
    start_with(server, Config::default())
}

/// Like [`start`], with `config` on both sessions.
pub fn start_with(server: Server, config: Config) -> (Client, Session, Session) {
    let (c, s) = sessions_with(config);
    let served = s.clone();
    tokio::spawn(async move { server.serve(served).await });
    (Client::new(c.clone()), c, s)
}

/// Metadata from ASCII pairs.
pub fn md(pairs: &[(&str, &str)]) -> MetadataMap {
    let mut m = MetadataMap::new();
    for (k, v) in pairs {
        m.append(k, v).unwrap();
    }
    m
}

/// Waits (in small virtual-time steps) until `f` holds.
pub async fn eventually(mut f: impl FnMut() -> bool) -> Result<(), ()> {
    for _ in 0..2000 {
        if f() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Err(())
}

/// No stream is open on the wire on either session (handles may still exist).
pub async fn all_closed(a: &Session, b: &Session) {
    eventually(|| a.stats().open_streams + b.stats().open_streams == 0)
        .await
        .unwrap_or_else(|()| panic!("streams open: {:?} / {:?}", a.stats(), b.stats()));
}

/// Both sessions have no stream left, open or tracked.
pub async fn all_freed(a: &Session, b: &Session) {
    eventually(|| {
        let (x, y) = (a.stats(), b.stats());
        x.open_streams + y.open_streams + x.tracked_streams + y.tracked_streams == 0
    })
    .await
    .unwrap_or_else(|()| panic!("streams left: {:?} / {:?}", a.stats(), b.stats()));
}

/// A server with one route, `/test.Echo/Echo`, echoing every message.
pub fn echo_server() -> Server {
    Server::new().route("/test.Echo/Echo", |mut s: ServerStream| async move {
        while let Some(msg) = s.recv().await? {
            s.send(msg).await?;
        }
        Ok(())
    })
}
