//! The sessions-* workloads (issue #22, "ten thousand clients on one server"): many sessions at
//! once, each its own loopback TCP connection, for `braid`, `h2`, `h2-tuned`, `yamux`, `tonic`
//! and raw `tcp`.
//!
//! * `sessions-idle`: N client and N server sessions in one process; anonymous resident memory
//!   (`RssAnon`) per session pair when set up, after a 4 MiB burst each way on one stream per
//!   session (stream closed), and after 1 s idle.
//! * `sessions-fleet`: N client sessions, each making a 64-byte request on a new stream every
//!   100 ms, against a server in its own process: server CPU per request, latency, server
//!   memory per session.
//! * `sessions-churn`: sessions opened, used once and closed, 16 at a time, against a server in
//!   its own process: sessions per second, server CPU per session.
//!
//! In `sessions-fleet` and `sessions-churn` the server is a second child process (this binary
//! with [`SERVER_FLAG`]), started by the measuring child and read through `/proc/PID`; it exits
//! when its stdin (a pipe from the measuring child) closes.

pub mod conn;

use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::child::{Job, Mode, Outcome};
use crate::report::{num, Group};
use crate::sys::{self, CpuMeter};
use crate::workloads::{percentiles, Metric, Preset, Sample, Workload};
use conn::{ClientSession, Counters, Handler, Imp, CHUNK, ECHO_SIZE};

/// First argument that makes the binary run as the server process of a sessions workload.
pub const SERVER_FLAG: &str = "--child-server";

/// The implementations that run the sessions workloads, in report order.
pub const IMPLS: [&str; 6] = ["braid", "h2", "h2-tuned", "yamux", "tonic", "tcp"];

/// Whether implementation `name` runs the sessions workloads.
pub fn takes_part(name: &str) -> bool {
    IMPLS.contains(&name)
}

const MIB: usize = 1024 * 1024;
/// File descriptors kept free for everything else (runtime, pipes, listener).
const FD_RESERVE: usize = 256;
/// Sessions connecting at once while N are set up.
const CONNECT_INFLIGHT: usize = 64;

/// Sizes of the sessions workloads for one preset.
#[derive(Debug, Clone, Copy)]
pub struct SessionParams {
    /// `sessions-idle`: sessions (pairs) asked for.
    pub idle_sessions: usize,
    /// `sessions-idle`: bytes each way of the burst on one stream per session.
    pub burst_bytes: usize,
    /// `sessions-idle`: sessions bursting at once.
    pub burst_inflight: usize,
    /// `sessions-idle`: the quiet time before the third measurement.
    pub idle_wait: Duration,
    /// `sessions-fleet`: client sessions.
    pub fleet_sessions: usize,
    /// `sessions-fleet`: time between one session's requests.
    pub fleet_period: Duration,
    /// `sessions-fleet`: measured time.
    pub fleet_duration: Duration,
    /// `sessions-churn`: sessions in flight.
    pub churn_inflight: usize,
    /// `sessions-churn`: measured time.
    pub churn_duration: Duration,
}

impl SessionParams {
    /// Sizes for `preset`.
    pub fn new(preset: Preset) -> Self {
        let quick = preset == Preset::Quick;
        SessionParams {
            idle_sessions: if quick { 1_000 } else { 10_000 },
            burst_bytes: 4 * MIB,
            burst_inflight: 1,
            idle_wait: Duration::from_secs(1),
            fleet_sessions: if quick { 200 } else { 1_000 },
            fleet_period: Duration::from_millis(100),
            fleet_duration: Duration::from_secs(if quick { 3 } else { 10 }),
            churn_inflight: 16,
            churn_duration: Duration::from_secs(if quick { 2 } else { 10 }),
        }
    }

    /// With `--sessions N`: N sessions in `sessions-idle` and `sessions-fleet`.
    pub fn with_sessions(mut self, sessions: Option<usize>) -> Self {
        if let Some(n) = sessions {
            self.idle_sessions = n;
            self.fleet_sessions = n;
        }
        self
    }
}

const fn metric(name: &'static str, unit: &'static str, higher_is_better: bool) -> Metric {
    Metric {
        name,
        unit,
        higher_is_better,
        headline: true,
    }
}

