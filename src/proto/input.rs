//! The receive path's one entry point: the peer's bytes go into the core through
//! [`Core::handle_input`], which owns the order of the steps — the preface judged as its bytes
//! arrive (spec §2), each header vetted before its payload is read (§10), each frame handled,
//! a decode error ending the session (§4), input paused while a forced reply waits for the
//! transport (the single slot, §8.1, L20), and the end of the transport taken only after
//! everything before it (§8.3).
//!
//! The runtime's driver, the in-memory test pair and the session fuzz target all call it, so
//! what the tests and the fuzzer exercise is what the driver runs.
//!
//! The frame decoder's state lives in an [`Input`] the caller keeps beside its read buffer,
//! not inside [`Core`]: the driver sizes its reads and decides whether to read at all from
//! that state without taking the session lock the core sits behind.

use std::time::Instant;

use bytes::BytesMut;

use super::Core;
use crate::frame::{Decoder, Frame, PREFACE_LEN};

/// What of the peer's byte stream has been decoded: the header whose payload is still
/// awaited, if any. One per session, passed to every [`Core::handle_input`] call with the
/// buffer the transport's bytes are appended to.
///
/// ```
/// use std::time::Instant;
/// use braid::{proto::{Core, Input, Role, Transmit}, Config};
/// use bytes::BytesMut;
///
/// let now = Instant::now();
/// let mut client = Core::new(Role::Client, Config::default(), now);
/// let mut server = Core::new(Role::Server, Config::default(), now);
/// let mut tx = Transmit::default();
/// client.poll_transmit(now, &mut tx, usize::MAX);
///
/// let mut input = Input::new(server.config());
/// let mut buf = BytesMut::from(&tx.take_all()[..]);
/// server.handle_input(now, &mut input, &mut buf, false);
/// assert!(server.handshake_done());
/// assert!(buf.is_empty());
/// ```
#[derive(Debug)]
pub struct Input {
    frames: Decoder,
}

impl Input {
    /// Decoding state for a session with `config` (its `max_frame_payload` bounds DATA).
    pub fn new(config: &crate::Config) -> Input {
        Input {
            frames: Decoder::new(config.max_frame_payload),
        }
    }

    /// How many more bytes `buf` needs before the core can take the next header or frame (at
    /// least 1): what a read should ask for at the least.
    #[inline]
    pub fn bytes_needed(&self, buf: &BytesMut) -> usize {
        self.frames.bytes_needed(buf)
    }

    /// Whether `buf` already holds a whole preface (before the handshake) or a whole frame
    /// for the core. A reader that stops reading then keeps a peer that floods us from
    /// growing the buffer past one frame (spec §11: one frame of L7).
    #[inline]
    pub fn holds_whole_unit(&self, buf: &[u8], handshake_done: bool) -> bool {
        if !handshake_done {
            return buf.len() >= PREFACE_LEN;
        }
        self.frames.holds_whole_frame(buf)
    }

    /// Whether a frame's header has been taken and its payload is still awaited.
    #[inline]
    pub fn in_frame(&self) -> bool {
        self.frames.pending_header().is_some()
    }

    /// Whether the input stopped between frames once `buf` is consumed: `false` means the
    /// peer is inside a frame.
    #[inline]
    pub fn at_frame_boundary(&self, buf: &BytesMut) -> bool {
        self.frames.at_frame_boundary(buf)
    }
}

impl Core {
    /// Takes the peer's bytes from the front of `buf` as far as the core accepts input now,
    /// and, with `eof` (the transport's read side has ended), the end of the transport once
    /// everything before it is taken. What is left in `buf` waits for the next call: an
    /// incomplete frame, or everything while [`Core::can_receive`] is `false` (a forced
    /// reply is unsent, spec §8.1 L20, or the session has ended).
    #[inline]
    pub fn handle_input(&mut self, now: Instant, input: &mut Input, buf: &mut BytesMut, eof: bool) {
        self.handle_input_observed(now, input, buf, eof, |_| {});
    }

    /// [`Core::handle_input`], calling `observe` with each frame just before the core
    /// handles it (test logs, the fuzz target's model of what the peer allowed).
    pub fn handle_input_observed(
        &mut self,
        now: Instant,
        input: &mut Input,
        buf: &mut BytesMut,
        eof: bool,
        mut observe: impl FnMut(&Frame),
    ) {
        if !self.can_receive() {
            return;
        }
        if !self.handshake_done() {
            if buf.len() < PREFACE_LEN {
                // Spec §2: magic and version are judged as their bytes arrive.
                if self.handle_preface_prefix(buf).is_ok() && eof {
                    self.transport_closed(true);
                }
                return;
            }
            let mut preface = [0u8; PREFACE_LEN];
            preface.copy_from_slice(&buf.split_to(PREFACE_LEN));
            if self.handle_preface(&preface).is_err() {
                return;
            }
        }
        let frames = &mut input.frames;
        while self.can_receive() {
            match frames.next_header(buf) {
                // Spec §10: flow-control limits are judged from the header alone.
                Ok(Some(header)) => {
                    if self.check_header(&header).is_err() {
                        return;
                    }
                }
                Ok(None) => {}
                Err(err) => return self.handle_decode_error(err),
            }
            match frames.next_frame(buf) {
                Ok(Some(frame)) => {
                    observe(&frame);
                    self.handle_frame(now, frame);
                }
                Ok(None) => break,
                Err(err) => return self.handle_decode_error(err),
            }
        }
        if eof && self.can_receive() {
            self.transport_closed(!frames.at_frame_boundary(buf));
        }
    }
}
