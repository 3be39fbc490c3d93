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

/// On a current-thread runtime (tokio's default for `#[tokio::test]`), `flush` puts the
/// written bytes on the transport from the calling task: it completes on its first poll,
/// without waiting for the session's driver task to run (which would wake the caller a
/// second time per flush).
#[tokio::test]
async fn flush_completes_without_the_driver_on_a_current_thread_runtime() {
    use futures::FutureExt;
    let (client, server) = support::duplex_pair(64 * 1024, Default::default(), Default::default());
    support::spawn_echo_server(server);
    let mut s = client.open().await.unwrap();
    // One echoed exchange first, so both prefaces are in and the stream is open.
    s.write_all(b"ping").await.unwrap();
    let mut back = [0u8; 4];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"ping");

    s.write_all(b"pong").now_or_never().unwrap().unwrap();
    let flushed = s.flush().now_or_never();
    assert!(
        matches!(flushed, Some(Ok(()))),
        "flush waited for the driver: {flushed:?}"
    );
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"pong");
}