/// `sessions-idle` columns.
pub const IDLE_METRICS: &[Metric] = &[
    metric("set up", "B/pair", false),
    metric("after burst", "B/pair", false),
    metric("after 1 s idle", "B/pair", false),
    Metric {
        headline: false,
        ..metric("burst, 2nd half", "B/pair", false)
    },
    Metric {
        headline: false,
        ..metric("sessions", "pairs", true)
    },
];

/// `sessions-fleet` columns.
pub const FLEET_METRICS: &[Metric] = &[
    metric("server CPU", "µs/req", false),
    metric("p50", "µs", false),
    metric("p99", "µs", false),
    metric("server memory", "B/session", false),
    Metric {
        headline: false,
        ..metric("rate", "req/s", true)
    },
];

/// `sessions-churn` columns.
pub const CHURN_METRICS: &[Metric] = &[
    metric("rate", "sessions/s", true),
    metric("server CPU", "µs/session", false),
];

/// The [`Workload::describe`] line of a sessions workload.
pub fn describe(w: Workload, p: &SessionParams) -> String {
    let processes = "split: each process on a current-thread runtime, shared: each process on \
                     a 2-worker runtime";
    match w {
        Workload::SessionsIdle => format!(
            "{} sessions, client and server ends in one process, one loopback TCP connection \
             each; RssAnon growth (heap and stacks, not kernel socket buffers) per session pair \
             from before the first session: (1) set up, never used; (2) after a {} MiB burst \
             each way on one stream per session ({} session(s) at a time; tcp: on the \
             connection), the stream closed, measured when the last burst ends (the first \
             sessions have been quiet since theirs); (3) after {} s more idle. Bursts run in \
             two halves: \"burst, 2nd half\" is the growth over the second half per pair, \
             the cost of one more session without the malloc high-water mark the first bursts \
             leave. CPU column = whole process during the bursts",
            p.idle_sessions,
            p.burst_bytes / MIB,
            p.burst_inflight,
            p.idle_wait.as_secs_f64()
        ),
        Workload::SessionsFleet => format!(
            "{} client sessions each send a {ECHO_SIZE}-byte request on a new stream and read \
             the {ECHO_SIZE}-byte reply every {} ms (tonic: a unary call; tcp: on the \
             connection) for {} s; the server runs in its own process: its CPU (all its \
             threads' schedstat) per request and its RssAnon growth per session; CPU column = \
             client + server processes; {processes}",
            p.fleet_sessions,
            p.fleet_period.as_millis(),
            p.fleet_duration.as_secs_f64()
        ),
        Workload::SessionsChurn => format!(
            "{} at a time for {} s: connect, handshake, one {ECHO_SIZE}-byte echo on one \
             stream, close (braid: close().await; h2: drop and await the connection task; \
             yamux: poll_close; tonic: drop the channel; tcp: close); the server runs in its \
             own process: its CPU per session; CPU column = client + server processes; \
             {processes}",
            p.churn_inflight,
            p.churn_duration.as_secs_f64()
        ),
        _ => String::new(),
    }
}

/// Seconds a measurement of `w` may take at least (the `--timeout` floor for it).
pub fn min_timeout(w: Workload, p: &SessionParams) -> u64 {
    match w {
        // Bursts move 2 x burst_bytes per session: allow 100 MiB/s, the slowest seen.
        Workload::SessionsIdle => {
            30 + (p.idle_sessions * 2 * p.burst_bytes / (100 * MIB)) as u64
                + p.idle_sessions as u64 / 200
        }
        Workload::SessionsFleet => 30 + p.fleet_duration.as_secs() + p.fleet_sessions as u64 / 100,
        Workload::SessionsChurn => 30 + p.churn_duration.as_secs(),
        _ => 0,
    }
}

// ---------------------------------------------------------------------------------------------
// The measuring child

