//! Model-based property test of the protocol core (`braid::proto::Core`): two cores run
//! back to back in the deterministic in-memory harness (`support::pair`), driven by random
//! application operations, partial deliveries and clock jumps. After every step the test
//! checks what the applications observed against a model of what was written, plus the
//! flow-control invariants of spec §7, and that two correct cores never fail each other.

mod support;

use std::{collections::BTreeMap, fmt, sync::atomic::Ordering::SeqCst, task::Poll, time::Duration};

use braid::{frame::Frame, Config, ErrorCode};
use bytes::Bytes;
use proptest::{prelude::*, sample::Index, test_runner::TestCaseError};
use support::pair::{counting_waker, waker, End, Event, Pair};

use braid::proto::{HANDLE_RECV as RECV, HANDLE_SEND as SEND};

/// Spec §6.3: a RESET discards the unread data of a receive half that has seen FIN unless
/// the stream was already closed on the wire (see
/// `reset_discards_unread_data_of_finished_receive_half`).
const STRICT_FINISHED_RESET: bool = true;

// ----- operations -----

#[derive(Clone)]
enum Op {
    Open(End),
    Accept(End),
    Write {
        end: End,
        pick: Index,
        len: usize,
        owned: bool,
    },
    /// A large application write going straight to the wire (the runtime's write-through
    /// path), when the core allows it.
    WriteThrough {
        end: End,
        pick: Index,
        len: usize,
    },
    Read {
        end: End,
        pick: Index,
        max: usize,
        chunk: bool,
    },
    Finish {
        end: End,
        pick: Index,
    },
    Reset {
        end: End,
        pick: Index,
        code: u32,
    },
    Stop {
        end: End,
        pick: Index,
        code: u32,
    },
    Release {
        end: End,
        pick: Index,
        halves: u8,
    },
    Ping(End),
    Pump(End),
    Deliver {
        from: End,
        amount: Index,
    },
    DeliverAll,
    Advance(Duration),
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = |p: &Index| p.index(1 << 16) % 97;
        match self {
            Op::Open(e) => write!(f, "Open({e:?})"),
            Op::Accept(e) => write!(f, "Accept({e:?})"),
            Op::Write {
                end,
                pick,
                len,
                owned,
            } => {
                write!(
                    f,
                    "Write({end:?}, #{}, {len}{})",
                    i(pick),
                    if *owned { ", owned" } else { "" }
                )
            }
            Op::WriteThrough { end, pick, len } => {
                write!(f, "WriteThrough({end:?}, #{}, {len})", i(pick))
            }
            Op::Read {
                end,
                pick,
                max,
                chunk,
            } => {
                write!(
                    f,
                    "Read({end:?}, #{}, {max}{})",
                    i(pick),
                    if *chunk { ", chunk" } else { "" }
                )
            }
            Op::Finish { end, pick } => write!(f, "Finish({end:?}, #{})", i(pick)),
            Op::Reset { end, pick, code } => write!(f, "Reset({end:?}, #{}, {code:#x})", i(pick)),
            Op::Stop { end, pick, code } => write!(f, "Stop({end:?}, #{}, {code:#x})", i(pick)),
            Op::Release { end, pick, halves } => {
                write!(f, "Release({end:?}, #{}, {halves})", i(pick))
            }
            Op::Ping(e) => write!(f, "Ping({e:?})"),
            Op::Pump(e) => write!(f, "Pump({e:?})"),
            Op::Deliver { from, amount } => write!(f, "Deliver({from:?}, {:?})", amount),
            Op::DeliverAll => write!(f, "DeliverAll"),
            Op::Advance(d) => write!(f, "Advance({d:?})"),
        }
    }
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![Just(End::Client), Just(End::Server)]
}

fn code() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(ErrorCode::CANCEL.0),
        0x100u32..0x110,
        any::<u32>()
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let len = prop_oneof![3 => 0usize..=64, 3 => 0usize..=2048, 2 => 0usize..=16384];
    let max = prop_oneof![1 => 1usize..=64, 1 => 1usize..=4096, 2 => Just(1usize << 20)];
    let delay = prop_oneof![
        3 => (0u64..=100).prop_map(Duration::from_millis),
        2 => (0u64..=2000).prop_map(Duration::from_millis),
        1 => (0u64..=25_000).prop_map(Duration::from_millis),
    ];
    prop_oneof![
        3 => end().prop_map(Op::Open),
        3 => end().prop_map(Op::Accept),
        8 => (end(), any::<Index>(), len, any::<bool>())
            .prop_map(|(end, pick, len, owned)| Op::Write { end, pick, len, owned }),
        3 => (end(), any::<Index>(), 0usize..=16384)
            .prop_map(|(end, pick, len)| Op::WriteThrough { end, pick, len }),
        8 => (end(), any::<Index>(), max, any::<bool>())
            .prop_map(|(end, pick, max, chunk)| Op::Read { end, pick, max, chunk }),
        2 => (end(), any::<Index>()).prop_map(|(end, pick)| Op::Finish { end, pick }),
        1 => (end(), any::<Index>(), code()).prop_map(|(end, pick, code)| Op::Reset { end, pick, code }),
        1 => (end(), any::<Index>(), code()).prop_map(|(end, pick, code)| Op::Stop { end, pick, code }),
        1 => (end(), any::<Index>(), 1u8..=3)
            .prop_map(|(end, pick, halves)| Op::Release { end, pick, halves }),
        2 => end().prop_map(Op::Ping),
        5 => end().prop_map(Op::Pump),
        6 => (end(), any::<Index>()).prop_map(|(from, amount)| Op::Deliver { from, amount }),
        2 => Just(Op::DeliverAll),
        3 => delay.prop_map(Op::Advance),
    ]
}

