//! Soak test: braid client and server sessions over loopback TCP in one process, hundreds of
//! concurrent workers looping over random operations for a fixed time, every byte checked.
//!
//! ```text
//! cargo run --release --example soak -- --secs N [--config default|tight|both] [--workers W]
//!                                       [--seed S] [--sessions K]
//! ```
//!
//! Defaults: `--secs 60 --config both --workers 200 --sessions 2`, a seed from the clock
//! (printed; pass it back with `--seed` to replay the same choices). With `both`, each
//! configuration runs for N seconds on a fresh runtime and fresh sessions.
//!
//! Operations (each worker picks one at random, again and again, until time is up):
//!
//! * `echo`: writes 1..8 writes of 1 B ..= 256 KiB (log-uniform sizes), reads the echo
//!   concurrently and checks it, half-closes, and must read a clean end.
//! * `send`: sends up to 1 MiB, half-closes; the server replies with length and FNV-1a hash.
//! * `recv`: the server sends up to 1 MiB generated from a seed, then FIN; the client checks.
//! * `drop`: the client drops the stream mid-write (no shutdown): the server's read must fail
//!   (`StreamReset { CANCEL, by: peer }`), never end cleanly. Half the time it is the server
//!   that drops mid-write and the client that must see the error.
//! * `reset`: the client resets with a random application code after some bytes (the server
//!   must see that code), or asks the server to do so (the client must see it).
//! * `burst`: 50 streams opened at once, each a small echo, all checked.
//!
//! Configurations: `default` (`braid::Config::default()`) and `tight` (4 KiB stream windows,
//! 64 KiB session window, 1 KiB frames, 4 KiB stream send buffer, accept backlog 16), so flow
//! control and the hand-offs between tasks are hit all the time.
//!
//! Every 5 s it prints a line (operations, bytes, expected and unexpected errors, resident
//! memory from /proc/self/status, open streams), and a summary at the end of each
//! configuration. Violations: wrong bytes, a clean end where an error was due, an unexpected
//! error, or a hang (a worker or a server handler making no progress for 60 s, or no task at
//! all for 10 s: both sessions' stats and what each stuck task was doing are printed). Any
//! violation makes the exit status 1 (a hang stops the run at once).

use std::{
    collections::HashMap,
    io,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use braid::{Config, Error, ErrorCode, Session, Side};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A worker or handler without progress for this long is hung. A lost wake-up stalls its
/// stream for good; an overloaded machine only delays it, and on a loaded 2-core machine one
/// large write of a tight-config op has waited more than 10 s for session credit while every
/// other task moved (spec/DECISIONS.md, session 14), so one task's limit is generous.
const HANG: Duration = Duration::from_secs(60);
/// No task at all making progress for this long is a hang of the whole process.
const STALL: Duration = Duration::from_secs(10);
const REPORT_EVERY: Duration = Duration::from_secs(5);
const BURST: usize = 50;
const MAX_WRITE: u64 = 256 * 1024;

const OP_ECHO: u8 = 1;
const OP_SEND: u8 = 2;
const OP_RECV: u8 = 3;
const OP_CLIENT_DROP: u8 = 4;
const OP_SERVER_DROP: u8 = 5;
const OP_CLIENT_RESET: u8 = 6;
const OP_SERVER_RESET: u8 = 7;
const OP_BURST: u8 = 8;
const OP_NAMES: [&str; 9] = [
    "",
    "echo",
    "send",
    "recv",
    "drop(client)",
    "drop(server)",
    "reset(client)",
    "reset(server)",
    "burst",
];
const HEADER: usize = 21;

// ---------------------------------------------------------------------------------------
// Deterministic data

/// xorshift64 for choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// Log-uniform in 1 ..= max.
    fn size(&mut self, max: u64) -> usize {
        let bits = 64 - max.leading_zeros() as u64;
        let b = self.below(bits + 1);
        (1 + self.below(1u64 << b)).min(max) as usize
    }
}

/// A continuing stream of deterministic bytes, 8 at a time.
struct Gen {
    x: u64,
    cur: [u8; 8],
    used: usize,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen {
            x: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            cur: [0; 8],
            used: 8,
        }
    }
    fn step(&mut self) -> [u8; 8] {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        self.x.to_le_bytes()
    }
    fn fill(&mut self, mut buf: &mut [u8]) {
        while self.used < 8 && !buf.is_empty() {
            buf[0] = self.cur[self.used];
            self.used += 1;
            buf = &mut buf[1..];
        }
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.step());
        }
        let tail = chunks.into_remainder();
        if !tail.is_empty() {
            self.cur = self.step();
            let n = tail.len();
            tail.copy_from_slice(&self.cur[..n]);
            self.used = n;
        }
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        self.fill(&mut v);
        v
    }
}

