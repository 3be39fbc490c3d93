//! Shared by `fuzz_targets/session.rs` and `tests/fuzz_regressions.rs` (stable): drives a
//! server-side [`Core`] the way `src/runtime/driver.rs` does, with operations chosen by the
//! fuzzer, and checks invariants after every step.
//!
//! Input to [`run`]: [`Knobs`] (small configs so that limits are reached), a list of [`Op`]s,
//! and `wire`, raw bytes from the peer. If `wire` starts with a valid preface, that is the
//! peer's preface; otherwise one derived from the knobs is used. [`Op::Feed`] hands the next
//! `wire` bytes to the core; once the ops run out, the rest of `wire` is fed in small pieces
//! with an echo application ([`Op::Echo`]) in between, so a recorded client byte stream
//! (`tests/fuzz_regressions.rs`, `record_fuzz_corpus`) replays as a whole session.
//!
//! Checked after every step: session and stream buffers within their windows; backlog,
//! live and tracked streams, remembered closed ids within their caps; `handle_timeout`
//! leaves no deadline in the past (else the driver spins). Checked on every byte
//! `poll_transmit` produces (decoded by a peer-side model): our preface first, then only
//! valid frames, whole frames per call; DATA within the credit the peer granted (stream and
//! session); SYN first on our streams with increasing ids; on the peer's streams nothing but
//! RESET before our ACK and the ACK once; nothing on a stream after our RESET, no DATA after
//! our FIN, no stream WINDOW_UPDATE after the peer's FIN or our STOP_SENDING; PING replies
//! echo a PING received, at most one PING of ours outstanding; GOAWAY's last stream id never
//! above the peer's last SYN and never increasing; only GOAWAY once the session has ended.
//! Data integrity: the peer's DATA (from [`FrameSpec::Data`]) and the application's writes
//! carry a per-stream byte [`pattern`], so what reads return and what DATA we send must continue
//! it exactly (no loss, duplication or reordering), unless other bytes mixed in.
#![allow(dead_code)]

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    task::{Poll, Wake, Waker},
    time::{Duration, Instant},
};

use braid::{
    frame::{encode_frame, Decoder, Flags, Frame, Preface, HEADER_LEN, MAX_WINDOW, PREFACE_LEN},
    proto::{Core, Input, Role, Transmit},
    Config, ErrorCode, TimeoutKind,
};
use bytes::{Bytes, BytesMut};

/// Config choices; all-zero knobs give [`base_config`] and a peer announcing the same.
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Copy, Default)]
pub struct Knobs {
    pub window: u8,
    pub grow: u8,
    pub streams: u8,
    pub backlog: u8,
    pub frame: u8,
    pub send_buf: u8,
    pub keepalive: u8,
    pub limits: u8,
    pub peer_window: u8,
    pub peer_streams: u8,
    pub peer_frame: u8,
}

/// The config of the fuzzed server with zero knobs, and of the client whose bytes the seed
/// corpus records: small windows and limits so that every limit is within a few frames.
pub fn base_config() -> Config {
    Config::default()
        .with_initial_stream_window(1024)
        .with_max_stream_window(1024)
        .with_session_window(16 * 1024)
        .with_max_inbound_streams(4)
        .with_max_outbound_streams(3)
        .with_accept_backlog(2)
        .with_max_frame_payload(1024)
        .with_stream_send_buffer(1024)
        .with_session_send_buffer(2048)
        .with_keepalive_interval(Some(Duration::from_secs(10)))
        .with_keepalive_timeout(Duration::from_secs(5))
        .with_open_timeout(Duration::from_secs(3))
        .with_write_timeout(Duration::from_secs(5))
        .with_linger_timeout(Duration::from_secs(6))
        .with_close_drain_timeout(Duration::from_secs(5))
        .with_idle_release(Some(Duration::from_millis(250)))
        .with_memory_budget(None)
        .with_max_local_resets(8)
        .with_max_unaccepted_resets(4)
        .with_max_empty_frames(16)
        .with_closed_stream_memory(4)
}

fn pick<T: Copy>(k: u8, options: &[T]) -> T {
    options[k as usize % options.len()]
}