/// Defaults with small windows, frames, backlogs and buffers, so limits are hit often.
fn config() -> impl Strategy<Value = Config> {
    (
        prop_oneof![(0u32..=6).prop_map(|k| 1024 << k), 1024u32..=65536], // initial window
        (
            prop_oneof![Just(1u32), Just(2), Just(3), Just(4), Just(16)], // max window: initial * m
            prop_oneof![Just(0u32), Just(1), Just(3), Just(1024)], // growth budget: initial * g
        ),
        prop_oneof![Just(1024u32), Just(4096), Just(16 * 1024), Just(64 * 1024)],
        1u32..=8,  // accept backlog
        1u32..=20, // max inbound streams
        1u32..=20, // max outbound streams
        prop_oneof![Just(1024u32), Just(8 * 1024), Just(256 * 1024)],
        any::<bool>(),                     // session send buffer tight
        prop_oneof![1u32..=4, Just(4096)], // closed-stream memory
    )
        .prop_map(
            |(isw, (m, g), mfp, backlog, inbound, outbound, ssb, tight, memory)| {
                let max = isw * m;
                Config::default()
                    .with_initial_stream_window(isw)
                    .with_max_stream_window(max)
                    // A budget of none, one or three windows' growth, or more than the caps use.
                    .with_session_window((16 + g).saturating_mul(isw).min(braid::frame::MAX_WINDOW))
                    .with_max_inbound_streams(inbound)
                    .with_max_outbound_streams(outbound)
                    .with_accept_backlog(backlog)
                    .with_max_frame_payload(mfp)
                    .with_stream_send_buffer(ssb)
                    .with_session_send_buffer(if tight { ssb * 2 } else { ssb * 64 })
                    .with_closed_stream_memory(memory)
            },
        )
}

// ----- the model -----

/// What one end's application did and saw on one stream, plus what its core sent and
/// received (from the harness's frame log).
#[derive(Debug, Default, Clone)]
struct Half {
    /// Bytes this end's application wrote (accepted by `poll_write`).
    written: Vec<u8>,
    /// Bytes this end's application read.
    read: Vec<u8>,
    finish_called: bool,
    eof: bool,
    /// Handles the application holds (SEND | RECV); 0 before accept and after release.
    handles: u8,
    accepted: bool,
    fin_sent: bool,
    fin_rcvd: bool,
    /// A RESET went out or came in on this stream.
    rst: bool,
    stop_sent: bool,
    stop_rcvd: bool,
    /// A reset or stop took effect while the stream was not closed: reads must not return
    /// bytes any more (spec §4.5, §6.3).
    dead: bool,
}

#[derive(Debug, Default)]
struct Model {
    streams: BTreeMap<u32, [Half; 2]>,
    last_opened: [u32; 2],
    last_accepted: [u32; 2],
    /// Virtual time at which nothing was last in flight.
    last_quiet: Duration,
}

/// The byte an end writes at offset `k` of stream `id` (position-dependent, so a lost,
/// duplicated or reordered byte shows).
fn pattern(id: u32, end: End, from: usize, len: usize) -> Vec<u8> {
    (from..from + len)
        .map(|k| (k.wrapping_mul(7) + k / 251 + id as usize * 31 + end.idx() * 101) as u8)
        .collect()
}

impl Half {
    /// Both directions ended at this end (spec §6.5).
    fn closed(&self) -> bool {
        self.rst || (self.fin_sent && self.fin_rcvd)
    }

    /// A RESET (sent or received) takes effect at this end.
    fn reset(&mut self) {
        let keeps_data = if STRICT_FINISHED_RESET {
            self.closed()
        } else {
            self.rst || self.fin_rcvd
        };
        if !keeps_data {
            self.dead = true;
        }
        self.rst = true;
    }

    /// STOP_SENDING goes out: only from a receive half still open.
    fn stop(&mut self) {
        if !self.fin_rcvd && !self.rst && !self.stop_sent {
            self.stop_sent = true;
            self.dead = true;
        }
    }

    /// The send half is open: not finished, reset or stopped by the peer.
    fn send_open(&self) -> bool {
        !self.finish_called && !self.rst && !self.stop_rcvd
    }
}

impl Model {
    fn half(&mut self, id: u32, end: End) -> &mut Half {
        &mut self.streams.entry(id).or_default()[end.idx()]
    }

    /// Streams whose handles at `end` include `mask`, in id order.
    fn with_handle(&self, end: End, mask: u8) -> Vec<u32> {
        self.streams
            .iter()
            .filter(|(_, h)| h[end.idx()].handles & mask != 0)
            .map(|(id, _)| *id)
            .collect()
    }

    fn pick(&self, end: End, mask: u8, pick: &Index) -> Option<u32> {
        let ids = self.with_handle(end, mask);
        (!ids.is_empty()).then(|| *pick.get(&ids))
    }