/// Runs one sessions measurement (in the child process).
pub fn run(job: &Job) -> Outcome {
    let Some(imp) = Imp::parse(&job.imp) else {
        return Outcome::Error(format!("{} does not run the sessions workloads", job.imp));
    };
    let p = SessionParams::new(job.preset).with_sessions(job.sessions);
    let timeout = Duration::from_secs(job.timeout_s);
    let result = match job.workload {
        Workload::SessionsIdle => run_idle(job.mode, imp, p, timeout),
        Workload::SessionsFleet | Workload::SessionsChurn => run_against_server(job, imp, p),
        other => Err(io::Error::other(format!(
            "{} is not a sessions workload",
            other.name()
        ))),
    };
    result.unwrap_or_else(|e| Outcome::Error(format!("setup: {e}")))
}

/// Sessions that fit under the open-files limit (raised as far as allowed) at `fds` per session.
fn sessions_that_fit(want: usize, fds: usize) -> usize {
    let (limit, _, _) = sys::raise_open_files((fds * want + FD_RESERVE) as u64);
    want.min((limit as usize).saturating_sub(FD_RESERVE) / fds)
}

fn rss_anon(pid: Option<u32>) -> io::Result<f64> {
    sys::rss_anon_bytes(pid)
        .map(|b| b as f64)
        .ok_or_else(|| io::Error::other("no RssAnon in /proc/PID/status"))
}