/// FNV-1a (64-bit), incremental.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= *b as u64;
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
}

fn header(op: u8, seed: u64, len: u64, code: u32) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[0] = op;
    h[1..9].copy_from_slice(&seed.to_le_bytes());
    h[9..17].copy_from_slice(&len.to_le_bytes());
    h[17..21].copy_from_slice(&code.to_le_bytes());
    h
}

// ---------------------------------------------------------------------------------------
// Bookkeeping

/// One task's heartbeat, seen by the monitor.
struct Beat {
    last: AtomicU64,
    what: Mutex<String>,
}

impl Beat {
    fn new(t0: Instant) -> Beat {
        let b = Beat {
            last: AtomicU64::new(0),
            what: Mutex::new(String::new()),
        };
        b.alive(t0);
        b
    }
    fn alive(&self, t0: Instant) {
        self.last
            .store(t0.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    fn set(&self, t0: Instant, what: String) {
        *self.what.lock() = what;
        self.alive(t0);
    }
}

#[derive(Default, Debug, Clone)]
struct Totals {
    ops: [u64; 9],
    bytes: u64,
    expected: HashMap<&'static str, u64>,
    unexpected: HashMap<String, u64>,
    violations: Vec<String>,
}

struct State {
    t0: Instant,
    stop: AtomicBool,
    hung: AtomicBool,
    totals: Mutex<Totals>,
    workers: Vec<Beat>,
    handlers: Mutex<HashMap<u64, Arc<Beat>>>,
    next_handler: AtomicU64,
}

impl State {
    fn expected(&self, kind: &'static str) {
        *self.totals.lock().expected.entry(kind).or_default() += 1;
    }
    fn unexpected(&self, what: String) {
        let mut t = self.totals.lock();
        // Group by the error text without stream ids.
        let key: String = what.chars().filter(|c| !c.is_ascii_digit()).collect();
        if t.unexpected.values().sum::<u64>() < 20 {
            eprintln!("UNEXPECTED: {what}");
        }
        *t.unexpected.entry(key).or_default() += 1;
    }
    fn violation(&self, what: String) {
        eprintln!("VIOLATION: {what}");
        self.totals.lock().violations.push(what);
    }
}

/// Removes a server handler's heartbeat when it ends.
struct HandlerGuard<'a>(&'a State, u64);

impl Drop for HandlerGuard<'_> {
    fn drop(&mut self) {
        self.0.handlers.lock().remove(&self.1);
    }
}

fn is_reset(e: &io::Error, code: ErrorCode, by: Side) -> bool {
    matches!(Error::from_io(e), Some(Error::StreamReset { code: c, by: b }) if *c == code && *b == by)
}

fn is_stopped(e: &io::Error, code: ErrorCode) -> bool {
    matches!(Error::from_io(e), Some(Error::StreamStopped { code: c }) if *c == code)
}

fn is_refused(e: &io::Error) -> bool {
    matches!(Error::from_io(e), Some(Error::StreamRefused { .. }))
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// How an operation ended badly.
enum Fail {
    /// A stream refused for the peer's backlog or concurrency limit: retried, not an error.
    Refused,
    /// An error nothing provoked.
    Unexpected(String),
    /// Wrong bytes, or a clean end where an error was due.
    Violation(String),
}

fn io_fail(what: &str, id: u32, e: io::Error) -> Fail {
    if is_refused(&e) {
        Fail::Refused
    } else {
        Fail::Unexpected(format!("{what} (stream {id}): {e}"))
    }
}

/// Reads to EOF or an error, checking every byte against `gen`; `beat` marks progress.
/// Returns bytes read and how it ended (`Ok` = clean end).
async fn read_checked<R: AsyncRead + Unpin>(
    r: &mut R,
    gen: &mut Gen,
    limit: u64,
    beat: &Beat,
    t0: Instant,
) -> (u64, Result<(), io::Error>, bool) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut expect = vec![0u8; 64 * 1024];
    let mut got = 0u64;
    loop {
        let want = (buf.len() as u64).min(limit.saturating_sub(got).max(1)) as usize;
        match r.read(&mut buf[..want]).await {
            Ok(0) => return (got, Ok(()), true),
            Ok(n) => {
                beat.alive(t0);
                gen.fill(&mut expect[..n]);
                if buf[..n] != expect[..n] {
                    return (got, Ok(()), false);
                }
                got += n as u64;
            }
            Err(e) => return (got, Err(e), true),
        }
    }
}