    /// Follows the frames each end sent and received.
    fn apply_events(&mut self, events: Vec<Event>) {
        for ev in events {
            let (end, frame, sent) = match ev {
                Event::Sent(e, f) => (e, f, true),
                Event::Received(e, f) => (e, f, false),
            };
            match frame {
                Frame::Data { stream, flags, .. } => {
                    let h = self.half(stream, end);
                    if flags.contains(braid::frame::Flags::FIN) {
                        if sent {
                            h.fin_sent = true;
                        } else {
                            h.fin_rcvd = true;
                        }
                    }
                }
                // Application resets and stops were applied when called; these are the
                // ones the cores generate (timeouts) or receive.
                Frame::Reset { stream, .. } => {
                    let h = self.half(stream, end);
                    if !h.closed() {
                        h.reset();
                    }
                }
                Frame::StopSending { stream, .. } => {
                    let h = self.half(stream, end);
                    if sent {
                        assert_stop_recorded(h);
                    } else {
                        h.stop_rcvd = true;
                    }
                }
                _ => {}
            }
        }
    }
}

/// A STOP_SENDING a core sent must come from an application `stop` (or `release`) the
/// model already recorded.
fn assert_stop_recorded(h: &Half) {
    assert!(h.stop_sent, "STOP_SENDING sent without a stop call");
}

// ----- one step -----

struct Run {
    pair: Pair,
    model: Model,
    keepalive_timeout: Duration,
}

impl Run {
    fn new(client: Config, server: Config) -> Run {
        let keepalive_timeout = client.keepalive_timeout.min(server.keepalive_timeout);
        let mut run = Run {
            pair: Pair::new(client, server),
            model: Model::default(),
            keepalive_timeout,
        };
        let events = run.pair.take_events();
        run.model.apply_events(events);
        run
    }

    fn sync(&mut self) -> Result<(), TestCaseError> {
        let events = self.pair.take_events();
        self.model.apply_events(events);
        self.check_invariants()
    }

    /// Delivers everything both ways; then both sides must agree on the session windows.
    fn deliver_all(&mut self) -> Result<(), TestCaseError> {
        self.pair.deliver_all();
        self.model.last_quiet = self.pair.elapsed();
        for end in End::BOTH {
            let (tx, rx) = (
                self.pair.core_ref(end).stats(),
                self.pair.core_ref(end.peer()).stats(),
            );
            prop_assert_eq!(
                tx.bytes_sent,
                rx.bytes_received,
                "{:?} -> peer: bytes sent/received",
                end
            );
            prop_assert_eq!(
                tx.session_send_credit,
                rx.session_recv_credit,
                "{:?} -> peer: session credit differs with nothing in flight",
                end
            );
            // Below a quarter of the window, every consumed byte is granted back at once
            // (spec §7.3 low-water trigger): credit + unread bytes make the whole window.
            let window = self.pair.core_ref(end.peer()).config().session_window;
            if rx.session_recv_credit < (window / 4).max(1) {
                prop_assert_eq!(
                    rx.session_recv_credit as usize + rx.recv_buffered,
                    window as usize,
                    "{:?}: low session credit, yet consumed bytes were not granted back",
                    end.peer()
                );
            }
        }
        Ok(())
    }

    fn check_invariants(&self) -> Result<(), TestCaseError> {
        for end in End::BOTH {
            let core = self.pair.core_ref(end);
            if let Some(err) = core.error() {
                return Err(TestCaseError::fail(format!("{end:?} core failed: {err}")));
            }
            let cfg = core.config();
            let stats = core.stats();
            prop_assert!(
                stats.session_recv_credit as u64 + stats.recv_buffered as u64
                    <= cfg.session_window as u64,
                "{:?}: session credit {} + buffered {} > session window {}",
                end,
                stats.session_recv_credit,
                stats.recv_buffered,
                cfg.session_window
            );
            prop_assert!(stats.send_buffered <= cfg.session_send_buffer as usize);
            let mut sum = 0;
            let mut growth = 0u64;
            for &id in self.model.streams.keys() {
                if let Some(braid::proto::StreamRecv {
                    buffered,
                    window: size,
                    ..
                }) = core.stream_recv(id)
                {
                    growth += u64::from(size - cfg.initial_stream_window);
                    prop_assert!(
                        buffered <= size as usize,
                        "{:?} stream {}: {} buffered > window {}",
                        end,
                        id,
                        buffered,
                        size
                    );
                    prop_assert!(
                        size >= cfg.initial_stream_window && size <= cfg.max_stream_window,
                        "{:?} stream {}: window {} outside {}..={}",
                        end,
                        id,
                        size,
                        cfg.initial_stream_window,
                        cfg.max_stream_window
                    );
                    sum += buffered;
                }
            }
            let budget = u64::from(cfg.session_window)
                .saturating_sub(16 * u64::from(cfg.initial_stream_window));
            prop_assert!(
                growth <= core.window_growth() && core.window_growth() <= budget,
                "{:?}: window growth {} (counted {}) over the budget {} (spec §7.4)",
                end,
                growth,
                core.window_growth(),
                budget
            );
            prop_assert_eq!(
                sum,
                stats.recv_buffered,
                "{:?}: per-stream buffers don't add up",
                end
            );
        }
        Ok(())
    }

