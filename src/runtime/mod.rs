//! The tokio shell around [`crate::proto::Core`]: one driver task per session moves bytes
//! between the transport and the core and arms its timers; [`Session`] and [`Stream`] are
//! the handles applications hold. No protocol rule lives here: the core decides what to send,
//! when input pauses (the single slot, §8.1 L20) and when a timer fires; the shell applies
//! only the limits on the transport itself, which only it can see (the write timeout L13,
//! the close drain L22, the idle release L23).
//!
//! # Wake table
//!
//! Nothing here sleeps on a lock: every wait is a task returning `Pending` with its waker
//! left somewhere, and a lost wake-up stops a stream or the whole session without an error.
//! So every way work reaches the driver, and every `Pending`, is listed below with what
//! wakes it; the code at each place points to its row. The hand-offs marked *model* are
//! checked by loom under every interleaving (`sync.rs` holds their primitives,
//! `loom_tests.rs` the models; `.ci/run` runs them).
//!
//! Work for the driver (it ends a poll only when none of these is pending):
//!
//! | row | work | set by | what wakes the driver |
//! |---|---|---|---|
//! | W1 | the core has frames to send, a deadline earlier than the armed one (`Inner::armed`), or has ended (`Inner::core_needs_driver`) | an application command through `Shared::with`, under the session lock | `Inner::notify_driver` in `Shared::with`: the stored driver waker, unless `driver_notified` says a wake is already on its way; the flag is cleared where the driver looks at the core (`Shared::start_turn`, `Shared::idle_wake`). *Model*: `loom_idle_check_races_new_command`, `loom_inline_write_blocks_while_driver_idle` |
//! | W2 | an application task's inline framing (`Shared::write_inline`) armed a deadline the timer doesn't know (a PING's timeout, a budget retry) | `Writer::fill` on the core, under the session lock | `Inner::notify_driver` in `write_inline` (a backstop: the command that queued the frame woke the driver already, W1, and the idle check then sees the earlier deadline; the model finds no interleaving that needs this wake). *Model*: `loom_timer_rearmed_while_driver_polls` |
//! | W3 | an inline write or write-through left bytes in the writer, or failed | `Shared::hand_writer_to_driver` sets `writer_handed_over` (the idle check then takes a full turn even though the core has nothing new) | the driver waker, taken in `hand_writer_to_driver`. *Model*: `loom_inline_write_blocks_while_driver_idle` |
//! | W4 | the writer lock is free again after the driver found it taken | `WriterGuard`'s drop (`HandOverLock::unlock` reports the driver's request) | the driver waker, in `WriterGuard`'s drop (see P3). *Model*: `loom_writer_released_while_driver_asks` |
//! | W5 | the transport has input, EOF or an error | the transport | the read half's waker (`ReadWake`): it sets `ReadWake::woke`, which keeps the idle check from skipping the turn, and wakes the driver task |
//! | W6 | the transport can take more bytes (a write or flush blocked) | the transport | the waker passed to `Writer::write` on the driver's turn; `Driver::write_blocked` keeps the idle check from skipping the turn |
//! | W7 | a deadline: the core's (`Core::poll_timeout`), the write timeout, the drain after a write failure, the idle-release check | the driver's turn (`Inner::armed` records the core's part) | the driver's tokio timer, reset and polled at the end of each turn |
//! | W8 | a turn stopped before its work was done: the turn budget (`TURNS_PER_POLL`) ran out, or input waits in `read_buf` | the driver (`Driver::must_turn`) | the driver itself (`wake_by_ref`), or W4 when the writer was taken |
//!
//! Places a task returns `Pending`, and who wakes it:
//!
//! | row | where | waker left in | woken by |
//! |---|---|---|---|
//! | P1 | stream operations on the core: `poll_recv_*` (read), `poll_write*` (send buffer full), `poll_flush`, `poll_send_closed`; `poll_open`, `poll_accept`, `poll_ping` | one slot per purpose per stream (`read_waker`, `write_waker`, `closed_waker`), or a session list (`send_room_waiters`, `open_waiters`, `accept_waiters`, the ping's waiters), all under the session lock | the core moves them to its wake list when the condition changes (input, credit, framing, an error, another task's command); they are woken after the lock is let go, by `Shared::with`, `Shared::write_inline` or the driver's turn (`Driver::wake_all`). *Model* (read slot): `loom_reader_and_driver_race_on_waker_slot` |
//! | P2 | `Session::close`, `Session::closed` (`Shared::poll_transport`) | `Inner::close_waiters` | `Shared::advance_transport`, from the closing driver or its drop |
//! | P3 | the driver finds the writer lock taken (`Shared::try_writer_for_driver` in `Driver::poll_turn` and `Driver::poll_close`) | a request (`HandOverLock::try_lock_or_ask`), then a second try | the holder letting go (W4). *Model*: `loom_writer_released_while_driver_asks` |
//! | P4 | a half of the split transport finds the other half in a call (`split::Inner::with`) | that half's slot in `split::Inner::waiting`, then a second try | the other half, when its call returns. *Model*: `loom_split_halves_contend` |
//! | P5 | the driver's poll ends: at once when idle (`Driver::idle_wake`), or after a turn with nothing left | the stored driver waker (`Inner::driver`), the read half, the writer, the timer | W1-W8 |
//! | P6 | the closing driver (`Driver::poll_close`): the transport's shutdown or a drain read pending, or the drain's read budget spent | the transport and the drain timer (`Driver::wait_until`), or itself | the transport, the timer (`close_drain_timeout`), or its own `wake_by_ref` |

mod driver;
#[cfg(all(test, braid_loom))]
mod loom_tests;
mod read_buffers;
mod session;
mod shared;
mod split;
mod stream;
mod sync;
mod trace;
mod writer;

pub use driver::Driver;
pub use session::Session;
pub use stream::{RecvStream, SendStream, Stream};

/// The clock the runtime feeds the core: tokio's, so a paused test clock applies.
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
