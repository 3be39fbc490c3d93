//! Graceful shutdown: after `Session::goaway()` no stream can be opened either way (`open()`
//! fails with `GoingAway`, the peer's `accept()` ends with an error), streams already open
//! finish their transfers with nothing lost (checked by hash), then both sessions end.
//! Dropping every `Session` handle behaves the same.

mod support;

use braid::{Config, Error, ErrorCode, RecvStream, Role, SendStream, Session, Side};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: usize = 1024 * 1024;

fn pipe() -> (Session, Session) {
    support::duplex_pair(64 * 1024, Config::default(), Config::default())
}

fn assert_going_away<T: std::fmt::Debug>(result: Result<T, Error>, by: Side) {
    match result {
        Err(Error::GoingAway { by: b }) => assert_eq!(b, by),
        other => panic!("expected GoingAway by {by:?}, got {other:?}"),
    }
}

fn assert_closed_gracefully(session: &Session, by: Side) {
    match session.closed_reason() {
        Some(Error::SessionClosed { code, by: b, .. }) => {
            assert_eq!((code, b), (ErrorCode::NO_ERROR, by));
        }
        other => panic!("expected a graceful close by {by:?}, got {other:?}"),
    }
}

/// A stream with a transfer in progress: `payload` is being echoed, and its first `sent`
/// bytes already came back.
struct Transfer {
    rx: RecvStream,
    tx: SendStream,
    payload: Vec<u8>,
    sent: usize,
}

/// Opens `n` streams on `client` (whose peer runs an echo) and round-trips the first bytes
/// of each, so that every stream is open on both sides and mid-transfer.
async fn start_transfers(client: &Session, n: u64) -> Vec<Transfer> {
    let mut out = Vec::new();
    for i in 0..n {
        let (mut rx, mut tx) = client.open().await.expect("open").into_split();
        let payload = support::data(100 + i, MIB + 1000 * i as usize);
        let sent = 1000;
        tx.write_all(&payload[..sent]).await.unwrap();
        let mut echo = vec![0u8; sent];
        support::guard("first echo", rx.read_exact(&mut echo))
            .await
            .unwrap();
        assert_eq!(echo, payload[..sent]);
        out.push(Transfer {
            rx,
            tx,
            payload,
            sent,
        });
    }
    out
}

/// Finishes each transfer (rest of the payload, FIN, echo to EOF) in its own task and checks
/// the whole echo by hash.
async fn finish_transfers(transfers: Vec<Transfer>) {
    let tasks: Vec<_> = transfers
        .into_iter()
        .map(|mut t| {
            tokio::spawn(async move {
                let rest = t.payload[t.sent..].to_vec();
                let (w, r) = tokio::join!(
                    support::write_random_chunks(&mut t.tx, &rest, t.sent as u64),
                    support::read_hashed(&mut t.rx, 1)
                );
                w.expect("write after GOAWAY");
                let (len, hash) = r.expect("read after GOAWAY");
                assert_eq!(
                    (len, hash),
                    (rest.len(), support::hash(&rest)),
                    "bytes lost after GOAWAY"
                );
            })
        })
        .collect();
    for t in tasks {
        support::guard("transfer", t).await.unwrap();
    }
}

async fn goaway_drains_open_streams(by_client: bool) {
    let (client, server) = pipe();
    let (accept_end, mut reports) = support::spawn_hashing_echo(server.clone());
    let transfers = start_transfers(&client, 4).await;
    let expected: Vec<(usize, u64)> = transfers
        .iter()
        .map(|t| (t.payload.len(), support::hash(&t.payload)))
        .collect();

    let (going, peer) = if by_client {
        (&client, &server)
    } else {
        (&server, &client)
    };
    going.goaway();
    assert_going_away(going.open().await, Side::Local);
    assert_going_away(going.accept().await, Side::Local);
    assert_going_away(
        support::guard("peer accept", peer.accept()).await,
        Side::Remote,
    );
    assert_going_away(peer.open().await, Side::Remote);
    let echo_accept_end = support::guard("echo accept loop", accept_end)
        .await
        .unwrap();
    let by = if by_client { Side::Remote } else { Side::Local };
    assert!(
        matches!(echo_accept_end, Error::GoingAway { by: b } if b == by),
        "{echo_accept_end:?}"
    );
    assert!(client.closed_reason().is_none() && server.closed_reason().is_none());

    finish_transfers(transfers).await;
    let mut got = Vec::new();
    for _ in 0..4 {
        let r = support::guard("report", reports.recv())
            .await
            .expect("echo report");
        got.push((r.id, (r.len, r.hash)));
    }
    got.sort();
    let got: Vec<_> = got.into_iter().map(|(_, v)| v).collect();
    assert_eq!(got, expected, "the echo side received other bytes");

    support::wait_closed(&client).await;
    support::wait_closed(&server).await;
    let (client_by, server_by) = if by_client {
        (Side::Local, Side::Remote)
    } else {
        (Side::Remote, Side::Local)
    };
    assert_closed_gracefully(&client, client_by);
    assert_closed_gracefully(&server, server_by);
    assert!(client.open().await.is_err() && server.accept().await.is_err());
}

#[tokio::test(start_paused = true)]
async fn goaway_by_client_drains_open_streams() {
    goaway_drains_open_streams(true).await;
}

#[tokio::test(start_paused = true)]
async fn goaway_by_server_drains_open_streams() {
    goaway_drains_open_streams(false).await;
}

