//! The incremental frame decoder and the frame encoder (spec §3, §4).
//!
//! The decoder works in two steps so that a receiver can judge a frame from its header alone
//! (spec §10) before a single payload byte is buffered: [`Decoder::next_header`] then
//! [`Decoder::next_frame`]. Payloads are split off the read buffer without copying.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{ErrorCode, Flags, Frame, FrameType, Header, HEADER_LEN};

/// A frame the decoder refused, with the error code the spec assigns to it (spec §10).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} ({code})")]
pub struct FrameError {
    /// The protocol error code to send in GOAWAY.
    pub code: ErrorCode,
    /// What was wrong.
    pub reason: &'static str,
}

impl FrameError {
    pub(crate) const fn new(code: ErrorCode, reason: &'static str) -> Self {
        FrameError { code, reason }
    }
}

/// Incremental decoder: feed it a growing buffer, take frames out.
///
/// ```
/// use braid::frame::{encode_frame, Decoder, Frame};
/// use bytes::BytesMut;
/// let mut wire = BytesMut::new();
/// encode_frame(&Frame::Ping { ack: false, opaque: 7 }, &mut wire);
/// let mut decoder = Decoder::new(64 * 1024);
/// assert_eq!(decoder.decode(&mut wire).unwrap(), Some(Frame::Ping { ack: false, opaque: 7 }));
/// assert!(wire.is_empty());
/// ```
#[derive(Debug)]
pub struct Decoder {
    max_frame_payload: u32,
    pending: Option<Header>,
}

impl Decoder {
    /// A decoder that refuses DATA payloads above `max_frame_payload`.
    pub fn new(max_frame_payload: u32) -> Self {
        Decoder {
            max_frame_payload,
            pending: None,
        }
    }

    /// The header whose payload is still awaited, if any.
    pub fn pending_header(&self) -> Option<&Header> {
        self.pending.as_ref()
    }

    /// Whether the decoder is between frames once `buf` is consumed: `false` means a frame was
    /// cut short (a transport EOF now is an error, not a clean end).
    pub fn at_frame_boundary(&self, buf: &BytesMut) -> bool {
        self.pending.is_none() && buf.is_empty()
    }

    /// Whether `buf` holds the rest of a whole frame: the payload of the header in progress,
    /// or a header and all of its payload (its length field read without decoding the rest).
    #[inline]
    pub fn holds_whole_frame(&self, buf: &[u8]) -> bool {
        match &self.pending {
            Some(h) => !buf.is_empty() && buf.len() >= h.len as usize,
            None if buf.len() < HEADER_LEN => false,
            None => {
                let len = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
                buf.len() - HEADER_LEN >= len
            }
        }
    }

    /// How many more bytes `buf` needs to complete the frame in progress (at least 1 when
    /// nothing can be decoded yet). Used to size reads; never above one frame.
    pub fn bytes_needed(&self, buf: &BytesMut) -> usize {
        match &self.pending {
            Some(h) => (h.len as usize).saturating_sub(buf.len()).max(1),
            None => HEADER_LEN.saturating_sub(buf.len()).max(1),
        }
    }

    /// Parses the next header if no frame is in progress. Returns the header only when it was
    /// parsed by this call, so the caller can vet it once.
    pub fn next_header(&mut self, buf: &mut BytesMut) -> Result<Option<Header>, FrameError> {
        if self.pending.is_some() || buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let mut raw = [0u8; HEADER_LEN];
        raw.copy_from_slice(&buf[..HEADER_LEN]);
        let header = Header::decode(&raw, self.max_frame_payload)?;
        buf.advance(HEADER_LEN);
        self.pending = Some(header);
        Ok(Some(header))
    }

    /// Completes the frame in progress (parsing its header first if needed). `Ok(None)` means
    /// more bytes are needed.
    pub fn next_frame(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if self.pending.is_none() {
            self.next_header(buf)?;
        }
        let Some(header) = self.pending else {
            return Ok(None);
        };
        let len = header.len as usize;
        if buf.len() < len {
            return Ok(None);
        }
        self.pending = None;
        let payload = buf.split_to(len).freeze();
        parse_payload(header, payload).map(Some)
    }

    /// Header and payload in one call (no chance to vet the header first).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        self.next_frame(buf)
    }
}

fn parse_payload(header: Header, mut payload: Bytes) -> Result<Frame, FrameError> {
    let stream = header.stream;
    Ok(match header.kind {
        FrameType::Data => Frame::Data {
            stream,
            flags: header.flags,
            payload,
        },
        FrameType::WindowUpdate => Frame::WindowUpdate {
            stream,
            increment: payload.get_u32(),
        },
        FrameType::Ping => Frame::Ping {
            ack: header.flags.contains(Flags::ACK),
            opaque: payload.get_u64(),
        },
        FrameType::GoAway => {
            let last_stream = payload.get_u32();
            let code = ErrorCode(payload.get_u32());
            // Debug text is informational: invalid UTF-8 is shown lossily, not an error (§4.4).
            Frame::GoAway {
                last_stream,
                code,
                debug: payload,
            }
        }
        FrameType::Reset => Frame::Reset {
            stream,
            code: ErrorCode(payload.get_u32()),
        },
        FrameType::StopSending => Frame::StopSending {
            stream,
            code: ErrorCode(payload.get_u32()),
        },
    })
}

/// The header a frame encodes with.
pub(crate) fn header_of(frame: &Frame) -> Header {
    let (kind, flags, len) = match frame {
        Frame::Data { flags, payload, .. } => (FrameType::Data, *flags, payload.len() as u32),
        Frame::WindowUpdate { .. } => (FrameType::WindowUpdate, Flags::NONE, 4),
        Frame::Ping { ack, .. } => (
            FrameType::Ping,
            if *ack { Flags::ACK } else { Flags::NONE },
            8,
        ),
        Frame::GoAway { debug, .. } => (FrameType::GoAway, Flags::NONE, 8 + debug.len() as u32),
        Frame::Reset { .. } => (FrameType::Reset, Flags::NONE, 4),
        Frame::StopSending { .. } => (FrameType::StopSending, Flags::NONE, 4),
    };
    Header {
        kind,
        flags,
        stream: frame.stream_id(),
        len,
    }
}

/// Appends a control frame's payload (everything but DATA bytes) to `dst`.
pub(crate) fn put_control_payload(frame: &Frame, dst: &mut BytesMut) {
    match frame {
        Frame::Data { .. } => {}
        Frame::WindowUpdate { increment, .. } => dst.put_u32(*increment),
        Frame::Ping { opaque, .. } => dst.put_u64(*opaque),
        Frame::GoAway {
            last_stream,
            code,
            debug,
        } => {
            dst.put_u32(*last_stream);
            dst.put_u32(code.0);
            dst.extend_from_slice(debug);
        }
        Frame::Reset { code, .. } | Frame::StopSending { code, .. } => dst.put_u32(code.0),
    }
}

/// Appends the frame's wire bytes (header and payload) to `dst`.
pub fn encode_frame(frame: &Frame, dst: &mut BytesMut) {
    dst.extend_from_slice(&header_of(frame).encode());
    match frame {
        Frame::Data { payload, .. } => dst.extend_from_slice(payload),
        other => put_control_payload(other, dst),
    }
}