    /// One read at `end` on `id`, checked against the model. Returns bytes read (or `None`
    /// if nothing came: pending, EOF, error).
    fn read(
        &mut self,
        end: End,
        id: u32,
        max: usize,
        chunk: bool,
    ) -> Result<Option<usize>, TestCaseError> {
        let result = {
            let core = self.pair.core(end);
            if chunk {
                core.poll_recv_chunk(id, waker(), max)
                    .map_ok(|c| c.map(|b| b.to_vec()))
            } else {
                let mut buf = vec![0u8; max];
                core.poll_read(id, waker(), &mut buf)
                    .map_ok(|n| (n > 0).then(|| buf[..n].to_vec()))
            }
        };
        let buffered = self
            .pair
            .core_ref(end)
            .stream_recv(id)
            .map_or(0, |s| s.buffered);
        let written = self.model.streams[&id][end.peer().idx()].written.clone();
        let peer_finished = self.model.streams[&id][end.peer().idx()].finish_called;
        let h = self.model.half(id, end);
        match result {
            Poll::Ready(Ok(Some(bytes))) => {
                prop_assert!(!bytes.is_empty() && bytes.len() <= max);
                prop_assert!(
                    !h.dead,
                    "{:?} read {} bytes on stream {} after a reset/stop",
                    end,
                    bytes.len(),
                    id
                );
                prop_assert!(!h.eof, "{:?} read bytes on stream {} after EOF", end, id);
                h.read.extend_from_slice(&bytes);
                prop_assert!(
                    written.starts_with(&h.read),
                    "{:?} stream {}: read {} bytes that are not a prefix of the {} the peer wrote",
                    end,
                    id,
                    h.read.len(),
                    written.len()
                );
                Ok(Some(bytes.len()))
            }
            Poll::Ready(Ok(None)) => {
                prop_assert!(h.fin_rcvd, "{:?} stream {}: EOF without a FIN", end, id);
                if !h.dead {
                    prop_assert!(
                        peer_finished,
                        "{:?} stream {}: EOF but the peer never finished",
                        end,
                        id
                    );
                    prop_assert!(
                        h.read == written,
                        "{:?} stream {}: EOF after {} of {} bytes",
                        end,
                        id,
                        h.read.len(),
                        written.len()
                    );
                }
                h.eof = true;
                Ok(None)
            }
            Poll::Ready(Err(err)) => {
                prop_assert!(
                    h.rst || h.stop_sent,
                    "{:?} stream {}: read failed ({}) with no reset or stop",
                    end,
                    id,
                    err
                );
                Ok(None)
            }
            Poll::Pending => {
                prop_assert_eq!(
                    buffered,
                    0,
                    "{:?} stream {}: read pending with bytes buffered",
                    end,
                    id
                );
                prop_assert!(
                    !h.fin_rcvd && !h.rst && !h.stop_sent,
                    "{:?} stream {}: read pending on an ended receive half",
                    end,
                    id
                );
                Ok(None)
            }
        }
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let now = self.pair.now();
        match op {
            Op::Open(end) => {
                if let Poll::Ready(r) = self.pair.core(*end).poll_open(now, waker()) {
                    let id =
                        r.map_err(|e| TestCaseError::fail(format!("{end:?} open failed: {e}")))?;
                    prop_assert_eq!(End::opener_of(id), *end, "wrong parity");
                    prop_assert!(id > self.model.last_opened[end.idx()], "ids must increase");
                    self.model.last_opened[end.idx()] = id;
                    let h = self.model.half(id, *end);
                    h.handles = SEND | RECV;
                    h.accepted = true;
                }
            }
            Op::Accept(end) => {
                if let Poll::Ready(r) = self.pair.poll_accept(*end) {
                    let id =
                        r.map_err(|e| TestCaseError::fail(format!("{end:?} accept failed: {e}")))?;
                    self.accepted(*end, id)?;
                }
            }
            Op::Write {
                end,
                pick,
                len,
                owned,
            } => {
                let Some(id) = self.model.pick(*end, SEND, pick) else {
                    return self.sync();
                };
                let h = self.model.half(id, *end);
                let data = pattern(id, *end, h.written.len(), *len);
                let (finished, rst, stopped) = (h.finish_called, h.rst, h.stop_rcvd);
                let core = self.pair.core(*end);
                let result = if *owned {
                    core.poll_write_bytes(id, waker(), &Bytes::from(data.clone()))
                } else {
                    core.poll_write(id, waker(), &data)
                };
                match result {
                    Poll::Ready(Ok(n)) => {
                        prop_assert!(n <= *len && (n > 0 || *len == 0));
                        prop_assert!(
                            (!finished && !rst && !stopped) || n == 0,
                            "{:?} stream {}: write accepted after finish/reset/stop",
                            end,
                            id
                        );
                        self.model
                            .half(id, *end)
                            .written
                            .extend_from_slice(&data[..n]);
                    }
                    Poll::Ready(Err(err)) => prop_assert!(
                        finished || rst || stopped,
                        "{:?} stream {}: write failed ({}) on a live stream",
                        end,
                        id,
                        err
                    ),
                    Poll::Pending => prop_assert!(*len > 0, "empty write pending"),
                }
            }
            Op::WriteThrough { end, pick, len } => {
                let Some(id) = self.model.pick(*end, SEND, pick) else {
                    return self.sync();
                };
                let h = self.model.half(id, *end);
                let data = pattern(id, *end, h.written.len(), *len);
                let (finished, rst, stopped) = (h.finish_called, h.rst, h.stop_rcvd);
                let min = (*len).clamp(1, 1024);
                if let Some(header) = self.pair.core(*end).take_write_through(id, *len, min) {
                    let n = header.len as usize;
                    prop_assert!(n >= min && n <= *len, "write-through of {n} of {len} bytes");
                    prop_assert!(
                        !finished && !rst && !stopped,
                        "{:?} stream {}: write-through after finish/reset/stop",
                        end,
                        id
                    );
                    let mut wire = header.encode().to_vec();
                    wire.extend_from_slice(&data[..n]);
                    self.pair.write_raw(*end, &wire);
                    self.model
                        .half(id, *end)
                        .written
                        .extend_from_slice(&data[..n]);
                }
            }
            Op::Read {
                end,
                pick,
                max,
                chunk,
            } => {
                if let Some(id) = self.model.pick(*end, RECV, pick) {
                    self.read(*end, id, *max, *chunk)?;
                }
            }
            Op::Finish { end, pick } => {
                if let Some(id) = self.model.pick(*end, SEND, pick) {
                    self.finish(*end, id)?;
                }
            }
            Op::Reset { end, pick, code } => {
                if let Some(id) = self.model.pick(*end, SEND, pick) {
                    self.pair.core(*end).reset(id, ErrorCode(*code));
                    let h = self.model.half(id, *end);
                    if !h.closed() {
                        h.reset();
                    }
                }
            }
            Op::Stop { end, pick, code } => {
                if let Some(id) = self.model.pick(*end, RECV, pick) {
                    self.pair.core(*end).stop(id, ErrorCode(*code));
                    self.model.half(id, *end).stop();
                }
            }
            Op::Release { end, pick, halves } => {
                if let Some(id) = self.model.pick(*end, SEND | RECV, pick) {
                    self.release(*end, id, *halves);
                }
            }
            Op::Ping(end) => {
                self.pair.core(*end).send_ping(now);
            }
            Op::Pump(end) => {
                self.pair.pump(*end);
            }
            Op::Deliver { from, amount } => {
                let n = amount.index(self.pair.in_flight(*from) + 1);
                self.pair.deliver(*from, n);
            }
            Op::DeliverAll => self.deliver_all()?,
            Op::Advance(d) => {
                // Deliver everything before a PING could go unanswered for the keepalive
                // timeout: a session timeout is legal, but not what this test is about.
                if self.pair.elapsed() + *d >= self.model.last_quiet + self.keepalive_timeout {
                    self.deliver_all()?;
                }
                self.pair.advance(*d);
                // Timers act inside the cores (open/linger resets): put what they queued on
                // the wire so the model hears of it before the applications look.
                self.pair.pump(End::Client);
                self.pair.pump(End::Server);
            }
        }
        self.sync()
    }

