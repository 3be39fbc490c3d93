//! The session preface (spec §2): magic, version and the settings a peer must know before the
//! first frame.

use super::{ErrorCode, MAX_FRAME_PAYLOAD_LIMIT, MAX_WINDOW, MIN_FRAME_PAYLOAD_LIMIT};

/// The 8 magic bytes that open every braid session (spec §2).
pub const MAGIC: [u8; 8] = *b"\x8bBRAID\r\n";
/// Bytes in the preface (spec §2).
pub const PREFACE_LEN: usize = 32;
/// The protocol version this crate speaks (spec §2).
pub const PROTOCOL_VERSION: u16 = 1;

/// The settings each side announces in its preface (spec §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preface {
    /// Receive window every new stream starts with, in bytes.
    pub initial_stream_window: u32,
    /// Session receive window, in bytes.
    pub session_window: u32,
    /// Inbound streams the sender keeps open at once.
    pub max_concurrent_streams: u32,
    /// Inbound streams the sender holds before its application accepts them.
    pub accept_backlog: u32,
    /// Largest DATA payload the sender accepts.
    pub max_frame_payload: u32,
}

/// Why a preface was refused (spec §2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrefaceError {
    /// Not a braid peer.
    #[error("bad preface magic: peer does not speak braid")]
    BadMagic,
    /// A braid peer of another version.
    #[error("unsupported protocol version {0} (this side speaks 1)")]
    Version(u16),
    /// A setting outside its allowed range.
    #[error("preface setting out of range: {0}")]
    Setting(&'static str),
}

impl PrefaceError {
    /// The error code the spec assigns (spec §10).
    pub fn code(&self) -> ErrorCode {
        match self {
            PrefaceError::Version(_) => ErrorCode::VERSION_MISMATCH,
            _ => ErrorCode::PROTOCOL_ERROR,
        }
    }
}

impl Preface {
    /// The 32 wire bytes.
    pub fn encode(&self) -> [u8; PREFACE_LEN] {
        let mut out = [0u8; PREFACE_LEN];
        out[..8].copy_from_slice(&MAGIC);
        out[8..10].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        let fields = [
            self.initial_stream_window,
            self.session_window,
            self.max_concurrent_streams,
            self.accept_backlog,
            self.max_frame_payload,
        ];
        for (i, v) in fields.iter().enumerate() {
            out[12 + 4 * i..16 + 4 * i].copy_from_slice(&v.to_be_bytes());
        }
        out
    }

    /// Judges the first bytes of a preface as they arrive (spec §2, §10 V1, V2): every magic
    /// byte (0..8) as soon as it is in, the version (8..10) once both its bytes are. `Ok` while
    /// `bytes` can still begin a valid preface; bytes from 10 on are not looked at (the
    /// settings are checked by [`Preface::decode`] once all 32 are in). A pure function of
    /// the bytes so far, so a peer that sends a wrong byte and then nothing is refused at once
    /// instead of at the preface timeout.
    pub fn check_prefix(bytes: &[u8]) -> Result<(), PrefaceError> {
        let magic = bytes.len().min(MAGIC.len());
        if bytes[..magic] != MAGIC[..magic] {
            return Err(PrefaceError::BadMagic);
        }
        if let [_, _, _, _, _, _, _, _, hi, lo, ..] = *bytes {
            let version = u16::from_be_bytes([hi, lo]);
            if version != PROTOCOL_VERSION {
                return Err(PrefaceError::Version(version));
            }
        }
        Ok(())
    }

    /// Parses and validates 32 preface bytes. The magic is checked first, so a peer speaking
    /// something else is named as such.
    pub fn decode(bytes: &[u8; PREFACE_LEN]) -> Result<Preface, PrefaceError> {
        Preface::check_prefix(bytes)?;
        let field = |i: usize| {
            u32::from_be_bytes([
                bytes[12 + 4 * i],
                bytes[13 + 4 * i],
                bytes[14 + 4 * i],
                bytes[15 + 4 * i],
            ])
        };
        let preface = Preface {
            initial_stream_window: field(0),
            session_window: field(1),
            max_concurrent_streams: field(2),
            accept_backlog: field(3),
            max_frame_payload: field(4),
        };
        preface.validate()?;
        Ok(preface)
    }

    /// Checks every setting's range (spec §2).
    pub fn validate(&self) -> Result<(), PrefaceError> {
        if !(1024..=MAX_WINDOW).contains(&self.initial_stream_window) {
            return Err(PrefaceError::Setting("initial_stream_window"));
        }
        if !(self.initial_stream_window..=MAX_WINDOW).contains(&self.session_window) {
            return Err(PrefaceError::Setting("session_window"));
        }
        if self.max_concurrent_streams == 0 {
            return Err(PrefaceError::Setting("max_concurrent_streams"));
        }
        if self.accept_backlog == 0 {
            return Err(PrefaceError::Setting("accept_backlog"));
        }
        if !(MIN_FRAME_PAYLOAD_LIMIT..=MAX_FRAME_PAYLOAD_LIMIT).contains(&self.max_frame_payload) {
            return Err(PrefaceError::Setting("max_frame_payload"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_is_judged_byte_by_byte() {
        let good = Preface {
            initial_stream_window: 1024,
            session_window: 1024,
            max_concurrent_streams: 1,
            accept_backlog: 1,
            max_frame_payload: 1024,
        }
        .encode();
        for n in 0..=PREFACE_LEN {
            assert_eq!(Preface::check_prefix(&good[..n]), Ok(()), "{n} bytes");
        }
        // A wrong magic byte is refused as soon as it is in, whatever follows.
        for at in 0..8 {
            let mut bad = good;
            bad[at] ^= 0x20;
            assert_eq!(Preface::check_prefix(&bad[..at]), Ok(()));
            for n in at + 1..=PREFACE_LEN {
                assert_eq!(
                    Preface::check_prefix(&bad[..n]),
                    Err(PrefaceError::BadMagic)
                );
            }
        }
        // The version needs both of its bytes.
        let mut v2 = good;
        v2[9] = 2;
        assert_eq!(Preface::check_prefix(&v2[..9]), Ok(()));
        assert_eq!(
            Preface::check_prefix(&v2[..10]),
            Err(PrefaceError::Version(2))
        );
        let mut v256 = good;
        v256[8] = 1;
        assert_eq!(Preface::check_prefix(&v256[..9]), Ok(()));
        assert_eq!(
            Preface::check_prefix(&v256[..10]),
            Err(PrefaceError::Version(257))
        );
        // Bad magic wins over a bad version (spec §2 validation order).
        let mut both = v2;
        both[0] = 0;
        assert_eq!(
            Preface::check_prefix(&both[..10]),
            Err(PrefaceError::BadMagic)
        );
    }
}
