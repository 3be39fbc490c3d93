//! One forwarded connection, from either end of the tunnel.
//!
//! * The **opening** end accepted a TCP connection: it opens a stream, sends an open request
//!   naming the target, waits for the status byte, then relays ([`open`] + [`relay_opened`]).
//! * The **dialing** end accepted that stream: it dials the target, answers with a status
//!   byte, then relays ([`answer_connect`]).
//!
//! The client opens streams for `--forward` rules and the server dials; for `--reverse`
//! rules the roles swap.

use std::{fmt, io, time::Duration};

use braid::{RecvStream, SendStream, Session};
use bytes::Bytes;
use tokio::{net::TcpStream, time::timeout};

use super::{
    metrics::Counters,
    relay::{relay, RelayError, ResetOnDrop, Totals},
    wire::{self, OpenRequest, Status},
};

/// How long the opening end waits for the status byte (the dialing end bounds its own
/// connect attempt well below this).
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a forwarded connection failed.
#[derive(Debug)]
pub enum ForwardError {
    /// The stream could not be opened, or the tunnel failed before the status arrived.
    Tunnel(io::Error),
    /// The request was answered with a non-OK status.
    Refused(Status),
    /// The peer never answered.
    NoAnswer,
    /// Relaying failed after the connection was set up.
    Relay(RelayError),
}

impl fmt::Display for ForwardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardError::Tunnel(e) => write!(f, "tunnel: {e}"),
            ForwardError::Refused(status) => write!(f, "refused: {status}"),
            ForwardError::NoAnswer => f.write_str("peer did not answer the open request"),
            ForwardError::Relay(e) => write!(f, "relay: {e}"),
        }
    }
}

impl std::error::Error for ForwardError {}

impl ForwardError {
    /// True when nothing was delivered to the target and the request can go to a new session:
    /// the session was closing, or the peer refused the stream (spec: `StreamRefused`).
    pub fn retryable(&self) -> bool {
        let ForwardError::Tunnel(e) = self else {
            return false;
        };
        matches!(
            braid::Error::from_io(e),
            Some(
                braid::Error::StreamRefused { .. }
                    | braid::Error::GoingAway { .. }
                    | braid::Error::SessionClosed { .. }
            )
        )
    }
}

/// A stream whose open request was accepted: relay with [`relay_opened`].
#[derive(Debug)]
pub struct Opened {
    rx: RecvStream,
    tx: SendStream,
}

/// Opens a stream on `session` asking the peer to dial `target`, and waits for its answer.
pub async fn open(session: &Session, target: &str) -> Result<Opened, ForwardError> {
    let request = OpenRequest::connect(target)
        .encode()
        .map_err(ForwardError::Tunnel)?;
    let stream = session
        .open()
        .await
        .map_err(|e| ForwardError::Tunnel(e.into()))?;
    let (mut rx, mut tx) = stream.into_split();
    tx.send(Bytes::from(request))
        .await
        .map_err(|e| ForwardError::Tunnel(e.into()))?;
    match timeout(STATUS_TIMEOUT, wire::read_status(&mut rx)).await {
        Err(_) => Err(ForwardError::NoAnswer),
        Ok(Err(e)) => Err(ForwardError::Tunnel(e)),
        Ok(Ok(Status::Ok)) => Ok(Opened { rx, tx }),
        Ok(Ok(status)) => Err(ForwardError::Refused(status)),
    }
}

/// Relays an accepted connection over an opened stream.
pub async fn relay_opened(
    tcp: ResetOnDrop,
    opened: Opened,
    counters: &Counters,
) -> Result<Totals, ForwardError> {
    relay(tcp, opened.rx, opened.tx, counters)
        .await
        .map_err(ForwardError::Relay)
}

/// What the dialing end decided to dial for a request.
pub type Target = Result<String, Status>;

/// Answers a Connect request whose header was already read: dials `target` (or refuses with
/// its status), sends the status byte, and relays.
pub async fn answer_connect(
    rx: RecvStream,
    mut tx: SendStream,
    target: Target,
    connect_timeout: Duration,
    counters: &Counters,
) -> Result<Totals, ForwardError> {
    let dialed = match target {
        Err(status) => Err(status),
        Ok(addr) => match timeout(connect_timeout, TcpStream::connect(&addr)).await {
            Ok(Ok(tcp)) => Ok(ResetOnDrop::new(tcp)),
            Ok(Err(e)) => {
                tracing::debug!(target_addr = %addr, error = %e, "dial failed");
                Err(Status::Unreachable)
            }
            Err(_) => Err(Status::TimedOut),
        },
    };
    let status = dialed.as_ref().err().copied().unwrap_or(Status::Ok);
    let sent = tx.send(Bytes::copy_from_slice(&[status.to_byte()])).await;
    let tcp = match dialed {
        Err(status) => {
            let _ = tx.finish();
            drop(rx); // STOP_SENDING: whatever the opener pipelined is discarded
            return Err(ForwardError::Refused(status));
        }
        Ok(tcp) => tcp,
    };
    sent.map_err(|e| ForwardError::Tunnel(e.into()))?;
    relay(tcp, rx, tx, counters)
        .await
        .map_err(ForwardError::Relay)
}
