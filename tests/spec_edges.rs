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
    let config = Config::default()
        .with_keepalive_interval(Some(INTERVAL))
        .with_keepalive_timeout(TIMEOUT);
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

/// Header bytes of a frame (for frames sent in parts or with a lying length).
fn header(kind: u8, flags: u8, stream: u32, len: u32) -> Vec<u8> {
    let mut h = vec![kind, flags, 0, 0];
    h.extend_from_slice(&stream.to_be_bytes());
    h.extend_from_slice(&len.to_be_bytes());
    h
}

fn frame_bytes(frame: &Frame) -> Vec<u8> {
    hostile::encode_all([frame]).to_vec()
}

/// Reads to the session's GOAWAY and checks its code and the session's error.
async fn expect_goaway(server: &Session, peer: &mut RawPeer, code: ErrorCode) {
    let (goaway, _) = support::guard("GOAWAY", until_goaway(peer)).await;
    assert_goaway(&goaway, code);
    hostile::assert_protocol_error(server, code);
}

/// Item 3 (spec §4.6, §6.3, §6.5): the opener may send STOP_SENDING while its receive half is
/// Opening (here: the handle dropped after finishing, before the ACK). The acceptor's first
/// DATA+ACK is then no error: it confirms the open (its slot frees) and its payload is
/// discarded and consumed. A second ACK is still an error (V18). The raw peer is the acceptor.
#[tokio::test]
async fn stop_sending_before_the_ack_then_the_first_ack_confirms_the_open() {
    let (client, mut peer) =
        client_and_raw(quiet(Config::default()), default_preface(), 1 << 20).await;
    let mut s = client.open().await.unwrap();
    s.write_all(b"request").await.unwrap();
    s.shutdown().await.unwrap();
    drop(s); // finished but unread: STOP_SENDING(CANCEL), while Opening
    let frames = recv_until(&mut peer, "STOP_SENDING", |f| {
        matches!(f, Frame::StopSending { .. })
    })
    .await;
    assert!(
        matches!(frames.first(), Some(Frame::Data { stream: 1, flags, .. }) if flags.contains(Flags::SYN)),
        "the SYN goes first: {frames:?}"
    );
    assert!(
        matches!(frames.last(), Some(Frame::StopSending { stream: 1, code }) if *code == ErrorCode::CANCEL),
        "{frames:?}"
    );
    assert_eq!(
        client.stats().unacked_opens,
        1,
        "no ACK yet: the slot is held"
    );
    // The acceptor's first frame, with data: confirms the open, the data is thrown away.
    peer.send(data_frame(1, Flags::ACK, Bytes::from_static(b"reply")))
        .await;
    // (The request's bytes and FIN follow the STOP_SENDING: control frames go first.)
    let replies = sync(&mut peer, 1).await;
    assert!(
        replies.iter().all(
            |f| matches!(f, Frame::Data { stream: 1, flags, .. } if !flags.contains(Flags::SYN))
        ),
        "{replies:?}"
    );
    assert!(client.closed_reason().is_none());
    let stats = client.stats();
    assert_eq!(
        (stats.unacked_opens, stats.recv_buffered),
        (0, 0),
        "{stats:?}"
    );
    assert_eq!(stats.bytes_received, 5);
    // A repeated ACK is an error.
    peer.send(data_frame(1, Flags::ACK, Bytes::from_static(b"again")))
        .await;
    expect_goaway(&client, &mut peer, ErrorCode::PROTOCOL_ERROR).await;
}

/// Item 3: before the ACK a stopped receive half is still waiting for it: DATA without ACK
/// is an error (V17), as in Opening.
#[tokio::test]
async fn stop_sending_before_the_ack_then_data_without_ack_is_an_error() {
    let (client, mut peer) =
        client_and_raw(quiet(Config::default()), default_preface(), 1 << 20).await;
    let mut s = client.open().await.unwrap();
    s.write_all(b"request").await.unwrap();
    s.shutdown().await.unwrap();
    drop(s);
    recv_until(&mut peer, "STOP_SENDING", |f| {
        matches!(f, Frame::StopSending { .. })
    })
    .await;
    peer.send(data_frame(1, Flags::NONE, Bytes::from_static(b"reply")))
        .await;
    expect_goaway(&client, &mut peer, ErrorCode::PROTOCOL_ERROR).await;
}

