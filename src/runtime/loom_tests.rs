//! Model tests of the runtime's hand-offs (issue #23), built only with `--cfg braid_loom`:
//!
//! ```sh
//! RUSTFLAGS="--cfg braid_loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p braid-mux --release --lib loom_tests
//! ```
//!
//! The real code runs on loom's primitives ([`super::sync`]): the writer lock and its
//! hand-over ([`Shared::try_writer_for_driver`], `WriterGuard`'s drop), the session lock with
//! the driver-notified flag and the driver's idle check ([`Shared::with`],
//! [`Shared::flush_requested`], [`Shared::start_turn`], [`Shared::idle_wake`]), a real
//! [`Core`] with its stream waker slots, and the transport's split halves. Only the driver's
//! loop is a small stand-in ([`ModelDriver`]): the real one needs tokio's timers and
//! reactor, which loom can't run. It calls the same `Shared` methods in the same order as
//! `Driver::poll` and `Driver::poll_turn`. A lost wake-up shows as loom's deadlock report:
//! a task returned `Pending` and nothing is left to wake it.
//!
//! Each test names the wake table rows (module docs of [`super`]) it checks.

use std::{
    future::{poll_fn, Future},
    io,
    pin::{pin, Pin},
    sync::{Arc, Mutex as StdMutex},
    task::{Context, Poll, Wake, Waker},
    time::{Duration, Instant},
};

use bytes::BytesMut;
use loom::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Notify,
    },
    thread,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{
    shared::Shared,
    split::split,
    stream::Stream,
    writer::{Writer, Written},
};
use crate::{
    frame::{Decoder, ErrorCode, PREFACE_LEN},
    proto::{Core, Role, Transmit},
    Config,
};

/// Runs `f` under loom with a preemption bound (`LOOM_MAX_PREEMPTIONS`, default 5) so each
/// test explores its interleavings in well under a second (about 3,800 at most at 5).
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(5);
    }
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = runs.clone();
    builder.check(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    let runs = runs.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("{runs} interleavings explored");
}

/// Runs `future` on this loom thread, parking it while the future is `Pending` until its
/// waker is woken: a lost wake-up leaves the thread parked for good, which loom reports as a
/// deadlock. Unlike `loom::future::block_on`, whose waker never `will_wake` its own clones,
/// the waker keeps its identity, as a tokio task's does (the driver's idle check relies on
/// it).
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(Notify);

    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.notify();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.notify();
        }
    }

    let unpark = Arc::new(Unpark(Notify::new()));
    let waker = Waker::from(unpark.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        unpark.0.wait();
    }
}

/// A system call: a loom operation, so that loom may run other threads while the caller is
/// inside it (holding the writer lock or the split transport, say).
fn syscall(calls: &AtomicUsize) {
    calls.fetch_add(1, Ordering::Relaxed);
}

/// The transport's write side: records what it is given. Its next `block` writes return
/// `Pending` and wake the caller's waker at once (the transport is writable again right
/// away; an inline write registers a no-op waker, which is why it hands over to the driver).
#[derive(Clone, Default)]
struct Wire(Arc<StdMutex<WireState>>, loom::sync::Arc<AtomicUsize>);

#[derive(Default)]
struct WireState {
    bytes: Vec<u8>,
    block: usize,
}

impl Wire {
    fn len(&self) -> usize {
        self.0.lock().unwrap().bytes.len()
    }

