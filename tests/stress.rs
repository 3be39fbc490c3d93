//! Stress loop for lost wake-ups (issue #23): client and server sessions on multi-threaded
//! runtimes (2 and 4 workers) over a chaotic in-memory transport (`support/chaos.rs`: every
//! read and write moves 1..=N bytes, polls return `Pending` at random and are woken later from
//! another thread or task), with tight and roomy configs, while several tasks race ping-pong
//! on one long-lived stream, short echo streams, large writes (16 KiB+, the write-through
//! path) with `flush`, half-close, resets either way, `stop`, server-only sends and
//! `session.ping()` both ways.
//!
//! Every byte is checked, and a reset or stopped stream must end in an error, never a clean
//! end-of-stream. A watchdog (real clock) fails the run when a task makes no progress for
//! [`HANG`], or no task at all for [`STALL`], with both sessions' `stats()` and what every
//! task was doing.
//!
//! Each run prints its seed; `STRESS_SEED=<seed>` (with `STRESS_WORKERS`, `STRESS_TIGHT=0|1`)
//! reruns exactly that run, and `STRESS_ROUNDS=<n>` changes the rounds per run.

#[path = "support/chaos.rs"]
mod chaos;
mod support;

use std::{
    io,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use braid::{Config, Error, ErrorCode, Session, Side};
use chaos::{chaos_pair, Chaos};
use parking_lot::Mutex;
use support::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A task making no progress for this long (real time) is a hang. A lost wake-up stalls a
/// task for good; a loaded machine only slows it (round trips of seconds were seen with two
/// soaks beside this test on 2 cores), so one task's limit is generous.
const HANG: Duration = Duration::from_secs(30);
/// No task making progress for this long is a hang of the whole session pair.
const STALL: Duration = Duration::from_secs(10);
/// Operations per run (all client tasks together), unless `STRESS_ROUNDS` says otherwise.
const ROUNDS: u64 = 2000;
/// A run starts no new operation after this long (the slowest chaos settings, 16-byte
/// reads and writes with many `Pending`s, would otherwise take minutes in a debug build).
const RUN_TIME: Duration = Duration::from_secs(12);
/// Client tasks racing each other (plus the long ping-pong and the pingers).
const TASKS: usize = 8;

const OP_ECHO: u8 = 1;
const OP_EXPECT_RESET: u8 = 2;
const OP_SEND: u8 = 3;
const OP_SERVER_RESET: u8 = 4;
const OP_STOP: u8 = 5;
const HEADER: usize = 17;

/// A stream of deterministic bytes that can be continued chunk by chunk (xorshift).
struct Gen(u64);

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        self.fill(&mut v);
        v
    }
}

fn header(op: u8, seed: u64, len: u32, code: u32) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[0] = op;
    h[1..9].copy_from_slice(&seed.to_le_bytes());
    h[9..13].copy_from_slice(&len.to_le_bytes());
    h[13..17].copy_from_slice(&code.to_le_bytes());
    h
}

/// What the watchdog can see: each task's current step and when it last made progress.
struct Shared {
    t0: Instant,
    ops_done: AtomicU64,
    stop: AtomicBool,
    status: Vec<Slot>,
    counts: Mutex<Counts>,
}

struct Slot {
    what: Mutex<String>,
    /// Milliseconds since `t0` of the task's last progress; `u64::MAX` once it is done.
    last: AtomicU64,
}

#[derive(Debug, Default)]
struct Counts {
    ops: [u64; 8],
    bytes: u64,
    refused: u64,
    resets_seen_by_server: u64,
    stops_seen_by_server: u64,
    /// Client FINs overtaken by the server's end (see `OP_SEND`).
    fins_overtaken: u64,
    pings: u64,
}

impl Shared {
    fn set(&self, task: usize, what: String) {
        *self.status[task].what.lock() = what;
        self.tick(task);
    }
    fn tick(&self, task: usize) {
        let now = self.t0.elapsed().as_millis() as u64;
        self.status[task].last.store(now, Ordering::Relaxed);
    }
    /// Whether the run goes on: fewer than `rounds` operations done, within [`RUN_TIME`].
    fn more(&self, rounds: u64) -> bool {
        self.ops_done.load(Ordering::Relaxed) < rounds && self.t0.elapsed() < RUN_TIME
    }
    fn done(&self, task: usize, what: String) {
        *self.status[task].what.lock() = what;
        self.status[task].last.store(u64::MAX, Ordering::Relaxed);
    }
}

