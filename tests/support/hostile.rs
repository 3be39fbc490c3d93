//! Helpers for the hostile-peer suites (`tests/hostile_*.rs`): configs without stray timers, a
//! raw peer split into a reader and a flooding writer, PING round trips as a sync point, and a
//! "run until nothing moves" wait. Included by those files with `#[path]`, so other test
//! binaries don't compile it.
#![allow(dead_code)]

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use braid::{
    frame::{encode_frame, Decoder, ErrorCode, Flags, Frame},
    Config, Error, Session,
};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};

use crate::support::raw::RawPeer;
#[allow(unused_imports)]
// shared with the other suites through `raw`; not every suite uses all
pub use crate::support::raw::{client_and_raw, data_frame, encode_all, quiet, FOREVER};

/// A server session on one end of a `pipe`-byte duplex, a raw peer (the client) on the other,
/// handshake done.
pub async fn server_and_raw(config: Config, pipe: usize) -> (Session, RawPeer) {
    let (a, b) = tokio::io::duplex(pipe);
    let server = Session::server(a, config).expect("server config");
    let mut peer = RawPeer::new(b);
    peer.handshake().await;
    (server, peer)
}

pub fn syn(stream: u32, payload: &'static [u8]) -> Frame {
    Frame::Data {
        stream,
        flags: Flags::SYN,
        payload: Bytes::from_static(payload),
    }
}

pub fn ping(opaque: u64) -> Frame {
    Frame::Ping { ack: false, opaque }
}

/// Sends PING(`opaque`) and reads until its reply; returns the frames that came before it,
/// answering the session's own PINGs on the way. Frames are handled in order, so when this
/// returns the session has processed everything sent before the PING.
pub async fn sync(peer: &mut RawPeer, opaque: u64) -> Vec<Frame> {
    peer.send(ping(opaque)).await;
    let mut before = Vec::new();
    loop {
        match peer.recv().await.expect("session closed during sync") {
            Frame::Ping {
                ack: true,
                opaque: o,
            } if o == opaque => return before,
            Frame::Ping {
                ack: false,
                opaque: o,
            } => {
                peer.send(Frame::Ping {
                    ack: true,
                    opaque: o,
                })
                .await;
            }
            Frame::GoAway { code, debug, .. } => {
                panic!(
                    "session sent GOAWAY({code}, {:?}) during sync",
                    String::from_utf8_lossy(&debug)
                )
            }
            other => before.push(other),
        }
    }
}

/// Reads frames until one matches `pred`; returns them all (the match last), answering the
/// session's PINGs on the way.
pub async fn recv_until(
    peer: &mut RawPeer,
    what: &str,
    mut pred: impl FnMut(&Frame) -> bool,
) -> Vec<Frame> {
    let mut frames = Vec::new();
    loop {
        let frame = crate::support::guard(what, peer.recv()).await;
        match frame {
            None => panic!("EOF while waiting for {what}; frames: {frames:?}"),
            Some(Frame::Ping { ack: false, opaque }) => {
                peer.send(Frame::Ping { ack: true, opaque }).await
            }
            Some(f) => {
                let done = pred(&f);
                frames.push(f);
                if done {
                    return frames;
                }
            }
        }
    }
}

/// Reads until GOAWAY, returning it and the frames before it (answering no PING).
pub async fn until_goaway(peer: &mut RawPeer) -> (Frame, Vec<Frame>) {
    let mut before = Vec::new();
    loop {
        match peer.recv().await {
            Some(f @ Frame::GoAway { .. }) => return (f, before),
            Some(other) => before.push(other),
            None => panic!("EOF without GOAWAY; frames before: {before:?}"),
        }
    }
}

/// Asserts `frame` is GOAWAY with `code`.
pub fn assert_goaway(frame: &Frame, code: ErrorCode) {
    match frame {
        Frame::GoAway { code: c, .. } => assert_eq!(*c, code, "GOAWAY code: {frame:?}"),
        other => panic!("expected GOAWAY({code}), got {other:?}"),
    }
}

/// Asserts the session ended with `Error::Protocol { code, .. }`.
pub fn assert_protocol_error(session: &Session, code: ErrorCode) {
    match session.closed_reason() {
        Some(Error::Protocol { code: c, reason }) => {
            assert_eq!(c, code, "session error code ({reason})");
        }
        other => panic!("expected Error::Protocol({code}), got {other:?}"),
    }
}

/// Yields to the other tasks until `probe()` has returned the same value for 200 turns in a
/// row (every task that could move it is idle or blocked), and returns that value. On a
/// current-thread runtime this is deterministic; it never sleeps.
pub async fn settle<T: PartialEq + Clone + std::fmt::Debug>(
    what: &str,
    mut probe: impl FnMut() -> T,
) -> T {
    let mut last = probe();
    let mut stable = 0;
    for _ in 0..5_000_000 {
        tokio::task::yield_now().await;
        let now = probe();
        if now == last {
            stable += 1;
            if stable >= 200 {
                return now;
            }
        } else {
            stable = 0;
            last = now;
        }
    }
    panic!("never settled: {what} (last {last:?})");
}

/// The read half of a raw peer: frames from the session.
pub struct RawReader {
    pub io: ReadHalf<DuplexStream>,
    pub buf: BytesMut,
    pub decoder: Decoder,
}

impl RawReader {
    /// The next frame, or `None` at EOF.
    pub async fn recv(&mut self) -> Option<Frame> {
        crate::support::raw::read_frame(&mut self.io, &mut self.buf, &mut self.decoder, 64 * 1024)
            .await
    }
}

/// Splits a raw peer (after its handshake) into a frame reader and the write half.
pub fn split(peer: RawPeer) -> (RawReader, WriteHalf<DuplexStream>) {
    let RawPeer {
        io, buf, decoder, ..
    } = peer;
    let (rd, wr) = tokio::io::split(io);
    (
        RawReader {
            io: rd,
            buf,
            decoder,
        },
        wr,
    )
}

/// Writes `count` frames made by `make(i)` (i in `0..count`) in batches of `batch`, counting
/// frames fully written in `progress`. Ends early (returning the count) if the pipe closes.
pub fn spawn_flood(
    mut wr: WriteHalf<DuplexStream>,
    count: u64,
    batch: u64,
    progress: Arc<AtomicU64>,
    make: impl Fn(u64) -> Frame + Send + 'static,
) -> tokio::task::JoinHandle<(WriteHalf<DuplexStream>, u64)> {
    tokio::spawn(async move {
        let mut out = BytesMut::new();
        let mut i = 0;
        while i < count {
            out.clear();
            let end = (i + batch).min(count);
            for j in i..end {
                encode_frame(&make(j), &mut out);
            }
            if wr.write_all(&out).await.is_err() {
                return (wr, i);
            }
            i = end;
            progress.store(i, Ordering::SeqCst);
        }
        (wr, i)
    })
}
