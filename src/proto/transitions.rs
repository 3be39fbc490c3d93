//! The half-state transitions of one stream, each a method named for its event and citing
//! the row of spec §6.2 (send half) or §6.3 (receive half) it implements. The core's input
//! and command paths call these instead of assigning states, so every way a half changes
//! state is listed here, except the RESET rows and the session's end, which are
//! [`Stream::reset`] and [`Stream::abort`] beside the states.
//!
//! A transition the current state does not take returns an error: [`Ignored`] where the
//! spec's row (named in the method's doc) ignores the event, the violation's reason where it
//! makes the event a session error, the application's error where it fails a command.

use super::stream::{AckDue, Fin, RecvState, SendState, Stream};
use crate::{error::Error, frame::Flags};

/// The event changes nothing in this state: the spec's row for it says to ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ignored;

impl Stream {
    /// §6.2 "Open × application finishes": FIN pending, it goes out with the last buffered
    /// byte. `Ok(false)`: finished already, nothing changes. An aborted or stopped half says
    /// why it can't.
    #[inline]
    pub(crate) fn finish_send(&mut self) -> Result<bool, Error> {
        match &mut self.send {
            SendState::Idle { fin, .. } | SendState::Open { fin, .. } => match *fin {
                Fin::No => {
                    *fin = Fin::Finish;
                    Ok(true)
                }
                Fin::Finish => Ok(false),
                Fin::Stop(code) => Err(Error::StreamStopped { code }),
            },
            SendState::Finished {
                stopped: Some(code),
            } => Err(Error::StreamStopped { code: *code }),
            SendState::Finished { stopped: None } => Ok(false),
            SendState::Reset { err, .. } => Err(err.clone()),
        }
    }

    /// §6.2 "Open × recv STOP_SENDING(c)" (and "Idle (acceptor) × recv STOP_SENDING(c)",
    /// recorded \[C\]): unsent data is discarded, writes fail with `stopped(c)` and an empty
    /// FIN is owed. Returns the bytes discarded. Ignored once that FIN is owed already, and
    /// by "Finished × recv STOP_SENDING" and "Reset × any frame".
    #[inline]
    pub(crate) fn peer_stops_sending(
        &mut self,
        code: crate::frame::ErrorCode,
    ) -> Result<usize, Ignored> {
        match &mut self.send {
            SendState::Idle { fin, .. } | SendState::Open { fin, .. }
                if !matches!(fin, Fin::Stop(_)) =>
            {
                *fin = Fin::Stop(code);
                Ok(self.send_buf.take().map_or(0, |b| b.len()))
            }
            _ => Err(Ignored),
        }
    }

    /// §6.2 "Idle (acceptor) × application accepts": the ACK is due, held for up to
    /// `ACK_DELAY` to ride on the first reply (§6.1); a recorded STOP_SENDING's FIN rides on
    /// it. Ignored if the half is no longer Idle: reset while it waited ("any × session
    /// closes", or the application's reset through [`super::Core::reset`]).
    #[inline]
    pub(crate) fn accept(&mut self) -> Result<(), Ignored> {
        match self.send {
            SendState::Idle { opener: false, fin } => {
                self.send = SendState::Open {
                    fin,
                    ack: AckDue::Held,
                };
                Ok(())
            }
            _ => Err(Ignored),
        }
    }

    /// §6.1: the ACK hold ran out, the ACK goes out alone ("promptly"). Ignored once the
    /// ACK is written (it rode on the stream's first frame) or the stream was reset.
    #[inline]
    pub(crate) fn ack_hold_expired(&mut self) -> Result<(), Ignored> {
        match &mut self.send {
            SendState::Open { ack, .. } if *ack == AckDue::Held => {
                *ack = AckDue::Now;
                Ok(())
            }
            _ => Err(Ignored),
        }
    }

    /// The flags the stream's next frame must carry to open it (spec §6.1), and the moves
    /// that writing them makes: §6.2 "Idle (opener) × application opens" → Open (SYN
    /// written) with §6.3 "Idle (opener) × SYN sent" → Opening; the acceptor's ACK is out.
    #[inline]
    pub(crate) fn take_open_flags(&mut self) -> Flags {
        match &mut self.send {
            SendState::Idle { opener: true, fin } => {
                self.send = SendState::Open {
                    fin: *fin,
                    ack: AckDue::No,
                };
                if matches!(self.recv, RecvState::Idle) {
                    self.recv = RecvState::Opening;
                }
                Flags::SYN
            }
            SendState::Open { ack, .. } if *ack != AckDue::No => {
                *ack = AckDue::No;
                Flags::ACK
            }
            _ => Flags::NONE,
        }
    }

    /// §6.2 "… Finished once FIN written": the frame just built carries our FIN. A FIN owed
    /// to the peer's STOP_SENDING keeps the stop as the error later writes get.
    #[inline]
    pub(crate) fn fin_written(&mut self) {
        let stopped = match self.fin() {
            Some(Fin::Stop(code)) => Some(code),
            _ => None,
        };
        self.send = SendState::Finished { stopped };
    }

    /// §6.3 "Opening × recv DATA with ACK" → Open, "Stopping (ACK not yet received) × recv
    /// DATA with ACK" → Stopping: the open is confirmed. Any other state: "Open / Stopping
    /// (ACK received) × recv DATA with ACK (repeat ACK, or ACK on a peer-opened stream)" is
    /// the peer's violation, and the error is its reason (session PROTOCOL_ERROR).
    #[inline]
    pub(crate) fn peer_acks(&mut self) -> Result<(), &'static str> {
        match self.recv {
            RecvState::Opening => self.recv = RecvState::Open,
            RecvState::Stopping { code, acked: false } => {
                self.recv = RecvState::Stopping { code, acked: true }
            }
            _ => return Err("unexpected ACK"),
        }
        Ok(())
    }

    /// §6.3 "Open × recv DATA (FIN) → Finished" and "Stopping × recv DATA (FIN) → Finished":
    /// the peer's direction is over. A half we stopped threw bytes away, so its reads keep
    /// failing (it is never a clean end).
    #[inline]
    pub(crate) fn peer_finished(&mut self) {
        let stopped = match self.recv {
            RecvState::Stopping { code, .. } => Some(code),
            _ => None,
        };
        self.recv = RecvState::Finished { stopped };
    }

    /// §6.3 "Open × application stops reading(c)" (and "Opening × …", which keeps waiting
    /// for the ACK): STOP_SENDING(c) is owed and arriving bytes are discarded until the
    /// peer's FIN. Returns the unread bytes discarded. Ignored once Stopping, Finished or
    /// Reset: nothing is left to stop.
    #[inline]
    pub(crate) fn stop_reading(&mut self, code: crate::frame::ErrorCode) -> Result<usize, Ignored> {
        let acked = match self.recv {
            RecvState::Open => true,
            RecvState::Idle | RecvState::Opening => false,
            _ => return Err(Ignored),
        };
        self.recv = RecvState::Stopping { code, acked };
        Ok(self.recv_buf.take().map_or(0, |mut b| b.clear()))
    }
}