/// Waits (up to 10 s) until `done` holds.
async fn wait_until(what: &str, done: impl Fn() -> bool) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        if Instant::now() > deadline {
            return Err(io::Error::other(format!("timed out waiting for {what}")));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// `n` client sessions, `CONNECT_INFLIGHT` connecting at once.
async fn connect_all(imp: Imp, addr: SocketAddr, n: usize) -> io::Result<Vec<ClientSession>> {
    futures::stream::iter(0..n)
        .map(|_| ClientSession::connect(imp, addr))
        .buffer_unordered(CONNECT_INFLIGHT)
        .try_collect()
        .await
}

fn run_idle(mode: Mode, imp: Imp, p: SessionParams, timeout: Duration) -> io::Result<Outcome> {
    // Both ends in this process: two descriptors per session pair.
    let n = sessions_that_fit(p.idle_sessions, 2);
    if n == 0 {
        return Err(io::Error::other("no sessions fit under RLIMIT_NOFILE"));
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let counters = Arc::new(Counters::default());
    let (errors_tx, errors_rx) = mpsc::unbounded_channel();
    let server = {
        let counters = counters.clone();
        let handler = Handler::Burst {
            bytes: p.burst_bytes,
            keep_open: false,
        };
        async move {
            let result = async {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                conn::serve(imp, listener, handler, counters).await
            }
            .await;
            if let Err(e) = result {
                let _ = errors_tx.send(format!("server: {e}"));
            }
        }
    };
    let client = async move {
        let work = idle_client(imp, addr, n, p, counters);
        crate::child::finish(work, timeout, errors_rx).await
    };
    crate::child::run_in_mode(mode, server, client)
}

async fn idle_client(
    imp: Imp,
    addr: SocketAddr,
    n: usize,
    p: SessionParams,
    counters: Arc<Counters>,
) -> io::Result<Sample> {
    // One payload for every write of every burst (the harness holds no buffer per session).
    let chunk = Bytes::from(vec![0x5au8; CHUNK]);
    // Warm-up: one session through the whole cycle, so code paths and the runtime's first
    // allocations are in place before the baseline.
    let mut warm = ClientSession::connect(imp, addr).await?;
    warm.burst(&chunk, p.burst_bytes).await?;
    warm.close().await;
    wait_until("the warm-up stream to end", || {
        counters.live.load(Ordering::Relaxed) == 0
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rss0 = rss_anon(None)?;

    // (1) Set up, never used.
    let mut sessions = connect_all(imp, addr, n).await?;
    wait_until("the server sessions", || {
        counters.sessions.load(Ordering::Relaxed) > n
    })
    .await?;
    // Let handshakes (SETTINGS, prefaces) finish on both ends.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rss1 = rss_anon(None)?;

    // (2) A burst each way on one stream per session, `burst_inflight` sessions at a time,
    // in two halves: the growth over the second half is what one more session costs, without
    // the allocator's high-water mark of the bursts themselves (freed memory that malloc
    // keeps), which the first bursts leave behind once and the average spreads over N.
    let cpu = CpuMeter::process();
    let (t0, cpu0) = (Instant::now(), cpu.now());
    let half = n / 2;
    let mut rss_half = 0.0;
    let (first, second) = sessions.split_at_mut(half);
    for (i, part) in [first, second].into_iter().enumerate() {
        futures::stream::iter(part.iter_mut().map(Ok::<_, io::Error>))
            .try_for_each_concurrent(p.burst_inflight, |s| s.burst(&chunk, p.burst_bytes))
            .await?;
        wait_until("the server's burst handlers to end", || {
            counters.live.load(Ordering::Relaxed) == 0
        })
        .await?;
        if i == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            rss_half = rss_anon(None)?;
        }
    }
    let (elapsed_s, cpu_s) = (t0.elapsed().as_secs_f64(), cpu.now() - cpu0);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let rss2 = rss_anon(None)?;
    let marginal = if n - half > 0 && half > 0 {
        (rss2 - rss_half) / (n - half) as f64
    } else {
        f64::NAN
    };

    // (3) Quiet.
    tokio::time::sleep(p.idle_wait).await;
    let rss3 = rss_anon(None)?;
    let errors = counters.errors.load(Ordering::Relaxed);
    if errors > 0 {
        return Err(io::Error::other(format!(
            "{errors} server stream handlers failed"
        )));
    }
    // The sessions stay alive until here; the process exits without tearing them down.
    std::mem::forget(sessions);
    let per = |rss: f64| (rss - rss0) / n as f64;
    let gib = (2 * n * p.burst_bytes) as f64 / (1u64 << 30) as f64;
    Ok(Sample {
        metrics: vec![per(rss1), per(rss2), per(rss3), marginal, n as f64],
        cpu_s,
        cpu_per_unit: cpu_s / gib,
        elapsed_s,
    })
}

/// The server process of a fleet or churn measurement.
struct ServerProcess {
    child: Child,
    pid: u32,
    addr: SocketAddr,
}

impl ServerProcess {
    fn start(job: &Job) -> io::Result<ServerProcess> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg(SERVER_FLAG)
            .arg(serde_json::to_string(job).map_err(io::Error::other)?)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let pid = child.id();
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            BufReader::new(stdout).read_line(&mut line)?;
        }
        let port = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse::<u16>().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(format!(
                "server process did not start: {line:?}"
            )));
        };
        Ok(ServerProcess {
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    fn cpu_seconds(&self) -> f64 {
        sys::pid_cpu_seconds(self.pid)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime(mode: Mode) -> io::Result<tokio::runtime::Runtime> {
    match mode {
        Mode::Split => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Mode::Shared => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
    }
}

fn run_against_server(job: &Job, imp: Imp, p: SessionParams) -> io::Result<Outcome> {
    let server = ServerProcess::start(job)?;
    let timeout = Duration::from_secs(job.timeout_s);
    let (_no_errors, errors_rx) = mpsc::unbounded_channel();
    let workload = job.workload;
    let outcome = runtime(job.mode)?.block_on(async {
        let work = async {
            if workload == Workload::SessionsFleet {
                fleet_client(imp, &server, p).await
            } else {
                churn_client(imp, &server, p).await
            }
        };
        crate::child::finish(work, timeout, errors_rx).await
    });
    drop(server);
    Ok(outcome)
}

fn message() -> Bytes {
    Bytes::from_static(&[0x42; ECHO_SIZE])
}

/// One session through a whole cycle (connect, one echo, close), `count` times.
async fn warm_up(imp: Imp, addr: SocketAddr, count: usize) -> io::Result<()> {
    for _ in 0..count {
        let mut session = ClientSession::connect(imp, addr).await?;
        session.echo(&message()).await?;
        session.close().await;
    }
    Ok(())
}

async fn fleet_client(imp: Imp, server: &ServerProcess, p: SessionParams) -> io::Result<Sample> {
    let n = sessions_that_fit(p.fleet_sessions, 1);
    let addr = server.addr;
    warm_up(imp, addr, 2).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let server_rss0 = rss_anon(Some(server.pid))?;
    let mut sessions = connect_all(imp, addr, n).await?;
    // One request each: every session is set up on both ends before the clock starts.
    let msg = message();
    futures::stream::iter(sessions.iter_mut().map(Ok::<_, io::Error>))
        .try_for_each_concurrent(CONNECT_INFLIGHT, |s| s.echo(&msg))
        .await?;

    let cpu = CpuMeter::process();
    let (t0, cpu0, server_cpu0) = (Instant::now(), cpu.now(), server.cpu_seconds());
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let end = start + p.fleet_duration;
    let mut tasks = JoinSet::new();
    for (i, mut session) in sessions.into_iter().enumerate() {
        // Sessions start spread over one period, so requests arrive evenly.
        let offset = p.fleet_period.mul_f64(i as f64 / n as f64);
        let period = p.fleet_period;
        let msg = msg.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(
                (p.fleet_duration.as_secs_f64() / period.as_secs_f64()) as usize + 2,
            );
            let mut ticks = tokio::time::interval_at(start + offset, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                if ticks.tick().await >= end {
                    break;
                }
                let t = Instant::now();
                session.echo(&msg).await?;
                latencies.push(t.elapsed().as_nanos() as u64);
            }
            Ok::<_, io::Error>((latencies, session))
        });
    }
    let mut latencies = Vec::new();
    let mut sessions = Vec::with_capacity(n);
    while let Some(joined) = tasks.join_next().await {
        let (mut l, s) = joined.map_err(io::Error::other)??;
        latencies.append(&mut l);
        sessions.push(s);
    }
    let elapsed_s = t0.elapsed().as_secs_f64();
    let server_cpu = server.cpu_seconds() - server_cpu0;
    let cpu_s = cpu.now() - cpu0 + server_cpu;
    let server_rss = rss_anon(Some(server.pid))?;
    std::mem::forget(sessions);
    let requests = latencies.len();
    if requests == 0 {
        return Err(io::Error::other("no requests completed"));
    }
    let (p50, p99) = percentiles(latencies);
    Ok(Sample {
        metrics: vec![
            server_cpu / requests as f64 * 1e6,
            p50,
            p99,
            (server_rss - server_rss0) / n as f64,
            requests as f64 / p.fleet_duration.as_secs_f64(),
        ],
        cpu_s,
        cpu_per_unit: cpu_s / (requests as f64 / 1e6),
        elapsed_s,
    })
}

async fn churn_client(imp: Imp, server: &ServerProcess, p: SessionParams) -> io::Result<Sample> {
    let addr = server.addr;
    warm_up(imp, addr, 20).await?;
    let cpu = CpuMeter::process();
    let (t0, cpu0, server_cpu0) = (Instant::now(), cpu.now(), server.cpu_seconds());
    let deadline = t0 + p.churn_duration;
    let mut tasks = JoinSet::new();
    for _ in 0..p.churn_inflight {
        tasks.spawn(async move {
            let msg = message();
            let mut done = 0u64;
            while Instant::now() < deadline {
                let mut session = ClientSession::connect(imp, addr).await?;
                session.echo(&msg).await?;
                session.close().await;
                done += 1;
            }
            Ok::<_, io::Error>(done)
        });
    }
    let mut sessions = 0u64;
    while let Some(joined) = tasks.join_next().await {
        sessions += joined.map_err(io::Error::other)??;
    }
    let elapsed_s = t0.elapsed().as_secs_f64();
    let server_cpu = server.cpu_seconds() - server_cpu0;
    let cpu_s = cpu.now() - cpu0 + server_cpu;
    let count = sessions as f64;
    Ok(Sample {
        metrics: vec![count / elapsed_s, server_cpu / count * 1e6],
        cpu_s,
        cpu_per_unit: cpu_s / (count / 1e6),
        elapsed_s,
    })
}

// ---------------------------------------------------------------------------------------------
// The server process

/// Entry point of a sessions server process: serves the job's implementation on a loopback
/// port it prints as `port N`, until its stdin closes.
pub fn server_main(args: &[String]) -> ! {
    let job = match args.first().map(|a| serde_json::from_str::<Job>(a)) {
        Some(Ok(job)) => job,
        _ => {
            eprintln!("sessions server: bad job");
            std::process::exit(2)
        }
    };
    let Some(imp) = Imp::parse(&job.imp) else {
        eprintln!("sessions server: unknown implementation {}", job.imp);
        std::process::exit(2)
    };
    // The measuring child holds our stdin: when it exits (or is killed), so do we.
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = io::stdin().read_to_end(&mut sink);
        std::process::exit(0)
    });
    let p = SessionParams::new(job.preset).with_sessions(job.sessions);
    sys::raise_open_files((p.fleet_sessions + FD_RESERVE) as u64);
    let result = runtime(job.mode).and_then(|rt| {
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            println!("port {}", listener.local_addr()?.port());
            let counters = Arc::new(Counters::default());
            conn::serve(imp, listener, Handler::Echo, counters).await
        })
    });
    if let Err(e) = result {
        eprintln!("sessions server: {e}");
    }
    std::process::exit(1)
}

