//! braid-tunnel authentication: a wrong token is rejected before any stream is served, the
//! client gives up with a clear error, and nothing ever reaches the target — even from a
//! hand-made braid peer that pipelines forwarding streams behind a bad auth stream.

use braid_tunnel as tunnel;

#[allow(dead_code)]
#[path = "../testkit/mod.rs"]
mod testkit;

use std::{net::SocketAddr, sync::atomic::Ordering, time::Duration};

use braid::{Config, Session};
use bytes::Bytes;
use testkit::{
    echo::EchoServer,
    harness::{start_client, start_server},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};
use tunnel::{
    auth::{ct_eq, parse_token},
    client::ClientError,
    wire::{self, OpenRequest, Status},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_is_rejected_and_nothing_is_forwarded() {
    testkit::init_logs();
    let target = EchoServer::start().await.unwrap();
    let server = start_server(|_| {}).await;
    let mut client = start_client(server.addr, &[target.addr], |o| {
        o.token = b"not-the-right-token-at-all".to_vec();
    })
    .await;
    // A local connection made while the client is being rejected.
    let local = client.local[0];
    let attempt = tokio::spawn(async move {
        let mut tcp = TcpStream::connect(local).await?;
        tcp.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
        let mut buf = Vec::new();
        tcp.read_to_end(&mut buf).await.map(|_| buf)
    });

    let outcome = client.finished().await;
    assert!(
        matches!(outcome, Err(ClientError::Rejected(Status::BadToken))),
        "client must give up with `wrong token`, got {outcome:?}"
    );
    let got = timeout(Duration::from_secs(5), attempt)
        .await
        .expect("local connection left hanging")
        .unwrap();
    assert!(
        got.as_ref().map_or(true, |b| b.is_empty()),
        "no bytes may come back: {got:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        target.accepted.load(Ordering::SeqCst),
        0,
        "the target saw a connection"
    );
    assert_eq!(server.counters.sessions.load(Ordering::SeqCst), 0);
    assert_eq!(server.counters.opened.load(Ordering::SeqCst), 0);
}

/// Opens a braid session to the tunnel server by hand.
async fn raw_session(server: SocketAddr) -> Session {
    let tcp = TcpStream::connect(server).await.unwrap();
    Session::client(tcp, Config::default()).unwrap()
}

/// Opens a forwarding stream to `target` with some payload, the way a client would; `None`
/// when the server has already closed the session.
async fn pipelined_forward(session: &Session, target: SocketAddr) -> Option<braid::Stream> {
    let mut stream = session.open().await.ok()?;
    let request = OpenRequest::connect(target.to_string()).encode().unwrap();
    stream.write_all(&request).await.ok()?;
    stream
        .write_all(b"payload that must never arrive")
        .await
        .ok()?;
    Some(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_streams_behind_a_wrong_token_never_reach_the_target() {
    testkit::init_logs();
    let target = EchoServer::start().await.unwrap();
    let server = start_server(|_| {}).await;
    let session = raw_session(server.addr).await;

    let mut auth = session.open().await.unwrap();
    auth.write_all(&wire::encode_auth(b"wrong-token-wrong-token").unwrap())
        .await
        .unwrap();
    // The server may already have judged the token and closed the session: then finishing
    // fails, and the status is still readable below.
    let _ = auth.finish();
    let mut forwards = Vec::new();
    for _ in 0..5 {
        forwards.extend(pipelined_forward(&session, target.addr).await);
    }

    let status = timeout(Duration::from_secs(5), wire::read_status(&mut auth))
        .await
        .expect("no answer to the auth request")
        .unwrap();
    assert_eq!(status, Status::BadToken);
    for mut stream in forwards {
        let answer = timeout(Duration::from_secs(5), stream.read_u8())
            .await
            .expect("forwarding stream left hanging");
        assert!(
            answer.is_err(),
            "a forwarding stream was answered: {answer:?}"
        );
    }
    // The server closed the whole session.
    timeout(Duration::from_secs(5), async {
        while session.closed_reason().is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the server kept the session open");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        target.accepted.load(Ordering::SeqCst),
        0,
        "the target saw a connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipping_authentication_is_rejected() {
    testkit::init_logs();
    let target = EchoServer::start().await.unwrap();
    let server = start_server(|_| {}).await;
    let session = raw_session(server.addr).await;

    // The first stream is a forwarding request instead of the auth request.
    let mut first = pipelined_forward(&session, target.addr)
        .await
        .expect("the session can't be closed before its first stream");
    let answer = timeout(Duration::from_secs(5), first.read_u8())
        .await
        .expect("left hanging");
    assert!(
        !matches!(answer, Ok(0)),
        "a forwarding stream was served without authentication"
    );
    timeout(Duration::from_secs(5), async {
        while session.closed_reason().is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the server kept an unauthenticated session open");
    assert_eq!(
        target.accepted.load(Ordering::SeqCst),
        0,
        "the target saw a connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peer_is_dropped_after_the_handshake_timeout() {
    testkit::init_logs();
    let server = start_server(|o| o.handshake_timeout = Duration::from_millis(300)).await;
    let session = raw_session(server.addr).await;
    timeout(Duration::from_secs(5), async {
        while session.closed_reason().is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("an unauthenticated, silent session stayed open");
}

#[tokio::test]
async fn target_outside_the_allow_list_is_refused() {
    testkit::init_logs();
    let allowed = EchoServer::start().await.unwrap();
    let other = EchoServer::start().await.unwrap();
    let allow = vec![allowed.addr.to_string()];
    let server = start_server(move |o| o.allow = allow).await;
    let mut client = start_client(server.addr, &[allowed.addr, other.addr], |_| {}).await;
    client.wait_up(1).await;

    let mut ok = TcpStream::connect(client.local[0]).await.unwrap();
    ok.write_all(b"hi").await.unwrap();
    ok.shutdown().await.unwrap();
    let mut reply = Vec::new();
    ok.read_to_end(&mut reply).await.unwrap();
    assert_eq!(reply, b"hi");

    let mut refused = TcpStream::connect(client.local[1]).await.unwrap();
    let mut buf = [0u8; 4];
    let err = timeout(Duration::from_secs(5), refused.read(&mut buf))
        .await
        .expect("left hanging")
        .expect_err("a refused target must reset the local connection");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    assert_eq!(other.accepted.load(Ordering::SeqCst), 0);
}

#[test]
fn ct_eq_compares_whole_strings() {
    assert!(ct_eq(b"", b""));
    assert!(ct_eq(b"secret-token", b"secret-token"));
    assert!(!ct_eq(b"secret-token", b"secret-tokeN"));
    assert!(!ct_eq(b"Secret-token", b"secret-token"));
    assert!(!ct_eq(b"secret-token", b"secret-token-longer"));
    assert!(!ct_eq(b"secret", b""));
}

#[test]
fn token_files_are_trimmed_and_checked() {
    assert_eq!(
        parse_token(b"  0123456789abcdef\n").unwrap(),
        b"0123456789abcdef"
    );
    assert!(parse_token(b"short\n").is_err());
    assert!(parse_token(b"\n\n").is_err());
    assert!(parse_token(&vec![b'x'; 5000]).is_err());
}

#[tokio::test]
async fn wire_messages_round_trip() {
    let token = b"0123456789abcdef".to_vec();
    let encoded = wire::encode_auth(&token).unwrap();
    assert_eq!(&encoded[..5], b"BRTN\x01");
    let decoded = wire::read_auth(&mut &encoded[..]).await.unwrap();
    assert_eq!(decoded, token);
    assert!(wire::read_auth(&mut &b"HTTP/1.1 200 OK\r\n"[..])
        .await
        .is_err());

    for request in [
        OpenRequest::connect("example.com:443"),
        OpenRequest::listen("[::1]:8080"),
    ] {
        let bytes = Bytes::from(request.encode().unwrap());
        let mut rest = &bytes[..];
        assert_eq!(OpenRequest::read(&mut rest).await.unwrap(), request);
        assert!(rest.is_empty(), "read past the request");
    }
    assert!(OpenRequest::connect("").encode().is_err());
    assert!(OpenRequest::read(&mut &[9u8, 0, 1, b'x'][..])
        .await
        .is_err());
    for status in [
        Status::Ok,
        Status::BadToken,
        Status::NotAllowed,
        Status::TimedOut,
    ] {
        assert_eq!(Status::from_byte(status.to_byte()), status);
    }
}
