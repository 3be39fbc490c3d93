//! Issue #21, "the spec's edges are settled": one test per edge of `spec/PROTOCOL.md` that the
//! text used to leave open or contradict, each against a raw-frame peer so the wire is exactly
//! what the row says. The item numbers are the issue's.

#[path = "support/hostile.rs"]
mod hostile;
mod support;

use std::time::Duration;

use braid::{
    frame::{ErrorCode, Flags, Frame},
    Config, Error, Session, TimeoutKind,
};
use bytes::Bytes;
use hostile::{
    assert_goaway, client_and_raw, data_frame, ping, quiet, recv_until, server_and_raw, syn, sync,
    until_goaway,
};
use support::raw::{default_preface, RawPeer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Item 1 (spec §4.2, §6.2, §10 V27): once our FIN is written, a WINDOW_UPDATE for the stream
/// is ignored, even one that would take the credit past 2^31-1; the session goes on and the
/// other direction still works.
#[tokio::test]
async fn a_window_update_after_our_fin_is_ignored_even_if_it_overflows() {
    let (server, mut peer) = server_and_raw(quiet(Config::default()), 1 << 20).await;
    peer.send(syn(1, b"")).await;
    let mut s = server.accept().await.unwrap();
    s.write_all(b"x").await.unwrap();
    s.shutdown().await.unwrap();
    recv_until(
        &mut peer,
        "our FIN",
        |f| matches!(f, Frame::Data { stream: 1, flags, .. } if flags.contains(Flags::FIN)),
    )
    .await;
    // The stream's credit is 256 KiB - 1: this increment would overflow it.
    peer.send(Frame::WindowUpdate {
        stream: 1,
        increment: 0x7fff_ffff,
    })
    .await;
    let replies = sync(&mut peer, 1).await;
    assert!(replies.is_empty(), "{replies:?}");
    assert!(server.closed_reason().is_none());
    peer.send(data_frame(1, Flags::FIN, Bytes::from_static(b"y")))
        .await;
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"y");
    assert!(server.closed_reason().is_none());
}

/// Item 5 (spec §2, §10 V1, V2): a peer that sends ten bytes that are not braid's preface and
/// then nothing is refused at once with GOAWAY(0, PROTOCOL_ERROR), not after the preface
/// timeout with TIMEOUT (V4). The paused clock would jump to that timeout if the session
/// waited for the rest of the preface.
#[tokio::test(start_paused = true)]
async fn ten_wrong_preface_bytes_are_refused_at_once() {
    expect_prefix_refused(b"GET / HTTP", ErrorCode::PROTOCOL_ERROR).await;
    // One wrong byte is enough: the magic is judged byte by byte.
    expect_prefix_refused(b"\x8bBRAIX", ErrorCode::PROTOCOL_ERROR).await;
}

/// Item 5: the version is judged as soon as both its bytes are in (V2).
#[tokio::test(start_paused = true)]
async fn a_wrong_version_is_refused_once_its_two_bytes_are_in() {
    expect_prefix_refused(b"\x8bBRAID\r\n\x00\x02", ErrorCode::VERSION_MISMATCH).await;
}

async fn expect_prefix_refused(prefix: &[u8], code: ErrorCode) {
    let started = tokio::time::Instant::now();
    let (a, b) = tokio::io::duplex(64 * 1024);
    let server = Session::server(a, Config::default()).unwrap();
    let mut peer = RawPeer::new(b);
    peer.send_raw(prefix).await; // and nothing more, the pipe stays open
    peer.read_preface().await;
    match support::guard("GOAWAY", peer.expect_goaway()).await {
        Some(Frame::GoAway {
            last_stream,
            code: got,
            ..
        }) => assert_eq!((last_stream, got), (0, code)),
        other => panic!("expected GOAWAY(0, {code}), got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused after {:?}: the session waited for the rest",
        started.elapsed()
    );
    match server.closed_reason() {
        Some(Error::Protocol { code: got, .. }) => assert_eq!(got, code),
        other => panic!("expected Error::Protocol({code}), got {other:?}"),
    }
}

/// Item 6 (spec §8.1, §11 L10, L11, §12): keepalive runs on a fixed schedule from connect, a
/// tick every interval whatever the traffic: not restarted by the peer's frames nor by the
/// ACK. A tick that finds our PING still unanswered is skipped (that PING's timeout covers
/// the peer). A peer that goes silent is detected within interval + timeout.
#[tokio::test(start_paused = true)]
async fn keepalive_ticks_from_connect_and_skips_a_tick_while_its_ping_is_out() {
    const INTERVAL: Duration = Duration::from_secs(10);
    const TIMEOUT: Duration = Duration::from_secs(15);
    let config = Config {
        keepalive_interval: Some(INTERVAL),
        keepalive_timeout: TIMEOUT,
        ..Config::default()
    };
    let started = tokio::time::Instant::now();
    let (client, mut peer) = client_and_raw(config, default_preface(), 1 << 20).await;
    let at = |secs: u64| started + Duration::from_secs(secs);
    // The two startup PINGs (spec §7.4), answered at once.
    for _ in 0..2 {
        let opaque = next_ping(&mut peer).await;
        peer.send(Frame::Ping { ack: true, opaque }).await;
    }
    // Traffic from the peer at t = 3 s: a PING of its own and a stream.
    tokio::time::sleep_until(at(3)).await;
    peer.try_send_all(&[ping(77), syn(2, b"hi")]).await.unwrap();
    // The first keepalive PING: 10 s after connect, not after the traffic or the last ACK.
    let opaque = next_ping(&mut peer).await;
    assert_eq!(started.elapsed(), INTERVAL);
    // Answered late, at 22 s: past the tick at 20 s, which found it outstanding.
    tokio::time::sleep_until(at(22)).await;
    peer.send(Frame::Ping { ack: true, opaque }).await;
    // So the next PING waits for the tick at 30 s (not sent at once at 22 s).
    next_ping(&mut peer).await;
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    // The peer is silent from 22 s on: TIMEOUT at 30 + 15 s, within interval + timeout.
    let (goaway, _) = support::guard("GOAWAY", until_goaway(&mut peer)).await;
    assert_goaway(&goaway, ErrorCode::TIMEOUT);
    assert_eq!(started.elapsed(), Duration::from_secs(45));
    assert!(started.elapsed() - Duration::from_secs(22) <= INTERVAL + TIMEOUT);
    assert!(matches!(
        client.closed_reason(),
        Some(Error::Timeout(TimeoutKind::Keepalive))
    ));
}

/// The session's next PING request (answering none), skipping its other frames.
async fn next_ping(peer: &mut RawPeer) -> u64 {
    loop {
        match support::guard("PING", peer.recv()).await {
            Some(Frame::Ping { ack: false, opaque }) => return opaque,
            Some(_) => {}
            None => panic!("EOF while waiting for a PING"),
        }
    }
}
