//! Time-driven rules (spec §8.1, §11): keepalive PING and its timeout, the open timeout for
//! unacknowledged streams, and the linger timeout for dropped streams the peer never ends.
//! Open and linger deadlines are `now + constant`, so each lives in a FIFO queue: O(1) per
//! stream, stale entries skipped when they come due.

use std::time::Instant;

use super::core::Core;
use crate::{
    error::{Error, TimeoutKind},
    frame::ErrorCode,
};

impl Core {
    /// The earliest instant at which [`Core::handle_timeout`] has work, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.error.is_some() {
            return None;
        }
        let keepalive = match self.ping.inflight {
            // The keepalive tick still comes due while a PING is out, so that it is skipped
            // then and there (spec §8.1), not deferred to whenever the ACK arrives.
            Some((_, sent)) => {
                let timeout = sent + self.config.keepalive_timeout;
                // Ticks start with the session proper: before the peer's preface only its
                // deadline counts (`handle_timeout` does nothing else then).
                let tick = self.ping.next_keepalive.filter(|_| self.peer.is_some());
                Some(tick.map_or(timeout, |at| at.min(timeout)))
            }
            None if self.peer.is_none() => Some(self.started + self.config.keepalive_timeout),
            None => self.ping.next_keepalive,
        };
        // Called on every command and driver turn: plain comparisons, no iterator chain.
        let mut earliest = keepalive;
        if let Some(at) = self.budget_retry_at {
            if earliest.is_none_or(|e| at < e) {
                earliest = Some(at);
            }
        }
        for queue in [&self.open_timers, &self.linger_timers, &self.ack_timers] {
            if let Some(&(at, _)) = queue.front() {
                if earliest.is_none_or(|e| at < e) {
                    earliest = Some(at);
                }
            }
        }
        earliest
    }

    /// Runs every rule whose deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.error.is_some() {
            return;
        }
        if self.budget_retry_at.is_some_and(|at| now >= at) {
            self.budget_retry_at = None; // the session update is due again (§7.6)
        }
        if self.peer.is_none() {
            // Spec §2: the peer's preface must arrive within the keepalive timeout.
            if now >= self.started + self.config.keepalive_timeout {
                self.timed_out(TimeoutKind::Keepalive);
            }
            return;
        }
        // Keepalive (spec §8.1): a fixed schedule from connect, one tick per interval whatever
        // the traffic. A tick sends a PING unless one of ours is outstanding (the startup
        // PINGs, an earlier keepalive, an application's `ping`): that one's timeout already
        // covers the peer, and the tick is skipped. So a dead peer is detected within
        // interval + timeout.
        if let Some((_, sent)) = self.ping.inflight {
            if now >= sent + self.config.keepalive_timeout {
                return self.timed_out(TimeoutKind::Keepalive);
            }
        } else if let Some(at) = self.ping.next_keepalive {
            if now >= at && self.ping.to_send.is_none() {
                self.ping.to_send = Some(self.ping.next_opaque);
                self.ping.next_opaque += 1;
            }
        }
        if let Some(interval) = self.config.keepalive_interval {
            if self.ping.next_keepalive.is_some_and(|at| now >= at) {
                self.ping.next_keepalive = Some(now + interval);
            }
        }
        while let Some(&(at, id)) = self.open_timers.front() {
            if at > now {
                break;
            }
            self.open_timers.pop_front();
            let waiting = self.streams.get(&id).is_some_and(|s| s.awaiting_ack());
            if waiting {
                self.defences.open_timeouts += 1;
                self.defences.last_stream = id;
                self.count_local_reset();
                self.reset_stream(id, ErrorCode::TIMEOUT, Error::Timeout(TimeoutKind::Open));
            }
        }
        while let Some(&(at, id)) = self.ack_timers.front() {
            if at > now {
                break;
            }
            self.ack_timers.pop_front();
            // Spec §6.1: the application sent nothing on the stream in time: ACK it alone.
            if let Some(stream) = self.streams.get_mut(&id) {
                if stream.ack_hold_expired().is_ok() {
                    self.schedule_send(id);
                }
            }
        }
        while let Some(&(at, id)) = self.linger_timers.front() {
            if at > now {
                break;
            }
            self.linger_timers.pop_front();
            let lingering = self
                .streams
                .get(&id)
                .is_some_and(|s| s.handles == 0 && s.live);
            if lingering {
                self.defences.linger_timeouts += 1;
                self.defences.last_stream = id;
                self.count_local_reset();
                self.reset_stream(id, ErrorCode::TIMEOUT, Error::Timeout(TimeoutKind::Linger));
            }
        }
    }

    /// Drops timer entries that can no longer fire (acknowledged, closed or re-held
    /// streams) once a queue holds more than twice what can still be due, so heavy churn
    /// keeps the queues proportional to the streams waiting, not to the open rate × timeout.
    /// Amortised O(1) per entry.
    pub(crate) fn compact_timers(&mut self) {
        let streams = &self.streams;
        if self.open_timers.len() > 2 * self.unacked_opens as usize + 64 {
            self.open_timers
                .retain(|(_, id)| streams.get(id).is_some_and(|s| s.holds_open_slot()));
        }
        if self.ack_timers.len() > 2 * streams.len() + 64 {
            self.ack_timers
                .retain(|(_, id)| streams.get(id).is_some_and(|s| s.ack_held()));
        }
        if self.linger_timers.len() > 2 * streams.len() + 64 {
            self.linger_timers
                .retain(|(_, id)| streams.get(id).is_some_and(|s| s.handles == 0 && s.live));
        }
    }

    fn count_local_reset(&mut self) {
        self.local_resets += 1;
        if self.local_resets > self.config.max_local_resets {
            self.protocol_error(
                ErrorCode::ENHANCE_YOUR_CALM,
                super::stats::TOO_MANY_LOCAL_RESETS,
            );
        }
    }
}
