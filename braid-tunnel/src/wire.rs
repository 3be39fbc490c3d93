//! The tunnel's own tiny binary messages, carried at the start of braid streams.
//!
//! ```text
//! auth stream (first stream the client opens):
//!   client → server   "BRTN" | version u8 (= 1) | token length u16 BE | token
//!   server → client   status u8                                    then FIN both ways
//!
//! every other stream:
//!   opener → peer     kind u8 | length u16 BE | address (UTF-8 "host:port")
//!   peer → opener     status u8                                    then the relayed bytes
//! ```
//!
//! Kinds: [`Kind::Connect`] asks the peer to dial the address and relay; [`Kind::Listen`]
//! (client → server only) asks the server to listen on the address for reverse forwarding and
//! keeps the stream open as the listener's lifetime. Every multi-byte integer is big-endian.

use std::{fmt, io};

use tokio::io::{AsyncRead, AsyncReadExt};

/// First bytes of the auth stream.
pub const MAGIC: [u8; 4] = *b"BRTN";
/// The tunnel protocol version this build speaks.
pub const VERSION: u8 = 1;
/// Longest token accepted on the wire.
pub const MAX_TOKEN_LEN: usize = 4096;
/// Longest target address accepted on the wire.
pub const MAX_ADDR_LEN: usize = 1024;

/// The one-byte answer to an auth or open request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Accepted: for an open request, bytes flow from now on.
    Ok,
    /// The token did not match.
    BadToken,
    /// The request was malformed or of an unknown version or kind.
    BadRequest,
    /// The peer's policy does not allow this address.
    NotAllowed,
    /// Dialing or binding the address failed.
    Unreachable,
    /// Dialing the address did not finish in time.
    TimedOut,
    /// A status this build does not know.
    Unknown(u8),
}

impl Status {
    /// The wire byte.
    pub fn to_byte(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::BadToken => 1,
            Status::BadRequest => 2,
            Status::NotAllowed => 3,
            Status::Unreachable => 4,
            Status::TimedOut => 5,
            Status::Unknown(b) => b,
        }
    }

    /// Decodes a wire byte.
    pub fn from_byte(byte: u8) -> Status {
        match byte {
            0 => Status::Ok,
            1 => Status::BadToken,
            2 => Status::BadRequest,
            3 => Status::NotAllowed,
            4 => Status::Unreachable,
            5 => Status::TimedOut,
            b => Status::Unknown(b),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Ok => f.write_str("ok"),
            Status::BadToken => f.write_str("wrong token"),
            Status::BadRequest => f.write_str("malformed request"),
            Status::NotAllowed => f.write_str("target not allowed"),
            Status::Unreachable => f.write_str("target unreachable"),
            Status::TimedOut => f.write_str("connect to target timed out"),
            Status::Unknown(b) => write!(f, "unknown status {b}"),
        }
    }
}

/// What an open request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Dial the address and relay bytes.
    Connect,
    /// Listen on the address and forward its connections back (reverse forwarding).
    Listen,
}

impl Kind {
    fn to_byte(self) -> u8 {
        match self {
            Kind::Connect => 1,
            Kind::Listen => 2,
        }
    }
}

/// The header at the start of every non-auth stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRequest {
    /// Dial or listen.
    pub kind: Kind,
    /// The address, `host:port`.
    pub addr: String,
}

/// Encodes the auth request for `token`.
pub fn encode_auth(token: &[u8]) -> io::Result<Vec<u8>> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(invalid("token longer than 4096 bytes"));
    }
    let mut out = Vec::with_capacity(7 + token.len());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&(token.len() as u16).to_be_bytes());
    out.extend_from_slice(token);
    Ok(out)
}

/// Reads an auth request and returns the token it carries.
pub async fn read_auth<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut head = [0u8; 7];
    r.read_exact(&mut head).await?;
    if head[..4] != MAGIC {
        return Err(invalid("not a braid-tunnel client (bad magic)"));
    }
    if head[4] != VERSION {
        return Err(invalid("unsupported tunnel protocol version"));
    }
    let len = u16::from_be_bytes([head[5], head[6]]) as usize;
    if len > MAX_TOKEN_LEN {
        return Err(invalid("token longer than 4096 bytes"));
    }
    let mut token = vec![0u8; len];
    r.read_exact(&mut token).await?;
    Ok(token)
}

impl OpenRequest {
    /// A request to dial `addr`.
    pub fn connect(addr: impl Into<String>) -> OpenRequest {
        OpenRequest {
            kind: Kind::Connect,
            addr: addr.into(),
        }
    }

    /// A request to listen on `addr` (reverse forwarding).
    pub fn listen(addr: impl Into<String>) -> OpenRequest {
        OpenRequest {
            kind: Kind::Listen,
            addr: addr.into(),
        }
    }

    /// The wire bytes.
    pub fn encode(&self) -> io::Result<Vec<u8>> {
        let addr = self.addr.as_bytes();
        if addr.is_empty() || addr.len() > MAX_ADDR_LEN {
            return Err(invalid("address must be 1..=1024 bytes"));
        }
        let mut out = Vec::with_capacity(3 + addr.len());
        out.push(self.kind.to_byte());
        out.extend_from_slice(&(addr.len() as u16).to_be_bytes());
        out.extend_from_slice(addr);
        Ok(out)
    }

    /// Reads one request; never reads past it.
    pub async fn read<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<OpenRequest> {
        let mut head = [0u8; 3];
        r.read_exact(&mut head).await?;
        let kind = match head[0] {
            1 => Kind::Connect,
            2 => Kind::Listen,
            _ => return Err(invalid("unknown open request kind")),
        };
        let len = u16::from_be_bytes([head[1], head[2]]) as usize;
        if len == 0 || len > MAX_ADDR_LEN {
            return Err(invalid("address must be 1..=1024 bytes"));
        }
        let mut addr = vec![0u8; len];
        r.read_exact(&mut addr).await?;
        let addr = String::from_utf8(addr).map_err(|_| invalid("address is not UTF-8"))?;
        Ok(OpenRequest { kind, addr })
    }
}

/// Reads one status byte.
pub async fn read_status<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Status> {
    Ok(Status::from_byte(r.read_u8().await?))
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}
