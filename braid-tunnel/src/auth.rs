//! The shared secret: loading it from a file and comparing it in constant time.

use std::{io, path::Path};

/// Smallest token accepted from a token file.
pub const MIN_TOKEN_LEN: usize = 16;

/// Compares two byte strings in time that depends only on their lengths, not on where they
/// differ, so a network peer can't find the token byte by byte by timing rejections.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // `black_box` keeps the optimizer from turning the loop into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

/// Reads a token file: its contents without surrounding whitespace (a trailing newline is
/// fine). Refuses tokens shorter than [`MIN_TOKEN_LEN`] bytes.
pub fn load_token(path: &Path) -> io::Result<Vec<u8>> {
    let raw = std::fs::read(path)
        .map_err(|e| io::Error::new(e.kind(), format!("token file {}: {e}", path.display())))?;
    parse_token(&raw).map_err(|what| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("token file {}: {what}", path.display()),
        )
    })
}

/// The token in a token file's bytes (see [`load_token`]).
pub fn parse_token(raw: &[u8]) -> Result<Vec<u8>, &'static str> {
    let token = raw.trim_ascii();
    if token.len() < MIN_TOKEN_LEN {
        return Err("token must be at least 16 bytes (e.g. `openssl rand -hex 32`)");
    }
    if token.len() > super::wire::MAX_TOKEN_LEN {
        return Err("token must be at most 4096 bytes");
    }
    Ok(token.to_vec())
}