impl Knobs {
    pub fn config(&self) -> Config {
        let mut c = base_config();
        c.initial_stream_window = pick(self.window, &[1024, 2048, 1500, 4096]);
        c.max_stream_window = c.initial_stream_window * pick(self.grow, &[1, 2, 4]);
        c.session_window = 16 * c.max_stream_window + pick(self.grow >> 4, &[0, 0, 1, 1024]);
        c.max_inbound_streams = pick(self.streams, &[4, 1, 2, 20]);
        c.max_outbound_streams = pick(self.streams >> 4, &[3, 1, 2, 8]);
        c.accept_backlog = pick(self.backlog, &[2, 1, 3, 8]);
        c.max_frame_payload = pick(self.frame, &[1024, 2000, 64 * 1024]);
        c.stream_send_buffer = pick(self.send_buf, &[1024, 1500, 4096]);
        c.session_send_buffer = c.stream_send_buffer * pick(self.send_buf >> 4, &[2, 1, 4]);
        c.keepalive_interval =
            pick(self.keepalive, &[Some(10), None, Some(1)]).map(Duration::from_secs);
        c.max_local_resets = pick(self.limits, &[8, 1, 1000]);
        c.max_unaccepted_resets = pick(self.limits >> 2, &[4, 1, 1000]);
        c.max_empty_frames = pick(self.limits >> 4, &[16, 2, 10_000]);
        c.closed_stream_memory = pick(self.limits >> 6, &[4, 1, 64]);
        c.validate().expect("knobs give a valid config");
        c
    }

    /// The peer's preface when the wire does not start with one.
    pub fn peer_preface(&self) -> Preface {
        let base = preface_of(&base_config());
        let window = pick(
            self.peer_window,
            &[base.initial_stream_window, 65_535, 1 << 20, MAX_WINDOW],
        );
        let p = Preface {
            initial_stream_window: window,
            session_window: window.max(pick(
                self.peer_window >> 2,
                &[base.session_window, 0, 1 << 20, MAX_WINDOW],
            )),
            max_concurrent_streams: pick(
                self.peer_streams,
                &[base.max_concurrent_streams, 1, 2, 1000],
            ),
            accept_backlog: pick(self.peer_streams >> 2, &[base.accept_backlog, 1, 1000]),
            max_frame_payload: pick(
                self.peer_frame,
                &[base.max_frame_payload, 16 * 1024, 16 * 1024 * 1024],
            ),
        };
        p.validate().expect("knobs give a valid preface");
        p
    }
}

/// The preface a config announces (as `Config::preface`, which is crate-private).
pub fn preface_of(c: &Config) -> Preface {
    Preface {
        initial_stream_window: c.initial_stream_window,
        session_window: c.session_window,
        max_concurrent_streams: c.max_inbound_streams,
        accept_backlog: c.accept_backlog,
        max_frame_payload: c.max_frame_payload,
    }
}

/// A stream id for a frame from the peer.
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Copy)]
pub enum Id {
    /// 0..=15.
    Small(u8),
    /// The next odd id the peer has not opened yet, plus 2k (k < 4).
    NextPeer(u8),
    /// The highest id the peer opened.
    LastPeer,
    /// The k-th id we opened.
    Ours(u8),
    /// The k-th stream the application holds.
    Held(u8),
    Raw(u32),
}

/// A window increment.
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Copy)]
pub enum Inc {
    Small(u16),
    Zero,
    BelowMax(u16),
    Max,
    U32Max,
    Raw(u32),
}

impl Inc {
    fn value(self) -> u32 {
        match self {
            Inc::Small(k) => k as u32,
            Inc::Zero => 0,
            Inc::BelowMax(k) => MAX_WINDOW - k as u32,
            Inc::Max => MAX_WINDOW,
            Inc::U32Max => u32::MAX,
            Inc::Raw(v) => v,
        }
    }
}

/// braid's codes for small values, application codes above.
pub fn code(k: u8) -> ErrorCode {
    if k < 192 {
        ErrorCode((k % 12) as u32)
    } else {
        ErrorCode(0x1000 + k as u32)
    }
}

/// A frame from the peer, encoded with `encode_frame` and fed through the decoder.
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Copy)]
pub enum FrameSpec {
    /// Flags: `flags & 7` unless bit 7 is set (then all 8 bits, mostly invalid).
    Data {
        id: Id,
        flags: u8,
        len: u16,
    },
    WindowUpdate {
        id: Id,
        inc: Inc,
    },
    Ping {
        ack: bool,
        opaque: u8,
    },
    GoAway {
        last: Id,
        code: u8,
        debug_len: u16,
    },
    Reset {
        id: Id,
        code: u8,
    },
    StopSending {
        id: Id,
        code: u8,
    },
    /// 12 raw header bytes, no payload.
    Header([u8; HEADER_LEN]),
}

