//! Tasks waiting on the session (accept, open, send room, ping) and the wakers the core hands
//! back to the runtime to wake after each call ([`Core::take_wakers`]).

use std::task::Waker;

use super::Core;

/// A small set of wakers, deduplicated by `will_wake` (one entry per waiting task).
#[derive(Debug, Default)]
pub(crate) struct Waiters(Vec<Waker>);

impl Waiters {
    pub(crate) fn register(&mut self, waker: &Waker) {
        if !self.0.iter().any(|w| w.will_wake(waker)) {
            self.0.push(waker.clone());
        }
    }
    pub(crate) fn drain_into(&mut self, out: &mut Vec<Waker>) {
        out.append(&mut self.0);
    }
}

impl Core {
    /// Wakers of tasks whose operation can make progress; wake them after releasing any lock.
    pub fn take_wakers(&mut self) -> Vec<Waker> {
        self.wake_send_room();
        if self.wake.is_empty() {
            return Vec::new(); // keeps the list's allocation for the next wakers
        }
        std::mem::take(&mut self.wake)
    }

    /// Like [`Core::take_wakers`], but one waker (the common case after a command) comes
    /// out on its own and the core keeps its list's allocation.
    pub(crate) fn take_wakers_few(&mut self) -> (Option<Waker>, Vec<Waker>) {
        self.wake_send_room();
        match self.wake.len() {
            0 => (None, Vec::new()),
            1 => (self.wake.pop(), Vec::new()),
            _ => (None, std::mem::take(&mut self.wake)),
        }
    }

    /// Moves pending wakers into `out` (keeps both allocations).
    pub fn drain_wakers(&mut self, out: &mut Vec<Waker>) {
        self.wake_send_room();
        out.append(&mut self.wake);
    }

    /// Writers blocked on a full session send buffer have nothing queued on their own stream,
    /// so no framing of theirs would wake them: wake them whenever there is room again.
    fn wake_send_room(&mut self) {
        if self.send_buffered < self.config.session_send_buffer as usize || self.error.is_some() {
            self.send_room_waiters.drain_into(&mut self.wake);
        }
    }
}
