//! The half-state transitions of one stream, each a method named for its event and citing
//! the row of spec §6.2 (send half) or §6.3 (receive half) it implements. The core's input
//! and command paths call these instead of assigning states, so every way a half changes
//! state is listed here. (RESET either way, and the session's end, are [`Stream::reset`]
//! and [`Stream::abort`].)

use super::stream::{RecvState, SendState, Stream};
use crate::{
    error::{Error, Side},
    frame::ErrorCode,
};

impl Stream {
    /// §6.2 "Open × application finishes": FIN pending, it goes out with the last buffered
    /// byte. Finishing again is a no-op; an aborted or stopped half says why it can't.
    #[inline]
    pub(crate) fn finish_send(&mut self) -> Result<bool, Error> {
        match &self.send {
            SendState::Open => {
                self.send = SendState::Finishing;
                Ok(true)
            }
            SendState::Aborted(err) => Err(err.clone()),
            SendState::Stopping(code) => Err(Error::StreamStopped { code: *code }),
            SendState::Finishing | SendState::Done => Ok(false),
        }
    }

    /// §6.2 "Open × recv STOP_SENDING(c)": unsent data is discarded, writes fail with
    /// `stopped(c)` and an empty FIN is owed. Returns the bytes discarded, or `None` when the
    /// row is "Finished / Reset × recv STOP_SENDING: ignore".
    #[inline]
    pub(crate) fn peer_stops_sending(&mut self, code: ErrorCode) -> Option<usize> {
        if !matches!(self.send, SendState::Open | SendState::Finishing) {
            return None;
        }
        self.send = SendState::Stopping(code);
        Some(self.send_buf.take().map_or(0, |b| b.len()))
    }

    /// §6.2 "… Finished once FIN written": the frame just built carries our FIN. A FIN owed
    /// to the peer's STOP_SENDING ends the half with the stop as its error.
    #[inline]
    pub(crate) fn fin_written(&mut self) {
        self.send = match self.send {
            SendState::Stopping(code) => SendState::Aborted(Error::StreamStopped { code }),
            _ => SendState::Done,
        };
    }

    /// §6.3 "Open × recv DATA (FIN) → Finished" and "Stopping × recv DATA (FIN) → Finished":
    /// the peer's direction is over. A half we stopped threw bytes away, so its reads keep
    /// failing (it is never a clean end).
    #[inline]
    pub(crate) fn peer_finished(&mut self) {
        self.recv = match self.recv {
            RecvState::Stopped(code) => RecvState::Aborted(Error::StreamReset {
                code,
                by: Side::Local,
            }),
            _ => RecvState::Finished,
        };
    }

    /// §6.3 "Open × application stops reading(c)": STOP_SENDING(c) is owed and arriving bytes
    /// are discarded until the peer's FIN. Returns the unread bytes discarded, or `None` if
    /// the half is not Open (stopping twice, or after the end, does nothing).
    #[inline]
    pub(crate) fn stop_reading(&mut self, code: ErrorCode) -> Option<usize> {
        if !matches!(self.recv, RecvState::Open) {
            return None;
        }
        self.recv = RecvState::Stopped(code);
        self.stop_pending = Some(code);
        Some(self.recv_buf.take().map_or(0, |mut b| b.clear()))
    }
}