/// One step.
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Copy)]
pub enum Op {
    /// The next `n % 512 + 1` bytes of `wire`.
    Feed(u16),
    Frame(FrameSpec),
    Accept,
    /// `h`: index into the held streams.
    Read {
        h: u8,
        len: u16,
    },
    RecvChunk {
        h: u8,
        max: u16,
    },
    Write {
        h: u8,
        len: u16,
        owned: bool,
    },
    Flush {
        h: u8,
    },
    Finish {
        h: u8,
    },
    Reset {
        h: u8,
        code: u8,
    },
    Stop {
        h: u8,
        code: u8,
    },
    /// Drops halves `1 + halves % 3` (1 send, 2 receive, 3 both) of what is held.
    Release {
        h: u8,
        halves: u8,
    },
    Open,
    Ping,
    PollPing,
    GoAway(u8),
    Close,
    /// Virtual time moves `10 ms * n`; due timers run.
    Advance(u16),
    /// Virtual time moves to the next deadline; due timers run.
    ToDeadline,
    /// `poll_transmit` with `max_bytes = 16 * n`.
    Transmit(u16),
    /// Accept all, read all, echo it, finish at EOF, transmit.
    Echo,
    /// The transport reached EOF.
    Eof,
    TransportFailed,
    TimedOut(u8),
}

const SEND: u8 = 1;
const RECV: u8 = 2;

/// The byte at `offset` of stream `id`'s data: frames from the peer and our application's
/// writes carry it, so reads and sent DATA can be checked for order, loss and duplication.
pub fn pattern(id: u32, offset: u64) -> u8 {
    (offset as u32)
        .wrapping_mul(31)
        .wrapping_add(id.wrapping_mul(7)) as u8
        ^ (offset >> 8) as u8
}

fn patterned(id: u32, from: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| pattern(id, from + i)).collect()
}

/// Per stream and direction: the next offset, or `None` once bytes from elsewhere (the
/// recorded wire, echoed data) mixed in and the pattern no longer applies.
#[derive(Default)]
struct Offsets(HashMap<u32, Option<u64>>);

impl Offsets {
    /// Whether `bytes` continue the pattern of `id` (advancing it), else marks `id` mixed.
    fn follow(&mut self, id: u32, bytes: &[u8]) -> bool {
        let at = self.0.entry(id).or_insert(Some(0));
        match at {
            Some(off)
                if bytes
                    .iter()
                    .enumerate()
                    .all(|(i, b)| *b == pattern(id, *off + i as u64)) =>
            {
                *off += bytes.len() as u64;
                true
            }
            _ => {
                *at = None;
                false
            }
        }
    }
    /// Checks that `bytes` continue the pattern of `id` unless it is mixed.
    fn check(&mut self, id: u32, bytes: &[u8], what: &str) {
        if let Some(Some(off)) = self.0.get(&id) {
            let off = *off;
            for (i, b) in bytes.iter().enumerate() {
                let want = pattern(id, off + i as u64);
                assert_eq!(
                    *b,
                    want,
                    "{what} on stream {id}: byte {} is {b}, not {want}",
                    off + i as u64
                );
            }
            self.0.insert(id, Some(off + bytes.len() as u64));
        }
    }
    fn mix(&mut self, id: u32) {
        self.0.insert(id, None);
    }
    fn next(&self, id: u32) -> u64 {
        self.0.get(&id).copied().flatten().unwrap_or(0)
    }
}

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

/// The peer's view of what we sent, and the facts (from frames the core handled) that bound it.
#[derive(Default)]
struct PeerView {
    // Facts from the frames handed to `handle_frame`.
    inc_sum: HashMap<u32, u64>,
    ping_opaques: HashSet<u64>,
    pings_received: u64,
    peer_syns: HashSet<u32>,
    max_peer_syn: u32,
    peer_fin: HashSet<u32>,
    // What we sent.
    preface_seen: usize,
    syn_sent: HashSet<u32>,
    last_syn: u32,
    ack_sent: HashSet<u32>,
    reset_sent: HashSet<u32>,
    fin_sent: HashSet<u32>,
    stop_sent: HashSet<u32>,
    data: HashMap<u32, u64>,
    data_total: u64,
    pongs: u64,
    ping_out: Option<u64>,
    last_goaway: Option<u32>,
}

