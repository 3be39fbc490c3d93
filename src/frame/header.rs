//! The fixed 12-byte frame header (spec §3): type, flags, reserved, stream id, length.

use super::codec::FrameError;
use super::ErrorCode;

/// Bytes in every frame header (spec §3).
pub const HEADER_LEN: usize = 12;

/// Frame type byte (spec §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameType {
    /// §4.1
    Data = 0x0,
    /// §4.2
    WindowUpdate = 0x1,
    /// §4.3
    Ping = 0x2,
    /// §4.4
    GoAway = 0x3,
    /// §4.5
    Reset = 0x4,
    /// §4.6
    StopSending = 0x5,
}

impl FrameType {
    fn from_u8(b: u8) -> Option<FrameType> {
        Some(match b {
            0x0 => FrameType::Data,
            0x1 => FrameType::WindowUpdate,
            0x2 => FrameType::Ping,
            0x3 => FrameType::GoAway,
            0x4 => FrameType::Reset,
            0x5 => FrameType::StopSending,
            _ => return None,
        })
    }
}

/// Frame flags (spec §3): SYN opens a stream, ACK acknowledges an open (or a PING),
/// FIN half-closes the sender's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// No flag.
    pub const NONE: Flags = Flags(0);
    /// Opens the stream (DATA only).
    pub const SYN: Flags = Flags(0x1);
    /// Acknowledges the stream's SYN (DATA) or is a PING reply (PING).
    pub const ACK: Flags = Flags(0x2);
    /// Ends the sender's direction (DATA only).
    pub const FIN: Flags = Flags(0x4);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Both sets of bits.
    pub fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
}

/// A decoded, validated frame header (spec §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Frame type.
    pub kind: FrameType,
    /// Flags, already checked against the type.
    pub flags: Flags,
    /// Stream id; 0 for session frames.
    pub stream: u32,
    /// Payload length in bytes.
    pub len: u32,
}

impl Header {
    /// Encodes the header to its 12 wire bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = self.kind as u8;
        out[1] = self.flags.0;
        out[4..8].copy_from_slice(&self.stream.to_be_bytes());
        out[8..12].copy_from_slice(&self.len.to_be_bytes());
        out
    }

    /// Decodes and validates 12 header bytes against the receiver's `max_frame_payload`
    /// (spec §3, §10): every check that the header alone allows happens here, before any
    /// payload is buffered.
    pub fn decode(bytes: &[u8; HEADER_LEN], max_frame_payload: u32) -> Result<Header, FrameError> {
        let kind = FrameType::from_u8(bytes[0]).ok_or(FrameError::new(
            ErrorCode::PROTOCOL_ERROR,
            "unknown frame type",
        ))?;
        let flags = Flags(bytes[1]);
        if bytes[2] != 0 || bytes[3] != 0 {
            return Err(FrameError::new(
                ErrorCode::PROTOCOL_ERROR,
                "reserved header bits set",
            ));
        }
        let stream = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        let len = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let header = Header {
            kind,
            flags,
            stream,
            len,
        };
        header.validate(max_frame_payload)?;
        Ok(header)
    }

    fn validate(&self, max_frame_payload: u32) -> Result<(), FrameError> {
        let allowed_flags = match self.kind {
            FrameType::Data => Flags::SYN.union(Flags::ACK).union(Flags::FIN),
            FrameType::Ping => Flags::ACK,
            _ => Flags::NONE,
        };
        if self.flags.0 & !allowed_flags.0 != 0 {
            return Err(FrameError::new(
                ErrorCode::PROTOCOL_ERROR,
                "flag not allowed on this frame type",
            ));
        }
        let session_frame = matches!(self.kind, FrameType::Ping | FrameType::GoAway);
        let may_be_session = session_frame || self.kind == FrameType::WindowUpdate;
        if session_frame && self.stream != 0 {
            return Err(FrameError::new(
                ErrorCode::PROTOCOL_ERROR,
                "session frame on a stream id",
            ));
        }
        if !may_be_session && self.stream == 0 {
            return Err(FrameError::new(
                ErrorCode::PROTOCOL_ERROR,
                "stream frame on stream id 0",
            ));
        }
        let len_ok = match self.kind {
            FrameType::Data => self.len <= max_frame_payload,
            FrameType::WindowUpdate | FrameType::Reset | FrameType::StopSending => self.len == 4,
            FrameType::Ping => self.len == 8,
            FrameType::GoAway => (8..=8 + super::MAX_GOAWAY_DEBUG as u32).contains(&self.len),
        };
        if !len_ok {
            return Err(FrameError::new(
                ErrorCode::FRAME_SIZE_ERROR,
                match self.kind {
                    FrameType::Data => "frame payload above max_frame_payload",
                    _ => "control frame with wrong length",
                },
            ));
        }
        Ok(())
    }
}