fn run_config(tight: bool, rng: &mut Rng) -> Config {
    if tight {
        let window = 1024 + rng.below(3073) as u32;
        Config::default()
            .with_initial_stream_window(window)
            .with_max_stream_window(window * 4)
            .with_session_window(window * 16)
            .with_max_frame_payload(1024)
            .with_stream_send_buffer(1024 + rng.below(3072) as u32)
            .with_session_send_buffer(16 * 1024)
            .with_accept_backlog(1 + rng.below(4) as u32)
    } else {
        Config::default()
            .with_initial_stream_window(64 * 1024)
            .with_session_window(4 << 20)
            .with_max_frame_payload(16 * 1024)
            .with_stream_send_buffer(64 * 1024)
    }
}

fn errstr(e: &io::Error) -> String {
    format!("{e} ({:?})", Error::from_io(e))
}

fn is_refused(e: &io::Error) -> bool {
    matches!(Error::from_io(e), Some(Error::StreamRefused { .. }))
}

/// Whether `e` is `StreamReset { code, by }`.
fn is_reset(e: &io::Error, code: ErrorCode, by: Side) -> bool {
    matches!(Error::from_io(e), Some(Error::StreamReset { code: c, by: b }) if *c == code && *b == by)
}

/// Whether `e` is `StreamStopped { code }`: the peer stopped reading.
fn is_stopped(e: &io::Error, code: ErrorCode) -> bool {
    matches!(Error::from_io(e), Some(Error::StreamStopped { code: c }) if *c == code)
}

/// Reads up to `limit` bytes (or to an error/EOF), checking them against `gen`.
/// Returns (bytes read, Ok(true) at EOF / Ok(false) at the limit / Err).
async fn read_checked<R: AsyncReadExt + Unpin>(
    r: &mut R,
    gen: &mut Gen,
    limit: usize,
    rng: &mut Rng,
    progress: &(dyn Fn() + Sync),
) -> (usize, Result<bool, io::Error>, bool) {
    let mut buf = vec![0u8; 8192];
    let mut expect = vec![0u8; 8192];
    let mut got = 0;
    while got < limit {
        let want = (1 + rng.below(8192) as usize).min(limit - got);
        match r.read(&mut buf[..want]).await {
            Ok(0) => return (got, Ok(true), true),
            Ok(n) => {
                progress();
                gen.fill(&mut expect[..n]);
                if buf[..n] != expect[..n] {
                    return (got, Ok(false), false);
                }
                got += n;
            }
            Err(e) => return (got, Err(e), true),
        }
    }
    (got, Ok(false), true)
}

