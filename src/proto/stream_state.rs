//! The public view of a stream's state in the spec's names (spec §6.2, §6.3): [`SendHalf`]
//! and [`RecvHalf`], read from the core's own `SendState`/`RecvState` (`stream.rs`), which use the
//! same names and carry what each state needs. The view drops that data (buffers, the owed
//! FIN's code, the error) and applies one rule the core's record keeps apart: a RESET moves
//! both halves to Reset. Read-only; the state-table test (`tests/stream_states.rs`) checks
//! every (state × event) row against it.

use super::{
    core::Core,
    stream::{Fin, RecvState, SendState, Stream},
};
use crate::error::{Error, Side, TimeoutKind};

/// A stream's send half, named as in spec §6.2.
///
/// ```text
///             opener: SYN written            finish, or recv STOP_SENDING:
///             acceptor: accept (ACK)         the FIN is written
///   Idle ─────────────────────────► Open ──────────────────────────────► Finished
///    │ ▲                             │  Open { fin_pending: true } while     │
///    │ │ acceptor: recv STOP_SENDING │  the FIN waits (data, credit, turn)   │
///    │ └─ recorded; at accept the    │                                       │
///    │    FIN rides on the ACK       │                                       │
///    │  (FIN on the SYN / ACK: Idle ─┼── straight to Finished) ──────────────┤
///    │                               │                                       │
///    │ RESET sent or received        │ RESET sent or received,               │ RESET sent or
///    │ (acceptor: peer's RESET       │ session closes                        │ received
///    ▼  frees it, a tombstone)       ▼                                       ▼
///   Reset ◄──────────────────────────┴───────────────────────────────────────┘
/// ```
///
/// A Finished half stays Finished when the session closes (terminal; the core keeps the
/// FIN-written state, see the state-table test's note on §6.2 "any × session closes"). An
/// opener's Idle half reset before its SYN is written sends no RESET: the id never reached
/// the wire (§5.1, §5.2).
///
/// Rows (spec §6.2): Idle (opener) × application opens → Open / Finished; Idle (acceptor) ×
/// application accepts → Open / Finished; Idle (acceptor) × recv STOP_SENDING → Idle; Idle /
/// Open × recv WINDOW_UPDATE → same; Finished / Reset × recv WINDOW_UPDATE → same (ignored);
/// Open × application writes → Open; Open × application finishes → Finished once FIN written;
/// Open × recv STOP_SENDING → Finished once that FIN is written; Finished × recv STOP_SENDING
/// → Finished; Idle / Open / Finished × application resets or recv RESET → Reset (both
/// halves); any × session closes → Reset; Reset × any frame → Reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendHalf {
    /// Nothing sent yet: an opened stream whose SYN is not on the wire, or an inbound stream
    /// the application has not accepted (a STOP_SENDING received meanwhile is recorded and
    /// the FIN rides on the ACK at accept).
    Idle,
    /// DATA may be sent (from the accept on, for an inbound stream, even while its ACK is
    /// held for up to `ACK_DELAY` to ride on the first reply, §6.1). `fin_pending`: the
    /// application finished, or the peer's
    /// STOP_SENDING arrived, and the FIN is not written yet (it waits behind buffered data
    /// and credit, or for its turn on the wire).
    Open {
        /// FIN decided but not yet written.
        fin_pending: bool,
    },
    /// FIN written (terminal). Also after the empty DATA+FIN answering a STOP_SENDING.
    Finished,
    /// RESET sent or received, or the session ended first (terminal).
    Reset,
}

