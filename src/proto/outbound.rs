//! Frames to the peer, in priority order: PING replies, GOAWAY, RESET/STOP_SENDING, window
//! updates, our PING, then DATA from the streams round-robin, one frame per stream per turn
//! (spec §7, DESIGN: control frames never wait behind bulk data).

use std::time::{Duration, Instant};

use super::{
    core::Core,
    stream::{AckDue, Fin, SendState},
    transmit::ZERO_COPY_FROM,
    Transmit,
};
use crate::frame::{Flags, Frame, FrameType, Header, PREFACE_LEN};

/// DATA bytes one stream may put in a frame per turn, so one bulk stream can't hold the
/// others back for long.
const QUANTUM: u32 = 64 * 1024;

/// Auto-tuning multiplies a window at least by this when its reader keeps up (spec §7.4):
/// 256 KiB reaches 32 MiB in under 3 round trips instead of 7 by doubling, which on a long
/// link is most of a transfer's time (the long-link figures: spec/DECISIONS.md).
const GROWTH_FACTOR: u32 = 8;

/// Links with a round trip at least this long size a growing window from the measured drain
/// rate; on shorter ones a round trip per eightfold step costs little, and a rate measured
/// over intervals this short is the reader's copying speed (a window that sat in the socket,
/// read at once), not the link's: sizing from it inflated windows on loopback, and with them
/// the bytes queued ahead of other streams' messages, worse latency under load and slower
/// bulk (spec/DECISIONS.md).
const LONG_RTT: Duration = Duration::from_millis(1);

/// The most one growth step may add: what is left of the session's growth `budget` (spec
/// §7.4), but never more than half of the whole budget, so a reader that took a burst at
/// speed and then stalled (an RPC server that read a request head) holds at most half of it
/// and the streams after it still grow; a stream that keeps up takes the rest at its next
/// step.
fn growth_step_cap(budget: u64, used: u64) -> u32 {
    let left = budget.saturating_sub(used);
    left.min(budget / 2).min(u64::from(u32::MAX)) as u32
}

/// The size a window of `size` grows to (before the cap and the budget) when its reader
/// consumed `consumed` bytes within `since` of the last grant on a link of round trip `rtt`,
/// or `None` if the reader, not the window, is the limit (spec §7.4). `updated`: the last
/// grant was a WINDOW_UPDATE (else it was the initial window, at the stream's creation).
///
/// * Short links (`rtt` < [`LONG_RTT`]): after the first update, if a quarter window was
///   consumed within two round trips and the stream has the link to itself (`shared` is
///   false: no DATA for another stream arrived within [`super::activity::SHARED_WITHIN`]),
///   `GROWTH_FACTOR` times. On such a link the window limits one stream only through
///   scheduling delays, and many streams' initial windows together already fill it; what
///   grown windows add there is bytes queued in the transport ahead of the other streams'
///   messages: holding windows at 256 KiB there cut latency-under-load's p99 about tenfold
///   with bulk unchanged (spec/DECISIONS.md).
/// * Long links: if at the drain rate c/t the reader would empty all of the window within
///   two round trips, to `GROWTH_FACTOR` times its size or to four bandwidth-delay products
///   at that rate if that is more. Four: quarter-window updates need the window to cover the
///   BDP plus a quarter plus the update's own trip, and a rate measured over one
///   window-limited burst underestimates the link (a 256 KiB burst on a long link showed
///   about half its rate). So a burst read much faster than the RTT makes the window jump
///   to what the link holds instead of taking a round trip per eightfold step.
///
/// The caller caps one step at half of the growth budget ([`growth_step_cap`]).
fn grown_window(
    size: u32,
    consumed: u32,
    since: Duration,
    rtt: Duration,
    updated: bool,
    shared: bool,
) -> Option<u32> {
    let saturate = |n: u128| n.min(u128::from(u32::MAX)) as u32;
    let multiplied = u128::from(size) * u128::from(GROWTH_FACTOR);
    if rtt < LONG_RTT {
        // Other streams' traffic on a short link: see the doc above.
        return (updated && !shared && since < rtt * 2).then(|| saturate(multiplied));
    }
    // Bytes the reader drains in `per` at its rate since the last grant.
    let drained = |per: Duration| u128::from(consumed) * per.as_nanos() / since.as_nanos().max(1);
    if drained(rtt * 2) < u128::from(size) {
        return None;
    }
    Some(saturate(multiplied.max(drained(rtt * 4))))
}

