//! Frames from the peer: the preface (spec §2), header vetting before payload (spec §10), and
//! each frame type's rules (spec §4–§8). Every violation ends the session through
//! `protocol_error` with the code spec §10 names; nothing here panics on peer input.

use std::time::Instant;

use bytes::Bytes;

use super::{
    closed::LateData,
    core::Core,
    stats::{TOO_MANY_EMPTY_FRAMES, TOO_MANY_LOCAL_RESETS, TOO_MANY_UNACCEPTED_RESETS},
    stream::{RecvState, Stream},
};
use crate::{
    error::{Error, Side},
    frame::{ErrorCode, Flags, Frame, FrameType, Header, Preface, PrefaceError, PREFACE_LEN},
};

impl Core {
    /// Whether the core takes more input now. `false` while a reply the peer forced (PONG,
    /// a refusal RESET) is unsent — the single-slot rule of spec §8.1 / §11 — or once the
    /// session has ended. The runtime stops reading the transport meanwhile.
    pub fn can_receive(&self) -> bool {
        self.error.is_none() && self.pong.is_none() && self.forced_replies == 0
    }

    /// Whether the peer's preface has arrived.
    pub fn handshake_done(&self) -> bool {
        self.peer.is_some()
    }

    /// The peer's 32 preface bytes (spec §2). A bad preface ends the session.
    pub(crate) fn handle_preface(&mut self, bytes: &[u8; PREFACE_LEN]) -> Result<(), Error> {
        match Preface::decode(bytes) {
            Ok(peer) => {
                self.peer = Some(peer);
                self.min_chunk =
                    super::window::update_threshold(peer.initial_stream_window).min(4096);
                self.session_send_credit =
                    super::Credit::new(peer.session_window).unwrap_or_default();
                self.open_waiters.drain_into(&mut self.wake);
                Ok(())
            }
            Err(err) => self.bad_preface(err),
        }
    }

    /// The first bytes of the peer's preface, fewer than [`PREFACE_LEN`] (spec §2): the magic
    /// is judged byte by byte as it arrives and the version once both its bytes are in, so a
    /// peer that is not braid (or speaks another version) is refused at once, not at the
    /// preface timeout (§10 V1, V2 before V4). A wrong prefix ends the session like a bad
    /// preface; `Ok` while the bytes can still begin a valid one.
    pub(crate) fn handle_preface_prefix(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        match Preface::check_prefix(bytes) {
            Ok(()) => Ok(()),
            Err(err) => self.bad_preface(err),
        }
    }

    fn bad_preface(&mut self, err: PrefaceError) -> Result<(), Error> {
        let reason = match err {
            PrefaceError::BadMagic => "bad preface magic: peer does not speak braid",
            PrefaceError::Version(_) => "unsupported protocol version",
            PrefaceError::Setting(s) => s,
        };
        self.protocol_error(err.code(), reason);
        Err(self.error.clone().expect("just failed"))
    }

    /// Vets a header before its payload is read (spec §10): flow-control limits are judged
    /// from the length field alone, so a peer can't make us buffer what we would refuse.
    pub(crate) fn check_header(&mut self, header: &Header) -> Result<(), Error> {
        if header.kind != FrameType::Data || self.error.is_some() {
            return Ok(());
        }
        if header.len > self.session_recv.peer_credit() {
            return self.reject(
                ErrorCode::FLOW_CONTROL_ERROR,
                "data beyond the session window",
            );
        }
        if header.flags.contains(Flags::SYN) {
            if header.len > self.config.initial_stream_window {
                return self.reject(
                    ErrorCode::FLOW_CONTROL_ERROR,
                    "SYN carries more than the initial stream window",
                );
            }
        } else if let Some(stream) = self.streams.get(&header.stream) {
            if stream.recv_windowed() && header.len > stream.recv_window.peer_credit() {
                return self.reject(
                    ErrorCode::FLOW_CONTROL_ERROR,
                    "data beyond the stream window",
                );
            }
        }
        Ok(())
    }

