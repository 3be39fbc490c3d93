//! A raw-frame peer: speaks braid by hand so tests can send what a real session never would.
#![allow(dead_code)]

use std::time::Duration;

use braid::{
    frame::{encode_frame, Decoder, Flags, Frame, Preface, PREFACE_LEN},
    Config, Session,
};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};

/// A hand-driven braid endpoint over any byte pipe (an in-memory duplex by default).
pub struct RawPeer<T = DuplexStream> {
    pub io: T,
    pub buf: BytesMut,
    pub decoder: Decoder,
    pub peer_preface: Option<Preface>,
}

pub fn default_preface() -> Preface {
    Preface {
        initial_stream_window: 256 * 1024,
        session_window: 64 * 1024 * 1024,
        max_concurrent_streams: 1000,
        accept_backlog: 1000,
        max_frame_payload: 16 * 1024 * 1024,
    }
}

/// A long time: timers set to it never fire within a test (the hang guards fire first).
pub const FOREVER: Duration = Duration::from_secs(24 * 3600);

/// `config` with keepalive off and the first PING's timeout out of reach, so that only the
/// timers a test sets can fire (a raw peer needn't answer PINGs).
pub fn quiet(config: Config) -> Config {
    config
        .with_keepalive_interval(None)
        .with_keepalive_timeout(FOREVER)
}

/// A client session and a raw peer posing as the server with `preface`, handshake done.
pub async fn client_and_raw(config: Config, preface: Preface, pipe: usize) -> (Session, RawPeer) {
    let (a, b) = tokio::io::duplex(pipe);
    let client = Session::client(a, config).expect("client config");
    let mut peer = RawPeer::new(b);
    peer.handshake_with(preface).await;
    (client, peer)
}

/// A braid client session over an in-memory pipe of `pipe` bytes, against a raw peer that has
/// handshaken with a stingy preface: 1 KiB of stream credit and `session_window` bytes of
/// session credit, with no WINDOW_UPDATE after it unless the test sends one. The session's
/// keepalive is off (`quiet`), as the raw peer answers no PING.
pub async fn credit_starved_client(
    pipe: usize,
    config: Config,
    session_window: u32,
) -> (Session, RawPeer) {
    let stingy = Preface {
        initial_stream_window: 1024,
        session_window,
        max_concurrent_streams: 100,
        accept_backlog: 100,
        max_frame_payload: 16 * 1024,
    };
    client_and_raw(quiet(config), stingy, pipe).await
}

impl<T: AsyncRead + AsyncWrite + Unpin> RawPeer<T> {
    /// Wraps one end of a pipe whose other end runs a braid session.
    pub fn new(io: T) -> RawPeer<T> {
        RawPeer {
            io,
            buf: BytesMut::new(),
            decoder: Decoder::new(16 * 1024 * 1024),
            peer_preface: None,
        }
    }

    /// Sends our preface and reads the session's.
    pub async fn handshake(&mut self) {
        self.handshake_with(default_preface()).await;
    }

    /// Sends `preface` as ours and reads the session's.
    pub async fn handshake_with(&mut self, preface: Preface) {
        self.send_raw(&preface.encode()).await;
        self.read_preface().await;
    }

    pub async fn read_preface(&mut self) -> Preface {
        while self.buf.len() < PREFACE_LEN {
            let n = self.io.read_buf(&mut self.buf).await.unwrap();
            assert!(n > 0, "EOF before preface");
        }
        let raw: [u8; PREFACE_LEN] = self.buf.split_to(PREFACE_LEN)[..].try_into().unwrap();
        let p = Preface::decode(&raw).unwrap();
        self.peer_preface = Some(p);
        p
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }

    pub async fn send(&mut self, frame: Frame) {
        let mut out = BytesMut::new();
        encode_frame(&frame, &mut out);
        self.send_raw(&out).await;
    }

    /// Sends frames in one write (or errors if the session closed the pipe).
    pub async fn try_send_all(&mut self, frames: &[Frame]) -> std::io::Result<()> {
        let mut out = BytesMut::new();
        for f in frames {
            encode_frame(f, &mut out);
        }
        self.io.write_all(&out).await
    }

    /// The next frame, or `None` at EOF.
    pub async fn recv(&mut self) -> Option<Frame> {
        read_frame(&mut self.io, &mut self.buf, &mut self.decoder, 0).await
    }

    /// Reads frames until a GOAWAY (returned) or EOF (`None`).
    pub async fn expect_goaway(&mut self) -> Option<Frame> {
        while let Some(f) = self.recv().await {
            if matches!(f, Frame::GoAway { .. }) {
                return Some(f);
            }
        }
        None
    }
}

pub fn data(stream: u32, flags: Flags, payload: &'static [u8]) -> Frame {
    data_frame(stream, flags, Bytes::from_static(payload))
}

pub fn data_frame(stream: u32, flags: Flags, payload: Bytes) -> Frame {
    Frame::Data {
        stream,
        flags,
        payload,
    }
}

/// `frames` encoded back to back, as a peer would write them.
pub fn encode_all<'a>(frames: impl IntoIterator<Item = &'a Frame>) -> BytesMut {
    let mut out = BytesMut::new();
    for f in frames {
        encode_frame(f, &mut out);
    }
    out
}

/// The next frame the session sent on `io`, or `None` at EOF: `buf` holds what was read and
/// not yet decoded. `reserve`: room made before each read (0: whatever `read_buf` takes).
pub async fn read_frame<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
    decoder: &mut Decoder,
    reserve: usize,
) -> Option<Frame> {
    loop {
        if let Some(f) = decoder.decode(buf).expect("session sent a valid frame") {
            return Some(f);
        }
        buf.reserve(reserve);
        match io.read_buf(buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}
