//! Hostile peers that flood (issue rows 1–4, 7; spec §8.1, §10 V28–V35, §11 L16–L20, §12):
//! PINGs and refusal-provoking SYNs from a peer that never reads, reset floods, rapid reset,
//! and empty frames. Each test names its row.

#[path = "support/hostile.rs"]
mod hostile;
mod support;

use std::sync::{
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst},
    Arc,
};

use braid::{
    frame::{ErrorCode, Flags, Frame},
    Config, Error, Side,
};
use bytes::Bytes;
use hostile::{
    assert_goaway, assert_protocol_error, ping, quiet, server_and_raw, settle, spawn_flood, split,
    syn, sync, until_goaway,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The driver's read chunk (src/runtime/driver.rs): what one transport read may pull in.
const READ_CHUNK: u64 = 128 * 1024;

/// row 1: a PING flood (10^6 PINGs) from a peer that never reads our socket. The session holds
/// at most one unwritten reply and stops reading while it can't write it (spec §8.1, L20), so
/// the flooder's writes block long before 10^6 with only about a pipe plus a read chunk of
/// PINGs taken in; once the peer reads, every PING gets exactly one reply, in order.
#[tokio::test]
async fn row1_ping_flood_from_a_peer_that_never_reads() {
    const PINGS: u64 = 1_000_000;
    const PIPE: usize = 64 * 1024;
    const PING_LEN: u64 = 20;
    let (server, peer) = server_and_raw(quiet(Config::default()), PIPE).await;
    let (mut reader, wr) = split(peer);
    let progress = Arc::new(AtomicU64::new(0));
    let flood = spawn_flood(wr, PINGS, 64, progress.clone(), |i| ping(i + 1));

    let (written, received) = settle("PING flood stalls", || {
        (progress.load(SeqCst), server.stats().frames_received)
    })
    .await;
    let bound = (PIPE as u64 + READ_CHUNK) / PING_LEN + 16;
    eprintln!(
        "row 1: flood stalled after {written} PINGs written, {received} processed (bound {bound})"
    );
    assert!(
        written < PINGS / 20,
        "the session kept reading: {written} PINGs written"
    );
    assert!(
        received <= bound,
        "{received} PINGs processed while the peer read nothing (bound {bound})"
    );
    let stats = server.stats();
    assert_eq!(
        (
            stats.send_buffered,
            stats.recv_buffered,
            stats.tracked_streams
        ),
        (0, 0, 0)
    );

    // Now read: each PING gets exactly one reply, in order.
    let mut next = 1;
    while next <= PINGS {
        match reader.recv().await.expect("session ended") {
            Frame::Ping { ack: true, opaque } => {
                assert_eq!(opaque, next, "replies out of order or duplicated");
                next += 1;
            }
            Frame::Ping { ack: false, .. } => {} // the session's own PING
            other => panic!("unexpected frame {other:?}"),
        }
    }
    let (_wr, sent) = flood.await.unwrap();
    assert_eq!(sent, PINGS);
    let stats = server.stats();
    assert_eq!(stats.frames_received, PINGS);
    assert_eq!(
        stats.frames_sent,
        PINGS + 1,
        "one reply per PING, plus the session's own PING"
    );
    assert!(server.closed_reason().is_none());
}

/// Floods `count` empty SYNs from a peer that doesn't read, and checks the single-slot rule
/// for the refusals they force (row 2), then reads every refusal.
async fn refusal_flood(config: Config, admitted: u64, code: ErrorCode) {
    const SYNS: u64 = 200_000;
    const PIPE: usize = 64 * 1024;
    const SYN_LEN: u64 = 12;
    let (server, peer) = server_and_raw(quiet(config), PIPE).await;
    let (mut reader, wr) = split(peer);
    let progress = Arc::new(AtomicU64::new(0));
    let flood = spawn_flood(wr, SYNS, 64, progress.clone(), |i| {
        syn(2 * i as u32 + 1, b"")
    });

    let (written, received, tracked) = settle("SYN flood stalls", || {
        let s = server.stats();
        (progress.load(SeqCst), s.frames_received, s.tracked_streams)
    })
    .await;
    let bound = (PIPE as u64 + READ_CHUNK) / SYN_LEN + 16;
    eprintln!("row 2 ({code}): flood stalled after {written} SYNs written, {received} processed (bound {bound})");
    assert!(
        written < SYNS / 10,
        "the session kept reading: {written} SYNs written"
    );
    assert!(
        received <= bound,
        "{received} SYNs processed while the peer read nothing (bound {bound})"
    );
    assert!(tracked as u64 <= admitted, "{tracked} streams tracked");

    // Read: every SYN past the admitted ones gets exactly one refusal, in order.
    let mut next = 2 * admitted as u32 + 1;
    let last = 2 * (SYNS as u32 - 1) + 1;
    while next <= last {
        match reader.recv().await.expect("session ended") {
            Frame::Reset { stream, code: c } => {
                assert_eq!(
                    (stream, c),
                    (next, code),
                    "refusals out of order or duplicated"
                );
                next += 2;
            }
            Frame::Ping { .. } => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
    let (_wr, sent) = flood.await.unwrap();
    assert_eq!(sent, SYNS);
    let stats = server.stats();
    assert_eq!(stats.frames_received, SYNS);
    assert_eq!(
        stats.frames_sent,
        SYNS - admitted + 1,
        "one refusal per refused SYN, plus our PING"
    );
    assert!(stats.tracked_streams as u64 <= admitted);
    assert!(stats.remembered_closed <= Config::default().closed_stream_memory as usize);
    assert!(server.closed_reason().is_none());
}

/// row 2: a SYN flood beyond max_inbound_streams from a peer that never reads: each SYN forces
/// a RESET(REFUSED_STREAM), and the session stops reading while one is unsent, so replies
/// never queue without bound. (Refusals count against max_local_resets, row 3: raised here.)
#[tokio::test]
async fn row2_refused_stream_flood_from_a_peer_that_never_reads() {
    let config = Config::default()
        .with_max_inbound_streams(4)
        .with_max_local_resets(u32::MAX);
    refusal_flood(config, 4, ErrorCode::REFUSED_STREAM).await;
}

/// row 2: the same with the accept backlog full: RESET(BACKLOG_FULL) per SYN, single slot.
#[tokio::test]
async fn row2_backlog_full_flood_from_a_peer_that_never_reads() {
    let config = Config::default()
        .with_accept_backlog(4)
        .with_max_local_resets(u32::MAX);
    refusal_flood(config, 4, ErrorCode::BACKLOG_FULL).await;
}

fn resets_with(frames: &[Frame], code: ErrorCode) -> usize {
    frames
        .iter()
        .filter(|f| matches!(f, Frame::Reset { code: c, .. } if *c == code))
        .count()
}

/// row 3: a reset flood: the peer provokes refusals (BACKLOG_FULL). Past max_local_resets (20)
/// the session sends GOAWAY(ENHANCE_YOUR_CALM) and fails with that protocol error; each
/// accepted stream earns one back.
#[tokio::test]
async fn row3_refusals_past_max_local_resets_end_the_session() {
    let config = quiet(
        Config::default()
            .with_accept_backlog(1)
            .with_max_local_resets(20),
    );
    let (server, mut peer) = server_and_raw(config, 1 << 20).await;
    let mut id = 1;
    let mut next_id = || {
        let this = id;
        id += 2;
        this
    };
    // Stream 1 fills the backlog; 15 more are refused.
    for _ in 0..16 {
        peer.send(syn(next_id(), b"")).await;
    }
    let replies = sync(&mut peer, 1).await;
    assert_eq!(resets_with(&replies, ErrorCode::BACKLOG_FULL), 15);
    assert_eq!(server.stats().local_resets, 15);

    // Ten accepted streams (1 and nine more) earn ten back.
    let mut kept = vec![server.accept().await.unwrap()];
    for _ in 0..9 {
        peer.send(syn(next_id(), b"")).await;
        kept.push(server.accept().await.unwrap());
    }
    sync(&mut peer, 2).await;
    assert_eq!(server.stats().local_resets, 5);

    // Fill the backlog again; 15 refusals bring the count to exactly the limit: still fine.
    for _ in 0..16 {
        peer.send(syn(next_id(), b"")).await;
    }
    let replies = sync(&mut peer, 3).await;
    assert_eq!(resets_with(&replies, ErrorCode::BACKLOG_FULL), 15);
    assert_eq!(server.stats().local_resets, 20);
    assert!(server.closed_reason().is_none());

    // One more is one too many.
    peer.send(syn(next_id(), b"")).await;
    let (goaway, before) = until_goaway(&mut peer).await;
    assert_goaway(&goaway, ErrorCode::ENHANCE_YOUR_CALM);
    assert_eq!(
        resets_with(&before, ErrorCode::BACKLOG_FULL),
        0,
        "{before:?}"
    );
    assert_protocol_error(&server, ErrorCode::ENHANCE_YOUR_CALM);
    let err = kept[0].read(&mut [0u8; 1]).await.unwrap_err();
    assert!(
        matches!(Error::from_io(&err), Some(Error::Protocol { code, .. }) if *code == ErrorCode::ENHANCE_YOUR_CALM),
        "{err:?}"
    );
    assert!(
        peer.recv().await.is_none(),
        "transport closed after the GOAWAY"
    );
}

/// row 3: resets the application asks for (stream.reset(code) on many streams, inbound and
/// outbound) don't count against max_local_resets: local_resets stays 0, the session is fine.
#[tokio::test]
async fn row3_application_resets_are_not_counted() {
    let config = quiet(Config::default().with_max_local_resets(20));
    let (server, mut peer) = server_and_raw(config, 1 << 20).await;
    let app_code = ErrorCode(0x100);
    let mut id = 1;
    for _ in 0..5 {
        for _ in 0..20 {
            peer.send(syn(id, b"data")).await;
            id += 2;
        }
        for _ in 0..20 {
            let mut s = server.accept().await.unwrap();
            s.reset(app_code);
        }
    }
    // Streams the server opens (SYN framed) and resets itself.
    for _ in 0..50 {
        let mut s = server.open().await.unwrap();
        s.write_all(b"x").await.unwrap();
        s.flush().await.unwrap();
        s.reset(app_code);
    }
    let mut seen = 0;
    while seen < 150 {
        match support::guard("application RESETs", peer.recv())
            .await
            .expect("session ended")
        {
            Frame::Reset { code, .. } if code == app_code => seen += 1,
            f @ (Frame::Reset { .. } | Frame::GoAway { .. }) => panic!("unexpected {f:?}"),
            _ => {}
        }
    }
    let rest = sync(&mut peer, 1).await;
    assert!(
        !rest.iter().any(|f| matches!(f, Frame::Reset { .. })),
        "{rest:?}"
    );
    let stats = server.stats();
    assert_eq!(stats.local_resets, 0);
    assert_eq!(stats.tracked_streams, 0);
    assert!(server.closed_reason().is_none());
}

/// row 4: rapid reset (CVE-2023-44487): SYN then RESET, repeatedly. Past
/// max_unaccepted_resets the session sends GOAWAY(ENHANCE_YOUR_CALM); live stream state
/// (tracked_streams) stays within cap + max streams throughout.
#[tokio::test]
async fn row4_rapid_reset_past_max_unaccepted_resets() {
    const CAP: u32 = 50;
    const MAX_IN: u32 = 16;
    let config = quiet(
        Config::default()
            .with_max_unaccepted_resets(CAP)
            .with_max_inbound_streams(MAX_IN)
            .with_accept_backlog(MAX_IN),
    );
    let (server, mut peer) = server_and_raw(config, 1 << 20).await;

    // A watcher samples the stream table while the attack runs.
    let stop = Arc::new(AtomicBool::new(false));
    let max_tracked = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (server, stop, max_tracked) = (server.clone(), stop.clone(), max_tracked.clone());
        tokio::spawn(async move {
            while !stop.load(SeqCst) {
                max_tracked.fetch_max(server.stats().tracked_streams, SeqCst);
                tokio::task::yield_now().await;
            }
        })
    };

    // Eight streams stay open (never accepted) the whole time.
    let mut id = 1;
    for _ in 0..8 {
        peer.send(syn(id, b"held")).await;
        id += 2;
    }
    for round in 1..=CAP {
        peer.try_send_all(&[
            syn(id, b"request"),
            Frame::Reset {
                stream: id,
                code: ErrorCode::CANCEL,
            },
        ])
        .await
        .unwrap();
        id += 2;
        if round % 10 == 0 {
            let replies = sync(&mut peer, round as u64).await;
            assert!(
                replies.is_empty(),
                "no reply to a peer's RESET: {replies:?}"
            );
            let stats = server.stats();
            assert_eq!(stats.unaccepted_resets, round);
            assert_eq!(stats.tracked_streams, 8);
            assert_eq!(stats.recv_buffered, 8 * 4);
        }
    }
    assert!(server.closed_reason().is_none());

    peer.try_send_all(&[
        syn(id, b"request"),
        Frame::Reset {
            stream: id,
            code: ErrorCode::CANCEL,
        },
    ])
    .await
    .unwrap();
    let (goaway, _) = until_goaway(&mut peer).await;
    assert_goaway(&goaway, ErrorCode::ENHANCE_YOUR_CALM);
    assert_protocol_error(&server, ErrorCode::ENHANCE_YOUR_CALM);
    stop.store(true, SeqCst);
    watcher.await.unwrap();
    let max = max_tracked.load(SeqCst);
    eprintln!("row 4: at most {max} streams tracked during the attack");
    assert!(max <= (CAP + MAX_IN) as usize, "{max} streams tracked");
    assert!(
        max <= 9,
        "each reset stream is freed at once: {max} tracked"
    );
}

/// row 4: ordinary churn never trips the rapid-reset limit: a real client opens a stream, the
/// server accepts it (and answers a byte), then the client resets it; 10,000 times, 64 in
/// flight.
#[tokio::test]
async fn row4_ordinary_open_accept_reset_churn_never_trips_the_limit() {
    const TOTAL: usize = 10_000;
    const IN_FLIGHT: usize = 64;
    let config = Config::default()
        .with_max_unaccepted_resets(10)
        .with_max_local_resets(10);
    let (client, server) = support::duplex_pair(256 * 1024, config.clone(), config);
    let app_code = ErrorCode(0x1234);
    let served = Arc::new(AtomicUsize::new(0));
    let acceptor = {
        let (server, served) = (server.clone(), served.clone());
        tokio::spawn(async move {
            while let Ok(mut s) = server.accept().await {
                let served = served.clone();
                tokio::spawn(async move {
                    s.write_all(b"k").await.unwrap();
                    let mut buf = [0u8; 16];
                    let mut got = 0;
                    let err = loop {
                        match s.read(&mut buf).await {
                            Ok(0) => panic!("stream finished instead of being reset"),
                            Ok(n) => got += n,
                            Err(e) => break e,
                        }
                    };
                    assert_eq!(got, 1);
                    support::assert_reset(&err, app_code, Side::Remote);
                    served.fetch_add(1, SeqCst);
                });
            }
        })
    };
    let mut workers = Vec::new();
    for w in 0..IN_FLIGHT {
        let client = client.clone();
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            for _ in (w..TOTAL).step_by(IN_FLIGHT) {
                let mut s = client.open().await.unwrap();
                s.write_all(b"o").await.unwrap();
                let mut one = [0u8; 1];
                s.read_exact(&mut one).await.unwrap(); // the server has accepted it
                s.reset(app_code);
                n += 1;
            }
            n
        }));
    }
    let mut opened = 0;
    for w in workers {
        opened += support::guard("churn worker", w).await.unwrap();
    }
    assert_eq!(opened, TOTAL);
    support::until("every reset reached the server", || {
        served.load(SeqCst) == TOTAL
    })
    .await;
    for (name, s) in [("client", &client), ("server", &server)] {
        let stats = s.stats();
        assert!(
            s.closed_reason().is_none(),
            "{name}: {:?}",
            s.closed_reason()
        );
        assert_eq!(
            (stats.unaccepted_resets, stats.local_resets),
            (0, 0),
            "{name}"
        );
        assert_eq!(stats.tracked_streams, 0, "{name}");
    }
    drop(acceptor);
}