    fn finish(&mut self, end: End, id: u32) -> Result<(), TestCaseError> {
        let result = self.pair.core(end).finish(id);
        let h = self.model.half(id, end);
        match result {
            Ok(()) => h.finish_called = true,
            Err(err) => prop_assert!(
                h.rst || h.stop_rcvd,
                "{:?} stream {}: finish failed ({}) on a live stream",
                end,
                id,
                err
            ),
        }
        Ok(())
    }

    /// Drops the handles in `halves` (those held, or all held if none of `halves` is).
    fn release(&mut self, end: End, id: u32, halves: u8) {
        let now = self.pair.now();
        let held = self.model.half(id, end).handles;
        let halves = if halves & held != 0 {
            halves & held
        } else {
            held
        };
        self.pair.core(end).release(now, id, halves);
        let h = self.model.half(id, end);
        h.handles &= !halves;
        // An unfinished send half resets; else an unread receive half stops.
        if halves & SEND != 0 && h.send_open() {
            h.reset();
        } else if halves & RECV != 0 {
            h.stop();
        }
    }

    fn accepted(&mut self, end: End, id: u32) -> Result<(), TestCaseError> {
        prop_assert_eq!(
            End::opener_of(id),
            end.peer(),
            "accepted a stream of our own parity"
        );
        prop_assert!(
            id > self.model.last_accepted[end.idx()],
            "accept order follows SYN order"
        );
        self.model.last_accepted[end.idx()] = id;
        prop_assert!(
            self.model.streams.contains_key(&id),
            "accepted stream {} never opened",
            id
        );
        let h = self.model.half(id, end);
        prop_assert!(!h.accepted, "stream {} accepted twice", id);
        h.accepted = true;
        h.handles = SEND | RECV;
        Ok(())
    }

    /// Delivers everything, accepts and reads everything, and checks that every direction
    /// that was finished cleanly arrived whole, followed by EOF. Then finishes every send
    /// half and releases every handle, and checks that nothing is left: no open stream, no
    /// buffered byte, no table entry, and opening works again.
    fn finale(&mut self) -> Result<(), TestCaseError> {
        self.drain()?;
        self.check_clean_directions()?;

        for end in End::BOTH {
            for id in self.model.with_handle(end, SEND) {
                self.finish(end, id)?;
            }
        }
        self.drain()?;
        self.check_clean_directions()?;
        for end in End::BOTH {
            let stats = self.pair.core_ref(end).stats();
            prop_assert!(
                stats.open_streams == 0 && stats.backlog == 0,
                "{:?}: streams left open after both sides finished and drained: {:?}",
                end,
                stats
            );
        }
        for end in End::BOTH {
            for id in self.model.with_handle(end, SEND | RECV) {
                self.release(end, id, SEND | RECV);
            }
        }
        self.deliver_all()?;
        self.sync()?;
        let now = self.pair.now();
        for end in End::BOTH {
            let stats = self.pair.core_ref(end).stats();
            prop_assert!(
                stats.tracked_streams == 0 && stats.recv_buffered == 0 && stats.send_buffered == 0,
                "{:?}: state left after every stream closed and every handle was released: {:?}",
                end,
                stats
            );
            // Everything received was consumed, and what was not granted back is below the
            // update threshold (spec §7.3): no session credit leaked.
            let window = self.pair.core_ref(end).config().session_window;
            prop_assert!(
                window - stats.session_recv_credit < (window / 4).max(1),
                "{:?}: {} of {} bytes of session credit never granted back",
                end,
                window - stats.session_recv_credit,
                window
            );
            let open = self.pair.core(end).poll_open(now, waker());
            prop_assert!(
                matches!(open, Poll::Ready(Ok(_))),
                "{:?}: open after the finale: {:?}",
                end,
                open
            );
        }
        Ok(())
    }

