//! Copies bytes between one TCP connection and one braid stream, both directions at once.
//!
//! End-of-stream travels as end-of-stream: EOF on the TCP socket becomes the stream's FIN,
//! and the stream's FIN becomes a write shutdown of the socket, so half-closed protocols
//! work. Anything else that ends a direction early (a reset, a lost tunnel, a socket error,
//! or the relay being cancelled) aborts **both** sides: the stream is reset and the socket is
//! closed with `SO_LINGER` 0, which sends an RST, so neither end can mistake a cut-off
//! transfer for a complete one.

use std::{fmt, io, sync::atomic::Ordering};

use braid::{ErrorCode, RecvStream, SendStream};
use bytes::BytesMut;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        tcp::{ReadHalf, WriteHalf},
        TcpStream,
    },
};

use super::metrics::Counters;

/// How much one socket read takes at most.
const READ_CHUNK: usize = 64 * 1024;

/// Why a relay ended early.
#[derive(Debug)]
pub enum RelayError {
    /// The TCP side failed (reset by its peer, or a socket error).
    Tcp(io::Error),
    /// The braid side failed (stream reset, tunnel lost, ...).
    Tunnel(braid::Error),
}

impl fmt::Display for RelayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayError::Tcp(e) => write!(f, "tcp side: {e}"),
            RelayError::Tunnel(e) => write!(f, "tunnel side: {e}"),
        }
    }
}

impl std::error::Error for RelayError {}

/// Bytes a completed relay moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Read from the socket and sent into the tunnel.
    pub from_tcp: u64,
    /// Received from the tunnel and written to the socket.
    pub to_tcp: u64,
}

/// A TCP connection that is reset (RST) if dropped before [`ResetOnDrop::into_inner`]: a
/// cancelled task or an early return can't end it with a clean-looking FIN.
#[derive(Debug)]
pub struct ResetOnDrop(Option<TcpStream>);

impl ResetOnDrop {
    /// Guards `tcp`.
    pub fn new(tcp: TcpStream) -> ResetOnDrop {
        ResetOnDrop(Some(tcp))
    }

    /// Takes the connection back, disarmed.
    pub fn into_inner(mut self) -> TcpStream {
        self.0.take().expect("taken once")
    }

    fn get_mut(&mut self) -> &mut TcpStream {
        self.0.as_mut().expect("present until into_inner")
    }
}

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        if let Some(tcp) = self.0.take() {
            let _ = tcp.set_zero_linger();
        }
    }
}

/// Relays until both directions have ended cleanly, or aborts both on the first failure (see
/// the module docs). `counters` sees bytes as they move.
pub async fn relay(
    mut tcp: ResetOnDrop,
    mut rx: RecvStream,
    mut tx: SendStream,
    counters: &Counters,
) -> Result<Totals, RelayError> {
    let _ = tcp.get_mut().set_nodelay(true);
    // Borrowed halves: unlike `into_split`'s owned write half, dropping them sends no FIN,
    // so the guard's RST is the only thing the peer sees on failure.
    let result = {
        let (mut tcp_rx, mut tcp_tx) = tcp.get_mut().split();
        let up = tcp_to_stream(&mut tcp_rx, &mut tx, counters);
        let down = stream_to_tcp(&mut rx, &mut tcp_tx, counters);
        tokio::try_join!(up, down)
    };
    match result {
        Ok((from_tcp, to_tcp)) => {
            drop(tcp.into_inner()); // both directions ended with FINs: a normal close
            Ok(Totals { from_tcp, to_tcp })
        }
        Err(err) => {
            tx.reset(ErrorCode::CANCEL);
            drop(tcp); // RST
            Err(err)
        }
    }
}

async fn tcp_to_stream(
    tcp: &mut ReadHalf<'_>,
    tx: &mut SendStream,
    counters: &Counters,
) -> Result<u64, RelayError> {
    let mut total = 0u64;
    let mut buf = BytesMut::new();
    loop {
        if buf.capacity() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let n = tcp.read_buf(&mut buf).await.map_err(RelayError::Tcp)?;
        if n == 0 {
            tx.finish().map_err(RelayError::Tunnel)?;
            return Ok(total);
        }
        total += n as u64;
        counters.from_tcp.fetch_add(n as u64, Ordering::Relaxed);
        tx.send(buf.split().freeze())
            .await
            .map_err(RelayError::Tunnel)?;
    }
}

async fn stream_to_tcp(
    rx: &mut RecvStream,
    tcp: &mut WriteHalf<'_>,
    counters: &Counters,
) -> Result<u64, RelayError> {
    let mut total = 0u64;
    while let Some(chunk) = rx.recv().await.map_err(RelayError::Tunnel)? {
        tcp.write_all(&chunk).await.map_err(RelayError::Tcp)?;
        total += chunk.len() as u64;
        counters
            .to_tcp
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    tcp.shutdown().await.map_err(RelayError::Tcp)?;
    Ok(total)
}