/// One server stream: reads the header, then does what it says. `Err` is a violation.
async fn serve(stream: braid::Stream, sh: Arc<Shared>) -> Result<(), String> {
    let id = stream.id();
    let (mut rx, mut tx) = stream.into_split();
    let mut h = [0u8; HEADER];
    if let Err(e) = rx.read_exact(&mut h).await {
        // A client reset can overtake its own header; a clean EOF here never may.
        return match Error::from_io(&e) {
            Some(Error::StreamReset {
                by: Side::Remote, ..
            }) => Ok(()),
            _ => Err(format!("server {id}: header: {}", errstr(&e))),
        };
    }
    let op = h[0];
    let seed = u64::from_le_bytes(h[1..9].try_into().unwrap());
    let len = u32::from_le_bytes(h[9..13].try_into().unwrap()) as usize;
    let code = ErrorCode(u32::from_le_bytes(h[13..17].try_into().unwrap()));
    let mut rng = Rng(seed | 1);
    match op {
        OP_ECHO => {
            let mut buf = vec![0u8; 1 + rng.below(32 * 1024) as usize];
            loop {
                let n = rx
                    .read(&mut buf)
                    .await
                    .map_err(|e| format!("server {id} echo read: {}", errstr(&e)))?;
                if n == 0 {
                    break;
                }
                tx.write_all(&buf[..n])
                    .await
                    .map_err(|e| format!("server {id} echo write: {}", errstr(&e)))?;
                if rng.below(8) == 0 {
                    tx.flush()
                        .await
                        .map_err(|e| format!("server {id} echo flush: {}", errstr(&e)))?;
                }
            }
            tx.shutdown()
                .await
                .map_err(|e| format!("server {id} echo shutdown: {}", errstr(&e)))
        }
        OP_EXPECT_RESET => {
            let mut gen = Gen::new(seed);
            let (got, end, ok) =
                read_checked(&mut rx, &mut gen, usize::MAX, &mut rng, &|| {}).await;
            if !ok {
                return Err(format!(
                    "server {id}: wrong bytes after {got} before the reset"
                ));
            }
            match end {
                Err(e) if is_reset(&e, code, Side::Remote) => {
                    sh.counts.lock().resets_seen_by_server += 1;
                    Ok(())
                }
                Err(e) => Err(format!("server {id}: expected reset {code}: {}", errstr(&e))),
                Ok(_) => Err(format!(
                    "server {id}: CLEAN END after {got} bytes of a stream the client reset with {code}"
                )),
            }
        }
        OP_SEND | OP_SERVER_RESET => {
            let mut gen = Gen::new(seed);
            let mut sent = 0;
            while sent < len {
                let n = (1 + rng.below(40 * 1024) as usize).min(len - sent);
                tx.write_all(&gen.bytes(n))
                    .await
                    .map_err(|e| format!("server {id} send: {}", errstr(&e)))?;
                sent += n;
            }
            if op == OP_SEND {
                tx.shutdown()
                    .await
                    .map_err(|e| format!("server {id} send shutdown: {}", errstr(&e)))?;
            } else {
                if rng.below(2) == 0 {
                    let _ = tx.flush().await;
                }
                tx.reset(code);
            }
            Ok(())
        }
        OP_STOP => {
            let mut gen = Gen::new(seed);
            loop {
                let n = 1 + rng.below(20 * 1024) as usize;
                if let Err(e) = tx.write_all(&gen.bytes(n)).await {
                    return match Error::from_io(&e) {
                        Some(Error::StreamStopped { code: c }) if *c == code => {
                            sh.counts.lock().stops_seen_by_server += 1;
                            Ok(())
                        }
                        _ => Err(format!("server {id}: expected stop {code}: {}", errstr(&e))),
                    };
                }
            }
        }
        _ => Err(format!("server {id}: bad op {op}")),
    }
}

/// An op failed because the stream was refused (small backlog): retry, not a failure.
enum OpError {
    Refused,
    Failed(String),
}

impl From<String> for OpError {
    fn from(s: String) -> Self {
        OpError::Failed(s)
    }
}

fn io_fail(what: &str, e: io::Error) -> OpError {
    if is_refused(&e) {
        OpError::Refused
    } else {
        OpError::Failed(format!("{what}: {}", errstr(&e)))
    }
}