impl Core {
    /// Whether [`Core::poll_transmit`] has anything to add.
    pub fn wants_transmit(&self) -> bool {
        self.wants_control_transmit()
            || (self.peer.is_some()
                && !self.send_queue.is_empty()
                && !self.waiting_for_session_credit)
    }

    /// Whether frames that go ahead of all DATA wait to be sent: the preface, GOAWAY, PING
    /// and its reply, RESET/STOP_SENDING, window updates.
    fn wants_control_transmit(&self) -> bool {
        !self.preface_sent
            || self.goaway_out.is_some()
            || (self.peer.is_some()
                && (self.pong.is_some()
                    || !self.control.is_empty()
                    || !self.update_queue.is_empty()
                    || self.session_update_due()
                    || self.ping.to_send.is_some()))
    }

    /// Spec §7.3: a session update is due once a quarter of the window was consumed, or as
    /// soon as anything was consumed while the peer's remaining credit is under a quarter
    /// (so stalled streams holding most of the window can't starve the others).
    fn session_update_due(&self) -> bool {
        // While a memory budget is spent, the update waits for the retry (§7.6).
        self.budget_retry_at.is_none() && self.session_recv.update_due()
    }

    /// Appends frames to `tx` until it holds about `max_bytes` or nothing is left to send.
    ///
    /// Single slot (spec §8.1, L20): while a forced reply (PING reply, refusal) framed by an
    /// earlier call is still in `tx`, unwritten, this call adds nothing; the reply that waits
    /// stays in the core, and with it the core takes no input ([`Core::can_receive`]). So a
    /// peer that sends PINGs or doomed streams but never reads can't make us queue replies
    /// without bound. A shell whose transport has failed drops `tx`, which frees the slot.
    pub fn poll_transmit(&mut self, now: Instant, tx: &mut Transmit, max_bytes: usize) {
        let forced = self.pong.is_some() || self.forced_replies > 0;
        if forced && tx.holds_forced_reply() {
            return;
        }
        self.fill_transmit(now, tx, max_bytes);
        if forced {
            tx.mark_forced_reply();
        }
    }

    fn fill_transmit(&mut self, now: Instant, tx: &mut Transmit, max_bytes: usize) {
        let start = tx.len();
        if !self.preface_sent {
            self.preface_sent = true;
            let preface: [u8; PREFACE_LEN] = self.config.preface().encode();
            tx.push_raw(&preface);
            // Spec §2: the first PING rides right behind the preface, without waiting for
            // the peer's, so the RTT that auto-tuning needs (§7.4) is known one round trip
            // sooner: by the time the peer's first stream data arrives. Not once the session
            // has failed: then only its GOAWAY follows.
            if self.error.is_none() {
                self.push_ping(now, tx);
            }
        }
        if let Some(goaway) = self.goaway_out.take() {
            if self.error.is_none() {
                // Streams opened before a graceful GOAWAY continue (spec §8.2): their SYNs
                // must reach the peer first, or it would see no stream left and close.
                let mut unsent: Vec<u32> = (self.streams.iter())
                    .filter_map(|(id, s)| s.syn_pending().then_some(*id))
                    .collect();
                unsent.sort_unstable();
                for id in unsent {
                    self.flush_open_flags(tx, id);
                }
            }
            self.push_frame(tx, &goaway);
        }
        if self.peer.is_none() || self.error.is_some() {
            return;
        }
        if let Some(opaque) = self.pong.take() {
            self.push_frame(tx, &Frame::Ping { ack: true, opaque });
        }
        while let Some(frame) = self.control.pop_front() {
            if let Frame::Reset { .. } = frame {
                self.forced_replies = self.forced_replies.saturating_sub(1);
            }
            if let Frame::StopSending { stream, .. } = frame {
                // STOP_SENDING may not precede the stream's SYN or ACK on the wire, and SYNs
                // go out in id order (spec §5.1): lower ids still unsent go first.
                if self.streams.get(&stream).is_some_and(|s| s.syn_pending()) {
                    let mut unsent: Vec<u32> = (self.streams.iter())
                        .filter_map(|(id, s)| (s.syn_pending() && *id < stream).then_some(*id))
                        .collect();
                    unsent.sort_unstable();
                    for id in unsent {
                        self.flush_open_flags(tx, id);
                    }
                }
                self.flush_open_flags(tx, stream);
            }
            self.push_frame(tx, &frame);
        }
        if self.session_update_due() {
            let want = self.session_recv.unacked();
            let grant = match &mut self.budget {
                // Spec §7.6: beyond the floor and the promise, only what the budget gives.
                Some(share) => {
                    let exposure = self.session_recv.size() - want;
                    share.grant(u64::from(exposure), u64::from(want)) as u32
                }
                None => want,
            };
            if grant < want {
                self.budget_retry_at = Some(now + self.budget_backoff);
                self.budget_backoff =
                    (self.budget_backoff * 2).min(super::budget::BUDGET_RETRY_MAX);
            } else {
                self.budget_backoff = super::budget::BUDGET_RETRY;
            }
            if let Some(increment) = self.session_recv.take_update_up_to(grant) {
                self.push_frame(
                    tx,
                    &Frame::WindowUpdate {
                        stream: 0,
                        increment,
                    },
                );
            }
        }
        self.push_stream_updates(now, tx);
        self.push_ping(now, tx);
        self.push_data(tx, start + max_bytes);
    }