/// A stream's receive half, named as in spec §6.3.
///
/// ```text
///   (opener)  SYN sent         DATA+ACK              DATA+FIN
///   Idle ───────────► Opening ─────────► Open ──────────────────────────► Finished
///                       │                  │ stop reading: STOP_SENDING        ▲
///                       │ stop reading     ▼                                   │
///                       │            Stopping{acked: true} ── DATA+FIN ────────┤
///                       ▼                  ▲                                   │
///               Stopping{acked: false} ────┘ DATA+ACK (payload discarded)      │
///                       └──────────────────── DATA+ACK+FIN ────────────────────┘
///   (acceptor) recv DATA+SYN ──► Open (or Finished if FIN)
///
///   Idle / Opening / Open / Stopping / Finished ── RESET either way ──► Reset{by}
///   Opening / Stopping{acked: false} ── open timeout: RESET(TIMEOUT) ──► Reset{by: Local}
///   any but Finished ── session closes ──► Reset{by}   (Finished stays Finished)
/// ```
///
/// Rows (spec §6.3): Idle (opener) × SYN sent; — (acceptor) × recv DATA+SYN; Opening × recv
/// DATA with ACK / without ACK, WINDOW_UPDATE, STOP_SENDING / open timeout / stop reading;
/// Stopping (ACK not yet received) × recv DATA with ACK / without ACK etc. / open timeout;
/// Open / Stopping (ACK received) × repeat ACK; Open × recv DATA / reads / stop reading;
/// Stopping (ACK received, or acceptor) × recv DATA; Finished × recv DATA; any live state ×
/// recv RESET; Opening / Open / Stopping / Finished × application resets; Reset (by us /
/// by peer) × recv DATA; any × session closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvHalf {
    /// An opened stream whose SYN is not on the wire yet.
    Idle,
    /// Our SYN is on the wire, the peer's ACK has not arrived.
    Opening,
    /// DATA is accepted and buffered for the application.
    Open,
    /// We sent (or queued) STOP_SENDING: DATA is discarded until the peer's FIN.
    /// `acked`: the open is confirmed — always `true` on a stream the peer opened (the
    /// spec's "Stopping (ACK received, or acceptor)").
    Stopping {
        /// The peer's ACK arrived (or the peer opened the stream).
        acked: bool,
    },
    /// The peer's FIN arrived (terminal; buffered data stays readable). Also a Stopping half
    /// whose FIN arrived: the discarded bytes make its reads fail, but the direction ended
    /// with the peer's FIN.
    Finished,
    /// Reset (terminal). `by`: who sent the RESET (an open or linger timeout is ours; a
    /// refusal is the peer's RESET; a stream failed by the peer's GOAWAY counts as ours, as
    /// in §6.6). When the session ended, the side that ended it (`Error::caused_by`, else
    /// `Local`).
    Reset {
        /// Who reset the stream (or ended the session).
        by: Side,
    },
}

/// Whether an abort error is a stream's RESET (either way, an open or linger timeout, a
/// refusal), which moves both halves to Reset (spec §6.3), rather than the session's end,
/// which leaves a Finished half Finished.
fn is_stream_reset(err: &Error) -> bool {
    matches!(
        err,
        Error::StreamReset { .. }
            | Error::StreamRefused { .. }
            | Error::Timeout(TimeoutKind::Open | TimeoutKind::Linger)
    )
}

impl Stream {
    /// Who reset the stream, if a RESET went either way (or an open or linger timeout, or a
    /// refusal): spec §6.3 moves both halves to Reset, though a half that had already ended
    /// (FIN written, or the peer's FIN after we stopped reading) keeps its own record in the
    /// core, so that what the application saw of it stays true.
    fn reset_by(&self) -> Option<Side> {
        match (&self.send, &self.recv) {
            (SendState::Reset { err, by }, _) | (_, RecvState::Reset { err, by })
                if is_stream_reset(err) =>
            {
                Some(*by)
            }
            _ => None,
        }
    }

    /// The send half as spec §6.2 names it.
    pub(crate) fn send_half(&self) -> SendHalf {
        if self.reset_by().is_some() {
            return SendHalf::Reset;
        }
        match &self.send {
            SendState::Idle { .. } => SendHalf::Idle,
            SendState::Open { fin, .. } => SendHalf::Open {
                fin_pending: *fin != Fin::No,
            },
            SendState::Finished { .. } => SendHalf::Finished,
            SendState::Reset { .. } => SendHalf::Reset,
        }
    }

    /// The receive half as spec §6.3 names it.
    pub(crate) fn recv_half(&self) -> RecvHalf {
        if let Some(by) = self.reset_by() {
            return RecvHalf::Reset { by };
        }
        match &self.recv {
            RecvState::Idle => RecvHalf::Idle,
            RecvState::Opening => RecvHalf::Opening,
            RecvState::Open => RecvHalf::Open,
            RecvState::Stopping { acked, .. } => RecvHalf::Stopping { acked: *acked },
            RecvState::Finished { .. } => RecvHalf::Finished,
            RecvState::Reset { by, .. } => RecvHalf::Reset { by: *by },
        }
    }
}

impl Core {
    /// Stream `id`'s state as the spec's tables name it: (send half §6.2, receive half
    /// §6.3). `None` for an id the core does not track: never opened, refused at the SYN,
    /// or closed with every handle released (the recently-closed memory, §6.6, keeps only
    /// whether late DATA is an error, not the states). A closed stream whose handles are
    /// still held is reported with its terminal states.
    pub fn stream_state(&self, id: u32) -> Option<(SendHalf, RecvHalf)> {
        let stream = self.streams.get(&id)?;
        Some((stream.send_half(), stream.recv_half()))
    }
}