    /// Delivers, accepts and reads until nothing moves.
    fn drain(&mut self) -> Result<(), TestCaseError> {
        for _ in 0..10_000 {
            self.deliver_all()?;
            self.sync()?;
            let mut progress = false;
            for end in End::BOTH {
                while let Poll::Ready(r) = self.pair.poll_accept(end) {
                    let id =
                        r.map_err(|e| TestCaseError::fail(format!("{end:?} accept failed: {e}")))?;
                    self.accepted(end, id)?;
                    progress = true;
                }
                for id in self.model.with_handle(end, RECV) {
                    if self.model.streams[&id][end.idx()].eof {
                        continue;
                    }
                    while let Some(_n) = self.read(end, id, 1 << 20, id % 2 == 0)? {
                        progress = true;
                    }
                    progress |= self.model.streams[&id][end.idx()].eof;
                }
            }
            self.sync()?;
            if !progress && self.pair.is_quiet() {
                break;
            }
            // Reads queued window updates: the next round transmits them.
        }
        Ok(())
    }

    fn check_clean_directions(&self) -> Result<(), TestCaseError> {
        for (id, halves) in &self.model.streams {
            for reader in End::BOTH {
                let writer = reader.peer();
                let (r, w) = (&halves[reader.idx()], &halves[writer.idx()]);
                let clean = w.finish_called && !w.rst && !r.rst && !r.stop_sent && !w.stop_rcvd;
                if clean && r.handles & RECV != 0 {
                    prop_assert!(
                        r.eof,
                        "stream {} {:?}->{:?} finished cleanly but the reader got {} of {} bytes and no EOF",
                        id, writer, reader, r.read.len(), w.written.len()
                    );
                }
            }
        }
        Ok(())
    }
}

fn run(client: Config, server: Config, batch: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut run = Run::new(client, server);
    run.pair.transmit_batch = batch;
    run.check_invariants()?;
    for op in ops {
        run.step(op)?;
    }
    run.finale()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn two_cores_agree(
        client in config(),
        server in config(),
        // `max_bytes` per `poll_transmit` call: tiny batches cut DATA runs short.
        batch in prop_oneof![1usize..=100, Just(64 * 1024)],
        ops in prop::collection::vec(op(), 1..120),
    ) {
        run(client, server, batch, &ops)?;
    }
}