    fn reject(&mut self, code: ErrorCode, reason: &'static str) -> Result<(), Error> {
        self.protocol_error(code, reason);
        Err(self.error.clone().expect("just failed"))
    }

    /// Ends the session for a peer's violation: GOAWAY(`code`) and a [`Error::Protocol`].
    pub(crate) fn protocol_error(&mut self, code: ErrorCode, reason: &'static str) {
        self.fail(Error::Protocol { code, reason }, Some((code, reason)));
    }

    /// A frame that failed to decode (spec §10).
    pub(crate) fn handle_decode_error(&mut self, err: crate::frame::FrameError) {
        self.protocol_error(err.code, err.reason);
    }

    /// Applies one frame from the peer.
    pub(crate) fn handle_frame(&mut self, now: Instant, frame: Frame) {
        if self.error.is_some() {
            return;
        }
        if self.peer.is_none() {
            return self.protocol_error(ErrorCode::PROTOCOL_ERROR, "frame before preface");
        }
        self.frames_received += 1;
        // No frame may name one of our streams before its SYN is on the wire (spec §5.2): the
        // peer cannot know the id, and an ACK or RESET would let frames of it (a WINDOW_UPDATE,
        // a STOP_SENDING) overtake its SYN or put SYNs out of order.
        let id = frame.stream_id();
        // (The parity test first: it spares the table lookup for the peer's streams and 0.)
        if self.is_local_id(id) && self.streams.get(&id).is_some_and(|s| s.syn_pending()) {
            return self
                .protocol_error(ErrorCode::PROTOCOL_ERROR, "frame on a never-opened stream");
        }
        match frame {
            Frame::Data {
                stream,
                flags,
                payload,
            } => self.on_data(now, stream, flags, payload),
            Frame::WindowUpdate { stream, increment } => self.on_window_update(stream, increment),
            Frame::Ping { ack: false, opaque } => self.pong = Some(opaque),
            Frame::Ping { ack: true, opaque } => self.on_pong(now, opaque),
            Frame::GoAway {
                last_stream,
                code,
                debug,
            } => self.on_goaway(last_stream, code, debug),
            Frame::Reset { stream, code } => self.on_reset(stream, code),
            Frame::StopSending { stream, code } => self.on_stop_sending(stream, code),
        }
    }

    fn count_empty_frame(&mut self) {
        self.empty_frames += 1;
        if self.empty_frames > self.config.max_empty_frames {
            self.protocol_error(ErrorCode::ENHANCE_YOUR_CALM, TOO_MANY_EMPTY_FRAMES);
        }
    }

    /// A frame for an id not in the table: never opened (error), or closed (spec §5).
    /// Returns `true` when the frame is to be discarded quietly.
    fn unknown_stream(&mut self, id: u32, is_data: bool) -> bool {
        if self.ids.never_opened(id) {
            self.protocol_error(ErrorCode::PROTOCOL_ERROR, "frame on a never-opened stream");
            return false;
        }
        if is_data && self.closed.get(id) == Some(LateData::Error) {
            self.protocol_error(
                ErrorCode::STREAM_CLOSED,
                "data after the peer ended the stream",
            );
            return false;
        }
        true
    }