/// row 7: empty DATA frames without flags, zero-increment WINDOW_UPDATEs (stream and
/// session) and unsolicited PING ACKs are counted, never queued or answered (state
/// unchanged); past max_empty_frames the session sends GOAWAY(ENHANCE_YOUR_CALM).
#[tokio::test]
async fn row7_empty_frames_are_counted_and_capped() {
    const MAX: u32 = 100;
    let config = quiet(Config::default().with_max_empty_frames(MAX));
    let (server, mut peer) = server_and_raw(config, 1 << 20).await;
    peer.send(syn(1, b"x")).await;
    sync(&mut peer, 1).await;
    // The session measures the RTT twice at start (spec §7.4): its second PING leaves after
    // our reply to the first, behind the reply to our sync PING. Answer it before counting.
    match peer.recv().await {
        Some(Frame::Ping { ack: false, opaque }) => {
            peer.send(Frame::Ping { ack: true, opaque }).await
        }
        other => panic!("expected the session's second PING, got {other:?}"),
    }
    sync(&mut peer, 3).await;
    let before = server.stats();

    let empty = || Frame::Data {
        stream: 1,
        flags: Flags::NONE,
        payload: Bytes::new(),
    };
    let mut frames = Vec::new();
    for _ in 0..40 {
        frames.push(empty());
        frames.push(Frame::WindowUpdate {
            stream: 1,
            increment: 0,
        });
    }
    for _ in 0..10 {
        frames.push(Frame::WindowUpdate {
            stream: 0,
            increment: 0,
        });
        frames.push(Frame::Ping {
            ack: true,
            opaque: 777,
        });
    }
    assert_eq!(frames.len(), MAX as usize);
    peer.try_send_all(&frames).await.unwrap();
    let replies = sync(&mut peer, 2).await;
    assert!(
        replies.is_empty(),
        "empty frames are not answered: {replies:?}"
    );
    let after = server.stats();
    assert_eq!(after.empty_frames, MAX);
    assert_eq!(
        after.frames_received,
        before.frames_received + MAX as u64 + 1
    );
    assert_eq!(
        after.frames_sent,
        before.frames_sent + 1,
        "only the PING reply"
    );
    assert_eq!(
        (
            after.tracked_streams,
            after.open_streams,
            after.backlog,
            after.recv_buffered,
            after.send_buffered
        ),
        (
            before.tracked_streams,
            before.open_streams,
            before.backlog,
            before.recv_buffered,
            before.send_buffered
        ),
    );
    assert_eq!(after.session_recv_credit, before.session_recv_credit);
    assert!(server.closed_reason().is_none());

    peer.send(empty()).await;
    let (goaway, _) = until_goaway(&mut peer).await;
    assert_goaway(&goaway, ErrorCode::ENHANCE_YOUR_CALM);
    assert_protocol_error(&server, ErrorCode::ENHANCE_YOUR_CALM);
}