/// Sanity check of the harness: one stream each way, whole transfer.
#[test]
fn harness_moves_a_stream_each_way() {
    let mut pair = Pair::connected(Config::default());
    let now = pair.now();
    let Poll::Ready(Ok(id)) = pair.core(End::Client).poll_open(now, waker()) else {
        panic!("open")
    };
    let data = pattern(id, End::Client, 0, 100_000);
    let mut off = 0;
    while off < data.len() {
        match pair.core(End::Client).poll_write(id, waker(), &data[off..]) {
            Poll::Ready(Ok(n)) => off += n,
            other => panic!("{other:?}"),
        }
        pair.deliver_all();
    }
    pair.core(End::Client).finish(id).unwrap();
    pair.deliver_all();
    let Poll::Ready(Ok(sid)) = pair.poll_accept(End::Server) else {
        panic!("accept")
    };
    assert_eq!(sid, id);
    let mut got = Vec::new();
    loop {
        let mut buf = [0u8; 7000];
        match pair.core(End::Server).poll_read(id, waker(), &mut buf) {
            Poll::Ready(Ok(0)) => break,
            Poll::Ready(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Poll::Pending => pair.deliver_all(),
            Poll::Ready(Err(e)) => panic!("{e}"),
        }
        pair.deliver_all();
    }
    assert_eq!(got, data);
    assert!(pair.core_ref(End::Client).error().is_none());
    assert!(pair.core_ref(End::Server).error().is_none());
}

/// `try_write_all` (the RPC layer's small-record path) queues a record whole or not at all:
/// a record one byte over the room left is refused without queueing a byte, one that fits
/// is queued, and the peer reads the bytes in order with nothing torn.
#[test]
fn try_write_all_queues_whole_records_or_nothing() {
    let config = Config::default();
    let buf = config.stream_send_buffer as usize;
    let mut pair = Pair::connected(config);
    let now = pair.now();
    let Poll::Ready(Ok(id)) = pair.core(End::Client).poll_open(now, waker()) else {
        panic!("open")
    };
    // Owned bytes fill the whole send buffer in one call (a large copied write would stop
    // at one quantum while the stream has credit).
    let filler = Bytes::from(pattern(id, End::Client, 0, buf - 3));
    let client = pair.core(End::Client);
    assert!(
        matches!(client.poll_write_bytes(id, waker(), &filler), Poll::Ready(Ok(n)) if n == buf - 3)
    );
    assert!(
        !client.try_write_all(id, &[b"xy", b"zw"]).unwrap(),
        "4 bytes do not fit in 3"
    );
    assert!(
        client.try_write_all(id, &[b"a", b"bc"]).unwrap(),
        "3 bytes fit"
    );
    assert!(
        !client.try_write_all(id, &[b"d"]).unwrap(),
        "the buffer is full"
    );
    client.finish(id).unwrap();
    let mut got = Vec::new();
    loop {
        pair.deliver_all();
        let mut chunk = [0u8; 65536];
        match pair.core(End::Server).poll_read(id, waker(), &mut chunk) {
            Poll::Ready(Ok(0)) => break,
            Poll::Ready(Ok(n)) => got.extend_from_slice(&chunk[..n]),
            Poll::Pending => {
                let _ = pair.poll_accept(End::Server);
            }
            Poll::Ready(Err(e)) => panic!("{e}"),
        }
    }
    let mut want = filler.to_vec();
    want.extend_from_slice(b"abc");
    assert_eq!(got.len(), want.len());
    assert!(got == want, "bytes torn or reordered");
    let finished = pair.core(End::Client).try_write_all(id, &[b"e"]);
    assert!(finished.is_err(), "writes after finish fail: {finished:?}");
}

// ----- regressions: minimal cases found by `two_cores_agree` -----

fn small_config() -> Config {
    Config::default()
        .with_initial_stream_window(1024)
        .with_max_stream_window(1024)
        .with_session_window(16 * 1024)
}

fn no_errors(pair: &Pair) {
    for end in End::BOTH {
        if let Some(err) = pair.core_ref(end).error() {
            panic!("{end:?} failed: {err}");
        }
    }
}

/// The opener resets a stream whose SYN the acceptor already holds; the acceptor accepts it
/// before the RESET arrives, so its ACK crosses the RESET. Spec §6.6: "No frame that merely
/// crosses a RESET in flight is ever an error" — the opener must discard it. It used to fail
/// the session with PROTOCOL_ERROR "unexpected ACK" (closing the stream had marked it acked).
#[test]
fn ack_crossing_our_reset_is_not_an_error() {
    let mut pair = Pair::connected(small_config());
    let id = pair.open(End::Client);
    pair.deliver_all();
    pair.core(End::Client).reset(id, ErrorCode::CANCEL);
    pair.settle(); // RESET on the wire, not delivered
    assert_eq!(pair.accept(End::Server), id);
    pair.settle(); // ACK on the wire
    pair.deliver_all();
    no_errors(&pair);
}

/// Same crossing with the open timeout (spec §6.1) instead of an application reset: the
/// acceptor accepts just as the opener gives up.
#[test]
fn ack_crossing_open_timeout_reset_is_not_an_error() {
    let mut pair = Pair::connected(small_config());
    let id = pair.open(End::Client);
    pair.deliver_all();
    assert_eq!(pair.accept(End::Server), id);
    pair.settle(); // ACK on the wire
    let timeout = pair.core_ref(End::Client).config().open_timeout;
    pair.advance(timeout); // RESET(TIMEOUT) on the wire
    pair.deliver_all();
    no_errors(&pair);
}

/// Spec §6.3 ("Finished | recv RESET(c) | Discard unread data; fail reader with reset(c)")
/// and §4.5: a RESET discards unread data in both directions unless the stream was already
/// closed (§6.5). The core keeps the unread bytes of a receive half that had seen FIN
/// (`Stream::abort`: "a finished receive half keeps its bytes") and then reports EOF, so a
/// reader can't tell that the stream was reset.
#[test]

fn reset_discards_unread_data_of_finished_receive_half() {
    let mut pair = Pair::connected(small_config());
    let id = pair.open(End::Client);
    assert!(matches!(
        pair.core(End::Client).poll_write(id, waker(), b"x"),
        Poll::Ready(Ok(1))
    ));
    pair.core(End::Client).finish(id).unwrap();
    pair.deliver_all();
    assert_eq!(pair.accept(End::Server), id);
    pair.deliver_all();
    // The server's receive half is Finished, its send half Open: the stream is not closed.
    pair.core(End::Client).reset(id, ErrorCode(0x100));
    pair.deliver_all();
    no_errors(&pair);
    let mut buf = [0u8; 16];
    let got = pair.core(End::Server).poll_read(id, waker(), &mut buf);
    assert!(
        matches!(got, Poll::Ready(Err(_))),
        "read after RESET returned {got:?}, want Err(reset(0x100))"
    );
}

/// `stop` then `reset` on a stream whose SYN was not transmitted yet: the reset withdraws
/// the stream (no RESET: the peer never heard of it), but the queued STOP_SENDING used to
/// go out alone, for an id the peer never saw opened — PROTOCOL_ERROR (spec §5.2, V16).
#[test]
fn stop_then_reset_before_syn_sends_nothing_for_the_stream() {
    let mut pair = Pair::connected(small_config());
    let id = pair.open(End::Client);
    pair.core(End::Client).stop(id, ErrorCode::NO_ERROR);
    pair.core(End::Client).reset(id, ErrorCode::NO_ERROR);
    pair.deliver_all();
    no_errors(&pair);
    let events = pair.take_events();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Sent(End::Client, f) if f.stream_id() == id)),
        "frames for a withdrawn stream: {events:?}"
    );
}