pub struct Harness<'w> {
    core: Core,
    cfg: Config,
    peer: Preface,
    start: Instant,
    now: Instant,
    waker: Waker,
    read_buf: BytesMut,
    read_closed: bool,
    input: Input,
    wire: &'w [u8],
    wire_pos: usize,
    held: Vec<(u32, u8)>,
    opened: Vec<u32>,
    next_peer: u32,
    out_buf: BytesMut,
    out_decoder: Decoder,
    view: PeerView,
    scratch: Vec<u8>,
    /// Offsets of the peer's DATA we encoded (next frame's payload), per stream.
    planned: HashMap<u32, u64>,
    /// The pattern through the peer's DATA handed to the core, then through our reads.
    received: Offsets,
    read: Offsets,
    /// The pattern through our application's writes, then through the DATA we sent.
    written: Offsets,
    sent: Offsets,
    /// `BRAID_HARNESS_TRACE` set: print every op and every frame either way.
    trace: bool,
}

/// Runs one input; panics if an invariant breaks. Returns the harness for inspection.
pub fn run<'w>(knobs: Knobs, ops: &[Op], wire: &'w [u8]) -> Harness<'w> {
    let mut h = Harness::new(knobs, wire);
    for op in ops {
        h.step(*op);
    }
    // Replay the rest of the wire with an echo application.
    while h.wire_pos < h.wire.len() && !h.read_closed {
        h.step(Op::Feed(63));
        h.step(Op::Echo);
    }
    h.step(Op::Echo);
    h.step(Op::Transmit(u16::MAX));
    h
}

impl<'w> Harness<'w> {
    pub fn new(knobs: Knobs, wire: &'w [u8]) -> Self {
        let cfg = knobs.config();
        let start = Instant::now();
        let mut core = Core::new(Role::Server, cfg.clone(), start);
        let (peer, wire_pos) = match wire
            .get(..PREFACE_LEN)
            .map(|b| Preface::decode(b.try_into().unwrap()))
        {
            Some(Ok(p)) => (p, PREFACE_LEN),
            _ => (knobs.peer_preface(), 0),
        };
        // The preface goes in through the one input entry point, as everything after it.
        let mut input = Input::new(&cfg);
        let mut preface = BytesMut::from(&peer.encode()[..]);
        core.handle_input(start, &mut input, &mut preface, false);
        assert!(
            core.handshake_done() && core.error().is_none(),
            "valid preface"
        );
        Harness {
            core,
            cfg: cfg.clone(),
            peer,
            start,
            now: start,
            waker: Waker::from(Arc::new(Noop)),
            read_buf: BytesMut::new(),
            read_closed: false,
            input,
            wire,
            wire_pos,
            held: Vec::new(),
            opened: Vec::new(),
            next_peer: 1,
            out_buf: BytesMut::new(),
            out_decoder: Decoder::new(peer.max_frame_payload),
            view: PeerView::default(),
            scratch: vec![0; 8192],
            planned: HashMap::new(),
            received: Offsets::default(),
            read: Offsets::default(),
            written: Offsets::default(),
            sent: Offsets::default(),
            trace: std::env::var_os("BRAID_HARNESS_TRACE").is_some(),
        }
    }

    /// The core under test.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Frames of ours the peer model has decoded so far (DATA payload bytes, per stream).
    pub fn data_sent(&self, id: u32) -> u64 {
        self.view.data.get(&id).copied().unwrap_or(0)
    }

    fn held(&self, h: u8, half: u8) -> Option<u32> {
        if self.held.is_empty() {
            return None;
        }
        let (id, halves) = self.held[h as usize % self.held.len()];
        (halves & half != 0).then_some(id)
    }

    fn add_held(&mut self, id: u32) {
        assert!(
            !self.held.iter().any(|(i, _)| *i == id),
            "stream {id} handed out twice"
        );
        self.held.push((id, SEND | RECV));
    }

    fn id(&self, id: Id) -> u32 {
        match id {
            Id::Small(k) => (k % 16) as u32,
            Id::NextPeer(k) => self.next_peer.wrapping_add(2 * (k % 4) as u32),
            Id::LastPeer => self.view.max_peer_syn,
            Id::Ours(k) => match self.opened.len() {
                0 => 2,
                n => self.opened[k as usize % n],
            },
            Id::Held(k) => match self.held.len() {
                0 => 1,
                n => self.held[k as usize % n].0,
            },
            Id::Raw(v) => v,
        }
    }