    fn push_ping(&mut self, now: Instant, tx: &mut Transmit) {
        if let Some(opaque) = self.ping.to_send.take() {
            self.ping.inflight = Some((opaque, now));
            self.push_frame(tx, &Frame::Ping { ack: false, opaque });
        }
    }

    fn push_frame(&mut self, tx: &mut Transmit, frame: &Frame) {
        self.frames_sent += 1;
        tx.push_control(frame);
    }

    /// Puts a pending SYN or ACK on the wire as an empty DATA frame, so that no other frame
    /// of the stream precedes it (spec §6.1).
    fn flush_open_flags(&mut self, tx: &mut Transmit, id: u32) {
        if let Some(stream) = self.streams.get_mut(&id) {
            let flags = stream.take_open_flags();
            if flags == Flags::NONE {
                return;
            }
            self.frames_sent += 1;
            tx.push_header(&Header {
                kind: FrameType::Data,
                flags,
                stream: id,
                len: 0,
            });
        }
    }

    /// How far all stream windows together may grow above the initial window (spec §7.4):
    /// with at most 15 streams stalled, at least one initial window of session credit stays
    /// free (§7.5).
    pub(crate) fn growth_budget(&self) -> u64 {
        let c = &self.config;
        u64::from(c.session_window).saturating_sub(16 * u64::from(c.initial_stream_window))
    }

    fn push_stream_updates(&mut self, now: Instant, tx: &mut Transmit) {
        let rtt = self.ping.rtt;
        let max_window = self.config.max_stream_window;
        let budget = self.growth_budget();
        while let Some(id) = self.update_queue.pop_front() {
            let Some(stream) = self.streams.get_mut(&id) else {
                continue;
            };
            stream.in_update_queue = false;
            if !stream.recv_open() {
                continue;
            }
            // Auto-tuning (spec §7.4): if the reader drains the window faster than the link
            // refills it, the window, not the reader, limits throughput: grow it, up to the
            // cap and within what is left of the session's growth budget.
            let w = &mut stream.recv_window;
            // A spent memory budget stops window growth (§7.6).
            let tight = self.budget.as_ref().is_some_and(|b| b.budget().is_tight());
            if let Some(rtt) = rtt.filter(|_| w.size() < max_window && !tight) {
                let since = now.saturating_duration_since(stream.last_grant);
                let shared = self.data_activity.shared_with_others(id, now);
                if let Some(target) =
                    grown_window(w.size(), w.unacked(), since, rtt, stream.updated, shared)
                {
                    let extra = target
                        .min(max_window)
                        .saturating_sub(w.size())
                        .min(growth_step_cap(budget, self.window_growth));
                    if extra > 0 {
                        w.grow(extra);
                        self.window_growth += u64::from(extra);
                    }
                }
            }
            if let Some(increment) = w.take_update(true) {
                stream.last_grant = now;
                stream.updated = true;
                self.flush_open_flags(tx, id);
                self.frames_sent += 1;
                tx.push_control(&Frame::WindowUpdate {
                    stream: id,
                    increment,
                });
            }
        }
    }