/// Two opens, then a stop on the second before either SYN was transmitted: the STOP_SENDING
/// pulls its stream's SYN forward, and it used to go out ahead of the first stream's SYN —
/// ids out of order, PROTOCOL_ERROR at the peer (spec §5.1, §10 V13).
#[test]
fn stop_before_syn_keeps_syns_in_id_order() {
    let mut pair = Pair::connected(small_config());
    let first = pair.open(End::Client);
    let second = pair.open(End::Client);
    let now = pair.now();
    pair.core(End::Client).release(now, second, RECV); // drops the read half: STOP_SENDING
    pair.deliver_all();
    no_errors(&pair);
    let syns: Vec<u32> = pair
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Sent(End::Client, Frame::Data { stream, flags, .. })
                if flags.contains(braid::frame::Flags::SYN) =>
            {
                Some(stream)
            }
            _ => None,
        })
        .collect();
    assert_eq!(syns, [first, second]);
}

/// The acceptor accepts, stops and resets before transmitting: the reset drops the pending
/// ACK, and the queued STOP_SENDING used to go out first, ahead of any ACK — PROTOCOL_ERROR
/// at the opener (spec §6.1: nothing but RESET before the ACK, §10 V17).
#[test]
fn stop_then_reset_before_ack_sends_only_the_reset() {
    let mut pair = Pair::connected(small_config());
    let id = pair.open(End::Client);
    pair.deliver_all();
    assert_eq!(pair.accept(End::Server), id);
    pair.core(End::Server).stop(id, ErrorCode::NO_ERROR);
    pair.core(End::Server).reset(id, ErrorCode::NO_ERROR);
    pair.take_events();
    pair.deliver_all();
    no_errors(&pair);
    let sent: Vec<Frame> = pair
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Sent(End::Server, f) if f.stream_id() == id => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(
        sent,
        [Frame::Reset {
            stream: id,
            code: ErrorCode::NO_ERROR
        }]
    );
}

/// `poll_recv_chunk` with `max == 0` on a stream with bytes buffered used to panic
/// ("poll_recv_with calls with a non-empty buffer"): `ByteQueue::pop(0)` returns `None`.
/// Now it returns an empty chunk (not EOF) and leaves the bytes in place.
#[test]
fn recv_chunk_with_zero_max_does_not_panic() {
    let mut pair = Pair::connected(small_config());
    let id = pair.open(End::Client);
    assert!(matches!(
        pair.core(End::Client).poll_write(id, waker(), b"abc"),
        Poll::Ready(Ok(3))
    ));
    pair.deliver_all();
    assert_eq!(pair.accept(End::Server), id);
    let got = pair.core(End::Server).poll_recv_chunk(id, waker(), 0);
    assert!(
        !matches!(got, Poll::Ready(Ok(None)) | Poll::Ready(Err(_))),
        "{got:?}"
    );
    match pair.core(End::Server).poll_recv_chunk(id, waker(), 10) {
        Poll::Ready(Ok(Some(chunk))) => assert_eq!(&chunk[..], b"abc"),
        other => panic!("{other:?}"),
    }
}

/// Wakes every waker `end`'s core released.
fn wake_released(pair: &mut Pair, end: End) {
    for w in pair.core(end).take_wakers() {
        w.wake();
    }
}

/// A task waiting for a send half to close (`poll_send_closed`, e.g. an RPC `send_all`
/// waiting on its source) and a writer waiting for room have separate slots: neither takes
/// the other's wake-up, and releasing the receive half keeps both.
#[test]
fn a_closed_waiter_and_a_writer_are_woken_independently() {
    let config = Config::default();
    let buf = config.stream_send_buffer as usize;
    let mut pair = Pair::connected(config);
    let id = pair.open(End::Client);
    let (writer, writes) = counting_waker();
    let (closer, closes) = counting_waker();
    let filler = Bytes::from(vec![7u8; buf]);
    let client = pair.core(End::Client);
    assert!(
        matches!(client.poll_write_bytes(id, &writer, &filler), Poll::Ready(Ok(n)) if n == buf)
    );
    assert!(
        client.poll_write(id, &writer, b"more").is_pending(),
        "send buffer full"
    );
    assert!(client.poll_send_closed(id, &closer).is_pending());
    let now = pair.now();
    pair.core(End::Client).release(now, id, RECV); // the receiving half goes away
    wake_released(&mut pair, End::Client);
    assert_eq!((writes.load(SeqCst), closes.load(SeqCst)), (0, 0));

    // The bytes go out: the writer is woken for room, the closed waiter is not.
    pair.deliver_all();
    wake_released(&mut pair, End::Client);
    assert!(writes.load(SeqCst) >= 1, "the writer's wake-up was lost");
    assert_eq!(closes.load(SeqCst), 0);
    assert!(pair
        .core(End::Client)
        .poll_send_closed(id, &closer)
        .is_pending());

    // The peer resets the stream: the closed waiter is woken and sees why.
    let _ = pair.poll_accept(End::Server);
    pair.core(End::Server).reset(id, ErrorCode::CANCEL);
    pair.deliver_all();
    wake_released(&mut pair, End::Client);
    assert_eq!(
        closes.load(SeqCst),
        1,
        "the closed waiter's wake-up was lost"
    );
    assert!(matches!(
        pair.core(End::Client).poll_send_closed(id, &closer),
        Poll::Ready(braid::Error::StreamReset { .. })
    ));
}
