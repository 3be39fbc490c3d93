//! Issue #2 behaviours 7 and 8: keepalive detects a silent peer, default limits carry
//! 20,000 concurrent streams and 1,000 data-less streams, opening beyond the peer's limit
//! waits, and a peer opening beyond ours is refused on that stream only.

mod support;

use std::time::Duration;

use braid::{
    frame::{ErrorCode, Flags, Frame},
    Config, Error, Session, TimeoutKind,
};
use support::raw::{data, RawPeer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(start_paused = true)]
async fn keepalive_detects_a_peer_that_stops_answering() {
    let config = Config::default()
        .with_keepalive_interval(Some(Duration::from_secs(5)))
        .with_keepalive_timeout(Duration::from_secs(3));
    let (a, b) = tokio::io::duplex(1 << 20);
    let client = Session::client(a, config).unwrap();
    let mut peer = RawPeer::new(b);
    peer.handshake().await;
    // The peer reads but never answers PINGs.
    let reader = tokio::spawn(async move {
        let mut pings = 0;
        while let Some(frame) = peer.recv().await {
            match frame {
                Frame::Ping { ack: false, .. } => pings += 1,
                Frame::GoAway { code, .. } => return (pings, Some(code)),
                _ => {}
            }
        }
        (pings, None)
    });
    let started = tokio::time::Instant::now();
    let err = client.accept().await.unwrap_err();
    assert!(
        matches!(err, Error::Timeout(TimeoutKind::Keepalive)),
        "{err:?}"
    );
    assert!(started.elapsed() <= Duration::from_secs(3) + Duration::from_millis(10));
    let (pings, goaway) = reader.await.unwrap();
    assert!(pings >= 1);
    assert_eq!(goaway, Some(ErrorCode::TIMEOUT));
    assert_eq!(
        client.open().await.unwrap_err().code(),
        Some(ErrorCode::TIMEOUT)
    );
}

#[tokio::test(start_paused = true)]
async fn keepalive_keeps_a_quiet_but_live_session_open() {
    let config = Config::default()
        .with_keepalive_interval(Some(Duration::from_secs(1)))
        .with_keepalive_timeout(Duration::from_secs(1));
    let (client, server) = support::duplex_pair(64 * 1024, config.clone(), config);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(client.closed_reason().is_none());
    assert!(server.closed_reason().is_none());
    assert!(client.stats().rtt.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_carry_20000_concurrent_streams() {
    const N: usize = 20_000;
    let (client, server) = support::duplex_pair(1 << 20, Config::default(), Config::default());
    let acceptor = tokio::spawn(async move {
        let mut streams = Vec::with_capacity(N);
        for _ in 0..N {
            let mut s = server.accept().await.unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await.unwrap();
            streams.push(s);
        }
        assert_eq!(server.stats().inbound_streams, N);
        for mut s in streams {
            s.shutdown().await.unwrap();
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).await.unwrap();
        }
        server
    });
    let mut streams = Vec::with_capacity(N);
    for _ in 0..N {
        let mut s = client.open().await.unwrap();
        s.write_all(b"x").await.unwrap();
        streams.push(s);
    }
    for s in &mut streams {
        s.shutdown().await.unwrap();
    }
    for mut s in streams {
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.unwrap();
    }
    let server = acceptor.await.unwrap();
    assert_eq!(server.stats().open_streams, 0);
    assert!(client.closed_reason().is_none());
}

#[tokio::test]
async fn defaults_carry_1000_streams_without_a_byte_of_data() {
    let (client, server) = support::duplex_pair(64 * 1024, Config::default(), Config::default());
    let acceptor = tokio::spawn(async move {
        for _ in 0..1000 {
            let mut s = server.accept().await.unwrap();
            let mut buf = Vec::new();
            assert_eq!(s.read_to_end(&mut buf).await.unwrap(), 0);
            s.shutdown().await.unwrap();
        }
        server
    });
    let mut streams = Vec::new();
    for _ in 0..1000 {
        let mut s = client.open().await.unwrap();
        s.shutdown().await.unwrap();
        streams.push(s);
    }
    let server = acceptor.await.unwrap();
    for mut s in streams {
        let mut buf = Vec::new();
        assert_eq!(s.read_to_end(&mut buf).await.unwrap(), 0);
    }
    assert!(client.closed_reason().is_none() && server.closed_reason().is_none());
}

#[tokio::test(start_paused = true)]
async fn opening_beyond_the_peers_limit_waits_until_a_stream_closes() {
    let server_config = Config::default().with_max_inbound_streams(2);
    let (client, server) = support::duplex_pair(64 * 1024, Config::default(), server_config);
    let mut a = client.open().await.unwrap();
    let mut b = client.open().await.unwrap();
    a.write_all(b"a").await.unwrap();
    b.write_all(b"b").await.unwrap();
    // Learn the peer's preface first: then the third open must wait.
    let third = tokio::time::timeout(Duration::from_secs(5), client.open()).await;
    assert!(third.is_err(), "third open should wait for a free slot");

    let mut sa = server.accept().await.unwrap();
    let _sb = server.accept().await.unwrap();
    // Close stream `a` both ways; the third open then proceeds.
    a.shutdown().await.unwrap();
    let mut buf = Vec::new();
    sa.read_to_end(&mut buf).await.unwrap();
    sa.shutdown().await.unwrap();
    a.read_to_end(&mut buf).await.unwrap();
    let mut c = tokio::time::timeout(Duration::from_secs(5), client.open())
        .await
        .expect("open proceeds once a stream closed")
        .unwrap();
    c.write_all(b"c").await.unwrap();
    let mut sc = server.accept().await.unwrap();
    let mut one = [0u8; 1];
    sc.read_exact(&mut one).await.unwrap();
    assert_eq!(&one, b"c");
}

#[tokio::test]
async fn a_peer_opening_beyond_our_limit_is_refused_on_that_stream_only() {
    let config = Config::default().with_max_inbound_streams(2);
    let (a, b) = tokio::io::duplex(1 << 20);
    let server = Session::server(a, config).unwrap();
    let mut peer = RawPeer::new(b);
    peer.handshake().await;
    peer.send(data(1, Flags::SYN, b"one")).await;
    peer.send(data(3, Flags::SYN, b"two")).await;
    peer.send(data(5, Flags::SYN, b"three")).await;
    peer.send(Frame::Ping {
        ack: false,
        opaque: 42,
    })
    .await;
    let mut refused = None;
    let mut pong = false;
    while refused.is_none() || !pong {
        match peer.recv().await.expect("session stays up") {
            Frame::Reset { stream, code } => refused = Some((stream, code)),
            Frame::Ping {
                ack: true,
                opaque: 42,
            } => pong = true,
            Frame::GoAway { .. } => panic!("session must not close"),
            _ => {}
        }
    }
    assert_eq!(refused, Some((5, ErrorCode::REFUSED_STREAM)));
    let mut s1 = server.accept().await.unwrap();
    let mut got = [0u8; 3];
    s1.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"one");
    assert_eq!(server.stats().inbound_streams, 2);
    assert!(server.closed_reason().is_none());
}

