//! What the fuzz targets in `fuzz/` found, replayed on stable with the targets' own harness
//! code (`fuzz/harness/*.rs`, which depends on braid and bytes only), plus the recorder of the
//! fuzz seed corpus:
//!
//! ```text
//! cargo test --test fuzz_regressions -- --ignored record_fuzz_corpus
//! ```
//!
//! Each regression test feeds byte literals (wire bytes, or a `frame_decode` input) and, for
//! the session target, the application operations of the minimised crash.

// The harness types derive `arbitrary::Arbitrary` only under `cfg(fuzzing)`, which cargo fuzz
// sets; this crate never does.
#![allow(unexpected_cfgs)]

#[path = "../fuzz/harness/decode.rs"]
mod decode;
#[path = "../fuzz/harness/flow.rs"]
mod flow;
#[path = "../fuzz/harness/session.rs"]
mod session;

use braid::{frame::MAX_WINDOW, proto::RecvWindow};
use session::{Knobs, Op};

/// The 32-byte preface of a peer running `session::base_config()`, as the fuzzed server
/// expects it at the start of the wire.
const PREFACE: [u8; 32] = [
    0x8b, b'B', b'R', b'A', b'I', b'D', b'\r', b'\n', // magic
    0x00, 0x01, 0x00, 0x00, // version 1, reserved
    0x00, 0x00, 0x04, 0x00, // initial_stream_window 1024
    0x00, 0x00, 0x40, 0x00, // session_window 16 KiB
    0x00, 0x00, 0x00, 0x04, // max_concurrent_streams 4
    0x00, 0x00, 0x00, 0x02, // accept_backlog 2
    0x00, 0x00, 0x04, 0x00, // max_frame_payload 1024
];

fn wire(frames: &[&[u8]]) -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    for f in frames {
        out.extend_from_slice(f);
    }
    out
}

#[test]
fn preface_literal_is_the_base_config_preface() {
    assert_eq!(
        PREFACE,
        session::preface_of(&session::base_config()).encode()
    );
}

// ----- flow_control -----

/// flow_control crash (minimised input `93 60 15 b3 85 00 00 85 85` = `[WindowGrow(NearU32Max(0))]`):
/// `RecvWindow::grow` clamped the size at 2^31-1 but added the whole `extra` to the pending
/// grant, so `peer_credit + buffered + unacked` exceeded `size` and every later
/// `take_update` overflowed and returned `None`: the peer was never granted credit again.
#[test]
fn flow_grow_past_max_grants_only_the_growth() {
    flow::run(&[flow::Op::WindowGrow(flow::Amount::NearU32Max(0))]);

    let mut w = RecvWindow::new(MAX_WINDOW - 10);
    w.grow(100);
    assert_eq!((w.size(), w.unacked()), (MAX_WINDOW, 10));
    w.receive(MAX_WINDOW - 10).unwrap();
    w.consume(MAX_WINDOW - 10);
    assert_eq!(w.take_update(true), Some(MAX_WINDOW));
    assert_eq!(w.peer_credit(), MAX_WINDOW);
}

// ----- frame_decode -----

/// Harness bound, kept as a check: with `max_frame_payload` 0 (mode 0x0c) a GOAWAY header
/// still announces up to 8 + 1024 payload bytes, fed here a byte at a time (seed 1).
#[test]
fn decode_pending_goaway_with_zero_max_payload() {
    let mut input = vec![0x0d, 0x01];
    input.extend_from_slice(&[0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x04, 0x08]);
    input.extend_from_slice(&[0; 8]);
    input.extend_from_slice(&[b'x'; 1024]);
    decode::check(&input);
    input.truncate(600);
    decode::check(&input);
}

#[test]
fn decode_every_frame_type_reencodes() {
    let frames: &[&[u8]] = &[
        &[0, 0x05, 0, 0, 0, 0, 0, 1, 0, 0, 0, 3, b'a', b'b', b'c'], // DATA SYN|FIN
        &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 1, 0],          // WINDOW_UPDATE(0)
        &[
            2, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8,
        ], // PING ACK
        &[
            3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xfe,
        ], // GOAWAY
        &[4, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 7],          // RESET
        &[5, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 7],          // STOP_SENDING
    ];
    for mode in 0..4u8 {
        for seed in [0u8, 1, 5, 40] {
            let mut input = vec![mode, seed];
            for f in frames {
                input.extend_from_slice(f);
            }
            decode::check(&input);
        }
    }
}