/// One client operation of kind `op`; `t` is the task's status slot.
async fn client_op(
    session: &Session,
    sh: &Arc<Shared>,
    t: usize,
    op: u8,
    rng: &mut Rng,
) -> Result<u64, OpError> {
    let seed = rng.next();
    let code = ErrorCode(0x100 + rng.below(0x1000) as u32);
    sh.set(t, format!("op {op}: open"));
    let mut s = session
        .open()
        .await
        .map_err(|e| OpError::Failed(format!("open: {e}")))?;
    let id = s.id();
    let st = |what: String| sh.set(t, format!("op {op} stream {id}: {what}"));
    match op {
        OP_ECHO if rng.below(2) == 0 => {
            // Short ping-pong, then half-close. Each exchange writes (and maybe flushes)
            // while it reads the echo: a flush waits for the peer's credit, so flushing a
            // message larger than the windows before reading would deadlock with the
            // echo server's own write (the application's doing, not braid's).
            s.write_all(&header(OP_ECHO, seed, 0, 0))
                .await
                .map_err(|e| io_fail("header", e))?;
            let (mut rx, mut tx) = s.into_split();
            let mut gen = Gen::new(seed);
            let mut bytes = 0;
            for i in 0..1 + rng.below(20) {
                let msg = gen.bytes(1 + rng.below(3000) as usize);
                let flush = rng.below(3) == 0;
                st(format!("exchange {i}: {} B (flush {flush})", msg.len()));
                let write = async {
                    tx.write_all(&msg).await?;
                    if flush {
                        tx.flush().await?;
                    }
                    Ok::<_, io::Error>(())
                };
                let mut back = vec![0; msg.len()];
                let (w, r) = tokio::join!(write, rx.read_exact(&mut back));
                w.map_err(|e| io_fail("write", e))?;
                r.map_err(|e| io_fail("read", e))?;
                if back != msg {
                    return Err(format!("stream {id}: echo differs in exchange {i}").into());
                }
                bytes += msg.len() as u64;
                sh.tick(t);
            }
            st("shutdown, read to end".into());
            tx.shutdown().await.map_err(|e| io_fail("shutdown", e))?;
            let mut rest = Vec::new();
            rx.read_to_end(&mut rest)
                .await
                .map_err(|e| io_fail("read to end", e))?;
            if !rest.is_empty() {
                return Err(format!("stream {id}: {} extra bytes", rest.len()).into());
            }
            Ok(bytes)
        }
        OP_ECHO => {
            // Large writes (write-through path) from a spawned writer, read concurrently.
            let total = 16 * 1024 + rng.below(400 * 1024) as usize;
            let (mut rx, mut tx) = s.into_split();
            tx.write_all(&header(OP_ECHO, seed, 0, 0))
                .await
                .map_err(|e| io_fail("header", e))?;
            let mut wrng = Rng(seed ^ 0xFFFF | 1);
            let writer = tokio::spawn(async move {
                let mut gen = Gen::new(seed);
                let mut sent = 0;
                while sent < total {
                    let n = (16 * 1024 + wrng.below(80 * 1024) as usize).min(total - sent);
                    tx.write_all(&gen.bytes(n)).await?;
                    sent += n;
                    if wrng.below(4) == 0 {
                        tx.flush().await?;
                    }
                }
                tx.shutdown().await
            });
            st(format!("large echo: reading {total}"));
            let mut gen = Gen::new(seed);
            let (got, end, ok) =
                read_checked(&mut rx, &mut gen, usize::MAX, rng, &|| sh.tick(t)).await;
            if !ok {
                return Err(format!("stream {id}: large echo: wrong bytes after {got}").into());
            }
            let w = writer.await.expect("writer task");
            match (end, w) {
                (Ok(true), Ok(())) if got == total => Ok(total as u64),
                (Ok(_), Ok(())) => {
                    Err(format!("stream {id}: large echo: {got} of {total} then EOF").into())
                }
                (Err(e), _) | (_, Err(e)) => Err(io_fail("large echo", e)),
            }
        }
        OP_EXPECT_RESET => {
            s.write_all(&header(op, seed, 0, code.0))
                .await
                .map_err(|e| io_fail("header", e))?;
            let mut gen = Gen::new(seed);
            let n = rng.below(20_000) as usize;
            st(format!("write {n} then reset"));
            s.write_all(&gen.bytes(n))
                .await
                .map_err(|e| io_fail("write", e))?;
            if rng.below(2) == 0 {
                s.flush().await.map_err(|e| io_fail("flush", e))?;
            }
            s.reset(code);
            match s.read(&mut [0u8; 16]).await {
                Err(e) if is_reset(&e, code, Side::Local) => {}
                Err(e) if is_refused(&e) => return Err(OpError::Refused),
                Err(e) => return Err(format!("read after reset: {}", errstr(&e)).into()),
                Ok(n) => return Err(format!("stream {id}: read Ok({n}) after our reset").into()),
            }
            if s.write_all(b"x").await.is_ok() {
                return Err(format!("stream {id}: write Ok after our reset").into());
            }
            Ok(n as u64)
        }
        OP_SEND | OP_SERVER_RESET => {
            let len = rng.below(if op == OP_SEND { 300_000 } else { 40_000 }) as u32;
            s.write_all(&header(op, seed, len, code.0))
                .await
                .map_err(|e| io_fail("header", e))?;
            if let Err(e) = s.shutdown().await {
                // The server needs only the header: it may write everything, end its side and
                // drop its receive half (STOP_SENDING(CANCEL), spec §6.5), or reset, before our
                // FIN leaves a busy writer. The stop is the truth about our FIN; the server's
                // bytes and its end must still arrive, which the read below checks. A reset
                // that overtook the FIN ends the op as the read would.
                let stopped = is_stopped(&e, ErrorCode::CANCEL);
                if op == OP_SERVER_RESET && is_reset(&e, code, Side::Remote) {
                    sh.counts.lock().fins_overtaken += 1;
                    return Ok(0);
                }
                if !stopped {
                    return Err(io_fail("shutdown", e));
                }
                sh.counts.lock().fins_overtaken += 1;
            }
            st(format!("half-closed, receiving {len}"));
            let mut gen = Gen::new(seed);
            let (got, end, ok) =
                read_checked(&mut s, &mut gen, usize::MAX, rng, &|| sh.tick(t)).await;
            if !ok {
                return Err(format!("stream {id}: op {op}: wrong bytes after {got}").into());
            }
            match (op, end) {
                (OP_SEND, Ok(true)) if got == len as usize => Ok(got as u64),
                (OP_SEND, Ok(_)) => Err(format!("stream {id}: {got} of {len} then EOF").into()),
                (OP_SEND, Err(e)) => Err(io_fail("receive", e)),
                (_, Err(e)) if is_reset(&e, code, Side::Remote) => Ok(got as u64),
                (_, Err(e)) => Err(io_fail("expected the server's reset", e)),
                (_, Ok(_)) => Err(format!(
                    "stream {id}: CLEAN END after {got} of {len} bytes; the server reset it with {code}"
                )
                .into()),
            }
        }
        OP_STOP => {
            s.write_all(&header(op, seed, 0, code.0))
                .await
                .map_err(|e| io_fail("header", e))?;
            if rng.below(2) == 0 {
                s.shutdown().await.map_err(|e| io_fail("shutdown", e))?;
            }
            let (mut rx, mut tx) = s.into_split();
            let mut gen = Gen::new(seed);
            let limit = rng.below(60_000) as usize;
            st(format!("reading {limit} before stop"));
            let (got, end, ok) = read_checked(&mut rx, &mut gen, limit, rng, &|| sh.tick(t)).await;
            if !ok {
                return Err(format!("stream {id}: stop: wrong bytes after {got}").into());
            }
            if let Err(e) = end {
                return Err(io_fail("read before stop", e));
            }
            if end.unwrap() {
                return Err(format!("stream {id}: CLEAN END of an endless stream").into());
            }
            rx.stop(code);
            st("stopped; reads must fail".into());
            // Every read after a stop fails with the stop code, never a clean end: right
            // away, and also after our FIN (once the peer's answering FIN may be in).
            for i in 0..2 {
                match rx.read(&mut [0u8; 64]).await {
                    Err(e) if is_reset(&e, code, Side::Local) => {}
                    Err(e) => return Err(format!("read {i} after stop: {}", errstr(&e)).into()),
                    Ok(n) => return Err(format!("stream {id}: read {i} Ok({n}) after stop").into()),
                }
                if i == 0 {
                    // Finish our side so the stream closes and the server sees the stop. The
                    // server's handler may already have dropped the stream on seeing our
                    // stop, and a dropped receive half the peer is still writing to sends
                    // STOP_SENDING(CANCEL) (spec §6.5): our finish then fails with it.
                    match tx.shutdown().await {
                        Ok(()) => {}
                        Err(e) if is_stopped(&e, ErrorCode::CANCEL) => {}
                        Err(e) => return Err(io_fail("shutdown", e)),
                    }
                }
            }
            Ok(got as u64)
        }
        _ => unreachable!(),
    }
}

