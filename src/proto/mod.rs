//! The protocol core: sessions, streams, windows and timers as plain Rust with no IO and no
//! clock (spec §5–§8). Inputs: the peer's bytes through [`Core::handle_input`] (the one entry
//! point for everything the transport delivers), [`Core::handle_timeout`] and application commands (`poll_open`,
//! `poll_write`, `finish`, `reset`, ...). Outputs: [`Core::poll_transmit`] (bytes for the
//! transport), [`Core::poll_timeout`] (when to call back), and wakers to wake
//! ([`Core::take_wakers`]). The tokio runtime in [`crate::Session`] is a thin shell around it;
//! tests, fuzz targets and benches drive it directly.

mod activity;
mod budget;
mod buffer;
mod closed;
mod core;
mod idle;
mod inbound;
mod input;
mod open_accept;
mod outbound;
mod ping;
mod session_end;
mod stats;
mod stream;
mod stream_ids;
mod stream_ops;
mod stream_state;
mod timers;
mod transitions;
mod transmit;
mod waiters;
mod window;

pub use self::core::{Core, Role, ACK_DELAY};
pub(crate) use budget::BudgetShare;
pub use budget::MemoryBudget;
pub use input::Input;
#[cfg(feature = "tracing")] // what the runtime's log reads
pub(crate) use stats::{
    Defences, TOO_MANY_EMPTY_FRAMES, TOO_MANY_LOCAL_RESETS, TOO_MANY_UNACCEPTED_RESETS,
};
pub use stats::{Stats, StreamRecv};
pub use stream::{HANDLE_RECV, HANDLE_SEND};
pub use stream_state::{RecvHalf, SendHalf};
pub use transmit::Transmit;
pub use window::{Credit, RecvWindow, WindowError};

/// Hashes stream ids (already unique, increasing integers) with one multiply: fast and
/// deterministic, unlike the default SipHash with random keys.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | *b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        let h = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // Fold the well-mixed high bits into the low bits the table indexes with.
        self.0 = h ^ (h >> 29);
    }
}

pub(crate) type IdBuildHasher = std::hash::BuildHasherDefault<IdHasher>;