    fn frame(&mut self, spec: FrameSpec) -> Frame {
        match spec {
            FrameSpec::Data { id, flags, len } => {
                let flags = if flags & 0x80 == 0 { flags & 7 } else { flags };
                let len = len as usize % 2100;
                let id = self.id(id);
                let at = self.planned.entry(id).or_default();
                let payload = patterned(id, *at, len);
                *at += len as u64;
                Frame::Data {
                    stream: id,
                    flags: Flags(flags),
                    payload: Bytes::from(payload),
                }
            }
            FrameSpec::WindowUpdate { id, inc } => Frame::WindowUpdate {
                stream: self.id(id),
                increment: inc.value(),
            },
            FrameSpec::Ping { ack, opaque } => Frame::Ping {
                ack,
                opaque: opaque as u64,
            },
            FrameSpec::GoAway {
                last,
                code: c,
                debug_len,
            } => Frame::GoAway {
                last_stream: self.id(last),
                code: code(c),
                debug: Bytes::from(vec![b'g'; debug_len as usize % 1100]),
            },
            FrameSpec::Reset { id, code: c } => Frame::Reset {
                stream: self.id(id),
                code: code(c),
            },
            FrameSpec::StopSending { id, code: c } => Frame::StopSending {
                stream: self.id(id),
                code: code(c),
            },
            FrameSpec::Header(_) => unreachable!("raw header"),
        }
    }

    pub fn step(&mut self, op: Op) {
        if self.trace {
            eprintln!("op   {op:?}");
        }
        let waker = self.waker.clone();
        match op {
            Op::Feed(n) => {
                if !self.read_closed {
                    let end = (self.wire_pos + n as usize % 512 + 1).min(self.wire.len());
                    self.read_buf
                        .extend_from_slice(&self.wire[self.wire_pos..end]);
                    self.wire_pos = end;
                }
            }
            Op::Frame(spec) => {
                if !self.read_closed {
                    match spec {
                        FrameSpec::Header(raw) => self.read_buf.extend_from_slice(&raw),
                        spec => {
                            let frame = self.frame(spec);
                            encode_frame(&frame, &mut self.read_buf);
                        }
                    }
                }
            }
            Op::Accept => {
                if let Poll::Ready(Ok(id)) = self.core.poll_accept(self.now, &waker) {
                    assert_eq!(id % 2, 1, "accepted a stream of our parity");
                    assert!(
                        self.view.peer_syns.contains(&id),
                        "accepted {id}, never opened by the peer"
                    );
                    self.add_held(id);
                }
            }
            Op::Read { h, len } => {
                if let Some(id) = self.held(h, RECV) {
                    let len = len as usize % self.scratch.len();
                    let mut buf = std::mem::take(&mut self.scratch);
                    if let Poll::Ready(Ok(n)) = self.core.poll_read(id, &waker, &mut buf[..len]) {
                        assert!(n <= len);
                        self.read.check(id, &buf[..n], "read");
                    }
                    self.scratch = buf;
                }
            }
            Op::RecvChunk { h, max } => {
                if let Some(id) = self.held(h, RECV) {
                    // The runtime never asks for 0 bytes (AsyncRead returns early on an empty
                    // buffer); `poll_recv_chunk` requires max >= 1.
                    let max = max as usize + 1;
                    if let Poll::Ready(Ok(Some(chunk))) = self.core.poll_recv_chunk(id, &waker, max)
                    {
                        assert!(!chunk.is_empty() && chunk.len() <= max);
                        self.read.check(id, &chunk, "read");
                    }
                }
            }
            Op::Write { h, len, owned } => {
                if let Some(id) = self.held(h, SEND) {
                    let len = len as usize % 5000;
                    let data = patterned(id, self.written.next(id), len);
                    let result = if owned {
                        self.core
                            .poll_write_bytes(id, &waker, &Bytes::from(data.clone()))
                    } else {
                        self.core.poll_write(id, &waker, &data)
                    };
                    if let Poll::Ready(Ok(n)) = result {
                        assert!(n <= len);
                        self.written.follow(id, &data[..n]);
                    }
                }
            }
            Op::Flush { h } => {
                if let Some(id) = self.held(h, SEND) {
                    let _ = self.core.poll_flush(id, &waker);
                }
            }
            Op::Finish { h } => {
                if let Some(id) = self.held(h, SEND) {
                    let _ = self.core.finish(id);
                }
            }
            Op::Reset { h, code: c } => {
                if let Some(id) = self.held(h, SEND) {
                    self.core.reset(id, code(c));
                }
            }
            Op::Stop { h, code: c } => {
                if let Some(id) = self.held(h, RECV) {
                    self.core.stop(id, code(c));
                }
            }
            Op::Release { h, halves } => {
                if !self.held.is_empty() {
                    let i = h as usize % self.held.len();
                    let (id, have) = self.held[i];
                    let drop = (1 + halves % 3) & have;
                    if drop != 0 {
                        self.core.release(self.now, id, drop);
                        if have & !drop == 0 {
                            self.held.swap_remove(i);
                        } else {
                            self.held[i].1 = have & !drop;
                        }
                    }
                }
            }
            Op::Open => {
                if let Poll::Ready(Ok(id)) = self.core.poll_open(self.now, &waker) {
                    assert_eq!(id % 2, 0, "opened a stream of the peer's parity");
                    if let Some(last) = self.opened.last() {
                        assert!(id > *last, "ids must increase");
                    }
                    self.opened.push(id);
                    self.add_held(id);
                }
            }
            Op::Ping => {
                self.core.send_ping(self.now);
            }
            Op::PollPing => {
                let _ = self.core.poll_ping(0, &waker);
            }
            Op::GoAway(c) => self.core.goaway(if c < 128 {
                ErrorCode::NO_ERROR
            } else {
                code(c)
            }),
            Op::Close => self.core.close(),
            Op::Advance(n) => {
                self.now += Duration::from_millis(10 * n as u64);
                self.run_timers();
            }
            Op::ToDeadline => {
                if let Some(at) = self.core.poll_timeout() {
                    self.now = self.now.max(at);
                }
                self.run_timers();
            }
            Op::Transmit(n) => self.transmit(16 * n as usize),
            Op::Echo => self.echo(),
            Op::Eof => self.read_closed = true,
            Op::TransportFailed => self
                .core
                .transport_failed(std::io::ErrorKind::ConnectionReset.into()),
            Op::TimedOut(k) => self.core.timed_out(pick(
                k,
                &[
                    TimeoutKind::Keepalive,
                    TimeoutKind::Open,
                    TimeoutKind::Write,
                    TimeoutKind::Linger,
                ],
            )),
        }
        // Like every driver turn: take input while the core accepts it.
        self.process_input();
        let _ = self.core.take_wakers();
        self.check_invariants();
    }