async fn client_task(session: Session, sh: Arc<Shared>, t: usize, seed: u64, rounds: u64) {
    let mut rng = Rng(seed | 1);
    while sh.more(rounds) {
        let op = match rng.below(10) {
            0..=3 => OP_ECHO,
            4 => OP_EXPECT_RESET,
            5 | 6 => OP_SEND,
            7 => OP_SERVER_RESET,
            _ => OP_STOP,
        };
        match client_op(&session, &sh, t, op, &mut rng).await {
            Ok(bytes) => {
                let mut c = sh.counts.lock();
                c.ops[op as usize] += 1;
                c.bytes += bytes;
            }
            Err(OpError::Refused) => sh.counts.lock().refused += 1,
            Err(OpError::Failed(why)) => panic!("client task {t}, op {op}: {why}"),
        }
        sh.ops_done.fetch_add(1, Ordering::Relaxed);
        sh.tick(t);
    }
    sh.done(t, "done".into());
}

/// Ping-pong on one stream for the whole run.
async fn pingpong_task(session: Session, sh: Arc<Shared>, t: usize, seed: u64, rounds: u64) {
    let mut rng = Rng(seed | 1);
    let mut s = session.open().await.expect("open");
    s.write_all(&header(OP_ECHO, seed, 0, 0)).await.unwrap();
    let mut gen = Gen::new(seed);
    let mut i = 0u64;
    while sh.more(rounds) {
        let msg = gen.bytes(1 + rng.below(200) as usize);
        sh.set(
            t,
            format!("pingpong stream {}: round {i} ({} B)", s.id(), msg.len()),
        );
        s.write_all(&msg).await.expect("pingpong write");
        let mut back = vec![0; msg.len()];
        s.read_exact(&mut back).await.expect("pingpong read");
        assert_eq!(back, msg, "pingpong round {i}");
        i += 1;
        sh.tick(t);
    }
    s.shutdown().await.unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).await.expect("pingpong end");
    assert!(rest.is_empty());
    sh.done(t, format!("pingpong done after {i} rounds"));
}

