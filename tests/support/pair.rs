//! A deterministic in-memory pair of protocol cores (`braid::proto::Core`), a client and a
//! server, wired back to back with a virtual clock. Nothing moves unless the test says so:
//! [`Pair::pump`] moves what a core wants to transmit onto the wire, where it waits until
//! [`Pair::deliver`] hands a prefix of it (possibly splitting frames) to the other core,
//! which decodes it the way the runtime's driver does (preface, then header vetting before
//! the payload, honouring `can_receive`). [`Pair::settle`] and [`Pair::deliver_all`] do
//! both in a loop. Every frame put on the wire or handed to a core is logged as an
//! [`Event`], so tests can follow what each side has sent and received.
#![allow(dead_code)]

use std::{
    task::{Poll, Waker},
    time::{Duration, Instant},
};

use braid::{
    frame::{Decoder, Frame, Preface, PREFACE_LEN},
    proto::{Core, Input, Role, Transmit},
    Config,
};
use bytes::{Buf, BytesMut};

/// Which end of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum End {
    /// The `Role::Client` core (odd stream ids).
    Client,
    /// The `Role::Server` core (even stream ids).
    Server,
}

impl End {
    /// Both ends, client first.
    pub const BOTH: [End; 2] = [End::Client, End::Server];

    /// 0 for the client, 1 for the server.
    pub fn idx(self) -> usize {
        match self {
            End::Client => 0,
            End::Server => 1,
        }
    }

    /// The other end.
    pub fn peer(self) -> End {
        match self {
            End::Client => End::Server,
            End::Server => End::Client,
        }
    }

    /// The end that opens stream `id` (odd: client, even: server).
    pub fn opener_of(id: u32) -> End {
        if id % 2 == 1 {
            End::Client
        } else {
            End::Server
        }
    }
}

/// A frame an end put on the wire, or had handed to its core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `end` transmitted `frame` (logged when the core produced it, before delivery).
    Sent(End, Frame),
    /// `end`'s core processed `frame` (logged just before `handle_frame`).
    Received(End, Frame),
}

/// A no-op waker for the core's `poll_*` calls.
pub fn waker() -> &'static Waker {
    Waker::noop()
}

/// A waker that counts its wake-ups, and the count.
pub fn counting_waker() -> (Waker, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::{atomic::AtomicUsize, Arc};
    struct Count(Arc<AtomicUsize>);
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let count = Arc::new(AtomicUsize::new(0));
    (Waker::from(Arc::new(Count(count.clone()))), count)
}

/// One side: its core plus the transport buffers around it.
#[derive(Debug)]
pub struct Endpoint {
    /// The protocol core under test.
    pub core: Core,
    /// Bytes delivered to this end and not yet processed (the socket receive buffer).
    rx: BytesMut,
    /// The core's input state (the frame in progress).
    input: Input,
    /// Parses what this end transmits, for the event log (and to check it is valid).
    out_decoder: Decoder,
    out_buf: BytesMut,
    out_preface_seen: bool,
    /// The preface this end received, once processed.
    pub peer_preface: Option<Preface>,
}

impl Endpoint {
    fn new(role: Role, config: Config, now: Instant, peer_max_frame: u32) -> Endpoint {
        Endpoint {
            input: Input::new(&config),
            core: Core::new(role, config, now),
            rx: BytesMut::new(),
            out_decoder: Decoder::new(peer_max_frame),
            out_buf: BytesMut::new(),
            out_preface_seen: false,
            peer_preface: None,
        }
    }

    /// Bytes delivered to this end that its core has not taken yet.
    pub fn unprocessed(&self) -> usize {
        self.rx.len()
    }
}

/// Two cores and the wire between them.
#[derive(Debug)]
pub struct Pair {
    /// `ends[End::idx()]`.
    pub ends: [Endpoint; 2],
    /// `wire[e.idx()]`: bytes `e` transmitted that are not yet delivered to its peer.
    wire: [BytesMut; 2],
    base: Instant,
    offset: Duration,
    /// Frames sent and received, in order. Drain with [`Pair::take_events`].
    pub events: Vec<Event>,
    /// Largest `max_bytes` passed to `poll_transmit` per call.
    pub transmit_batch: usize,
}

/// Upper bound on settle/deliver rounds before the harness declares a livelock.
const MAX_ROUNDS: usize = 100_000;