    fn run_timers(&mut self) {
        if self.core.poll_timeout().is_some_and(|t| t <= self.now) {
            self.core.handle_timeout(self.now);
            if let Some(at) = self.core.poll_timeout() {
                assert!(
                    at > self.now,
                    "a deadline at or before now after handle_timeout: the driver would spin"
                );
            }
        }
    }

    /// What `Driver::process_input` does: the core's one input entry point.
    fn process_input(&mut self) {
        if self.read_buf.is_empty() && !self.read_closed {
            return;
        }
        // The model is updated from the frames the core took, in order, once it took them.
        let mut taken = Vec::new();
        self.core.handle_input_observed(
            self.now,
            &mut self.input,
            &mut self.read_buf,
            self.read_closed,
            |frame| taken.push(frame.clone()),
        );
        for frame in &taken {
            self.note_input(frame);
        }
    }

    /// Records what a frame from the peer allows us to send.
    fn note_input(&mut self, frame: &Frame) {
        if self.trace {
            eprintln!("in   {frame:?}");
        }
        let v = &mut self.view;
        match frame {
            Frame::WindowUpdate { stream, increment } => {
                *v.inc_sum.entry(*stream).or_default() += *increment as u64;
            }
            Frame::Ping { ack: false, opaque } => {
                v.ping_opaques.insert(*opaque);
                v.pings_received += 1;
            }
            Frame::Ping { ack: true, opaque } if v.ping_out == Some(*opaque) => v.ping_out = None,
            Frame::Data {
                stream,
                flags,
                payload,
            } => {
                if !self.received.follow(*stream, payload) {
                    self.read.mix(*stream);
                }
                if flags.contains(Flags::SYN) && stream % 2 == 1 {
                    v.peer_syns.insert(*stream);
                    v.max_peer_syn = v.max_peer_syn.max(*stream);
                    self.next_peer = self.next_peer.max(stream.saturating_add(2));
                }
                if flags.contains(Flags::FIN) {
                    v.peer_fin.insert(*stream);
                }
            }
            _ => {}
        }
    }