// ----- session -----

/// session crash 1: after our GOAWAY(last_stream 0) the peer opened stream 13 (refused, but
/// `last_peer_id` still moves, spec §5.2), then broke a rule; the error GOAWAY announced
/// last_stream 13, raising the id of the first GOAWAY (spec §8.2: it MUST NOT increase).
#[test]
fn session_second_goaway_never_raises_last_stream() {
    let syn_fin_13: &[u8] = &[0, 0x05, 0, 0, 0, 0, 0, 13, 0, 0, 0, 2, b'h', b'i'];
    let data_on_0: &[u8] = &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let wire = wire(&[syn_fin_13, data_on_0]);
    let h = session::run(
        Knobs::default(),
        &[Op::GoAway(200), Op::Transmit(100), Op::Feed(100)],
        &wire,
    );
    assert!(
        h.core().error().is_some(),
        "the frame on stream 0 ends the session"
    );
}

/// session crash 2: we opened streams 2 and 4 (SYNs not yet sent) and stopped reading 4; the
/// peer's GOAWAY(last_stream 2) refused 4, which cleared its pending SYN, but the queued
/// STOP_SENDING(4) still went out: a frame on a stream the peer never saw opened (§5.2).
#[test]
fn session_goaway_refusal_drops_queued_stop_sending() {
    let goaway_2: &[u8] = &[3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 2, 0, 0, 0, 0];
    let wire = wire(&[goaway_2]);
    let h = session::run(
        Knobs::default(),
        &[
            Op::Open,
            Op::Open,
            Op::Release { h: 1, halves: 1 }, // the receive half of stream 4: STOP_SENDING
            Op::Feed(100),
            Op::Transmit(1000),
        ],
        &wire,
    );
    assert_eq!(h.core().stats().outbound_streams, 1, "stream 2 lives on");
}

/// session crash 3: the peer sent RESET on stream 2, which we had opened but whose SYN was not
/// on the wire yet; the reset cleared the pending SYN and a queued STOP_SENDING(2) went out
/// without it. The peer cannot know an id before its SYN: PROTOCOL_ERROR (spec §5.2).
#[test]
fn session_reset_on_unsent_stream_is_a_protocol_error() {
    let reset_2: &[u8] = &[4, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 0];
    let wire = wire(&[reset_2]);
    let h = session::run(
        Knobs::default(),
        &[Op::Open, Op::Release { h: 0, halves: 1 }, Op::Feed(100)],
        &wire,
    );
    assert!(
        matches!(h.core().error(), Some(braid::Error::Protocol { .. })),
        "{:?}",
        h.core().error()
    );
}

/// session crash 4: we opened streams 2 and 4 (SYNs not yet sent); the peer sent DATA+ACK on
/// 4, which was taken as the open's ACK; reading it queued a WINDOW_UPDATE(4), whose SYN went
/// out first: SYN 4 before SYN 2 (spec §5.1: ids increase in the order SYNs are sent). Any
/// frame on one of our ids before its SYN is written is now a PROTOCOL_ERROR (spec §5.2).
#[test]
fn session_ack_on_unsent_stream_is_a_protocol_error() {
    let ack_4: &[u8] = &[0, 0x02, 0, 0, 0, 0, 0, 4, 0, 0, 0, 3, b'a', b'c', b'k'];
    let wire = wire(&[ack_4]);
    let h = session::run(
        Knobs::default(),
        &[Op::Open, Op::Open, Op::Feed(100)],
        &wire,
    );
    assert!(
        matches!(h.core().error(), Some(braid::Error::Protocol { .. })),
        "{:?}",
        h.core().error()
    );
}