impl Pair {
    /// A client and a server core, both at virtual time 0, prefaces on the wire (not yet
    /// delivered).
    pub fn new(client: Config, server: Config) -> Pair {
        client.validate().expect("client config");
        server.validate().expect("server config");
        let base = Instant::now();
        let (cmax, smax) = (client.max_frame_payload, server.max_frame_payload);
        let mut pair = Pair {
            ends: [
                Endpoint::new(Role::Client, client, base, smax),
                Endpoint::new(Role::Server, server, base, cmax),
            ],
            wire: [BytesMut::new(), BytesMut::new()],
            base,
            offset: Duration::ZERO,
            events: Vec::new(),
            transmit_batch: 64 * 1024,
        };
        pair.settle();
        pair
    }

    /// Both cores with `config`, prefaces exchanged and the first PINGs answered.
    pub fn connected(config: Config) -> Pair {
        let mut pair = Pair::new(config.clone(), config);
        pair.deliver_all();
        pair
    }

    /// The virtual clock.
    pub fn now(&self) -> Instant {
        self.base + self.offset
    }

    /// Virtual time elapsed since the pair was created.
    pub fn elapsed(&self) -> Duration {
        self.offset
    }

    /// `end`'s core accepts the next inbound stream at the pair's current time.
    pub fn poll_accept(&mut self, end: End) -> Poll<Result<u32, braid::Error>> {
        let now = self.now();
        self.core(end).poll_accept(now, waker())
    }

    /// `end` accepts the next inbound stream, which must be there.
    pub fn accept(&mut self, end: End) -> u32 {
        match self.poll_accept(end) {
            Poll::Ready(Ok(id)) => id,
            other => panic!("{end:?} accept: {other:?}"),
        }
    }

    /// `end` opens a stream, which the limits must allow; its SYN is not on the wire yet.
    pub fn open(&mut self, end: End) -> u32 {
        let now = self.now();
        match self.core(end).poll_open(now, waker()) {
            Poll::Ready(Ok(id)) => id,
            other => panic!("{end:?} open: {other:?}"),
        }
    }

    pub fn core(&mut self, end: End) -> &mut Core {
        &mut self.ends[end.idx()].core
    }

    /// The core at `end`, shared.
    pub fn core_ref(&self, end: End) -> &Core {
        &self.ends[end.idx()].core
    }

    /// Bytes `from` transmitted that its peer has not received yet.
    pub fn in_flight(&self, from: End) -> usize {
        self.wire[from.idx()].len()
    }

    /// Whether nothing is on the wire or waiting in a receive buffer.
    pub fn is_quiet(&self) -> bool {
        self.wire.iter().all(|w| w.is_empty()) && self.ends.iter().all(|e| e.rx.is_empty())
    }

    /// The event log so far, left in place.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Takes the event log.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Moves everything `end`'s core wants to transmit onto the wire. Returns bytes moved.
    pub fn pump(&mut self, end: End) -> usize {
        let now = self.now();
        let ep = &mut self.ends[end.idx()];
        let mut tx = Transmit::default();
        loop {
            let before = tx.len();
            if !ep.core.wants_transmit() {
                break;
            }
            ep.core.poll_transmit(now, &mut tx, self.transmit_batch);
            if tx.len() == before {
                break;
            }
        }
        let bytes = tx.take_all();
        let n = bytes.len();
        self.put_on_wire(end, &bytes);
        n
    }

    /// Puts bytes `end` wrote itself (a write-through frame, `Core::take_write_through`) on
    /// the wire behind what it transmitted before, logged and checked like `pump`'s.
    pub fn write_raw(&mut self, end: End, bytes: &[u8]) {
        self.put_on_wire(end, bytes);
    }

    fn put_on_wire(&mut self, end: End, bytes: &[u8]) {
        let ep = &mut self.ends[end.idx()];
        // Log what went out, checking it is a valid byte stream for the peer.
        ep.out_buf.extend_from_slice(bytes);
        if !ep.out_preface_seen {
            if ep.out_buf.len() < PREFACE_LEN {
                assert!(ep.out_buf.is_empty(), "{end:?} sent a partial preface");
            } else {
                let raw: [u8; PREFACE_LEN] = ep.out_buf[..PREFACE_LEN].try_into().unwrap();
                Preface::decode(&raw).expect("sent preface is valid");
                ep.out_buf.advance(PREFACE_LEN);
                ep.out_preface_seen = true;
            }
        }
        if ep.out_preface_seen {
            while let Some(frame) = ep
                .out_decoder
                .decode(&mut ep.out_buf)
                .unwrap_or_else(|e| panic!("{end:?} transmitted an invalid frame: {e}"))
            {
                self.events.push(Event::Sent(end, frame));
            }
            assert!(
                ep.out_decoder.at_frame_boundary(&ep.out_buf),
                "{end:?}: poll_transmit ended inside a frame"
            );
        }
        self.wire[end.idx()].extend_from_slice(bytes);
    }

