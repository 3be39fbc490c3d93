//! How a session ends: GOAWAY (spec §8.2), close and abandon (§8.3), the transport's end or
//! failure, and the runtime's timeouts; all of them fail the streams left with the reason.

use bytes::Bytes;

use super::Core;
use crate::{
    error::{Error, Side, TimeoutKind},
    frame::{ErrorCode, Frame},
};

impl Core {
    /// Graceful shutdown (spec §8.2): GOAWAY(`code`), no new streams either way, open ones
    /// finish; the session ends when none is left.
    pub fn goaway(&mut self, code: ErrorCode) {
        if self.goaway_sent.is_some() || self.error.is_some() {
            return;
        }
        self.goaway_sent = Some(code);
        self.goaway_out = Some(Frame::GoAway {
            last_stream: self.goaway_last_stream(),
            code,
            debug: Bytes::new(),
        });
        self.open_waiters.drain_into(&mut self.wake);
        self.accept_waiters.drain_into(&mut self.wake);
        self.check_drained();
    }

    /// The last_stream_id for a GOAWAY: the last id the peer opened, but never above an
    /// earlier GOAWAY's (SYNs refused after our first GOAWAY still raise it, spec §5.2, §8.2).
    fn goaway_last_stream(&mut self) -> u32 {
        let last = match self.goaway_last {
            Some(last) => last.min(self.ids.last_peer()),
            None => self.ids.last_peer(),
        };
        self.goaway_last = Some(last);
        last
    }

    /// Immediate close (spec §8.3): GOAWAY, every stream fails, the transport closes once
    /// the GOAWAY is written.
    pub fn close(&mut self) {
        let code = self.closing_code();
        self.fail(
            Error::SessionClosed {
                code,
                by: Side::Local,
                reason: None,
            },
            Some((code, "")),
        );
    }

    /// The runtime is giving up on the session without the peer's doing (its driver was
    /// dropped): like [`Core::close`], a GOAWAY (NO_ERROR if no stream is open, else CANCEL,
    /// spec §8.3) for whatever can still be written, but every stream and waiter fails with
    /// `err`, which says what happened.
    pub fn abandon(&mut self, err: std::io::Error) {
        let code = self.closing_code();
        self.fail(Error::io(err), Some((code, "session abandoned")));
    }

    /// The GOAWAY code of a close we choose (spec §8.3): NO_ERROR if no stream is open, else
    /// CANCEL (streams are cut off).
    fn closing_code(&self) -> ErrorCode {
        if self.inbound_live + self.outbound_live == 0 {
            ErrorCode::NO_ERROR
        } else {
            ErrorCode::CANCEL
        }
    }

    /// Ends the session with `err`: GOAWAY(`goaway.0`) if given, every stream and waiter
    /// fails with `err`.
    pub(crate) fn fail(&mut self, err: Error, goaway: Option<(ErrorCode, &'static str)>) {
        if self.error.is_some() {
            return;
        }
        if let Some((code, reason)) = goaway {
            if self.goaway_sent.is_none() || code != ErrorCode::NO_ERROR {
                self.goaway_out = Some(Frame::GoAway {
                    last_stream: self.goaway_last_stream(),
                    code,
                    debug: Bytes::from_static(reason.as_bytes()),
                });
            }
            self.goaway_sent = Some(code);
        }
        self.error = Some(err.clone());
        if let Some(share) = &mut self.budget {
            share.release_all(); // nothing more arrives (§7.6)
        }
        let mut dropped = 0;
        let mut open_slots = 0;
        let by = err.caused_by().unwrap_or(Side::Local);
        for stream in self.streams.values_mut() {
            let released = stream.abort(&err, by, &mut self.wake);
            // The backlog is cleared below: nothing can accept these streams any more, so
            // they are freed with the rest.
            stream.in_backlog = false;
            dropped += released.unread;
            open_slots += u32::from(released.open_slot);
        }
        self.recv_buffered -= dropped;
        self.unacked_opens -= open_slots;
        self.send_buffered = 0; // `abort` dropped every send buffer
        self.backlog.clear();
        self.send_queue.clear();
        self.update_queue.clear();
        self.control.clear();
        self.forced_replies = 0;
        self.pong = None;
        self.ping.to_send = None;
        self.open_waiters.drain_into(&mut self.wake);
        self.accept_waiters.drain_into(&mut self.wake);
        self.ping.waiters.drain_into(&mut self.wake);
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            self.after_change(id);
        }
    }

    /// The peer ended the transport (EOF). `mid_frame`: it stopped inside a frame.
    pub(crate) fn transport_closed(&mut self, mid_frame: bool) {
        if self.error.is_some() {
            return;
        }
        let graceful =
            !mid_frame && self.goaway_recv.is_some() && self.inbound_live + self.outbound_live == 0;
        let err = if graceful {
            let (_, code) = self.goaway_recv.expect("checked");
            Error::SessionClosed {
                code,
                by: Side::Remote,
                reason: None,
            }
        } else {
            let what = if mid_frame {
                "transport closed in the middle of a frame"
            } else {
                "transport closed by peer without GOAWAY"
            };
            Error::io(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, what))
        };
        self.fail(err, None);
    }

    /// The transport failed.
    pub fn transport_failed(&mut self, err: std::io::Error) {
        self.fail(Error::io(err), None);
    }

    /// A timer of the runtime's (write timeout) expired.
    pub fn timed_out(&mut self, kind: TimeoutKind) {
        // After a write timeout the transport takes nothing: no GOAWAY to queue behind it.
        let goaway = (kind != TimeoutKind::Write).then_some((ErrorCode::TIMEOUT, "timeout"));
        self.fail(Error::Timeout(kind), goaway);
    }
}
