//! Opening a stream (its id, spec §5.1; the limits that make an open wait, §6.1, §11 L4, L5)
//! and accepting one from the backlog (tombstones passed over, §6.4).

use std::{
    task::{Poll, Waker},
    time::Instant,
};

use super::{
    stream::{Stream, HANDLE_RECV, HANDLE_SEND},
    Core, ACK_DELAY,
};
use crate::error::{Error, Side};

impl Core {
    /// Opens a stream if the limits allow, else registers `waker` and returns `Pending`
    /// (spec §6: at most the peer's `max_concurrent_streams` live and `accept_backlog`
    /// unacknowledged opens).
    pub fn poll_open(&mut self, now: Instant, waker: &Waker) -> Poll<Result<u32, Error>> {
        if let Some(err) = &self.error {
            return Poll::Ready(Err(err.clone()));
        }
        if self.goaway_sent.is_some() {
            return Poll::Ready(Err(Error::GoingAway { by: Side::Local }));
        }
        if self.goaway_recv.is_some() {
            return Poll::Ready(Err(Error::GoingAway { by: Side::Remote }));
        }
        let Some(peer) = self.peer else {
            self.open_waiters.register(waker);
            return Poll::Pending;
        };
        if self.ids.exhausted() {
            return Poll::Ready(Err(Error::StreamIdsExhausted));
        }
        let max_live = peer
            .max_concurrent_streams
            .min(self.config.max_outbound_streams);
        if self.outbound_live >= max_live || self.unacked_opens >= peer.accept_backlog {
            self.open_waiters.register(waker);
            return Poll::Pending;
        }
        let id = self.ids.allocate().expect("checked: not exhausted");
        let mut stream = Stream::opened(
            now,
            peer.initial_stream_window,
            self.config.initial_stream_window,
        );
        stream.handles = HANDLE_SEND | HANDLE_RECV;
        self.streams.insert(id, Box::new(stream));
        self.outbound_live += 1;
        self.unacked_opens += 1;
        self.open_timers
            .push_back((now + self.config.open_timeout, id));
        self.compact_timers();
        self.schedule_send(id);
        Poll::Ready(Ok(id))
    }

    /// Takes the next inbound stream from the backlog, else registers `waker`. Ends with an
    /// error once no stream can arrive any more (GOAWAY either way, or the session ended).
    ///
    /// The stream's ACK is held for up to [`ACK_DELAY`] so that it rides on the first frame
    /// the application sends on it (spec §6.1): a reply right after the accept then costs
    /// one frame and one write, not two.
    pub fn poll_accept(&mut self, now: Instant, waker: &Waker) -> Poll<Result<u32, Error>> {
        while let Some(id) = self.backlog.pop_front() {
            let Some(stream) = self.streams.get_mut(&id) else {
                // The tombstone of a stream the peer reset while it waited: passed over, it
                // leaves the rapid-reset count (spec §11 L17).
                self.unaccepted_resets = self.unaccepted_resets.saturating_sub(1);
                continue;
            };
            stream.in_backlog = false;
            stream.handles = HANDLE_SEND | HANDLE_RECV;
            // The ACK goes out even if a STOP_SENDING already ended our send half: the FIN
            // then rides on it (spec §6.2).
            let live_send = stream.accept().is_ok();
            // Each stream the application takes earns back one locally generated reset
            // (spec §11 L16), so ordinary churn never trips that limit.
            self.local_resets = self.local_resets.saturating_sub(1);
            if live_send {
                self.ack_timers.push_back((now + ACK_DELAY, id));
                self.compact_timers();
                self.schedule_send(id); // queued at once only if it has data or a FIN
            }
            return Poll::Ready(Ok(id));
        }
        if let Some(err) = &self.error {
            return Poll::Ready(Err(err.clone()));
        }
        if let Some((_, _)) = self.goaway_recv {
            return Poll::Ready(Err(Error::GoingAway { by: Side::Remote }));
        }
        if self.goaway_sent.is_some() {
            return Poll::Ready(Err(Error::GoingAway { by: Side::Local }));
        }
        self.accept_waiters.register(waker);
        Poll::Pending
    }
}