    /// Frames the first bytes of an application write of `len` bytes on stream `id` for the
    /// caller to put on the transport itself, straight from its own buffer (no copy into the
    /// send queue): one DATA frame of `n` bytes, its credit spent and counted as sent. The
    /// caller writes the returned header and then the first `n` bytes, before any other frame.
    ///
    /// `None` (the write takes the queued path) unless the session is quiet and the bytes can
    /// go out at once: no control frame waits (they go ahead of all DATA), the stream's open
    /// flags are out, its send queue is empty (order), and both credits cover at least `min`
    /// bytes. Other streams' queued DATA may wait meanwhile: a write-through frame is at most
    /// one `QUANTUM`, a round-robin turn's worth, so it takes its turn like theirs.
    pub fn take_write_through(&mut self, id: u32, len: usize, min: usize) -> Option<Header> {
        if self.wants_control_transmit() || self.error.is_some() {
            return None;
        }
        let max_frame = self.peer?.max_frame_payload.min(QUANTUM);
        let session_credit = self.session_send_credit.get();
        let stream = self.streams.get_mut(&id)?;
        if !matches!(
            stream.send,
            SendState::Open {
                fin: Fin::No,
                ack: AckDue::No
            }
        ) || stream.send_buffered() > 0
        {
            return None;
        }
        let n = (len.min(u32::MAX as usize) as u32)
            .min(stream.send_credit.get())
            .min(session_credit)
            .min(max_frame);
        if (n as usize) < min {
            return None;
        }
        // Credit checked above: n <= both credits.
        let _ = stream.send_credit.spend(n);
        let _ = self.session_send_credit.spend(n);
        self.bytes_sent += u64::from(n);
        self.frames_sent += 1;
        Some(Header {
            kind: FrameType::Data,
            flags: Flags::NONE,
            stream: id,
            len: n,
        })
    }