/// A plain replay: one stream opened by the peer, echoed back and finished both ways.
#[test]
fn session_echo_replay() {
    let syn_fin_1: &[u8] = &[
        0, 0x05, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o',
    ];
    let wire = wire(&[syn_fin_1]);
    let h = session::run(Knobs::default(), &[], &wire);
    assert!(h.core().error().is_none(), "{:?}", h.core().error());
    assert_eq!(h.data_sent(1), 5);
}

// ----- corpus recorder -----

mod record {
    use std::{
        io,
        pin::Pin,
        sync::{Arc, Mutex},
        task::{Context, Poll},
        time::Duration,
    };

    use braid::{Config, Session};
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

    /// A transport that keeps a copy of every byte written through it.
    pub struct Tap {
        io: DuplexStream,
        log: Arc<Mutex<Vec<u8>>>,
    }

    impl AsyncRead for Tap {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.io).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Tap {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let this = &mut *self;
            let result = Pin::new(&mut this.io).poll_write(cx, buf);
            if let Poll::Ready(Ok(n)) = result {
                this.log.lock().unwrap().extend_from_slice(&buf[..n]);
            }
            result
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.io).poll_flush(cx)
        }
        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.io).poll_shutdown(cx)
        }
    }

    pub fn data(seed: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Runs `client` against an echo server over a tapped in-memory pipe; returns the bytes
    /// (client to server, server to client). `server_opens`: the server also opens a stream
    /// and writes `data(9, 3000)` on it, which the client reads.
    pub async fn record<F, Fut>(config: Config, server_opens: bool, client: F) -> (Vec<u8>, Vec<u8>)
    where
        F: FnOnce(Session) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let (a, b) = tokio::io::duplex(4096);
        let c2s = Arc::new(Mutex::new(Vec::new()));
        let s2c = Arc::new(Mutex::new(Vec::new()));
        let client_session = Session::client(
            Tap {
                io: a,
                log: c2s.clone(),
            },
            config.clone(),
        )
        .unwrap();
        let server = Session::server(
            Tap {
                io: b,
                log: s2c.clone(),
            },
            config,
        )
        .unwrap();
        let server_task = tokio::spawn(async move {
            if server_opens {
                let mut s = server.open().await.unwrap();
                s.write_all(&data(9, 3000)).await.unwrap();
                s.shutdown().await.unwrap();
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink).await;
            }
            while let Ok(stream) = server.accept().await {
                tokio::spawn(async move {
                    let (mut rx, mut tx) = stream.into_split();
                    let _ = tokio::io::copy(&mut rx, &mut tx).await;
                    let _ = tx.finish();
                    let _ = tx.flush_queued().await;
                });
            }
        });
        if server_opens {
            let s = client_session.accept().await.unwrap();
            let (mut rx, mut tx) = s.into_split();
            let mut got = Vec::new();
            rx.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, data(9, 3000));
            tx.write_all(b"thanks").await.unwrap();
            tx.shutdown().await.unwrap();
        }
        client(client_session.clone()).await;
        client_session.goaway();
        drop(client_session);
        let _ = tokio::time::timeout(Duration::from_secs(5), server_task).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let c = c2s.lock().unwrap().clone();
        let s = s2c.lock().unwrap().clone();
        (c, s)
    }

    pub async fn echo(session: &Session, payload: &[u8]) {
        let (mut rx, mut tx) = session.open().await.unwrap().into_split();
        let write = async {
            tx.write_all(payload).await.unwrap();
            tx.shutdown().await.unwrap();
        };
        let read = async {
            let mut got = Vec::new();
            rx.read_to_end(&mut got).await.unwrap();
            got
        };
        let ((), got) = tokio::join!(write, read);
        assert_eq!(got, payload);
    }
}