async fn ping_task(session: Session, sh: Arc<Shared>, t: usize, who: &'static str, rounds: u64) {
    let mut i = 0u64;
    while sh.more(rounds) {
        sh.set(t, format!("{who} ping {i}"));
        session.ping().await.expect("ping");
        sh.counts.lock().pings += 1;
        i += 1;
        sh.tick(t);
    }
    sh.done(t, format!("{who} pings done"));
}

fn dump(sh: &Shared, client: &Session, server: &Session) -> String {
    let mut out = String::new();
    let now = sh.t0.elapsed().as_millis() as u64;
    for (i, s) in sh.status.iter().enumerate() {
        let last = s.last.load(Ordering::Relaxed);
        let idle = if last == u64::MAX {
            String::new()
        } else {
            format!(" (no progress for {} ms)", now.saturating_sub(last))
        };
        out += &format!("  task {i}: {}{idle}\n", s.what.lock());
    }
    out += &format!("  counts: {:?}\n", sh.counts.lock());
    out += &format!("  client stats: {:?}\n", client.stats());
    out += &format!("  server stats: {:?}\n", server.stats());
    out
}

fn run(seed: u64, workers: usize, tight: bool, rounds: u64) {
    println!(
        "stress run: STRESS_SEED={seed} STRESS_WORKERS={workers} STRESS_TIGHT={}",
        tight as u8
    );
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    let mut rng = Rng(seed | 1);
    let config = run_config(tight, &mut rng);
    let chaos = |rng: &mut Rng| Chaos {
        max_chunk: if tight {
            16 + rng.below(600)
        } else {
            256 + rng.below(9000)
        } as usize,
        pending_per_mille: rng.below(300),
        vectored: rng.below(2) == 0,
    };
    let (ca, cb) = (chaos(&mut rng), chaos(&mut rng));
    let pipe = 64 + rng.below(16 * 1024) as usize;
    println!("  config {config:?}\n  chaos client {ca:?} server {cb:?} pipe {pipe}");
    let sh = Arc::new(Shared {
        t0: Instant::now(),
        ops_done: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        status: (0..TASKS + 3)
            .map(|_| Slot {
                what: Mutex::new("not started".into()),
                last: AtomicU64::new(0),
            })
            .collect(),
        counts: Mutex::new(Counts::default()),
    });
    let outcome = rt.block_on(async {
        let (a, b) = chaos_pair(seed, pipe, ca, cb);
        let client = Session::client(a, config.clone()).unwrap();
        let server = Session::server(b, config.clone()).unwrap();

        // Server: every stream served on its own task; violations come back on a channel.
        let (vtx, mut vrx) = tokio::sync::mpsc::unbounded_channel::<String>();
        {
            let (server, sh) = (server.clone(), sh.clone());
            tokio::spawn(async move {
                while let Ok(stream) = server.accept().await {
                    let (sh, vtx) = (sh.clone(), vtx.clone());
                    tokio::spawn(async move {
                        if let Err(v) = serve(stream, sh).await {
                            let _ = vtx.send(v);
                        }
                    });
                }
            });
        }

        // Watchdog on its own OS thread: real clock, independent of the runtime's health.
        let (dtx, drx) = tokio::sync::oneshot::channel::<String>();
        let watchdog = {
            let (sh, client, server) = (sh.clone(), client.clone(), server.clone());
            std::thread::spawn(move || {
                while !sh.stop.load(Ordering::Relaxed) {
                    std::thread::park_timeout(Duration::from_millis(50));
                    let now = sh.t0.elapsed().as_millis() as u64;
                    let idle = |s: &Slot| {
                        let last = s.last.load(Ordering::Relaxed);
                        (last != u64::MAX).then(|| now.saturating_sub(last))
                    };
                    let one_stuck =
                        (sh.status.iter().filter_map(idle)).any(|ms| ms > HANG.as_millis() as u64);
                    let all_stuck = (sh.status.iter().filter_map(idle))
                        .min()
                        .is_some_and(|ms| ms > STALL.as_millis() as u64);
                    let stuck = one_stuck || all_stuck;
                    if stuck {
                        let d = dump(&sh, &client, &server);
                        let _ = dtx.send(d);
                        return;
                    }
                }
            })
        };

        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..TASKS {
            tasks.spawn(client_task(
                client.clone(),
                sh.clone(),
                t,
                seed.wrapping_add(t as u64 * 7919),
                rounds,
            ));
        }
        tasks.spawn(pingpong_task(
            client.clone(),
            sh.clone(),
            TASKS,
            seed ^ 77,
            rounds,
        ));
        tasks.spawn(ping_task(
            client.clone(),
            sh.clone(),
            TASKS + 1,
            "client",
            rounds,
        ));
        tasks.spawn(ping_task(
            server.clone(),
            sh.clone(),
            TASKS + 2,
            "server",
            rounds,
        ));
        let all = async {
            while let Some(r) = tasks.join_next().await {
                if let Err(e) = r {
                    let msg = match e.try_into_panic() {
                        Ok(p) => p
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default(),
                        Err(e) => e.to_string(),
                    };
                    return Err(format!("task failed: {msg}"));
                }
            }
            Ok(())
        };
        let result = tokio::select! {
            r = all => r,
            Ok(d) = drx => Err(format!(
                "HANG: a task made no progress for {HANG:?}, or none did for {STALL:?}\n{d}"
            )),
            Some(v) = vrx.recv() => Err(format!("server violation: {v}")),
        };
        sh.stop.store(true, Ordering::Relaxed);
        watchdog.thread().unpark();
        let result = match result {
            Err(why) => Err(format!("{why}\n{}", dump(&sh, &client, &server))),
            Ok(()) => {
                // Late server violations (the last streams' handlers).
                client.close().await;
                let _ = tokio::time::timeout(Duration::from_secs(5), server.closed()).await;
                match vrx.try_recv() {
                    Ok(v) => Err(format!("server violation: {v}")),
                    Err(_) => Ok(()),
                }
            }
        };
        let _ = watchdog.join();
        result
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    let c = sh.counts.lock();
    println!(
        "  {:?}: ops {:?}, {} bytes, {} refused, server saw {} resets / {} stops, {} FINs overtaken, {} pings",
        started.elapsed(),
        &c.ops[1..6],
        c.bytes,
        c.refused,
        c.resets_seen_by_server,
        c.stops_seen_by_server,
        c.fins_overtaken,
        c.pings
    );
    if let Err(why) = outcome {
        panic!("stress run failed (STRESS_SEED={seed} STRESS_WORKERS={workers} STRESS_TIGHT={}): {why}", tight as u8);
    }
    // An overtaken FIN is a race the server wins now and then; a FIN that never leaves
    // (stuck behind credit, say) would be "overtaken" on nearly every op that sends one.
    let half_closing = c.ops[OP_SEND as usize] + c.ops[OP_SERVER_RESET as usize];
    assert!(
        c.fins_overtaken * 2 <= half_closing,
        "{} of {half_closing} FINs overtaken: they don't leave",
        c.fins_overtaken
    );
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The two tests take turns: each wants the machine's cores to itself.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn scenario(workers: usize) {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rounds = env("STRESS_ROUNDS").unwrap_or(ROUNDS);
    if let Some(seed) = env("STRESS_SEED") {
        let workers = env("STRESS_WORKERS").map_or(workers, |w| w as usize);
        run(seed, workers, env("STRESS_TIGHT").unwrap_or(1) == 1, rounds);
        return;
    }
    // Fresh seeds each run (printed), so repeated CI runs cover more ground.
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    for (i, tight) in [true, false, true].into_iter().enumerate() {
        let seed = Rng((base ^ (workers as u64) << 32 ^ (i as u64) << 8) | 1).next();
        run(seed, workers, tight, rounds);
    }
}

#[test]
fn stress_2_workers() {
    scenario(2);
}

#[test]
fn stress_4_workers() {
    scenario(4);
}
