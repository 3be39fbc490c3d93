//! The spec's names for a stream's state (spec §6.2, §6.3), derived from the core's own
//! representation ([`Stream`]'s `SendState`/`RecvState` plus its flags and the session's
//! recently-closed memory). Read-only: nothing here changes a stream; it is the view the
//! state-table test (`tests/stream_states.rs`) checks every (state × event) row against.

use super::{
    closed::LateData,
    core::Core,
    stream::{RecvState, SendState, Stream},
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

/// What an abort error says about how a half ended.
enum Ended {
    /// The empty FIN answering the peer's STOP_SENDING was written (send half only).
    StopFin,
    /// A RESET went one way or the other (both halves Reset, spec §6.3).
    Reset(Side),
    /// The session ended under the stream.
    Session(Side),
}

fn ended(err: &Error, late: Option<LateData>) -> Ended {
    match err {
        Error::StreamStopped { .. } => Ended::StopFin,
        Error::StreamReset { by, .. } => Ended::Reset(*by),
        Error::Timeout(TimeoutKind::Open | TimeoutKind::Linger) => Ended::Reset(Side::Local),
        // A refusal is the peer's RESET (which marks the id as ended by the peer); without
        // that mark the peer's GOAWAY failed the stream, which §6.6 counts as ours.
        Error::StreamRefused { .. } if late == Some(LateData::Error) => Ended::Reset(Side::Remote),
        Error::StreamRefused { .. } => Ended::Reset(Side::Local),
        other => Ended::Session(other.caused_by().unwrap_or(Side::Local)),
    }
}

impl Stream {
    /// Who reset this stream, if a RESET went either way: a RESET moves both halves to
    /// Reset (spec §6.3), though the representation leaves a half that had already ended
    /// cleanly (`SendState::Done`, `RecvState::Finished`) untouched or marks only the half
    /// that was still live.
    ///
    /// Ambiguity of the representation: a receive half that we stopped and whose FIN then
    /// arrived is `Aborted(StreamReset { by: Local })`, like one we reset. They are told
    /// apart by the recently-closed bit (`late`): the FIN marks the id as ended by the peer,
    /// our RESET as ours. Should the peer's RESET cross ours, the bit says "peer" too, and a
    /// stream whose send half had already finished is then reported Finished/Finished; and
    /// once the memory has evicted the id (§11 L18) a stopped-then-FIN half still held by a
    /// handle is reported Reset (by us).
    fn reset_by(&self, late: Option<LateData>) -> Option<Side> {
        if let SendState::Aborted(err) = &self.send {
            if let Ended::Reset(by) = ended(err, late) {
                return Some(by);
            }
        }
        if let RecvState::Aborted(err) = &self.recv {
            match ended(err, late) {
                Ended::Reset(Side::Local)
                    if matches!(err, Error::StreamReset { .. })
                        && late == Some(LateData::Error) =>
                {
                    return None; // stopped, then the peer's FIN (see above)
                }
                Ended::Reset(by) => return Some(by),
                _ => {}
            }
        }
        None
    }

    /// The send half as spec §6.2 names it. `local`: we opened the stream; `late`: what the
    /// session's recently-closed memory says about the id ([`Core`] passes it).
    pub(crate) fn send_half(&self, local: bool, late: Option<LateData>) -> SendHalf {
        if self.reset_by(late).is_some() {
            return SendHalf::Reset;
        }
        match &self.send {
            SendState::Aborted(err) => match ended(err, late) {
                Ended::StopFin => SendHalf::Finished,
                Ended::Reset(_) | Ended::Session(_) => SendHalf::Reset,
            },
            SendState::Done => SendHalf::Finished,
            // Nothing on the wire yet: our SYN, or (inbound) the ACK before the accept.
            _ if local && self.syn_pending => SendHalf::Idle,
            _ if !local && !self.accepted => SendHalf::Idle,
            SendState::Open => SendHalf::Open { fin_pending: false },
            SendState::Finishing | SendState::Stopping(_) => SendHalf::Open { fin_pending: true },
        }
    }

    /// The receive half as spec §6.3 names it; arguments as for [`Stream::send_half`].
    pub(crate) fn recv_half(&self, local: bool, late: Option<LateData>) -> RecvHalf {
        if let Some(by) = self.reset_by(late) {
            return RecvHalf::Reset { by };
        }
        match &self.recv {
            RecvState::Aborted(err) => match ended(err, late) {
                Ended::Session(by) => RecvHalf::Reset { by },
                // Only the stopped-then-FIN case reaches here (`reset_by` took the rest).
                Ended::Reset(_) | Ended::StopFin => RecvHalf::Finished,
            },
            RecvState::Finished => RecvHalf::Finished,
            _ if local && self.syn_pending => RecvHalf::Idle,
            RecvState::Open if local && !self.acked => RecvHalf::Opening,
            RecvState::Open => RecvHalf::Open,
            RecvState::Stopped(_) => RecvHalf::Stopping {
                acked: !local || self.acked,
            },
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
        let local = self.is_local_id(id);
        let late = self.closed.get(id);
        Some((stream.send_half(local, late), stream.recv_half(local, late)))
    }
}
