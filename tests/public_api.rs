//! What the public stream and error API promises a user (the same surface `braid::rpc` is
//! built on), without string matching: a write after finish is a typed [`Error::Finished`],
//! the braid error behind an `io::Error` is one call away ([`Error::from_io`]),
//! [`Error::is_session_gone`] tells a stream's failure from the session's,
//! [`Stream::stop`](braid::Stream::stop) stops the peer's direction only,
//! [`SendStream::closed`](braid::SendStream::closed) completes when the peer stops reading,
//! and [`SendStream::try_write_all`](braid::SendStream::try_write_all) queues all or nothing.

mod support;

use std::io;

use braid::{Config, Error, ErrorCode, Side};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_write_after_finish_is_a_typed_error_both_ways() {
    let (client, server) = support::duplex_pair(1 << 20, Config::default(), Config::default());
    let mut stream = client.open().await.unwrap();
    stream.write_all(b"request").await.unwrap();
    stream.shutdown().await.unwrap();

    // Through AsyncWrite: an io::Error of kind BrokenPipe carrying Error::Finished.
    let err = stream
        .write(b"late")
        .await
        .expect_err("write after shutdown");
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
    assert!(
        matches!(Error::from_io(&err), Some(Error::Finished)),
        "{err:?}"
    );

    // Through the owned-bytes API: the error itself.
    let (_rx, mut tx) = stream.into_split();
    let err = tx.send(Bytes::from_static(b"later")).await.unwrap_err();
    assert!(matches!(err, Error::Finished), "{err:?}");
    assert!(!err.is_session_gone());
    assert_eq!(err.caused_by(), None);

    // The peer got exactly the request and its FIN.
    let mut accepted = server.accept().await.unwrap();
    let mut got = Vec::new();
    accepted.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"request");
}

#[tokio::test]
async fn stream_stop_ends_the_peers_direction_and_keeps_ours() {
    let (client, server) = support::duplex_pair(1 << 20, Config::default(), Config::default());
    let mut stream = client.open().await.unwrap();
    stream.write_all(b"hello").await.unwrap();
    stream.flush().await.unwrap();
    let mut accepted = server.accept().await.unwrap();
    let mut hello = [0u8; 5];
    accepted.read_exact(&mut hello).await.unwrap();

    accepted.stop(ErrorCode(7));
    // The peer's writes fail with the code, sooner or later (STOP_SENDING is in flight).
    let err = loop {
        match stream.write_all(&[0u8; 16 * 1024]).await {
            Ok(()) => tokio::task::yield_now().await,
            Err(e) => break e,
        }
    };
    let braid_err = Error::from_io(&err).expect("a braid error");
    assert!(
        matches!(braid_err, Error::StreamStopped { code } if *code == ErrorCode(7)),
        "{braid_err:?}"
    );
    assert_eq!(braid_err.caused_by(), Some(Side::Remote));
    assert!(!braid_err.is_session_gone());

    // The stopping side still writes and finishes; the peer reads it all.
    accepted.write_all(b"reply").await.unwrap();
    accepted.shutdown().await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    assert_eq!(reply, b"reply");
}

#[tokio::test]
async fn a_closed_session_says_so_and_a_reset_stream_does_not() {
    let (client, server) = support::duplex_pair(1 << 20, Config::default(), Config::default());
    let mut stream = client.open().await.unwrap();
    stream.write_all(b"x").await.unwrap();
    stream.flush().await.unwrap();
    let mut accepted = server.accept().await.unwrap();
    accepted.reset(ErrorCode::CANCEL);
    let mut buf = [0u8; 8];
    let err = loop {
        match stream.read(&mut buf).await {
            Ok(0) => panic!("a reset stream must not end cleanly"),
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    let reset = Error::from_io(&err).expect("a braid error");
    assert!(!reset.is_session_gone(), "{reset:?}");
    assert_eq!(reset.caused_by(), Some(Side::Remote));

    server.close().await;
    let closed = support::wait_closed(&client).await;
    assert!(closed.is_session_gone(), "{closed:?}");
    assert_eq!(closed.caused_by(), Some(Side::Remote));
    let open = client.open().await.unwrap_err();
    assert!(open.is_session_gone(), "{open:?}");
}

#[tokio::test]
async fn closed_completes_when_the_peer_stops_reading() {
    let (client, server) = support::duplex_pair(1 << 20, Config::default(), Config::default());
    let mut stream = client.open().await.unwrap();
    stream.write_all(b"hi").await.unwrap();
    stream.flush().await.unwrap();
    let (_rx, mut tx) = stream.into_split();
    let mut accepted = server.accept().await.unwrap();

    // Nothing has happened yet: the future waits.
    let mut closed = Box::pin(tx.closed());
    assert!(support::poll_once(&mut closed).await.is_pending());

    accepted.stop(ErrorCode(9));
    let why = closed.await;
    assert!(
        matches!(why, Error::StreamStopped { code } if code == ErrorCode(9)),
        "{why:?}"
    );
}

#[tokio::test]
async fn try_write_all_queues_every_part_or_none() {
    let config = Config::default().with_stream_send_buffer(4096);
    let (client, server) = support::duplex_pair(1 << 20, config.clone(), config);
    let stream = client.open().await.unwrap();
    let (_rx, mut tx) = stream.into_split();
    // Fits: both parts queued together.
    assert!(tx.try_write_all(&[b"head", b"body"]).unwrap());
    // More than the stream's send buffer: nothing queued, no error, no wait.
    let big = vec![0u8; 8192];
    assert!(!tx.try_write_all(&[b"head", &big]).unwrap());
    tx.finish().unwrap();
    let mut accepted = server.accept().await.unwrap();
    let mut got = Vec::new();
    accepted.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"headbody");
}