/// Writes the seed corpus of the `session` and `frame_decode` fuzz targets from real
/// client/server exchanges (configs as the fuzzed server's, `session::base_config()`).
#[tokio::test]
#[ignore = "writes fuzz/corpus; run by hand when the wire format or the harness changes"]
async fn record_fuzz_corpus() {
    use braid::ErrorCode;
    use record::{data, record};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let config = session::base_config();
    let recordings = vec![
        (
            "hello",
            true,
            record(config.clone(), false, |s| async move {
                record::echo(&s, b"hello").await
            })
            .await,
        ),
        (
            "bulk3",
            true,
            record(config.clone(), false, |s| async move {
                let (a, b, c) = (data(1, 3000), data(2, 2500), data(3, 700));
                tokio::join!(
                    record::echo(&s, &a),
                    record::echo(&s, &b),
                    record::echo(&s, &c)
                );
            })
            .await,
        ),
        (
            "reset-stop-ping",
            true,
            record(config.clone(), false, |s| async move {
                let mut one = s.open().await.unwrap();
                one.write_all(&data(4, 500)).await.unwrap();
                one.flush().await.unwrap();
                s.ping().await.unwrap();
                one.reset(ErrorCode::CANCEL);
                let (mut rx, mut tx) = s.open().await.unwrap().into_split();
                tx.write_all(&data(5, 300)).await.unwrap();
                let mut buf = [0u8; 100];
                rx.read_exact(&mut buf).await.unwrap();
                rx.stop(ErrorCode(0x1234));
                tx.write_all(&data(6, 200)).await.unwrap();
                tx.shutdown().await.unwrap();
                s.ping().await.unwrap();
            })
            .await,
        ),
        (
            "goaway-midstream",
            true,
            record(config.clone(), false, |s| async move {
                let mut one = s.open().await.unwrap();
                one.write_all(&data(7, 1500)).await.unwrap();
                s.goaway();
                one.shutdown().await.unwrap();
                let mut got = Vec::new();
                one.read_to_end(&mut got).await.unwrap();
                assert_eq!(got, data(7, 1500));
            })
            .await,
        ),
        // The client's bytes refer to a stream the server opened, which the fuzzed server
        // never did: frame_decode seeds only.
        (
            "server-opens",
            false,
            record(config.clone(), true, |_| async {}).await,
        ),
    ];

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let (sessions, decodes) = (root.join("session"), root.join("frame_decode"));
    std::fs::create_dir_all(&sessions).unwrap();
    std::fs::create_dir_all(&decodes).unwrap();
    for (name, session_seed, (c2s, s2c)) in &recordings {
        assert!(c2s.len() > 32 && s2c.len() > 32, "{name}: nothing recorded");
        if *session_seed {
            // The harness replays it in full: check it does so without a protocol error.
            let h = session::run(Knobs::default(), &[], c2s);
            assert!(
                !matches!(h.core().error(), Some(braid::Error::Protocol { .. })),
                "{name}: replay failed: {:?}",
                h.core().error()
            );
            eprintln!(
                "{name}: replay sent {:?} bytes on streams 1, 3, 5; {:?}",
                [h.data_sent(1), h.data_sent(3), h.data_sent(5)],
                h.core().stats()
            );
            let mut seed = vec![0, 0];
            seed.extend_from_slice(c2s);
            std::fs::write(sessions.join(format!("seed-{name}")), seed).unwrap();
        }
        for (dir, bytes, mode, chunk) in [("c2s", c2s, 1u8, 0u8), ("s2c", s2c, 0, 7)] {
            let mut seed = vec![mode, chunk];
            seed.extend_from_slice(&bytes[32..]);
            decode::check(&seed);
            std::fs::write(decodes.join(format!("seed-{name}-{dir}")), seed).unwrap();
        }
    }
}

/// session crash 5 (session 3, after the first PING began to ride behind the preface, spec
/// §2): we sent GOAWAY, the peer's GOAWAY arrived, and with no stream left the session ended,
/// all before our first transmit; that transmit sent preface, PING, GOAWAY — a PING after the
/// session had ended. Only the GOAWAY may follow the preface then.
#[test]
fn session_ended_before_its_first_transmit_sends_no_ping() {
    let goaway_0: &[u8] = &[3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0];
    let wire = wire(&[goaway_0]);
    let h = session::run(
        Knobs::default(),
        &[Op::GoAway(159), Op::Feed(100), Op::Transmit(100)],
        &wire,
    );
    assert!(h.core().error().is_some(), "both GOAWAYs, no stream: ended");
}