/// Item 4 (spec §2, §7.5): a peer's preface is held only to session_window ≥
/// initial_stream_window; one with session_window = initial_stream_window (4 KiB) interoperates:
/// a 20,000-byte request crosses it, never beyond the peer's stream or session credit.
#[tokio::test]
async fn a_peer_with_session_window_equal_to_its_stream_window_interoperates() {
    const WINDOW: u32 = 4096;
    const LEN: usize = 20_000;
    let preface = braid::frame::Preface {
        initial_stream_window: WINDOW,
        session_window: WINDOW,
        ..default_preface()
    };
    let (client, mut peer) = client_and_raw(quiet(Config::default()), preface, 1 << 20).await;
    let body = support::data(4, LEN);
    let writer = {
        let (client, body) = (client.clone(), body.clone());
        tokio::spawn(async move {
            let mut s = client.open().await.unwrap();
            s.write_all(&body).await.unwrap();
            s.shutdown().await.unwrap();
            s
        })
    };
    let (mut got, mut outstanding) = (Vec::new(), 0u32);
    loop {
        match support::guard("DATA", peer.recv()).await.expect("EOF") {
            Frame::Ping { ack: false, opaque } => {
                peer.send(Frame::Ping { ack: true, opaque }).await
            }
            Frame::Data {
                stream: 1,
                flags,
                payload,
            } => {
                outstanding += payload.len() as u32;
                assert!(
                    outstanding <= WINDOW,
                    "{outstanding} bytes beyond the credit"
                );
                got.extend_from_slice(&payload);
                let mut replies = Vec::new();
                if flags.contains(Flags::SYN) {
                    replies.push(data_frame(1, Flags::ACK, Bytes::new()));
                }
                if flags.contains(Flags::FIN) {
                    break;
                }
                // Everything consumed at once: grant it back, both levels.
                if outstanding >= WINDOW / 2 {
                    for stream in [0, 1] {
                        replies.push(Frame::WindowUpdate {
                            stream,
                            increment: outstanding,
                        });
                    }
                    outstanding = 0;
                }
                peer.try_send_all(&replies).await.unwrap();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got.len(), LEN);
    assert!(got == body, "bytes differ");
    let _s = writer.await.unwrap();
    sync(&mut peer, 1).await;
    assert!(client.closed_reason().is_none());
}

/// Item 7 (spec §6.1): besides the ACK, an unacknowledged-open slot is freed by a RESET
/// received, by a RESET the opener sends and by a GOAWAY that refuses the stream (the open
/// timeout: `hostile_resources::row6_...`; the session's end: below). The peer allows one.
#[tokio::test]
async fn unacknowledged_open_slots_free_without_an_ack() {
    let preface = braid::frame::Preface {
        accept_backlog: 1,
        ..default_preface()
    };
    let (client, mut peer) = client_and_raw(quiet(Config::default()), preface, 1 << 20).await;
    let open = |client: &Session| {
        let client = client.clone();
        tokio::spawn(async move {
            let mut s = client.open().await?;
            s.write_all(b"x").await.unwrap();
            s.flush().await.unwrap();
            Ok::<_, Error>(s)
        })
    };
    async fn syn_of(peer: &mut RawPeer, id: u32) {
        recv_until(peer, "SYN", |f| {
            matches!(f, Frame::Data { stream, flags, .. } if *stream == id && flags.contains(Flags::SYN))
        })
        .await;
    }
    async fn waits(next: &tokio::task::JoinHandle<Result<braid::Stream, Error>>) {
        hostile::settle("open waits", || next.is_finished()).await;
        assert!(!next.is_finished(), "one unacknowledged open at a time");
    }
    // Stream 1 is acknowledged and stays open (so the GOAWAY below leaves the session up).
    let _s1 = open(&client).await.unwrap().unwrap();
    syn_of(&mut peer, 1).await;
    let next = open(&client);
    waits(&next).await;
    peer.send(data_frame(1, Flags::ACK, Bytes::new())).await;
    let _s3 = support::guard("open 3", next).await.unwrap().unwrap();
    syn_of(&mut peer, 3).await;

    // A RESET from the peer frees the slot.
    let next = open(&client);
    waits(&next).await;
    peer.send(Frame::Reset {
        stream: 3,
        code: ErrorCode::CANCEL,
    })
    .await;
    let mut s5 = support::guard("open 5", next).await.unwrap().unwrap();
    syn_of(&mut peer, 5).await;

    // A RESET of ours frees it.
    let next = open(&client);
    waits(&next).await;
    s5.reset(ErrorCode(0x100));
    let s7 = support::guard("open 7", next).await.unwrap().unwrap();
    assert_eq!(s7.id(), 7);
    syn_of(&mut peer, 7).await;
    assert_eq!(client.stats().unacked_opens, 1);

    // A GOAWAY that refuses stream 7 frees it (later opens fail: going away).
    peer.send(Frame::GoAway {
        last_stream: 5,
        code: ErrorCode::NO_ERROR,
        debug: Bytes::new(),
    })
    .await;
    sync(&mut peer, 1).await;
    assert_eq!(client.stats().unacked_opens, 0);
    assert!(matches!(client.open().await, Err(Error::GoingAway { .. })));
    assert!(client.closed_reason().is_none());
}

/// Item 7: the session's end frees every unacknowledged-open slot.
#[tokio::test]
async fn the_sessions_end_frees_unacknowledged_open_slots() {
    let (client, mut peer) =
        client_and_raw(quiet(Config::default()), default_preface(), 1 << 20).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut s = client.open().await.unwrap();
        s.write_all(b"x").await.unwrap();
        streams.push(s);
    }
    sync(&mut peer, 1).await;
    assert_eq!(client.stats().unacked_opens, 3);
    peer.send(Frame::GoAway {
        last_stream: 0,
        code: ErrorCode::INTERNAL_ERROR,
        debug: Bytes::new(),
    })
    .await;
    support::wait_closed(&client).await;
    assert_eq!(client.stats().unacked_opens, 0);
}

/// Item 8 (spec §3 step 6 and the order below it): flow-control limits are judged from the
/// header before any id rule, so a header that breaks both gets FLOW_CONTROL_ERROR at once,
/// without its payload. Server windows: 1 KiB per stream, 16 KiB per session.
#[tokio::test]
async fn a_header_breaking_flow_control_and_an_id_rule_gets_flow_control_error() {
    let config = quiet(
        Config::default()
            .with_initial_stream_window(1024)
            .with_session_window(16 * 1024)
            .with_max_stream_window(1024),
    );
    // Never-opened peer id (V15) beyond the session credit (V23).
    let (server, mut peer) = server_and_raw(config.clone(), 1 << 20).await;
    peer.send_raw(&header(0, 0, 3, 20_000)).await;
    expect_goaway(&server, &mut peer, ErrorCode::FLOW_CONTROL_ERROR).await;
    // SYN with our parity (V12) beyond the initial stream window (V24).
    let (server, mut peer) = server_and_raw(config.clone(), 1 << 20).await;
    peer.send_raw(&header(0, 0x1, 2, 2000)).await;
    expect_goaway(&server, &mut peer, ErrorCode::FLOW_CONTROL_ERROR).await;
    // ACK on a stream the peer opened (V18) beyond its stream credit (V22).
    let (server, mut peer) = server_and_raw(config.clone(), 1 << 20).await;
    peer.send(syn(1, b"")).await;
    sync(&mut peer, 1).await;
    peer.send_raw(&header(0, 0x2, 1, 2000)).await;
    expect_goaway(&server, &mut peer, ErrorCode::FLOW_CONTROL_ERROR).await;
    // Within credit, the id rule decides, once the payload is in.
    let (server, mut peer) = server_and_raw(config, 1 << 20).await;
    peer.send(data_frame(3, Flags::NONE, Bytes::from_static(b"abc")))
        .await;
    expect_goaway(&server, &mut peer, ErrorCode::PROTOCOL_ERROR).await;
}

/// Item 9 (spec §6.3, §7.1): a stopped receive half still holds the peer to its stream
/// credit. No stream WINDOW_UPDATE follows the STOP_SENDING, so one byte beyond what was
/// granted is a FLOW_CONTROL_ERROR, even though the bytes are discarded.
#[tokio::test]
async fn a_stopped_receive_half_still_enforces_stream_credit() {
    let config = quiet(
        Config::default()
            .with_initial_stream_window(1024)
            .with_max_stream_window(1024),
    );
    let (server, mut peer) = server_and_raw(config, 1 << 20).await;
    peer.send(syn(1, b"")).await;
    let (mut rx, _tx) = server.accept().await.unwrap().into_split();
    rx.stop(ErrorCode(0x123));
    recv_until(&mut peer, "STOP_SENDING", |f| {
        matches!(f, Frame::StopSending { .. })
    })
    .await;
    // The whole window is still the peer's to use: discarded, consumed, no error.
    peer.send(data_frame(1, Flags::NONE, Bytes::from(vec![7u8; 1024])))
        .await;
    let replies = sync(&mut peer, 1).await;
    assert!(
        !replies
            .iter()
            .any(|f| matches!(f, Frame::WindowUpdate { stream: 1, .. })),
        "no stream update after STOP_SENDING: {replies:?}"
    );
    assert_eq!(server.stats().recv_buffered, 0);
    assert!(server.closed_reason().is_none());
    peer.send(data_frame(1, Flags::NONE, Bytes::from_static(b"!")))
        .await;
    expect_goaway(&server, &mut peer, ErrorCode::FLOW_CONTROL_ERROR).await;
}

/// Item 10 (spec §3): for frames other than DATA the id rules are judged once the frame's
/// payload is in: a WINDOW_UPDATE header on a never-opened stream draws nothing until its
/// 4 payload bytes arrive, then PROTOCOL_ERROR (V15).
#[tokio::test]
async fn id_rules_for_control_frames_are_judged_after_their_payload() {
    let (server, mut peer) = server_and_raw(quiet(Config::default()), 1 << 20).await;
    let frame = frame_bytes(&Frame::WindowUpdate {
        stream: 5,
        increment: 100,
    });
    peer.send_raw(&frame[..12]).await;
    let closed = hostile::settle("header only", || server.closed_reason().is_some()).await;
    assert!(!closed, "judged before the payload arrived");
    peer.send_raw(&frame[12..]).await;
    expect_goaway(&server, &mut peer, ErrorCode::PROTOCOL_ERROR).await;
}

/// Item 13 (spec §4.1, §10 V19, V31): empty DATA after the peer's FIN — with no flag (counted
/// as an empty frame first) or with FIN again — is DATA after FIN: STREAM_CLOSED, whether the
/// stream is still in the table (its handle alive) or only remembered as closed.
#[tokio::test]
async fn empty_data_after_the_peers_fin_is_stream_closed() {
    for again in [Flags::NONE, Flags::FIN] {
        for keep in [true, false] {
            let (server, mut peer) = server_and_raw(quiet(Config::default()), 1 << 20).await;
            peer.send(data_frame(
                1,
                Flags::SYN.union(Flags::FIN),
                Bytes::from_static(b"q"),
            ))
            .await;
            let mut s = server.accept().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            if !keep {
                s.shutdown().await.unwrap();
                drop(s);
                recv_until(&mut peer, "FIN", |f| {
                    matches!(f, Frame::Data { stream: 1, flags, .. } if flags.contains(Flags::FIN))
                })
                .await;
                sync(&mut peer, 1).await;
                assert_eq!(server.stats().tracked_streams, 0);
            }
            peer.send(data_frame(1, again, Bytes::new())).await;
            expect_goaway(&server, &mut peer, ErrorCode::STREAM_CLOSED).await;
            let counted = u32::from(again == Flags::NONE);
            assert_eq!(
                server.stats().empty_frames,
                counted,
                "{again:?} keep {keep}"
            );
        }
    }
}

/// Item 14 (spec §6.3, §6.5, §8.3 step 4): a session error fails every half not yet
/// terminal, but a receive half that already has the peer's FIN keeps its unread data: it
/// reads to the end, then end-of-stream. Both for an error GOAWAY received and for a session
/// error of our own.
#[tokio::test]
async fn a_session_error_leaves_a_finished_receive_half_readable() {
    for ours in [false, true] {
        let (server, mut peer) = server_and_raw(quiet(Config::default()), 1 << 20).await;
        peer.try_send_all(&[
            data_frame(
                1,
                Flags::SYN.union(Flags::FIN),
                Bytes::from_static(b"complete"),
            ),
            syn(3, b"partial"),
        ])
        .await
        .unwrap();
        let mut finished = server.accept().await.unwrap();
        let mut open = server.accept().await.unwrap();
        sync(&mut peer, 1).await;
        if ours {
            peer.send_raw(&header(0x7f, 0, 0, 0)).await; // unknown type: PROTOCOL_ERROR
        } else {
            peer.send(Frame::GoAway {
                last_stream: 0,
                code: ErrorCode::INTERNAL_ERROR,
                debug: Bytes::new(),
            })
            .await;
        }
        let reason = support::wait_closed(&server).await;
        let mut got = Vec::new();
        finished.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"complete", "ours {ours}: {reason:?}");
        let err = open.read(&mut [0u8; 16]).await.unwrap_err();
        assert!(Error::from_io(&err).is_some(), "{err}");
        assert!(finished.write_all(b"x").await.is_err());
    }
}