    fn block_next(&self, writes: usize) {
        self.0.lock().unwrap().block = writes;
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        syscall(&self.1);
        let blocked = {
            let mut state = self.0.lock().unwrap();
            if state.block > 0 {
                state.block -= 1;
                true
            } else {
                state.bytes.extend_from_slice(buf);
                false
            }
        }; // no loom operation while the std lock is held
        if blocked {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A client and a server core past the handshake (each has the other's preface), with what
/// they sent so far consumed.
fn handshaken(config: &Config, now: Instant) -> (Core, Core) {
    let mut client = Core::new(Role::Client, config.clone(), now);
    let mut server = Core::new(Role::Server, config.clone(), now);
    let exchange = |from: &mut Core, to: &mut Core| {
        let mut bytes = transmit(from, now);
        let preface: [u8; PREFACE_LEN] = bytes.split_to(PREFACE_LEN)[..].try_into().unwrap();
        to.handle_preface(&preface).expect("valid preface");
        deliver(to, bytes, now);
    };
    exchange(&mut client, &mut server);
    exchange(&mut server, &mut client);
    // What the prefaces made either side send (the first PING, its reply) is exchanged
    // until both are quiet.
    for _ in 0..4 {
        let bytes = transmit(&mut client, now);
        deliver(&mut server, bytes, now);
        let bytes = transmit(&mut server, now);
        deliver(&mut client, bytes, now);
    }
    assert!(!client.wants_transmit() && !server.wants_transmit());
    (client, server)
}

/// Everything `core` has to send.
fn transmit(core: &mut Core, now: Instant) -> BytesMut {
    let mut tx = Transmit::default();
    while core.wants_transmit() {
        let before = tx.len();
        core.poll_transmit(now, &mut tx, usize::MAX);
        if tx.len() == before {
            break;
        }
    }
    tx.take_all()
}

/// Hands `bytes` (whole frames) to `core` the way the driver does.
fn deliver(core: &mut Core, mut bytes: BytesMut, now: Instant) {
    let mut decoder = Decoder::new(core.config().max_frame_payload);
    loop {
        if let Some(header) = decoder.next_header(&mut bytes).expect("valid frame") {
            core.check_header(&header).expect("acceptable frame");
        }
        match decoder.next_frame(&mut bytes).expect("valid frame") {
            Some(frame) => core.handle_frame(now, frame),
            None => break,
        }
    }
    assert!(bytes.is_empty(), "whole frames only");
}

/// How many bytes `command` makes a fresh client core (as set up by [`handshaken`]) send.
fn frame_len(config: &Config, now: Instant, command: impl FnOnce(&mut Core)) -> usize {
    let (mut client, _) = handshaken(config, now);
    command(&mut client);
    let len = transmit(&mut client, now).len();
    assert!(len > 0, "the command sends a frame");
    len
}

/// Queues a PING (the command the models' application tasks run).
fn ping(core: &mut Core) {
    core.send_ping(super::now());
}

/// An application task on its own loom thread, running `task` on the session.
fn app(
    shared: &Arc<Shared>,
    task: impl FnOnce(&Shared) + Send + 'static,
) -> thread::JoinHandle<()> {
    let shared = shared.clone();
    thread::spawn(move || task(&shared))
}

/// A session's shared state over `wire`, from `core`.
fn shared(core: Core, wire: &Wire) -> Arc<Shared> {
    Arc::new(Shared::new(core, Writer::new(Box::new(wire.clone()))))
}

/// The driver's loop, reduced to its hand-offs: `Driver::poll`'s idle check, then
/// `Driver::poll_turn`'s start, writer, fill, arm and write, through the same `Shared`
/// methods. No reading, no timers of its own: the timer is the deadline it last armed.
struct ModelDriver {
    shared: Arc<Shared>,
    /// `Driver::must_turn`: the last turn stopped before its work was done (P3).
    must_turn: bool,
    /// `Driver::write_blocked`: the transport holds our waker for writability (W5).
    write_blocked: bool,
    /// The deadline the last turn armed the timer for (`Inner::armed`).
    armed: Option<Instant>,
}

impl ModelDriver {
    fn new(shared: &Arc<Shared>) -> ModelDriver {
        ModelDriver {
            shared: shared.clone(),
            must_turn: true,
            write_blocked: false,
            armed: None,
        }
    }

    /// Polls until `done`, as the driver's task would be polled (loom parks the thread
    /// while it is `Pending`).
    fn run(mut self, done: impl Fn(&ModelDriver) -> bool) {
        block_on(poll_fn(|cx| {
            if done(&self) {
                return Poll::Ready(());
            }
            self.poll(cx);
            if done(&self) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }));
    }

    fn poll(&mut self, cx: &mut Context<'_>) {
        // `Driver::idle_wake`: nothing of its own to do, and the session has nothing for it.
        if !self.must_turn && !self.write_blocked && self.shared.idle_wake(cx.waker()) {
            return;
        }
        self.must_turn = false;
        self.shared.start_turn(cx.waker());
        let Some(mut writer) = self.shared.try_writer_for_driver() else {
            self.must_turn = true; // its holder wakes us when it lets go (P3)
            return;
        };
        let now = super::now();
        let wakers = {
            let mut inner = self.shared.inner.lock();
            writer.fill(&mut inner.core, now);
            let deadline = inner.core.poll_timeout();
            inner.armed = deadline;
            self.armed = deadline;
            inner.core.take_wakers()
        };
        for w in wakers {
            w.wake();
        }
        let written = writer.write(cx, now);
        self.write_blocked = matches!(written, Written::Blocked { .. });
        drop(writer);
    }
}

/// W1, W3, P3: an application task's inline write (a flush after a PING) finds the transport
/// blocked while the driver is idle; the driver must be woken and must take a full turn that
/// writes the rest, though the core itself has nothing new for it.
#[test]
fn loom_inline_write_blocks_while_driver_idle() {
    model(|| {
        let config = Config::default();
        let now = super::now();
        let ping_len = frame_len(&config, now, ping);
        let (client, _) = handshaken(&config, now);
        let wire = Wire::default();
        wire.block_next(1);
        let shared = shared(client, &wire);
        let app = app(&shared, |shared| {
            shared.with(|core| core.send_ping(super::now()));
            shared.flush_requested();
        });
        let on_wire = wire.clone();
        ModelDriver::new(&shared).run(move |_| on_wire.len() == ping_len);
        app.join().unwrap();
    });
}

/// P3: the driver finds the writer lock taken by an application task writing inline; the
/// task lets go while the driver asks for the lock, and the driver must get a turn with it
/// (here the driver needs the writer once: the test ends when it has held it).
#[test]
fn loom_writer_released_while_driver_asks() {
    model(|| {
        let config = Config::default();
        let now = super::now();
        let (mut client, _) = handshaken(&config, now);
        client.send_ping(now); // a frame for the application task to write inline
        let wire = Wire::default();
        let shared = shared(client, &wire);
        {
            // The driver's timer is armed for the core's deadline (a turn did that), so the
            // inline write has no deadline to tell it about (W2): only the lock's hand-over
            // wakes it.
            let mut inner = shared.inner.lock();
            inner.armed = inner.core.poll_timeout();
        }
        let app = app(&shared, |shared| shared.flush_requested());
        let turned = Arc::new(StdMutex::new(false));
        {
            let turned = turned.clone();
            let shared = shared.clone();
            block_on(poll_fn(move |cx| {
                // `Driver::poll_turn` after its start: the writer, or a request for it.
                shared.start_turn(cx.waker());
                match shared.try_writer_for_driver() {
                    Some(_writer) => {
                        *turned.lock().unwrap() = true;
                        Poll::Ready(())
                    }
                    None => Poll::Pending,
                }
            }));
        }
        app.join().unwrap();
        assert!(*turned.lock().unwrap());
    });
}

/// P4: the transport's two halves contend (the driver reading while a task writes inline);
/// the half that finds the transport taken returns `Pending` and must be woken when the other
/// lets go.
#[test]
fn loom_split_halves_contend() {
    /// Reads return one byte, writes take everything, both at once.
    struct Io(AtomicUsize);

    impl AsyncRead for Io {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            syscall(&self.0);
            buf.put_slice(b"r");
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Io {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            syscall(&self.0);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    model(|| {
        let (mut rx, mut tx) = split(Io(AtomicUsize::new(0)));
        let writer = thread::spawn(move || {
            block_on(poll_fn(|cx| Pin::new(&mut tx).poll_write(cx, b"w"))).unwrap()
        });
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        block_on(poll_fn(|cx| Pin::new(&mut rx).poll_read(cx, &mut buf))).unwrap();
        assert_eq!(buf.filled(), b"r");
        assert_eq!(writer.join().unwrap(), 1);
    });
}

/// P1 (the stream's read slot): a reader (`RecvStream::recv`) and the driver delivering the
/// stream's DATA race; the reader must be woken whichever registers first.
#[test]
fn loom_reader_and_driver_race_on_waker_slot() {
    model(|| {
        let config = Config::default();
        let now = super::now();
        let (mut client, mut server) = handshaken(&config, now);
        // The client opens a stream (its SYN reaches the server, which accepts it), then
        // writes: the DATA frame is what the server's driver delivers in the model.
        let noop = Waker::noop();
        let id = match client.poll_open(now, noop) {
            Poll::Ready(Ok(id)) => id,
            other => panic!("open: {other:?}"),
        };
        deliver(&mut server, transmit(&mut client, now), now);
        assert!(
            matches!(server.poll_accept(now, noop), Poll::Ready(Ok(accepted)) if accepted == id)
        );
        let _ = transmit(&mut server, now); // its ACK
        assert!(client.poll_write(id, noop, b"hello").is_ready());
        let data = transmit(&mut client, now);

        let wire = Wire::default();
        let shared = shared(server, &wire);
        let (mut rx, _tx) = Stream::new(shared.clone(), id).into_split();
        let reader = thread::spawn(move || {
            let chunk = block_on(rx.recv()).unwrap().unwrap();
            assert_eq!(&chunk[..], b"hello");
        });
        // The driver's turn: frames into the core under the session lock, the wakers it
        // releases woken after unlocking (`Shared::with` does both as the driver does).
        shared.with(|core| deliver(core, data, super::now()));
        reader.join().unwrap();
    });
}

/// W1 against the idle check: an application task's command wakes the driver, the task then
/// writes the command's frame inline, so the driver's poll finds nothing to do and ends
/// without a turn; a second command must wake it again.
#[test]
fn loom_idle_check_races_new_command() {
    model(|| {
        let config = Config::default();
        let now = super::now();
        let ping_len = frame_len(&config, now, ping);
        let goaway = frame_len(&config, now, |core| core.goaway(ErrorCode::NO_ERROR));
        let (mut client, _) = handshaken(&config, now);
        // An open stream, so that the GOAWAY leaves the session running (else the session
        // ends at once, and a PING not yet framed is never sent).
        assert!(client.poll_open(now, Waker::noop()).is_ready());
        let _ = transmit(&mut client, now); // its SYN
        let wire = Wire::default();
        let shared = shared(client, &wire);
        let app = app(&shared, |shared| {
            shared.with(|core| core.send_ping(super::now()));
            shared.flush_requested();
            shared.with(|core| core.goaway(ErrorCode::NO_ERROR));
        });
        let on_wire = wire.clone();
        ModelDriver::new(&shared).run(move |_| on_wire.len() == ping_len + goaway);
        app.join().unwrap();
    });
}

/// W1, W2: an application task's inline write frames a PING, which arms its timeout, earlier
/// than the deadline the driver's timer is armed for, while the driver polls; the driver must
/// come to re-arm its timer for it (else nothing wakes the session when it comes due). What
/// this guards is the deadline clause of `Inner::core_needs_driver`, which keeps the idle
/// check from skipping the turn that re-arms. The W2 wake in `Shared::write_inline` is a
/// backstop here: with it removed the model still passes, as the command's own wake (W1) or
/// the writer's hand-over (P3) always reaches the driver after the framing.
#[test]
fn loom_timer_rearmed_while_driver_polls() {
    model(|| {
        let config = Config {
            keepalive_interval: Some(Duration::from_secs(3600)),
            keepalive_timeout: Duration::from_secs(10),
            ..Config::default()
        };
        let now = super::now();
        let (client, _) = handshaken(&config, now);
        let wire = Wire::default();
        let shared = shared(client, &wire);
        let app = app(&shared, |shared| {
            shared.with(|core| core.send_ping(super::now()));
            shared.flush_requested();
        });
        // The keepalive tick is an hour out; the PING's timeout ten seconds.
        let soon = now + Duration::from_secs(60);
        ModelDriver::new(&shared).run(move |driver| driver.armed.is_some_and(|at| at < soon));
        app.join().unwrap();
    });
}