    /// Lets `end`'s core process the bytes delivered to it, as far as it takes input.
    /// Returns whether anything was consumed.
    pub fn process(&mut self, end: End) -> bool {
        let now = self.now();
        let ep = &mut self.ends[end.idx()];
        let before = (ep.rx.len(), ep.input.in_frame());
        let preface: Option<[u8; PREFACE_LEN]> = (!ep.core.handshake_done())
            .then(|| ep.rx.get(..PREFACE_LEN)?.try_into().ok())
            .flatten();
        // The driver's own entry point: preface, header checks, frames, decode errors and
        // the single-slot pause, in the driver's order.
        let events = &mut self.events;
        ep.core
            .handle_input_observed(now, &mut ep.input, &mut ep.rx, false, |frame| {
                events.push(Event::Received(end, frame.clone()));
            });
        if let Some(raw) = preface.filter(|_| ep.core.handshake_done()) {
            ep.peer_preface = Some(Preface::decode(&raw).expect("accepted preface decodes"));
        }
        (ep.rx.len(), ep.input.in_frame()) != before
    }

    /// Processes what was delivered on both ends. An end that stops taking input
    /// (`can_receive() == false`, e.g. a PING reply is unsent) transmits so that it can go
    /// on, as the runtime's driver does; otherwise nothing is transmitted. Returns whether
    /// anything was consumed.
    pub fn process_all(&mut self) -> bool {
        let mut any = false;
        for _ in 0..MAX_ROUNDS {
            let mut progress = false;
            for end in End::BOTH {
                progress |= self.process(end);
                let ep = &self.ends[end.idx()];
                let blocked = ep.core.error().is_none()
                    && !ep.core.can_receive()
                    && (!ep.rx.is_empty() || ep.input.in_frame());
                if blocked {
                    progress |= self.pump(end) > 0;
                }
            }
            any |= progress;
            if !progress {
                return any;
            }
        }
        panic!("process_all: no quiescence after {MAX_ROUNDS} rounds");
    }

    /// Transmits and processes on both ends until neither makes progress (in-flight bytes
    /// stay on the wire).
    pub fn settle(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let mut progress = false;
            for end in End::BOTH {
                progress |= self.pump(end) > 0;
            }
            progress |= self.process_all();
            if !progress {
                return;
            }
        }
        panic!("settle: no quiescence after {MAX_ROUNDS} rounds");
    }

    /// Delivers the first `n` in-flight bytes from `from` to its peer (clamped) and lets
    /// the cores process them ([`Pair::process_all`]). Frames may be split.
    pub fn deliver(&mut self, from: End, n: usize) {
        let wire = &mut self.wire[from.idx()];
        let n = n.min(wire.len());
        let bytes = wire.split_to(n);
        self.ends[from.peer().idx()].rx.extend_from_slice(&bytes);
        self.process_all();
    }

    /// Transmits and delivers everything both ways, repeatedly, until both cores have
    /// nothing more to say and the wire is empty.
    pub fn deliver_all(&mut self) {
        for _ in 0..MAX_ROUNDS {
            self.settle();
            if self.wire.iter().all(|w| w.is_empty()) {
                return;
            }
            for end in End::BOTH {
                let n = self.wire[end.idx()].len();
                self.deliver(end, n);
            }
        }
        panic!("deliver_all: the wire never emptied");
    }

    /// Advances the virtual clock by `d` and runs due timers on both ends (what they
    /// queue stays in the cores until the next [`Pair::pump`]).
    pub fn advance(&mut self, d: Duration) {
        self.offset += d;
        let now = self.now();
        for ep in &mut self.ends {
            if ep.core.poll_timeout().is_some_and(|t| t <= now) {
                ep.core.handle_timeout(now);
            }
        }
    }

    /// One half round trip on a link of that one-way delay: both ends transmit, the wire
    /// takes `half_rtt`, everything arrives.
    pub fn half_round_trip(&mut self, half_rtt: Duration) {
        self.settle();
        self.advance(half_rtt);
        for end in End::BOTH {
            let n = self.in_flight(end);
            self.deliver(end, n);
        }
    }
}
