//! Issue #2 behaviour 9 and spec §10: each kind of malformed input ends the session with a
//! GOAWAY carrying the code the spec names and a descriptive error, without panicking and
//! without allocating by the peer's length field.

mod support;

use braid::{
    frame::{ErrorCode, Flags, Frame, Preface},
    Config, Error, Session,
};
use bytes::Bytes;
use support::raw::{data, default_preface, RawPeer};

/// Starts a server session on one end of a pipe and a raw peer (posing as client) on the other.
fn server_and_raw() -> (Session, RawPeer) {
    let (a, b) = tokio::io::duplex(1 << 20);
    let server = Session::server(a, Config::default()).unwrap();
    (server, RawPeer::new(b))
}

/// Sends `bytes` after a good handshake and checks the session answers GOAWAY(`code`) and
/// fails with a protocol error of that code.
async fn expect_violation(frames: Vec<Frame>, raw_tail: &[u8], code: ErrorCode) {
    let (server, mut peer) = server_and_raw();
    peer.handshake().await;
    let _ = peer.try_send_all(&frames).await;
    if !raw_tail.is_empty() {
        peer.send_raw(raw_tail).await;
    }
    match peer.expect_goaway().await {
        Some(Frame::GoAway { code: got, .. }) => assert_eq!(got, code, "GOAWAY code"),
        other => panic!("expected GOAWAY({code}), got {other:?}"),
    }
    let err = loop {
        match server.accept().await {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    match err {
        Error::Protocol { code: got, reason } => {
            assert_eq!(got, code);
            assert!(!reason.is_empty());
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

fn header(kind: u8, flags: u8, stream: u32, len: u32) -> Vec<u8> {
    let mut h = vec![kind, flags, 0, 0];
    h.extend_from_slice(&stream.to_be_bytes());
    h.extend_from_slice(&len.to_be_bytes());
    h
}

#[tokio::test]
async fn garbage_preface_is_rejected_before_any_stream() {
    let (server, mut peer) = server_and_raw();
    peer.send_raw(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
        .await;
    peer.read_preface().await;
    match peer.expect_goaway().await {
        Some(Frame::GoAway { code, .. }) => assert_eq!(code, ErrorCode::PROTOCOL_ERROR),
        other => panic!("expected GOAWAY, got {other:?}"),
    }
    let err = server.accept().await.unwrap_err();
    assert!(err.to_string().contains("does not speak braid"), "{err}");
    assert_eq!(server.stats().tracked_streams, 0);
}

#[tokio::test]
async fn other_protocol_version_is_rejected() {
    let (server, mut peer) = server_and_raw();
    let mut preface = default_preface().encode();
    preface[9] = 2; // version 2
    peer.send_raw(&preface).await;
    peer.read_preface().await;
    match peer.expect_goaway().await {
        Some(Frame::GoAway { code, .. }) => assert_eq!(code, ErrorCode::VERSION_MISMATCH),
        other => panic!("expected GOAWAY, got {other:?}"),
    }
    let err = server.accept().await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::VERSION_MISMATCH));
}

#[tokio::test]
async fn preface_setting_out_of_range_is_rejected() {
    let (server, mut peer) = server_and_raw();
    let bad = Preface {
        max_frame_payload: 10,
        ..default_preface()
    };
    peer.send_raw(&bad.encode()).await;
    peer.read_preface().await;
    assert!(
        matches!(peer.expect_goaway().await, Some(Frame::GoAway { code, .. }) if code == ErrorCode::PROTOCOL_ERROR)
    );
    assert!(server.accept().await.is_err());
}

#[tokio::test]
async fn unknown_frame_type() {
    expect_violation(vec![], &header(0x7f, 0, 0, 0), ErrorCode::PROTOCOL_ERROR).await;
}

#[tokio::test]
async fn unknown_flag_and_reserved_bits() {
    expect_violation(vec![], &header(0x0, 0x80, 1, 0), ErrorCode::PROTOCOL_ERROR).await;
    let mut h = header(0x2, 0, 0, 8);
    h[3] = 1;
    expect_violation(vec![], &h, ErrorCode::PROTOCOL_ERROR).await;
}

#[tokio::test]
async fn length_over_max_frame_payload_is_refused_from_the_header() {
    // Only the header is sent: 4 GiB are announced, nothing may be allocated for them.
    expect_violation(
        vec![],
        &header(0x0, 0x1, 1, u32::MAX),
        ErrorCode::FRAME_SIZE_ERROR,
    )
    .await;
    expect_violation(
        vec![],
        &header(0x0, 0x1, 1, 64 * 1024 + 1),
        ErrorCode::FRAME_SIZE_ERROR,
    )
    .await;
}

#[tokio::test]
async fn control_frame_with_wrong_length() {
    expect_violation(vec![], &header(0x2, 0, 0, 9), ErrorCode::FRAME_SIZE_ERROR).await;
    expect_violation(vec![], &header(0x4, 0, 1, 0), ErrorCode::FRAME_SIZE_ERROR).await;
}

#[tokio::test]
async fn session_frames_on_a_stream_and_stream_frames_on_zero() {
    expect_violation(vec![], &header(0x2, 0, 1, 8), ErrorCode::PROTOCOL_ERROR).await;
    expect_violation(vec![], &header(0x3, 0, 1, 8), ErrorCode::PROTOCOL_ERROR).await;
    expect_violation(
        vec![data(0, Flags::SYN, b"x")],
        &[],
        ErrorCode::PROTOCOL_ERROR,
    )
    .await;
}

#[tokio::test]
async fn data_on_a_never_opened_stream() {
    expect_violation(
        vec![data(7, Flags::NONE, b"hi")],
        &[],
        ErrorCode::PROTOCOL_ERROR,
    )
    .await;
}

#[tokio::test]
async fn data_on_a_stream_the_peer_reset() {
    let frames = vec![
        data(1, Flags::SYN, b"hi"),
        Frame::Reset {
            stream: 1,
            code: ErrorCode::CANCEL,
        },
        data(1, Flags::NONE, b"late"),
    ];
    expect_violation(frames, &[], ErrorCode::STREAM_CLOSED).await;
}

#[tokio::test]
async fn data_after_fin() {
    let frames = vec![
        data(1, Flags::SYN.union(Flags::FIN), b"hi"),
        data(1, Flags::NONE, b"more"),
    ];
    expect_violation(frames, &[], ErrorCode::STREAM_CLOSED).await;
}

#[tokio::test]
async fn wrong_stream_id_parity_and_ids_going_backwards() {
    // A client must open odd ids.
    expect_violation(
        vec![data(2, Flags::SYN, b"x")],
        &[],
        ErrorCode::PROTOCOL_ERROR,
    )
    .await;
    let backwards = vec![data(5, Flags::SYN, b"x"), data(3, Flags::SYN, b"y")];
    expect_violation(backwards, &[], ErrorCode::PROTOCOL_ERROR).await;
    let duplicate = vec![data(5, Flags::SYN, b"x"), data(5, Flags::SYN, b"y")];
    expect_violation(duplicate, &[], ErrorCode::PROTOCOL_ERROR).await;
}

#[tokio::test]
async fn window_update_overflow_is_a_flow_control_error() {
    let stream = vec![
        data(1, Flags::SYN, b"x"),
        Frame::WindowUpdate {
            stream: 1,
            increment: u32::MAX,
        },
    ];
    expect_violation(stream, &[], ErrorCode::FLOW_CONTROL_ERROR).await;
    let session = vec![Frame::WindowUpdate {
        stream: 0,
        increment: (1 << 31) - 1,
    }];
    expect_violation(session, &[], ErrorCode::FLOW_CONTROL_ERROR).await;
}

#[tokio::test]
async fn data_beyond_the_stream_window() {
    let window = Config::default().initial_stream_window as usize;
    let chunk = Bytes::from(vec![0u8; 64 * 1024]);
    let mut frames = vec![data(1, Flags::SYN, b"")];
    for _ in 0..window / chunk.len() {
        frames.push(Frame::Data {
            stream: 1,
            flags: Flags::NONE,
            payload: chunk.clone(),
        });
    }
    frames.push(data(1, Flags::NONE, b"!"));
    expect_violation(frames, &[], ErrorCode::FLOW_CONTROL_ERROR).await;
}

#[tokio::test]
async fn syn_carrying_more_than_the_initial_window_is_refused_from_the_header() {
    let config = Config::default().with_initial_stream_window(16 * 1024);
    let (a, b) = tokio::io::duplex(1 << 20);
    let server = Session::server(a, config).unwrap();
    let mut peer = RawPeer::new(b);
    peer.handshake().await;
    // Header only: the 32 KiB payload never follows.
    peer.send_raw(&header(0x0, 0x1, 1, 32 * 1024)).await;
    assert!(
        matches!(peer.expect_goaway().await, Some(Frame::GoAway { code, .. }) if code == ErrorCode::FLOW_CONTROL_ERROR)
    );
    assert!(server.accept().await.is_err());
    assert_eq!(server.stats().tracked_streams, 0);
}

/// Spec §2 / §7.4: the first PING rides right behind the preface, before the peer's preface
/// has arrived, so the round trip is known by the time the peer's first stream data is.
#[tokio::test]
async fn the_first_ping_goes_out_before_the_peers_preface() {
    let (server, mut peer) = server_and_raw();
    peer.read_preface().await; // we have sent nothing yet
    let opaque = match support::guard("the first PING", peer.recv()).await {
        Some(Frame::Ping { ack: false, opaque }) => opaque,
        other => panic!("expected a PING, got {other:?}"),
    };
    assert!(server.stats().rtt.is_none());
    peer.send_raw(&default_preface().encode()).await;
    peer.send(Frame::Ping { ack: true, opaque }).await;
    support::guard("the RTT", async {
        while server.stats().rtt.is_none() {
            tokio::task::yield_now().await;
        }
    })
    .await;
}