/// Item 15 (spec §4.4, §5.2, §8.2): last_stream_id is last_peer_id, refused SYNs included;
/// a later GOAWAY never raises it.
#[tokio::test]
async fn goaway_last_stream_id_counts_refused_syns() {
    let config = quiet(Config::default().with_accept_backlog(1));
    let (server, mut peer) = server_and_raw(config, 1 << 20).await;
    peer.try_send_all(&[syn(1, b"a"), syn(3, b"b")])
        .await
        .unwrap();
    let frames = recv_until(&mut peer, "refusal", |f| matches!(f, Frame::Reset { .. })).await;
    assert!(
        matches!(frames[..], [Frame::Reset { stream: 3, code }] if code == ErrorCode::BACKLOG_FULL),
        "{frames:?}"
    );
    server.goaway();
    let frames = recv_until(&mut peer, "GOAWAY", |f| matches!(f, Frame::GoAway { .. })).await;
    assert!(
        matches!(frames.last(), Some(Frame::GoAway { last_stream: 3, code, .. }) if *code == ErrorCode::NO_ERROR),
        "{frames:?}"
    );
    // Refused after the GOAWAY (id above its last_stream_id), then a violation: the error
    // GOAWAY keeps last_stream_id 3, though last_peer_id is 5 now.
    peer.send(syn(5, b"c")).await;
    let frames = recv_until(&mut peer, "refusal", |f| matches!(f, Frame::Reset { .. })).await;
    assert!(
        matches!(frames[..], [Frame::Reset { stream: 5, code }] if code == ErrorCode::REFUSED_STREAM),
        "{frames:?}"
    );
    peer.send_raw(&header(0x7f, 0, 0, 0)).await;
    let (goaway, _) = until_goaway(&mut peer).await;
    assert!(
        matches!(goaway, Frame::GoAway { last_stream: 3, code, .. } if code == ErrorCode::PROTOCOL_ERROR),
        "{goaway:?}"
    );
}

/// Spec §5.2, §8.2: a SYN that ends the session (here SYN and ACK on one frame) is not a stream
/// the session processed: the GOAWAY's last_stream_id stays at the peer's previous stream. (A
/// SYN refused for a limit does use its id; that one is checked in tests/hostile_floods.rs.)
#[tokio::test]
async fn a_syn_that_ends_the_session_is_not_counted_as_processed() {
    let (server, mut peer) = server_and_raw(Config::default(), 64 * 1024).await;
    peer.send(syn(1, b"hi")).await;
    let bad = Frame::Data {
        stream: 3,
        flags: Flags::SYN.union(Flags::ACK),
        payload: Bytes::new(),
    };
    peer.send(bad).await;
    let (goaway, _) = support::guard("GOAWAY", until_goaway(&mut peer)).await;
    match goaway {
        Frame::GoAway {
            last_stream, code, ..
        } => assert_eq!(
            (last_stream, code),
            (1, ErrorCode::PROTOCOL_ERROR),
            "the bad SYN's id was counted as processed"
        ),
        other => panic!("expected GOAWAY, got {other:?}"),
    }
    drop(server);
}