    fn echo(&mut self) {
        let waker = self.waker.clone();
        while let Poll::Ready(Ok(id)) = self.core.poll_accept(self.now, &waker) {
            assert!(
                self.view.peer_syns.contains(&id),
                "accepted {id}, never opened by the peer"
            );
            self.add_held(id);
        }
        let mut buf = std::mem::take(&mut self.scratch);
        for (id, halves) in self.held.clone() {
            if halves & RECV == 0 {
                continue;
            }
            loop {
                match self.core.poll_read(id, &waker, &mut buf[..4096]) {
                    Poll::Ready(Ok(0)) => {
                        if halves & SEND != 0 {
                            let _ = self.core.finish(id);
                        }
                        break;
                    }
                    Poll::Ready(Ok(n)) => {
                        self.read.check(id, &buf[..n], "read");
                        if halves & SEND != 0 {
                            if let Poll::Ready(Ok(_)) = self.core.poll_write(id, &waker, &buf[..n])
                            {
                                self.written.mix(id);
                                self.sent.mix(id);
                            }
                        }
                    }
                    _ => break,
                }
            }
        }
        self.scratch = buf;
        self.transmit(64 * 1024);
    }

    fn transmit(&mut self, max: usize) {
        if !self.core.wants_transmit() {
            return;
        }
        let ended = self.core.error().is_some();
        let mut tx = Transmit::default();
        self.core.poll_transmit(self.now, &mut tx, max);
        let bytes = tx.take_all();
        self.check_output(&bytes, ended);
    }

    fn check_output(&mut self, bytes: &[u8], ended: bool) {
        let mut bytes = bytes;
        if self.view.preface_seen < PREFACE_LEN {
            let ours = preface_of(&self.cfg).encode();
            let n = (PREFACE_LEN - self.view.preface_seen).min(bytes.len());
            assert_eq!(
                &bytes[..n],
                &ours[self.view.preface_seen..self.view.preface_seen + n],
                "preface"
            );
            self.view.preface_seen += n;
            bytes = &bytes[n..];
        }
        self.out_buf.extend_from_slice(bytes);
        loop {
            let frame = match self.out_decoder.decode(&mut self.out_buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(err) => panic!("we sent an invalid frame: {err}"),
            };
            self.check_sent(&frame, ended);
        }
        assert!(
            self.out_decoder.at_frame_boundary(&self.out_buf),
            "poll_transmit returned a partial frame"
        );
    }

    fn check_sent(&mut self, frame: &Frame, ended: bool) {
        if self.trace {
            eprintln!("out  {frame:?}");
        }
        let v = &mut self.view;
        if ended {
            assert!(
                matches!(frame, Frame::GoAway { .. }),
                "{frame:?} after the session ended"
            );
        }
        let id = frame.stream_id();
        if id != 0 {
            assert!(!v.reset_sent.contains(&id), "{frame:?} after our RESET");
            let flags = match frame {
                Frame::Data { flags, .. } => *flags,
                _ => Flags::NONE,
            };
            if id % 2 == 0 {
                // Our stream.
                assert!(
                    !flags.contains(Flags::ACK),
                    "ACK on our own stream: {frame:?}"
                );
                if flags.contains(Flags::SYN) {
                    assert!(!v.syn_sent.contains(&id), "second SYN: {frame:?}");
                    assert!(
                        id > v.last_syn,
                        "SYN ids must increase: {frame:?} after {}",
                        v.last_syn
                    );
                    assert!(
                        self.opened.contains(&id),
                        "SYN for an id never opened: {frame:?}"
                    );
                    v.last_syn = id;
                    v.syn_sent.insert(id);
                } else {
                    assert!(
                        v.syn_sent.contains(&id),
                        "{frame:?} before the stream's SYN"
                    );
                }
            } else {
                // The peer's stream.
                assert!(
                    v.peer_syns.contains(&id),
                    "{frame:?} on a stream the peer never opened"
                );
                assert!(
                    !flags.contains(Flags::SYN),
                    "SYN with the peer's parity: {frame:?}"
                );
                if flags.contains(Flags::ACK) {
                    assert!(!v.ack_sent.contains(&id), "second ACK: {frame:?}");
                    v.ack_sent.insert(id);
                } else if !v.ack_sent.contains(&id) {
                    assert!(
                        matches!(frame, Frame::Reset { .. }),
                        "{frame:?} on a peer's stream before our ACK (spec 6.1)"
                    );
                }
            }
        }
        match frame {
            Frame::Data { flags, payload, .. } => {
                self.sent.check(id, payload, "sent DATA");
                assert!(!v.fin_sent.contains(&id), "DATA after our FIN: {frame:?}");
                let n = payload.len() as u64;
                let sent = v.data.entry(id).or_default();
                *sent += n;
                let allowed = self.peer.initial_stream_window as u64
                    + v.inc_sum.get(&id).copied().unwrap_or(0);
                assert!(
                    *sent <= allowed,
                    "stream {id}: {sent} bytes sent, peer allowed {allowed}"
                );
                v.data_total += n;
                let allowed =
                    self.peer.session_window as u64 + v.inc_sum.get(&0).copied().unwrap_or(0);
                assert!(
                    v.data_total <= allowed,
                    "session: {} bytes sent, peer allowed {allowed}",
                    v.data_total
                );
                if flags.contains(Flags::FIN) {
                    v.fin_sent.insert(id);
                }
            }
            Frame::WindowUpdate { stream, .. } => {
                if *stream != 0 {
                    assert!(
                        !v.peer_fin.contains(stream),
                        "stream WINDOW_UPDATE after the peer's FIN: {frame:?}"
                    );
                    assert!(
                        !v.stop_sent.contains(stream),
                        "stream WINDOW_UPDATE after our STOP_SENDING: {frame:?}"
                    );
                }
            }
            Frame::Ping { ack: true, opaque } => {
                assert!(
                    v.ping_opaques.contains(opaque),
                    "PING reply to no PING: {frame:?}"
                );
                v.pongs += 1;
                assert!(v.pongs <= v.pings_received, "more PING replies than PINGs");
            }
            Frame::Ping { ack: false, opaque } => {
                assert_eq!(
                    v.ping_out, None,
                    "a second PING of ours outstanding: {frame:?}"
                );
                v.ping_out = Some(*opaque);
            }
            Frame::GoAway { last_stream, .. } => {
                assert!(
                    *last_stream <= v.max_peer_syn,
                    "GOAWAY above the peer's last SYN: {frame:?}"
                );
                if let Some(prev) = v.last_goaway {
                    assert!(
                        *last_stream <= prev,
                        "GOAWAY raised its last stream id: {frame:?} after {prev}"
                    );
                }
                v.last_goaway = Some(*last_stream);
            }
            Frame::Reset { .. } => {
                v.reset_sent.insert(id);
            }
            Frame::StopSending { .. } => {
                v.stop_sent.insert(id);
            }
        }
    }