    fn on_data(&mut self, now: Instant, id: u32, flags: Flags, payload: Bytes) {
        let len = payload.len() as u32;
        if self.session_recv.receive(len).is_err() {
            return self.protocol_error(
                ErrorCode::FLOW_CONTROL_ERROR,
                "data beyond the session window",
            );
        }
        self.bytes_received += len as u64;
        if len > 0 {
            self.data_activity.note(id, now);
        }
        if flags.contains(Flags::SYN) {
            return self.on_syn(now, id, flags, payload);
        }
        if len == 0 && flags == Flags::NONE {
            self.count_empty_frame();
            if self.error.is_some() {
                return;
            }
        }
        let Some(stream) = self.streams.get_mut(&id) else {
            if self.unknown_stream(id, true) {
                self.bytes_consumed(len as usize);
            }
            return;
        };
        // DATA on a stream we reset is discarded unexamined (spec §6.3, §6.6): an ACK that
        // crossed our RESET (app reset, open timeout) is no error.
        let ended_by_us = stream.recv_ended_by_us();
        if flags.contains(Flags::ACK) && !ended_by_us {
            // Only an opener that awaits it takes an ACK (a peer-opened stream never does).
            if let Err(reason) = stream.peer_acks() {
                return self.protocol_error(ErrorCode::PROTOCOL_ERROR, reason);
            }
            // The open is confirmed: its unacknowledged-open slot is free (§6.1).
            self.unacked_opens -= 1;
            self.open_waiters.drain_into(&mut self.wake);
        } else if stream.awaiting_ack() && !ended_by_us {
            return self.protocol_error(ErrorCode::PROTOCOL_ERROR, "DATA before the stream's ACK");
        }
        match &stream.recv {
            RecvState::Idle | RecvState::Opening | RecvState::Open | RecvState::Stopping { .. } => {
                if stream.recv_window.receive(len).is_err() {
                    return self.protocol_error(
                        ErrorCode::FLOW_CONTROL_ERROR,
                        "data beyond the stream window",
                    );
                }
                if stream.recv_open() {
                    if len > 0 {
                        stream
                            .recv_buf
                            .get_or_insert_with(|| self.queue_pool.take())
                            .push(payload);
                        self.recv_buffered += len as usize;
                    }
                } else {
                    self.session_recv.consume(len);
                    if let Some(share) = &mut self.budget {
                        share.consumed(u64::from(len)); // as in `bytes_consumed` (§7.6)
                    }
                }
                if flags.contains(Flags::FIN) {
                    stream.peer_finished();
                    self.closed_how(id, LateData::Error);
                }
                if let Some(stream) = self.streams.get_mut(&id) {
                    stream.wake_read(&mut self.wake);
                }
                self.after_change(id);
            }
            RecvState::Finished { stopped: None } => {
                self.protocol_error(ErrorCode::STREAM_CLOSED, "data after FIN")
            }
            RecvState::Reset {
                err: Error::StreamReset {
                    by: Side::Remote, ..
                },
                ..
            } => self.protocol_error(ErrorCode::STREAM_CLOSED, "data after the peer's RESET"),
            // Reset by us, or stopped and then finished: discarded, session credit only.
            RecvState::Reset { .. } | RecvState::Finished { stopped: Some(_) } => {
                self.bytes_consumed(len as usize)
            }
        }
    }

    fn on_syn(&mut self, now: Instant, id: u32, flags: Flags, payload: Bytes) {
        let len = payload.len();
        if let Err(bad) = self.ids.check_peer_open(id) {
            return self.protocol_error(ErrorCode::PROTOCOL_ERROR, bad.reason());
        }
        if flags.contains(Flags::ACK) {
            return self.protocol_error(ErrorCode::PROTOCOL_ERROR, "SYN and ACK on one frame");
        }
        if len as u32 > self.config.initial_stream_window {
            return self.protocol_error(
                ErrorCode::FLOW_CONTROL_ERROR,
                "SYN carries more than the initial stream window",
            );
        }
        // Recorded even when the SYN is refused below: a refused id is still used (§5.2).
        self.ids.record_peer_open(id);
        let backlog_full = self.backlog_len() >= self.config.accept_backlog as usize;
        let d = &mut self.defences;
        let refusal = if self.goaway_sent.is_some() {
            Some((ErrorCode::REFUSED_STREAM, &mut d.refused_after_goaway))
        } else if self.inbound_live >= self.config.max_inbound_streams {
            Some((ErrorCode::REFUSED_STREAM, &mut d.refused_at_limit))
        } else if backlog_full {
            Some((ErrorCode::BACKLOG_FULL, &mut d.backlog_full))
        } else {
            None
        };
        if let Some((code, count)) = refusal {
            *count += 1; // counted for the runtime's log
            d.last_stream = id;
            self.bytes_consumed(len);
            self.closed_how(id, LateData::Discard);
            return self.send_refusal(id, code);
        }
        let peer = self.peer.expect("handshake done");
        let mut stream = Stream::from_syn(
            now,
            peer.initial_stream_window,
            self.config.initial_stream_window,
        );
        // Checked above: len <= initial window.
        let _ = stream.recv_window.receive(len as u32);
        if len > 0 {
            stream
                .recv_buf
                .get_or_insert_with(|| self.queue_pool.take())
                .push(payload);
            self.recv_buffered += len;
        }
        if flags.contains(Flags::FIN) {
            stream.peer_finished(); // §6.3 "— (acceptor) × recv DATA+SYN": Finished if FIN
            self.closed_how(id, LateData::Error);
        }
        stream.in_backlog = true;
        self.streams.insert(id, Box::new(stream));
        self.inbound_live += 1;
        self.backlog.push_back(id);
        self.accept_waiters.drain_into(&mut self.wake);
    }

