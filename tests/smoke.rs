//! Smoke test: one stream echoed through a client and a server session.
mod support;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn one_stream_echo() {
    let (client, server) = support::duplex_pair(64 * 1024, Default::default(), Default::default());
    support::spawn_echo_server(server);
    let mut s = client.open().await.unwrap();
    s.write_all(b"hello").await.unwrap();
    s.shutdown().await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    assert_eq!(out, b"hello");
}