    fn push_data(&mut self, tx: &mut Transmit, limit: usize) {
        let max_frame = self.peer.map_or(0, |p| p.max_frame_payload).min(QUANTUM);
        let mut turns = self.send_queue.len();
        // Streams whose bytes wait for session credit alone, in queue order. They keep their
        // places at the front, but the streams behind them still go: a FIN, a SYN or an ACK
        // needs no credit, so one starved stream must not hold up another's (spec §7.5).
        let mut credit_waiters: Vec<u32> = Vec::new();
        while turns > 0 && tx.len() < limit {
            turns -= 1;
            let Some(id) = self.send_queue.pop_front() else {
                break;
            };
            let session_credit = self.session_send_credit.get();
            let Some(stream) = self.streams.get_mut(&id) else {
                continue;
            };
            stream.in_send_queue = false;
            if !stream.wants_send(self.min_chunk) {
                continue;
            }
            // No DATA once a STOP_SENDING made the FIN owed (§6.2): only that empty FIN.
            let data_allowed = matches!(stream.fin(), Some(Fin::No | Fin::Finish));
            let buffered = if data_allowed {
                stream.send_buffered()
            } else {
                0
            };
            let n = (buffered as u32)
                .min(stream.send_credit.get())
                .min(session_credit)
                .min(max_frame);
            // Session credit too small to be worth a frame gets the same silly-window rule as
            // stream credit in `wants_send` (spec §7.4.1, §12 "data dribble": a peer granting
            // WINDOW_UPDATE(0, 1) must not get a 1-byte frame per grant).
            let worth = (buffered as u32).min(self.min_chunk).max(1);
            if buffered > 0 && session_credit < worth && !stream.open_flags_due() {
                // Only session credit is missing: it keeps its place and waits for
                // WINDOW_UPDATE(0) (below); the streams behind it are still looked at.
                stream.in_send_queue = true;
                credit_waiters.push(id);
                continue;
            }
            let mut flags = stream.take_open_flags();
            let fin = match stream.fin() {
                Some(Fin::Finish) => buffered == n as usize,
                Some(Fin::Stop(_)) => true,
                _ => false,
            };
            if fin {
                flags = flags.union(Flags::FIN);
                stream.fin_written();
            }
            if n == 0 && flags == Flags::NONE {
                continue;
            }
            // Credit checked above: n <= both credits.
            let _ = stream.send_credit.spend(n);
            let _ = self.session_send_credit.spend(n);
            tx.push_header(&Header {
                kind: FrameType::Data,
                flags,
                stream: id,
                len: n,
            });
            let mut left = n as usize;
            if let Some(buf) = stream.send_buf.as_mut() {
                if left < ZERO_COPY_FROM {
                    // Copied into the batch anyway: straight from the queue, no `Bytes`
                    // made, and the queue keeps its small allocation for the next message.
                    left -= buf.take_into(left, |part| tx.push_raw(part));
                }
                while left > 0 {
                    let chunk = buf.pop(left).expect("n <= buffered");
                    left -= chunk.len();
                    tx.push_payload(chunk);
                }
                if buf.is_empty() {
                    if let Some(queue) = stream.send_buf.take() {
                        self.queue_pool.put(queue);
                    }
                }
            }
            self.send_buffered -= n as usize;
            self.bytes_sent += n as u64;
            self.frames_sent += 1;
            if n > 0 || fin {
                stream.wake_write(&mut self.wake);
            }
            if stream.wants_send(self.min_chunk) {
                stream.in_send_queue = true;
                self.send_queue.push_back(id);
            }
            if fin {
                self.after_change(id);
            }
        }
        if !credit_waiters.is_empty() {
            let waiting = credit_waiters.len();
            for id in credit_waiters.into_iter().rev() {
                self.send_queue.push_front(id);
            }
            // Only streams waiting for session credit are left: nothing to send until a
            // WINDOW_UPDATE(0) or new work (`wants_transmit` stays false meanwhile, so the
            // driver doesn't turn for nothing).
            self.waiting_for_session_credit = self.send_queue.len() == waiting;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u32 = 1024;
    const MS: Duration = Duration::from_millis(1);
    const US: Duration = Duration::from_micros(1);

    #[test]
    fn a_reader_slower_than_two_round_trips_per_window_keeps_the_window() {
        // 64 KiB of a 256 KiB window in 30 ms at 20 ms RTT: 120 ms per window.
        assert_eq!(
            grown_window(256 * KIB, 64 * KIB, 30 * MS, 20 * MS, true, false),
            None
        );
        // Short link: a quarter window took more than two round trips.
        assert_eq!(
            grown_window(256 * KIB, 64 * KIB, 90 * US, 40 * US, true, false),
            None
        );
    }

    #[test]
    fn a_window_drained_within_two_round_trips_grows_eightfold() {
        // 64 KiB in 5 ms at 20 ms RTT: the window lasts 20 ms; 4 BDPs are 1 MiB, 8x is 2 MiB.
        assert_eq!(
            grown_window(256 * KIB, 64 * KIB, 5 * MS, 20 * MS, true, false),
            Some(2048 * KIB)
        );
        // Short link, however fast the reader: eightfold, and only after a first update.
        assert_eq!(
            grown_window(256 * KIB, 64 * KIB, US, 40 * US, true, false),
            Some(2048 * KIB)
        );
        assert_eq!(
            grown_window(256 * KIB, 64 * KIB, US, 40 * US, false, false),
            None
        );
    }

    #[test]
    fn a_short_link_shared_with_other_streams_keeps_the_window() {
        assert_eq!(
            grown_window(256 * KIB, 64 * KIB, US, 40 * US, true, true),
            None
        );
        // A long link needs its bandwidth-delay product whoever else sends.
        assert_eq!(
            grown_window(256 * KIB, 64 * KIB, 5 * MS, 20 * MS, true, true),
            Some(2048 * KIB)
        );
    }

    #[test]
    fn a_burst_much_shorter_than_a_long_rtt_jumps_to_four_bdps() {
        // 256 KiB read within 1 ms of the grant, 20 ms RTT: 256 KiB/ms x 20 ms x 4 = 20 MiB.
        assert_eq!(
            grown_window(256 * KIB, 256 * KIB, MS, 20 * MS, true, false),
            Some(20 * 1024 * KIB)
        );
        // All at once: as large as the caller's caps allow.
        assert_eq!(
            grown_window(256 * KIB, 64 * KIB, Duration::ZERO, 20 * MS, true, false),
            Some(u32::MAX)
        );
    }

    #[test]
    fn one_step_takes_at_most_half_of_the_budget() {
        assert_eq!(growth_step_cap(60 << 20, 0), 30 << 20);
        assert_eq!(growth_step_cap(60 << 20, 30 << 20), 30 << 20);
        assert_eq!(growth_step_cap(60 << 20, 50 << 20), 10 << 20);
        assert_eq!(growth_step_cap(60 << 20, 61 << 20), 0);
    }
}
