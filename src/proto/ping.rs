//! PING from the application, its reply, and the round-trip time it measures (spec §8.1).

use std::{
    task::{Poll, Waker},
    time::{Duration, Instant},
};

use super::{waiters::Waiters, Core};
use crate::error::Error;

#[derive(Debug, Default)]
pub(crate) struct PingState {
    /// Our PING to put on the wire.
    pub(crate) to_send: Option<u64>,
    /// Our PING on the wire: opaque and when it left.
    pub(crate) inflight: Option<(u64, Instant)>,
    pub(crate) next_opaque: u64,
    /// When the keepalive sends its next PING.
    pub(crate) next_keepalive: Option<Instant>,
    pub(crate) rtt: Option<Duration>,
    /// Completed round trips, so `ping()` callers can tell theirs finished.
    pub(crate) completed: u64,
    pub(crate) waiters: Waiters,
}

impl Core {
    /// Queues a PING (if none is in flight) and returns the number of round trips completed
    /// so far; the caller's round trip is done once [`Core::pings_completed`] exceeds it.
    pub fn send_ping(&mut self, now: Instant) -> u64 {
        if self.ping.inflight.is_none() && self.ping.to_send.is_none() {
            self.ping.to_send = Some(self.ping.next_opaque);
            self.ping.next_opaque += 1;
            let _ = now;
        }
        self.ping.completed
    }

    /// Round trips completed; registers `waker` to hear of the next one.
    pub fn poll_ping(&mut self, since: u64, waker: &Waker) -> Poll<Result<Duration, Error>> {
        if self.ping.completed > since {
            return Poll::Ready(Ok(self.ping.rtt.unwrap_or_default()));
        }
        if let Some(err) = &self.error {
            return Poll::Ready(Err(err.clone()));
        }
        self.ping.waiters.register(waker);
        Poll::Pending
    }

    /// Round trips completed so far.
    pub fn pings_completed(&self) -> u64 {
        self.ping.completed
    }
}
