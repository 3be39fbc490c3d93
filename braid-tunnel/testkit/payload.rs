//! Deterministic bytes: a pseudo-random generator and a repeating pattern long bodies are
//! made of (so a 100 MiB body can be produced and checked without holding it).

/// xorshift64*: fast, seedable, good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator; equal seeds give equal sequences.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// Length of the repeating block: prime, so it never lines up with buffer sizes.
pub const BLOCK_LEN: usize = 65_521;

/// The block every pattern body repeats.
pub fn block() -> &'static [u8] {
    static BLOCK: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BLOCK.get_or_init(|| Rng::new(0xB0D1).bytes(BLOCK_LEN))
}

/// Checks a body arriving in pieces against the pattern.
#[derive(Debug, Default)]
pub struct Verifier {
    offset: u64,
}

impl Verifier {
    /// Checks the next piece; the error names the first differing offset.
    pub fn check(&mut self, mut piece: &[u8]) -> Result<(), String> {
        let block = block();
        while !piece.is_empty() {
            let at = (self.offset % BLOCK_LEN as u64) as usize;
            let n = piece.len().min(BLOCK_LEN - at);
            if piece[..n] != block[at..at + n] {
                let i = (0..n).find(|&i| piece[i] != block[at + i]).unwrap_or(0);
                return Err(format!("body differs at byte {}", self.offset + i as u64));
            }
            self.offset += n as u64;
            piece = &piece[n..];
        }
        Ok(())
    }

    /// Bytes checked so far.
    pub fn checked(&self) -> u64 {
        self.offset
    }
}