    /// A RESET braid itself sends for the peer's doing (refusal, timeout): counted against
    /// `max_local_resets` (spec §11 L16) and subject to the single-slot rule.
    pub(crate) fn send_refusal(&mut self, id: u32, code: ErrorCode) {
        self.local_resets += 1;
        if self.local_resets > self.config.max_local_resets {
            return self.protocol_error(ErrorCode::ENHANCE_YOUR_CALM, TOO_MANY_LOCAL_RESETS);
        }
        self.control.push_back(Frame::Reset { stream: id, code });
        self.forced_replies += 1;
    }

    fn on_window_update(&mut self, id: u32, increment: u32) {
        if increment == 0 {
            self.count_empty_frame();
            return;
        }
        if id == 0 {
            self.waiting_for_session_credit = false;
            if self.session_send_credit.grant(increment).is_err() {
                self.protocol_error(ErrorCode::FLOW_CONTROL_ERROR, "session window above 2^31-1");
            }
            return;
        }
        let Some(stream) = self.streams.get_mut(&id) else {
            self.unknown_stream(id, false);
            return;
        };
        if stream.awaiting_ack() {
            return self.protocol_error(
                ErrorCode::PROTOCOL_ERROR,
                "WINDOW_UPDATE before the stream's ACK",
            );
        }
        // Spec §4.2, §6.2, §10 V27: once our FIN is written (Finished) or the stream was reset
        // either way, credit can buy nothing: the update is ignored, unchecked. Idle and Open,
        // FIN pending included (`Finishing`, `Stopping`: the FIN is not written yet), add it.
        if stream.send_ended() {
            return;
        }
        if stream.send_credit.grant(increment).is_err() {
            return self
                .protocol_error(ErrorCode::FLOW_CONTROL_ERROR, "stream window above 2^31-1");
        }
        self.schedule_send(id);
    }

    fn on_pong(&mut self, now: Instant, opaque: u64) {
        match self.ping.inflight {
            Some((sent, at)) if sent == opaque => {
                self.ping.inflight = None;
                self.ping.rtt = Some(now.saturating_duration_since(at));
                self.ping.completed += 1;
                if self.ping.completed == 1 {
                    // The first PING left before the peer's preface (spec §2), so its sample
                    // may include the peer's accept and setup time: measure once more at once
                    // (spec §7.4), the later sample replacing it.
                    self.ping.to_send = Some(self.ping.next_opaque);
                    self.ping.next_opaque += 1;
                }
                self.ping.waiters.drain_into(&mut self.wake);
            }
            // A reply we did not ask for: harmless, but it costs us a frame like an empty one.
            _ => self.count_empty_frame(),
        }
    }