    fn check_invariants(&mut self) {
        let s = self.core.stats();
        let c = &self.cfg;
        assert!(
            s.recv_buffered <= c.session_window as usize,
            "recv_buffered {} above the session window",
            s.recv_buffered
        );
        assert!(
            s.recv_buffered + s.session_recv_credit as usize <= c.session_window as usize,
            "buffered {} + peer credit {} above the session window {}",
            s.recv_buffered,
            s.session_recv_credit,
            c.session_window
        );
        assert!(
            s.backlog <= c.accept_backlog as usize,
            "backlog {} above {}",
            s.backlog,
            c.accept_backlog
        );
        assert!(s.inbound_streams <= c.max_inbound_streams as usize, "{s:?}");
        let max_out = c.max_outbound_streams.min(self.peer.max_concurrent_streams) as usize;
        assert!(s.outbound_streams <= max_out, "{s:?}");
        assert_eq!(s.open_streams, s.inbound_streams + s.outbound_streams);
        assert!(
            s.tracked_streams
                <= (c.max_inbound_streams + c.max_outbound_streams) as usize + self.held.len(),
            "tracked {} streams: {} held, limits {}+{}",
            s.tracked_streams,
            self.held.len(),
            c.max_inbound_streams,
            c.max_outbound_streams
        );
        assert!(
            s.remembered_closed <= c.closed_stream_memory as usize,
            "{s:?}"
        );
        assert!(s.send_buffered <= c.session_send_buffer as usize, "{s:?}");
        assert!(s.session_send_credit <= MAX_WINDOW);
        assert!(s.session_recv_credit <= c.session_window);
        for &(id, _) in &self.held {
            if let Some(braid::proto::StreamRecv {
                buffered,
                window: size,
                ..
            }) = self.core.stream_recv(id)
            {
                assert!(
                    buffered <= size as usize,
                    "stream {id}: {buffered} buffered, window {size}"
                );
                assert!(
                    size <= c.max_stream_window,
                    "stream {id}: window {size} above the max"
                );
            }
        }
        // The read buffer holds less than one frame once the core has taken what it could.
        if self.core.can_receive() {
            assert!(self.read_buf.len() < HEADER_LEN + c.max_frame_payload.max(8 + 1024) as usize);
        }
    }
}
