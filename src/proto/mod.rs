//! The protocol core: sessions, streams, windows and timers as plain Rust with no IO and no
//! clock (spec §5–§8). Inputs: the peer's bytes through [`Core::handle_input`] (the one entry
//! point for everything the transport delivers), [`Core::handle_timeout`] and application
//! commands (`poll_open`, `poll_write`, `finish`, `reset`, ...). Outputs:
//! [`Core::poll_transmit`] (bytes for the transport), [`Core::poll_timeout`] (when to call
//! back), and wakers to wake ([`Core::take_wakers`]). The tokio runtime in [`crate::Session`]
//! is a thin shell around it; tests, fuzz targets and benches drive it directly.
//!
//! Where to start reading, in the order a frame travels:
//! - `input.rs` (bytes in) → `inbound.rs` (each frame applied: DATA, RESET, GOAWAY, ...);
//! - `stream.rs` (one stream: its two halves, named as the spec's §6.2/§6.3 states, with
//!   their diagrams) → `transitions.rs` (every way a half changes state, each citing its row)
//!   → `stream_state.rs` (the public view the state-table test checks);
//! - `stream_ops.rs` (the application's reads, writes, finish, reset, stop) and
//!   `open_accept.rs` (opening and accepting streams);
//! - `outbound.rs` (frames out, in priority order) → `transmit.rs` (the byte queue the
//!   runtime writes);
//! - `core.rs` (the session's state and the bookkeeping shared by the above), `timers.rs`,
//!   `session_end.rs`, `ping.rs`;
//! - the small checked types: `stream_ids.rs` (id parity and ordering, §5), `window.rs`
//!   (credit and windows, §7), `closed.rs` (recently closed ids, §6.6), `budget.rs`
//!   (memory shared across sessions, §7.6), `buffer.rs`, `waiters.rs`, `activity.rs`,
//!   `idle.rs`, `stats.rs`.

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