async fn write_gen<W: AsyncWrite + Unpin>(
    w: &mut W,
    gen: &mut Gen,
    len: u64,
    rng: &mut Rng,
    beat: &Beat,
    t0: Instant,
) -> io::Result<()> {
    let mut sent = 0u64;
    while sent < len {
        let n = rng.size(MAX_WRITE).min((len - sent) as usize);
        w.write_all(&gen.bytes(n)).await?;
        beat.alive(t0);
        sent += n as u64;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Server

async fn serve(stream: braid::Stream, st: Arc<State>) {
    let hid = st.next_handler.fetch_add(1, Ordering::Relaxed);
    let beat = Arc::new(Beat::new(st.t0));
    st.handlers.lock().insert(hid, beat.clone());
    let _guard = HandlerGuard(&st, hid);
    let t0 = st.t0;
    let id = stream.id();
    beat.set(t0, format!("server stream {id}: reading header"));
    match serve_op(stream, &st, &beat).await {
        Ok(()) => {}
        Err(Fail::Refused) => {}
        Err(Fail::Unexpected(w)) => st.unexpected(format!("server: {w}")),
        Err(Fail::Violation(w)) => st.violation(format!("server stream {id}: {w}")),
    }
}

async fn serve_op(stream: braid::Stream, st: &State, beat: &Beat) -> Result<(), Fail> {
    let t0 = st.t0;
    let id = stream.id();
    let (mut rx, mut tx) = stream.into_split();
    let mut h = [0u8; HEADER];
    if let Err(e) = rx.read_exact(&mut h).await {
        // A client's drop or reset may overtake its header: then an error is due; a clean end
        // never is (the client always sends the header before a FIN).
        if matches!(
            Error::from_io(&e),
            Some(Error::StreamReset {
                by: Side::Remote,
                ..
            })
        ) {
            st.expected("server: reset before header");
            return Ok(());
        }
        return Err(io_fail("server header", id, e));
    }
    let op = h[0];
    let seed = u64::from_le_bytes(h[1..9].try_into().unwrap());
    let len = u64::from_le_bytes(h[9..17].try_into().unwrap());
    let code = ErrorCode(u32::from_le_bytes(h[17..21].try_into().unwrap()));
    let mut rng = Rng(seed | 1);
    beat.set(
        t0,
        format!("server stream {id}: op {}", OP_NAMES[op as usize]),
    );
    match op {
        OP_ECHO => {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = rx
                    .read(&mut buf)
                    .await
                    .map_err(|e| io_fail("server echo read", id, e))?;
                if n == 0 {
                    break;
                }
                beat.alive(t0);
                tx.write_all(&buf[..n])
                    .await
                    .map_err(|e| io_fail("server echo write", id, e))?;
            }
            tx.shutdown()
                .await
                .map_err(|e| io_fail("server echo shutdown", id, e))
        }
        OP_SEND => {
            let mut buf = vec![0u8; 64 * 1024];
            let (mut n_total, mut h) = (0u64, Fnv::new());
            loop {
                let n = rx
                    .read(&mut buf)
                    .await
                    .map_err(|e| io_fail("server send read", id, e))?;
                if n == 0 {
                    break;
                }
                beat.alive(t0);
                h.update(&buf[..n]);
                n_total += n as u64;
            }
            let mut reply = [0u8; 16];
            reply[..8].copy_from_slice(&n_total.to_le_bytes());
            reply[8..].copy_from_slice(&h.0.to_le_bytes());
            tx.write_all(&reply)
                .await
                .map_err(|e| io_fail("server hash reply", id, e))?;
            tx.shutdown()
                .await
                .map_err(|e| io_fail("server hash shutdown", id, e))
        }
        OP_RECV | OP_SERVER_DROP | OP_SERVER_RESET => {
            let mut gen = Gen::new(seed);
            write_gen(&mut tx, &mut gen, len, &mut rng, beat, t0)
                .await
                .map_err(|e| io_fail("server send", id, e))?;
            match op {
                OP_RECV => tx
                    .shutdown()
                    .await
                    .map_err(|e| io_fail("server send shutdown", id, e)),
                OP_SERVER_DROP => {
                    drop((rx, tx)); // mid-write: no FIN
                    Ok(())
                }
                _ => {
                    tx.reset(code);
                    Ok(())
                }
            }
        }
        OP_CLIENT_DROP | OP_CLIENT_RESET => {
            let want = if op == OP_CLIENT_DROP {
                ErrorCode::CANCEL
            } else {
                code
            };
            let mut gen = Gen::new(seed);
            let (got, end, ok) = read_checked(&mut rx, &mut gen, u64::MAX, beat, t0).await;
            if !ok {
                return Err(Fail::Violation(format!("wrong bytes after {got}")));
            }
            match end {
                Ok(()) => Err(Fail::Violation(format!(
                    "CLEAN END after {got} bytes of a stream the client {} (expected an error with {want})",
                    if op == OP_CLIENT_DROP { "dropped" } else { "reset" }
                ))),
                Err(e) if is_reset(&e, want, Side::Remote) => {
                    st.expected(if op == OP_CLIENT_DROP {
                        "server saw client's drop"
                    } else {
                        "server saw client's reset"
                    });
                    Ok(())
                }
                Err(e) => Err(io_fail("server expected a reset", id, e)),
            }
        }
        _ => Err(Fail::Violation(format!("bad op {op}"))),
    }
}

// ---------------------------------------------------------------------------------------
// Client

async fn client_op(
    session: &Session,
    st: &State,
    beat: &Beat,
    op: u8,
    rng: &mut Rng,
    max_total: u64,
) -> Result<u64, Fail> {
    let t0 = st.t0;
    let seed = rng.next();
    let code = ErrorCode(0x100 + rng.below(0xFFFF) as u32);
    beat.set(t0, format!("{}: open", OP_NAMES[op as usize]));
    let mut s = session
        .open()
        .await
        .map_err(|e| Fail::Unexpected(format!("open: {e}")))?;
    let id = s.id();
    let phase = |p: &str| beat.set(t0, format!("{} stream {id}: {p}", OP_NAMES[op as usize]));
    let len = rng.size(max_total) as u64;
    s.write_all(&header(op, seed, len, code.0))
        .await
        .map_err(|e| io_fail("header", id, e))?;
    match op {
        OP_ECHO => {
            let writes = 1 + rng.below(8);
            let sizes: Vec<usize> = (0..writes).map(|_| rng.size(MAX_WRITE)).collect();
            let total: u64 = sizes.iter().map(|&n| n as u64).sum();
            phase(&format!("echo {total} B in {writes} writes"));
            let (mut rx, mut tx) = s.into_split();
            let write = async {
                let mut gen = Gen::new(seed);
                for n in sizes {
                    tx.write_all(&gen.bytes(n)).await?;
                    beat.alive(t0);
                }
                tx.shutdown().await
            };
            let mut gen = Gen::new(seed);
            let read = read_checked(&mut rx, &mut gen, u64::MAX, beat, t0);
            let (w, (got, end, ok)) = tokio::join!(write, read);
            if !ok {
                return Err(Fail::Violation(format!(
                    "stream {id}: echo: wrong bytes after {got}"
                )));
            }
            w.map_err(|e| io_fail("echo write", id, e))?;
            end.map_err(|e| io_fail("echo read", id, e))?;
            if got != total {
                return Err(Fail::Violation(format!(
                    "stream {id}: echo: {got} of {total} bytes, then a clean end"
                )));
            }
            Ok(2 * total)
        }
        OP_SEND => {
            phase(&format!("send {len} B"));
            let mut gen = Gen::new(seed);
            let mut all = Fnv::new();
            let mut sent = 0u64;
            while sent < len {
                let n = rng.size(MAX_WRITE).min((len - sent) as usize);
                let chunk = gen.bytes(n);
                all.update(&chunk);
                s.write_all(&chunk)
                    .await
                    .map_err(|e| io_fail("send", id, e))?;
                beat.alive(t0);
                sent += n as u64;
            }
            s.shutdown().await.map_err(|e| io_fail("send fin", id, e))?;
            phase("awaiting the hash");
            let mut reply = Vec::new();
            s.read_to_end(&mut reply)
                .await
                .map_err(|e| io_fail("hash reply", id, e))?;
            let mut want = len.to_le_bytes().to_vec();
            want.extend_from_slice(&all.0.to_le_bytes());
            if reply != want {
                return Err(Fail::Violation(format!(
                    "stream {id}: the server's length/hash {reply:x?} != {want:x?}"
                )));
            }
            Ok(len)
        }
        OP_RECV | OP_SERVER_DROP | OP_SERVER_RESET => {
            if let Err(e) = s.shutdown().await {
                // The server may finish writing and drop or reset the stream before our FIN is
                // framed (the header is all it needs): then the half-close fails with that
                // reset, or with the STOP_SENDING(CANCEL) its dropped receive half sends first
                // (spec §6.5), which is the truth, not a fault.
                let want = if op == OP_SERVER_DROP {
                    ErrorCode::CANCEL
                } else {
                    code
                };
                let overtaken =
                    is_reset(&e, want, Side::Remote) || is_stopped(&e, ErrorCode::CANCEL);
                if op == OP_RECV && is_stopped(&e, ErrorCode::CANCEL) {
                    // The server needs only the header: it may write everything, finish and
                    // drop its receive half (STOP_SENDING(CANCEL), §6.5) before our FIN leaves
                    // a busy writer. The stop says the truth about our FIN; the server's bytes
                    // and its clean end must still arrive whole, which the read below checks.
                    st.expected("client's FIN overtaken by the server's finished reply");
                } else if op != OP_RECV && overtaken {
                    st.expected("client's FIN overtaken by the server's drop or reset");
                    return Ok(0);
                } else {
                    return Err(io_fail("fin", id, e));
                }
            }
            phase(&format!("receive {len} B"));
            let mut gen = Gen::new(seed);
            let (got, end, ok) = read_checked(&mut s, &mut gen, u64::MAX, beat, t0).await;
            if !ok {
                return Err(Fail::Violation(format!(
                    "stream {id}: wrong bytes after {got}"
                )));
            }
            match (op, end) {
                (OP_RECV, Ok(())) if got == len => Ok(got),
                (OP_RECV, Ok(())) => Err(Fail::Violation(format!(
                    "stream {id}: {got} of {len} bytes, then a clean end"
                ))),
                (OP_RECV, Err(e)) => Err(io_fail("receive", id, e)),
                (_, Ok(())) => Err(Fail::Violation(format!(
                    "stream {id}: CLEAN END after {got} of {len} bytes; the server {}",
                    if op == OP_SERVER_DROP {
                        "dropped it mid-write"
                    } else {
                        "reset it"
                    }
                ))),
                (_, Err(e)) => {
                    let want = if op == OP_SERVER_DROP {
                        ErrorCode::CANCEL
                    } else {
                        code
                    };
                    if is_reset(&e, want, Side::Remote) {
                        st.expected(if op == OP_SERVER_DROP {
                            "client saw server's drop"
                        } else {
                            "client saw server's reset"
                        });
                        Ok(got)
                    } else {
                        Err(io_fail(&format!("expected a reset with {want}"), id, e))
                    }
                }
            }
        }
        OP_CLIENT_DROP | OP_CLIENT_RESET => {
            phase(&format!("write {len} B, then drop/reset"));
            let mut gen = Gen::new(seed);
            write_gen(&mut s, &mut gen, len, rng, beat, t0)
                .await
                .map_err(|e| io_fail("write before drop/reset", id, e))?;
            if op == OP_CLIENT_DROP {
                drop(s);
            } else {
                s.reset(code);
                match s.read(&mut [0u8; 8]).await {
                    Err(e) if is_reset(&e, code, Side::Local) => {}
                    Err(e) => return Err(io_fail("read after our reset", id, e)),
                    Ok(n) => {
                        return Err(Fail::Violation(format!(
                            "stream {id}: read Ok({n}) after our own reset"
                        )))
                    }
                }
            }
            Ok(len)
        }
        _ => unreachable!(),
    }
}

/// 50 streams at once, each a small echo.
async fn burst(session: &Session, st: &State, beat: &Beat, rng: &mut Rng) -> Result<u64, Fail> {
    let t0 = st.t0;
    beat.set(t0, format!("burst of {BURST}"));
    let mut futs = Vec::new();
    for _ in 0..BURST {
        let seed = rng.next();
        let len = rng.size(16 * 1024);
        futs.push(async move {
            let s = session
                .open()
                .await
                .map_err(|e| Fail::Unexpected(format!("burst open: {e}")))?;
            let id = s.id();
            let msg = Gen::new(seed).bytes(len);
            let (mut rx, mut tx) = s.into_split();
            // Write and read at once: an echo read only after the whole write would leave
            // up to a window per stream unread, and 50 of them fill the session window.
            let write = async {
                tx.write_all(&header(OP_ECHO, seed, 0, 0)).await?;
                tx.write_all(&msg).await?;
                tx.shutdown().await
            };
            let mut back = Vec::with_capacity(len);
            let (w, r) = tokio::join!(write, rx.read_to_end(&mut back));
            w.map_err(|e| io_fail("burst write", id, e))?;
            r.map_err(|e| io_fail("burst read", id, e))?;
            beat.alive(t0);
            if back != msg {
                return Err(Fail::Violation(format!(
                    "stream {id}: burst echo differs ({} of {len} bytes)",
                    back.len()
                )));
            }
            Ok(2 * len as u64)
        });
    }
    let mut bytes = 0;
    let mut refused = false;
    for r in futures::future::join_all(futs).await {
        match r {
            Ok(b) => bytes += b,
            Err(Fail::Refused) => refused = true,
            Err(other) => return Err(other),
        }
    }
    if refused {
        st.expected("refused (burst member; not retried)");
    }
    Ok(bytes)
}

async fn worker(session: Session, st: Arc<State>, w: usize, seed: u64, max_total: u64) {
    let mut rng = Rng(seed | 1);
    let beat = &st.workers[w];
    while !st.stop.load(Ordering::Relaxed) {
        let op = match rng.below(100) {
            0..=29 => OP_ECHO,
            30..=44 => OP_SEND,
            45..=59 => OP_RECV,
            60..=67 => OP_CLIENT_DROP,
            68..=75 => OP_SERVER_DROP,
            76..=83 => OP_CLIENT_RESET,
            84..=91 => OP_SERVER_RESET,
            _ => OP_BURST,
        };
        let r = if op == OP_BURST {
            burst(&session, &st, beat, &mut rng).await
        } else {
            client_op(&session, &st, beat, op, &mut rng, max_total).await
        };
        match r {
            Ok(bytes) => {
                let mut t = st.totals.lock();
                t.ops[op as usize] += 1;
                t.bytes += bytes;
            }
            Err(Fail::Refused) => st.expected("refused (retried)"),
            Err(Fail::Unexpected(w)) => st.unexpected(w),
            Err(Fail::Violation(w)) => st.violation(w),
        }
        beat.set(st.t0, "between operations".into());
    }
    beat.set(st.t0, "done".into());
}

// ---------------------------------------------------------------------------------------
// Driver

struct Args {
    secs: u64,
    configs: Vec<&'static str>,
    workers: usize,
    seed: u64,
    sessions: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        secs: 60,
        configs: vec!["default", "tight"],
        workers: 200,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        sessions: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--secs" => a.secs = num(val()?)?,
            "--workers" => a.workers = num(val()?)?.max(1) as usize,
            "--seed" => a.seed = num(val()?)?,
            "--sessions" => a.sessions = num(val()?)?.max(1) as usize,
            "--config" => {
                a.configs = match val()?.as_str() {
                    "default" => vec!["default"],
                    "tight" => vec!["tight"],
                    "both" => vec!["default", "tight"],
                    other => return Err(format!("--config {other}: default, tight or both")),
                }
            }
            "-h" | "--help" => {
                return Err("usage: soak --secs N [--config default|tight|both] [--workers W] [--seed S] [--sessions K]".into())
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn config(name: &str) -> Config {
    match name {
        "tight" => Config::default()
            .with_initial_stream_window(4096)
            .with_max_stream_window(16 * 1024)
            .with_session_window(64 * 1024)
            .with_max_frame_payload(1024)
            .with_stream_send_buffer(4096)
            .with_session_send_buffer(64 * 1024)
            .with_accept_backlog(16),
        _ => Config::default(),
    }
}

fn dump_sessions(sessions: &[(Session, Session)]) -> String {
    let mut out = String::new();
    for (i, (c, s)) in sessions.iter().enumerate() {
        out += &format!("  session {i} client: {:?}\n", c.stats());
        out += &format!("  session {i} server: {:?}\n", s.stats());
    }
    out
}

/// Runs one configuration; returns whether it was clean.
fn soak(args: &Args, name: &str) -> bool {
    let seed = args.seed ^ if name == "tight" { 0x7165 } else { 0 };
    let (max_total, secs) = (
        if name == "tight" { 256 * 1024 } else { 1 << 20 },
        args.secs,
    );
    println!(
        "== soak: config {name}, {secs} s, {} workers, {} sessions, seed {} ==",
        args.workers, args.sessions, args.seed
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let t0 = Instant::now();
    let st = Arc::new(State {
        t0,
        stop: AtomicBool::new(false),
        hung: AtomicBool::new(false),
        totals: Mutex::new(Totals::default()),
        workers: (0..args.workers).map(|_| Beat::new(t0)).collect(),
        handlers: Mutex::new(HashMap::new()),
        next_handler: AtomicU64::new(0),
    });
    let cfg = config(name);
    let sessions: Vec<(Session, Session)> = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut out = Vec::new();
        for _ in 0..args.sessions {
            let (c, s) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
            let (c, s) = (c.unwrap(), s.unwrap().0);
            c.set_nodelay(true).unwrap();
            s.set_nodelay(true).unwrap();
            let client = Session::client(c, cfg.clone()).unwrap();
            let server = Session::server(s, cfg.clone()).unwrap();
            let (srv, st2) = (server.clone(), st.clone());
            tokio::spawn(async move {
                while let Ok(stream) = srv.accept().await {
                    tokio::spawn(serve(stream, st2.clone()));
                }
            });
            out.push((client, server));
        }
        out
    });
    let workers: Vec<_> = (0..args.workers)
        .map(|w| {
            let session = sessions[w % sessions.len()].0.clone();
            rt.spawn(worker(
                session,
                st.clone(),
                w,
                Rng(seed.wrapping_add(w as u64 * 0x9E37)).next() | 1,
                max_total,
            ))
        })
        .collect();

    // Monitor on this thread (real clock): periodic line, RSS samples, hang detection.
    let mut rss = vec![(0u64, rss_kib())];
    let (mut next_report, deadline) = (REPORT_EVERY, Duration::from_secs(secs));
    let mut stopped_at = None;
    let mut last_ops = 0;
    loop {
        std::thread::sleep(Duration::from_millis(100)); // the monitor's sampling period
        let now = t0.elapsed();
        if now >= deadline && stopped_at.is_none() {
            st.stop.store(true, Ordering::Relaxed);
            stopped_at = Some(now);
        }
        let now_ms = now.as_millis() as u64;
        let hang_ms = HANG.as_millis() as u64;
        let mut stuck: Vec<String> = st
            .workers
            .iter()
            .enumerate()
            .filter(|(_, b)| {
                now_ms.saturating_sub(b.last.load(Ordering::Relaxed)) > hang_ms
                    && *b.what.lock() != "done"
            })
            .map(|(i, b)| {
                format!(
                    "  worker {i}: {} (no progress for {} ms)",
                    b.what.lock(),
                    now_ms - b.last.load(Ordering::Relaxed)
                )
            })
            .collect();
        stuck.extend(st.handlers.lock().iter().filter_map(|(h, b)| {
            let idle = now_ms.saturating_sub(b.last.load(Ordering::Relaxed));
            (idle > hang_ms).then(|| {
                format!(
                    "  handler {h}: {} (no progress for {idle} ms)",
                    b.what.lock()
                )
            })
        }));
        // The whole process: the latest progress of any task still running.
        let latest = (st.workers.iter())
            .filter(|b| *b.what.lock() != "done")
            .chain(st.handlers.lock().values().map(|b| &**b))
            .map(|b| b.last.load(Ordering::Relaxed))
            .max();
        if latest.is_some_and(|last| now_ms.saturating_sub(last) > STALL.as_millis() as u64) {
            stuck.push(format!("  every task: no progress anywhere for {STALL:?}"));
        }
        if !stuck.is_empty() {
            st.hung.store(true, Ordering::Relaxed);
            st.stop.store(true, Ordering::Relaxed);
            let msg = format!(
                "HANG after {:.1} s: {} task(s) without progress for {HANG:?} (or all for {STALL:?})\n{}\n{}",
                now.as_secs_f64(),
                stuck.len(),
                stuck
                    .iter()
                    .take(40)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n"),
                dump_sessions(&sessions)
            );
            eprintln!("VIOLATION: {msg}");
            st.totals.lock().violations.push(msg);
            break;
        }
        let finished = workers.iter().all(|w| w.is_finished()) && st.handlers.lock().is_empty();
        if now >= next_report || finished {
            next_report += REPORT_EVERY;
            let r = rss_kib();
            rss.push((now.as_secs(), r));
            let t = st.totals.lock().clone();
            let ops: u64 = t.ops.iter().sum();
            let open: usize = sessions.iter().map(|(c, _)| c.stats().open_streams).sum();
            println!(
                "[{name} {:>5.1}s] ops {ops} (+{}), {:.1} MiB, expected errors {}, unexpected {}, violations {}, RSS {} MiB, open streams {open}, handlers {}",
                now.as_secs_f64(),
                ops - last_ops,
                t.bytes as f64 / (1 << 20) as f64,
                t.expected.values().sum::<u64>(),
                t.unexpected.values().sum::<u64>(),
                t.violations.len(),
                r / 1024,
                st.handlers.lock().len(),
            );
            last_ops = ops;
        }
        if finished {
            break;
        }
    }
    let elapsed = t0.elapsed();

    let t = st.totals.lock().clone();
    let ops: u64 = t.ops.iter().sum();
    println!("== summary: config {name} ==");
    println!(
        "  ran {:.1} s ({:.1} s of work, then {:.1} s finishing the operations in flight)",
        elapsed.as_secs_f64(),
        secs as f64,
        stopped_at.map_or(0.0, |s| (elapsed - s).as_secs_f64())
    );
    println!(
        "  operations: {ops} ({:.0}/s), {:.1} MiB checked ({:.1} MiB/s)",
        ops as f64 / elapsed.as_secs_f64(),
        t.bytes as f64 / (1 << 20) as f64,
        t.bytes as f64 / (1 << 20) as f64 / elapsed.as_secs_f64()
    );
    for (i, n) in t.ops.iter().enumerate().skip(1) {
        println!("    {:<14} {n}", OP_NAMES[i]);
    }
    let mut exp: Vec<_> = t.expected.iter().collect();
    exp.sort();
    println!("  expected errors: {}", t.expected.values().sum::<u64>());
    for (k, n) in exp {
        println!("    {k:<36} {n}");
    }
    println!(
        "  unexpected errors: {}",
        t.unexpected.values().sum::<u64>()
    );
    for (k, n) in &t.unexpected {
        println!("    {n} × {k}");
    }
    println!("  violations: {}", t.violations.len());
    for v in t.violations.iter().take(10) {
        println!("    {}", v.lines().next().unwrap_or(""));
    }
    println!(
        "  RSS (MiB) by time: {}",
        rss.iter()
            .map(|(s, k)| format!("{s}s:{}", k / 1024))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  RSS max {} MiB, end {} MiB",
        rss.iter().map(|r| r.1).max().unwrap_or(0) / 1024,
        rss.last().map_or(0, |r| r.1) / 1024
    );
    println!("{}", dump_sessions(&sessions).trim_end());
    // An overtaken FIN is a race the server wins now and then; a FIN that never leaves would
    // be "overtaken" on nearly every operation that half-closes.
    let overtaken: u64 = (t.expected.iter())
        .filter(|(kind, _)| kind.contains("FIN overtaken"))
        .map(|(_, n)| n)
        .sum();
    let half_closing =
        t.ops[OP_RECV as usize] + t.ops[OP_SERVER_DROP as usize] + t.ops[OP_SERVER_RESET as usize];
    let fins_leave = overtaken * 2 <= half_closing.max(1);
    if !fins_leave {
        println!("  {overtaken} of {half_closing} FINs overtaken: they don't leave");
    }
    let clean = t.violations.is_empty() && t.unexpected.is_empty() && fins_leave;
    if st.hung.load(Ordering::Relaxed) {
        // Stuck tasks never finish: don't wait for them (nor report their errors as the
        // runtime goes down).
        println!("soak: FAILED (hang)");
        std::process::exit(1);
    }
    rt.block_on(async {
        for (c, _) in &sessions {
            c.close().await;
        }
    });
    drop(sessions);
    rt.shutdown_timeout(Duration::from_secs(2));
    clean
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let mut clean = true;
    for name in args.configs.clone() {
        clean &= soak(&args, name);
        if !clean {
            break;
        }
    }
    if clean {
        println!("soak: OK");
    } else {
        println!("soak: FAILED");
        std::process::exit(1);
    }
}