#[tokio::test]
async fn a_peer_overflowing_the_accept_backlog_gets_backlog_full() {
    let config = Config::default().with_accept_backlog(1);
    let (a, b) = tokio::io::duplex(1 << 20);
    let server = Session::server(a, config).unwrap();
    let mut peer = RawPeer::new(b);
    peer.handshake().await;
    peer.send(data(1, Flags::SYN, b"one")).await;
    peer.send(data(3, Flags::SYN, b"two")).await;
    loop {
        match peer.recv().await.expect("session stays up") {
            Frame::Reset { stream, code } => {
                assert_eq!((stream, code), (3, ErrorCode::BACKLOG_FULL));
                break;
            }
            Frame::GoAway { .. } => panic!("session must not close"),
            _ => {}
        }
    }
    assert_eq!(server.stats().backlog, 1);
    assert_eq!(server.accept().await.unwrap().id(), 1);
}

/// Spec §11 L5: our own outbound cap holds even when the peer allows more; `open()` waits
/// until one of our streams has closed on the wire.
#[tokio::test(start_paused = true)]
async fn opening_beyond_our_own_outbound_cap_waits() {
    let client_config = Config::default().with_max_outbound_streams(1);
    let (client, server) = support::duplex_pair(64 * 1024, client_config, Config::default());
    let mut a = client.open().await.unwrap();
    a.write_all(b"a").await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(5), client.open()).await;
    assert!(
        second.is_err(),
        "a second open must wait at max_outbound_streams = 1"
    );
    let mut sa = server.accept().await.unwrap();
    a.shutdown().await.unwrap();
    let mut rest = Vec::new();
    sa.read_to_end(&mut rest).await.unwrap();
    assert_eq!(rest, b"a");
    sa.shutdown().await.unwrap();
    a.read_to_end(&mut rest).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), client.open())
        .await
        .expect("open proceeds once the first stream closed")
        .unwrap();
}