    fn on_goaway(&mut self, last_stream: u32, code: ErrorCode, debug: Bytes) {
        if code != ErrorCode::NO_ERROR {
            let reason = (!debug.is_empty()).then(|| String::from_utf8_lossy(&debug).into());
            self.goaway_recv = Some((last_stream, code));
            return self.fail(
                Error::SessionClosed {
                    code,
                    by: Side::Remote,
                    reason,
                },
                None,
            );
        }
        if let Some((prev, _)) = self.goaway_recv {
            if last_stream > prev {
                return self.protocol_error(
                    ErrorCode::PROTOCOL_ERROR,
                    "GOAWAY raised its last stream id",
                );
            }
        }
        self.goaway_recv = Some((last_stream, code));
        // Our streams above `last_stream` were never processed: refused, safe to retry.
        let refused: Vec<u32> = self
            .streams
            .keys()
            .copied()
            .filter(|id| *id > last_stream && self.is_local_id(*id))
            .collect();
        for id in refused {
            let err = Error::StreamRefused {
                code: ErrorCode::REFUSED_STREAM,
            };
            self.abort_stream(id, &err, Side::Local, false);
            // Nothing more goes out on a refused stream: a queued STOP_SENDING would otherwise
            // reach the peer without the SYN that the refusal cleared (spec §5.2, §6.1).
            self.control
                .retain(|f| !matches!(f, Frame::StopSending { stream, .. } if *stream == id));
            self.after_change(id);
        }
        self.open_waiters.drain_into(&mut self.wake);
        self.accept_waiters.drain_into(&mut self.wake);
        self.check_drained();
    }

    fn on_reset(&mut self, id: u32, code: ErrorCode) {
        let Some(stream) = self.streams.get_mut(&id) else {
            self.unknown_stream(id, false);
            return;
        };
        self.closed.insert(id, LateData::Error);
        if stream.wire_closed() {
            return;
        }
        let refused = stream.awaiting_ack()
            && (code == ErrorCode::REFUSED_STREAM || code == ErrorCode::BACKLOG_FULL);
        let err = if refused {
            Error::StreamRefused { code }
        } else {
            Error::StreamReset {
                code,
                by: Side::Remote,
            }
        };
        // Its backlog entry becomes a tombstone; the stream itself is freed below.
        let unaccepted = std::mem::take(&mut stream.in_backlog);
        self.abort_stream(id, &err, Side::Remote, true);
        if unaccepted {
            // Rapid reset (CVE-2023-44487, spec §11 L17, §12, V34): the peer made us set up a
            // stream and tore it down before the application saw it. Its id stays in the
            // accept backlog as a tombstone (its state is freed below; it no longer counts
            // toward L6, `Stats::backlog` or concurrency) until `poll_accept` walks past it.
            // The counter is the tombstones not yet passed over: a flood arriving ahead of
            // any accept trips it, a client cancelling while the application keeps accepting
            // never piles them up. Ending the session past L17 keeps them at most L17 + 1.
            self.unaccepted_resets += 1;
            if self.unaccepted_resets > self.config.max_unaccepted_resets {
                self.after_change(id);
                return self
                    .protocol_error(ErrorCode::ENHANCE_YOUR_CALM, TOO_MANY_UNACCEPTED_RESETS);
            }
        }
        self.after_change(id);
    }

    fn on_stop_sending(&mut self, id: u32, code: ErrorCode) {
        let Some(stream) = self.streams.get_mut(&id) else {
            self.unknown_stream(id, false);
            return;
        };
        if stream.awaiting_ack() {
            return self.protocol_error(
                ErrorCode::PROTOCOL_ERROR,
                "STOP_SENDING before the stream's ACK",
            );
        }
        let Ok(dropped) = stream.peer_stops_sending(code) else {
            return; // ignored (the row is named in the error)
        };
        stream.wake_write(&mut self.wake);
        stream.wake_closed(&mut self.wake);
        self.send_buffered -= dropped;
        self.schedule_send(id);
    }
}