/// Streams the peer opened before our GOAWAY and that still wait in the accept backlog are
/// kept: `accept()` returns them, then the GoingAway error.
#[tokio::test(start_paused = true)]
async fn goaway_keeps_streams_waiting_in_the_backlog() {
    let (client, server) = pipe();
    let mut opened = Vec::new();
    for i in 0..3u8 {
        let mut c = client.open().await.unwrap();
        c.write_all(&[i; 10]).await.unwrap();
        c.shutdown().await.unwrap();
        opened.push(c);
    }
    support::until("SYNs arrive", || server.stats().backlog == 3).await;
    server.goaway();
    for i in 0..3u8 {
        let mut s = server.accept().await.expect("backlog stream after GOAWAY");
        let mut got = Vec::new();
        support::guard("read", s.read_to_end(&mut got))
            .await
            .unwrap();
        assert_eq!(got, [i; 10]);
        s.write_all(b"reply").await.unwrap();
        s.shutdown().await.unwrap();
    }
    assert_going_away(server.accept().await, Side::Local);
    for mut c in opened {
        let mut got = Vec::new();
        support::guard("reply", c.read_to_end(&mut got))
            .await
            .unwrap();
        assert_eq!(got, b"reply");
    }
    support::wait_closed(&client).await;
    assert_closed_gracefully(&server, Side::Local);
    assert_closed_gracefully(&client, Side::Remote);
}

/// A stream whose SYN crosses the peer's GOAWAY was never processed: it fails as refused
/// (safe to retry), while the stream below the GOAWAY's last id finishes.
#[tokio::test(start_paused = true)]
async fn open_crossing_a_goaway_is_refused() {
    let (client, server) = pipe();
    let mut c1 = client.open().await.unwrap();
    let mut s1 = support::guard("accept", server.accept()).await.unwrap();
    // No await between these: the SYN of stream 3 and the GOAWAY(last = 1) cross.
    let mut late = client.open().await.expect("open before the GOAWAY arrives");
    late.write_all(b"lost").await.unwrap();
    server.goaway();

    let err = support::guard("late read", late.read(&mut [0u8; 8]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    assert!(
        matches!(
            Error::from_io(&err),
            Some(Error::StreamRefused {
                code: ErrorCode::REFUSED_STREAM
            })
        ),
        "{err}"
    );
    assert_going_away(client.open().await, Side::Remote);
    drop(late);

    c1.write_all(b"kept").await.unwrap();
    c1.shutdown().await.unwrap();
    let mut got = Vec::new();
    support::guard("s1 read", s1.read_to_end(&mut got))
        .await
        .unwrap();
    assert_eq!(got, b"kept");
    s1.shutdown().await.unwrap();
    assert_eq!(
        support::guard("c1 read", c1.read(&mut [0u8; 8]))
            .await
            .unwrap(),
        0
    );
    support::wait_closed(&client).await;
    support::wait_closed(&server).await;
    assert_closed_gracefully(&server, Side::Local);
}

/// A stream opened (and written to) just before this side's own GOAWAY was opened before it:
/// it must be delivered and finish like any other, even though nothing was on the wire yet.
#[tokio::test(start_paused = true)]
async fn stream_opened_just_before_own_goaway_finishes() {
    let (client, server) = pipe();
    let (_accept_end, mut reports) = support::spawn_hashing_echo(server.clone());
    let mut c = client.open().await.unwrap();
    c.write_all(b"opened before goaway").await.unwrap();
    c.shutdown().await.unwrap();
    client.goaway();
    let mut got = Vec::new();
    support::guard("echo", c.read_to_end(&mut got))
        .await
        .expect("stream opened before GOAWAY must finish");
    assert_eq!(got, b"opened before goaway");
    assert_eq!(
        support::guard("report", reports.recv()).await.unwrap().len,
        20
    );
    support::wait_closed(&client).await;
    assert_closed_gracefully(&client, Side::Local);
}

/// Dropping every `Session` handle sends GOAWAY: the peer's accept ends, open streams finish
/// with every byte, then both ends close (the dropped side's driver completes).
#[tokio::test(start_paused = true)]
async fn dropping_every_session_handle_is_a_goaway() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (client, driver) = Session::with_driver(a, Config::default(), Role::Client).unwrap();
    let driver = tokio::spawn(driver);
    let server = Session::server(b, Config::default()).unwrap();
    let (accept_end, mut reports) = support::spawn_hashing_echo(server.clone());
    let client2 = client.clone();
    let transfers = start_transfers(&client2, 3).await;
    drop(client);
    assert!(
        client2.closed_reason().is_none(),
        "one handle left: still running"
    );
    drop(client2);

    let end = support::guard("echo accept loop", accept_end)
        .await
        .unwrap();
    assert!(
        matches!(end, Error::GoingAway { by: Side::Remote }),
        "{end:?}"
    );
    assert_going_away(server.open().await, Side::Remote);
    finish_transfers(transfers).await;
    for _ in 0..3 {
        support::guard("report", reports.recv())
            .await
            .expect("report");
    }
    support::wait_closed(&server).await;
    assert_closed_gracefully(&server, Side::Remote);
    support::guard("client driver ends", driver).await.unwrap();
}

/// An idle session whose handles are all dropped closes at once, and the peer sees why.
#[tokio::test(start_paused = true)]
async fn dropping_an_idle_session_closes_both_ends() {
    let (client, server) = pipe();
    support::guard("ping", client.ping()).await.unwrap();
    drop(client);
    let end = support::guard("accept", server.accept()).await;
    assert!(end.is_err(), "{end:?}");
    support::wait_closed(&server).await;
    assert_closed_gracefully(&server, Side::Remote);
}