// ---------------------------------------------------------------------------------------------
// Report

/// Lines under a sessions table: braid against h2 (and tonic) per mode, with the issue's
/// targets, and a note when fewer sessions fit than were asked for.
pub fn verdict(group: &Group, p: &SessionParams) -> String {
    let w = group.workload;
    let summaries = group.summaries();
    let find = |name: &str, mode: Mode| {
        group
            .rows
            .iter()
            .zip(&summaries)
            .find(|(r, s)| r.imp == name && r.mode == mode && s.ok > 0)
            .map(|(_, s)| s)
    };
    let judge = |ratio: f64, ok: bool, target: &str| {
        format!(
            "{}x (target {target}: {})",
            num(ratio),
            if ok { "met" } else { "MISSED" }
        )
    };
    let mut out = String::new();
    if w == Workload::SessionsIdle {
        let fewest = summaries
            .iter()
            .filter(|s| s.ok > 0)
            .map(|s| s.min[4])
            .fold(f64::INFINITY, f64::min);
        if fewest.is_finite() && (fewest as usize) < p.idle_sessions {
            let (_, hard, _) = sys::raise_open_files(0);
            out.push_str(&format!(
                "   note: only {} of {} session pairs fit: a pair takes 2 descriptors in the \
                 measuring process ({FD_RESERVE} kept free) and RLIMIT_NOFILE's hard limit is \
                 {hard} (the soft limit is raised to it; raising the hard limit itself needs \
                 CAP_SYS_RESOURCE)\n",
                fewest, p.idle_sessions
            ));
        }
    }
    for mode in Mode::ALL {
        let Some(b) = find("braid", mode) else {
            continue;
        };
        for other in ["h2", "tonic"] {
            let Some(o) = find(other, mode) else { continue };
            let r = |m: usize| b.median[m] / o.median[m];
            let targets = other == "h2";
            let line = match w {
                Workload::SessionsIdle => {
                    let burst = if targets {
                        judge(r(1), r(1) <= 1.0, "<= 1.0x")
                    } else {
                        format!("{}x", num(r(1)))
                    };
                    format!(
                        "memory per pair: set up {}x, after burst {burst}, after idle {}x; \
                         growth per pair over the second half of the bursts {}x ({} vs {} B)",
                        num(r(0)),
                        num(r(2)),
                        num(r(3)),
                        num(b.median[3]),
                        num(o.median[3])
                    )
                }
                Workload::SessionsFleet => {
                    let (cpu, p99) = if targets {
                        (
                            judge(r(0), r(0) <= 0.7, "<= 0.7x"),
                            judge(r(2), r(2) <= 1.0, "<= 1.0x"),
                        )
                    } else {
                        (format!("{}x", num(r(0))), format!("{}x", num(r(2))))
                    };
                    format!(
                        "server CPU per request {cpu}; p99 {p99}; server memory per session {}x",
                        num(r(3))
                    )
                }
                Workload::SessionsChurn => {
                    let rate = if targets {
                        judge(r(0), r(0) >= 1.2, ">= 1.2x")
                    } else {
                        format!("{}x", num(r(0)))
                    };
                    format!("sessions/s {rate}; server CPU per session {}x", num(r(1)))
                }
                _ => continue,
            };
            out.push_str(&format!(
                "   {} {}: braid/{other} {line}\n",
                w.name(),
                mode.name()
            ));
        }
    }
    out
}
