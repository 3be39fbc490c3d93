//! The RPC workloads: `braid-rpc` (`braid::rpc` over one braid session) against `tonic` (gRPC
//! over HTTP/2), both on one loopback TCP connection, the same methods, the same message bytes.
//!
//! * `rpc-stream-64`, `rpc-stream-4k`: one bidirectional call; the client sends N messages of
//!   64 B / 4 KiB while the server echoes each back as it arrives. Messages per second (sent
//!   and echoed back) and CPU per message.
//! * `rpc-unary-1`, `rpc-unary-64`: unary calls, one 64-byte message each way, with 1 or 64
//!   calls in flight. Calls per second, p50/p99 latency, CPU per call.
//!
//! The typed pair runs the same workloads through generated code and prost messages
//! (`proto/bench.proto`, a `Blob { bytes data }` carrying the same bytes): `braid-prost`
//! (braid-build) against `tonic-prost` (tonic-prost-build).
//!
//! These run only for the RPC implementations, and they run only these. Each measurement is
//! a child process like every other one: the byte-stream [`Mux`] machinery is bypassed (an RPC
//! layer is not a byte stream), but the runtime modes, CPU meter, timeout and report are the
//! same.

mod braid_rpc;
mod braid_typed;
pub mod tonic_grpc;
mod tonic_typed;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::child::{Job, Mode, Outcome};
use crate::impls::{Acceptor, BoxFuture, Mux, Opener};
use crate::report::{num, Group};
use crate::sys::CpuMeter;
use crate::workloads::{percentiles, Metric, Params, Preset, Sample, Workload};

/// The bidirectional streaming method, on both implementations.
pub const STREAM_PATH: &str = "/bench.Echo/Stream";
/// The unary method, on both implementations.
pub const UNARY_PATH: &str = "/bench.Echo/Unary";

/// `braid::rpc` over braid.
pub const BRAID_RPC: &str = "braid-rpc";
/// gRPC with tonic; the baseline of the RPC workloads.
pub const TONIC: &str = "tonic";
/// braid-build's generated service with prost messages, over `braid::rpc`.
pub const BRAID_PROST: &str = "braid-prost";
/// tonic-prost-build's generated service with prost messages; the typed baseline.
pub const TONIC_PROST: &str = "tonic-prost";

/// Message size of `rpc-stream-64` and of both unary workloads.
const SMALL: usize = 64;
/// Message size of `rpc-stream-4k`.
const LARGE: usize = 4096;

/// `rpc-stream-*` columns.
pub const STREAM_METRICS: &[Metric] = &[Metric {
    name: "rate",
    unit: "msgs/s",
    higher_is_better: true,
    headline: true,
}];

/// `rpc-unary-*` columns.
pub const UNARY_METRICS: &[Metric] = &[
    Metric {
        name: "rate",
        unit: "calls/s",
        higher_is_better: true,
        headline: true,
    },
    Metric {
        name: "p50",
        unit: "µs",
        higher_is_better: false,
        headline: true,
    },
    Metric {
        name: "p99",
        unit: "µs",
        higher_is_better: false,
        headline: true,
    },
];

/// Sizes of the RPC workloads for one preset.
#[derive(Debug, Clone, Copy)]
pub struct RpcParams {
    /// `rpc-stream-64` messages in the measured call.
    pub stream_64: usize,
    /// `rpc-stream-4k` messages in the measured call.
    pub stream_4k: usize,
    /// `rpc-unary-1` measured calls.
    pub unary_1: usize,
    /// `rpc-unary-64` measured calls.
    pub unary_64: usize,
    /// Calls in flight in `rpc-unary-64`.
    pub inflight: usize,
}

impl RpcParams {
    /// Sizes for `preset`: the quick set (4 workloads x 2 implementations x 2 modes x 3 rounds)
    /// takes well under 30 s on two cores.
    pub fn new(preset: Preset) -> Self {
        match preset {
            Preset::Quick => RpcParams {
                stream_64: 300_000,
                stream_4k: 100_000,
                unary_1: 10_000,
                unary_64: 20_000,
                inflight: 64,
            },
            Preset::Full => RpcParams {
                stream_64: 1_000_000,
                stream_4k: 200_000,
                unary_1: 100_000,
                unary_64: 100_000,
                inflight: 64,
            },
        }
    }
}

/// The [`Workload::describe`] line of an RPC workload.
pub fn describe(w: Workload, p: &RpcParams) -> String {
    let unary = |calls: usize, inflight: usize| {
        format!(
            "{calls} unary calls ({UNARY_PATH}), {SMALL}-byte request and response, \
             {inflight} in flight; latency per call; CPU per call"
        )
    };
    let stream = |count: usize, size: usize| {
        format!(
            "one bidirectional call ({STREAM_PATH}): the client sends {count} messages of \
             {size} B while the server echoes each back; rate = messages sent and echoed back \
             per second; CPU per message (its echo included)"
        )
    };
    match w {
        Workload::RpcStream64 => stream(p.stream_64, SMALL),
        Workload::RpcStream4k => stream(p.stream_4k, LARGE),
        Workload::RpcUnary1 => unary(p.unary_1, 1),
        Workload::RpcUnary64 => unary(p.unary_64, p.inflight),
        _ => String::new(),
    }
}

/// An echoed message must have the size sent (the content is the sender's own `Bytes`, so the
/// length is the check that costs nothing on either side).
pub fn check_echo(echo: &Bytes, len: usize) -> io::Result<()> {
    if echo.len() == len {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("echo of {} bytes, sent {len}", echo.len()),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// The two implementations in the implementation list

/// An RPC implementation as it appears in the list of implementations. It has no byte
/// streams: [`run`] measures it, never the generic [`Mux`] path.
struct RpcImpl {
    name: &'static str,
    settings: &'static str,
}

impl Mux for RpcImpl {
    fn name(&self) -> &'static str {
        self.name
    }

    fn settings(&self) -> String {
        self.settings.to_string()
    }

    fn connect(&self, _addr: SocketAddr) -> BoxFuture<'static, Arc<dyn Opener>> {
        let name = self.name;
        Box::pin(async move { Err(not_a_mux(name)) })
    }

    fn listen(&self, _listener: TcpListener) -> BoxFuture<'static, Box<dyn Acceptor>> {
        let name = self.name;
        Box::pin(async move { Err(not_a_mux(name)) })
    }
}

fn not_a_mux(name: &str) -> io::Error {
    io::Error::other(format!("{name} runs the rpc workloads only"))
}

/// `braid-rpc`, `tonic`, `braid-prost`, `tonic-prost`, in report order.
pub fn impls() -> Vec<Arc<dyn Mux>> {
    [
        (BRAID_RPC, braid_rpc::SETTINGS),
        (TONIC, tonic_grpc::SETTINGS),
        (BRAID_PROST, braid_typed::SETTINGS),
        (TONIC_PROST, tonic_typed::SETTINGS),
    ]
    .into_iter()
    .map(|(name, settings)| Arc::new(RpcImpl { name, settings }) as Arc<dyn Mux>)
    .collect()
}

/// Whether `name` is one of the RPC implementations.
pub fn is_rpc_impl(name: &str) -> bool {
    [BRAID_RPC, TONIC, BRAID_PROST, TONIC_PROST].contains(&name)
}

// ---------------------------------------------------------------------------------------------
// One measurement (in the child process)

/// Whether `job` is measured here rather than by the byte-stream path.
pub fn handles(job: &Job) -> bool {
    job.workload.is_rpc() || is_rpc_impl(&job.imp)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Imp {
    Braid,
    Tonic,
    BraidProst,
    TonicProst,
}

/// Runs one RPC measurement: server and client over loopback TCP in the job's runtime mode.
pub fn run(job: &Job) -> Outcome {
    let imp = match job.imp.as_str() {
        BRAID_RPC => Imp::Braid,
        TONIC => Imp::Tonic,
        BRAID_PROST => Imp::BraidProst,
        TONIC_PROST => Imp::TonicProst,
        other => return Outcome::Error(format!("{other} does not run rpc workloads")),
    };
    if !job.workload.is_rpc() {
        return Outcome::Error(format!("{} runs the rpc workloads only", job.imp));
    }
    setup_and_run(job, imp).unwrap_or_else(|e| Outcome::Error(format!("setup: {e}")))
}

fn setup_and_run(job: &Job, imp: Imp) -> io::Result<Outcome> {
    let params = Params::new(job.preset).rpc;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let (errors_tx, errors_rx) = mpsc::unbounded_channel();
    let server = async move {
        let result = async {
            let listener = TcpListener::from_std(listener)?;
            serve(imp, listener).await
        }
        .await;
        if let Err(e) = result {
            let _ = errors_tx.send(format!("server: {e}"));
        }
        // Keep the runtime (and the connection tasks it spawned) alive until the process exits.
        std::future::pending::<()>().await;
    };
    let timeout = Duration::from_secs(job.timeout_s);
    let client = client(imp, addr, job.workload, params, timeout, errors_rx);
    crate::child::run_in_mode(job.mode, server, client)
}

async fn serve(imp: Imp, listener: TcpListener) -> io::Result<()> {
    match imp {
        Imp::Braid => braid_rpc::serve(listener).await,
        Imp::Tonic => tonic_grpc::serve(listener).await,
        Imp::BraidProst => braid_typed::serve(listener).await,
        Imp::TonicProst => tonic_typed::serve(listener).await,
    }
}

impl Client {
    async fn connect(imp: Imp, addr: SocketAddr) -> io::Result<Client> {
        Ok(match imp {
            Imp::Braid => Client::Braid(braid_rpc::Client::connect(addr).await?),
            Imp::Tonic => Client::Tonic(tonic_grpc::Client::connect(addr).await?),
            Imp::BraidProst => Client::BraidProst(braid_typed::Client::connect(addr).await?),
            Imp::TonicProst => Client::TonicProst(tonic_typed::Client::connect(addr).await?),
        })
    }
}

async fn client(
    imp: Imp,
    addr: SocketAddr,
    workload: Workload,
    p: RpcParams,
    timeout: Duration,
    server_errors: mpsc::UnboundedReceiver<String>,
) -> Outcome {
    let work = async {
        let client = Client::connect(imp, addr).await?;
        let cpu = CpuMeter::process();
        match workload {
            Workload::RpcStream64 => stream(client, SMALL, p.stream_64, cpu).await,
            Workload::RpcStream4k => stream(client, LARGE, p.stream_4k, cpu).await,
            Workload::RpcUnary1 => unary(client, 1, p.unary_1, cpu).await,
            Workload::RpcUnary64 => unary(client, p.inflight, p.unary_64, cpu).await,
            other => Err(io::Error::other(format!(
                "{} is not an rpc workload",
                other.name()
            ))),
        }
    };
    crate::child::finish(work, timeout, server_errors).await
}

/// Either client; clones share the connection.
#[derive(Debug, Clone)]
enum Client {
    Braid(braid_rpc::Client),
    Tonic(tonic_grpc::Client),
    BraidProst(braid_typed::Client),
    TonicProst(tonic_typed::Client),
}

impl Client {
    async fn unary(&mut self, msg: Bytes) -> io::Result<Bytes> {
        match self {
            Client::Braid(c) => c.unary(msg).await,
            Client::Tonic(c) => c.unary(msg).await,
            Client::BraidProst(c) => c.unary(msg).await,
            Client::TonicProst(c) => c.unary(msg).await,
        }
    }

    async fn stream(&mut self, msg: Bytes, count: usize) -> io::Result<usize> {
        match self {
            Client::Braid(c) => c.stream(msg, count).await,
            Client::Tonic(c) => c.stream(msg, count).await,
            Client::BraidProst(c) => c.stream(msg, count).await,
            Client::TonicProst(c) => c.stream(msg, count).await,
        }
    }
}

/// A message of `size` bytes, the same bytes for both implementations.
fn message(size: usize) -> Bytes {
    (0..size)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into()
}

/// (elapsed seconds, CPU seconds) since `t0` / `cpu0`.
fn stop(cpu: CpuMeter, t0: Instant, cpu0: f64) -> (f64, f64) {
    (t0.elapsed().as_secs_f64(), cpu.now() - cpu0)
}

async fn stream(
    mut client: Client,
    size: usize,
    count: usize,
    cpu: CpuMeter,
) -> io::Result<Sample> {
    let msg = message(size);
    // Warm-up call: connection, allocator and window sizes settle outside the measurement.
    let warmup = (count / 10).max(100);
    let got = client.stream(msg.clone(), warmup).await?;
    expect("warm-up echoes", got, warmup)?;
    let (t0, cpu0) = (Instant::now(), cpu.now());
    let got = client.stream(msg, count).await?;
    let (elapsed_s, cpu_s) = stop(cpu, t0, cpu0);
    expect("echoes", got, count)?;
    Ok(Sample {
        metrics: vec![count as f64 / elapsed_s],
        cpu_s,
        cpu_per_unit: cpu_s / (count as f64 / 1e6),
        elapsed_s,
    })
}

fn expect(what: &str, got: usize, want: usize) -> io::Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what}: got {got}, expected {want}"),
        ))
    }
}

/// `count` unary calls spread over `inflight` tasks (the caller's task when 1); latencies in ns.
async fn unary_calls(client: &Client, inflight: usize, count: usize) -> io::Result<Vec<u64>> {
    let next = Arc::new(AtomicUsize::new(0));
    let msg = message(SMALL);
    if inflight <= 1 {
        return calls(client.clone(), next, count, msg).await;
    }
    let mut tasks = JoinSet::new();
    for _ in 0..inflight.min(count) {
        tasks.spawn(calls(client.clone(), next.clone(), count, msg.clone()));
    }
    let mut all = Vec::with_capacity(count);
    while let Some(joined) = tasks.join_next().await {
        all.extend(joined.map_err(io::Error::other)??);
    }
    Ok(all)
}

/// Makes calls one after the other while `next` (shared by the tasks) is below `count`.
async fn calls(
    mut client: Client,
    next: Arc<AtomicUsize>,
    count: usize,
    msg: Bytes,
) -> io::Result<Vec<u64>> {
    let mut latencies = Vec::new();
    while next.fetch_add(1, Ordering::Relaxed) < count {
        let t0 = Instant::now();
        let reply = client.unary(msg.clone()).await?;
        latencies.push(t0.elapsed().as_nanos() as u64);
        if reply != msg {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "bad echo"));
        }
    }
    Ok(latencies)
}

async fn unary(client: Client, inflight: usize, count: usize, cpu: CpuMeter) -> io::Result<Sample> {
    let warmup = (count / 20).max(inflight).max(50);
    unary_calls(&client, inflight, warmup).await?;
    let (t0, cpu0) = (Instant::now(), cpu.now());
    let latencies = unary_calls(&client, inflight, count).await?;
    let (elapsed_s, cpu_s) = stop(cpu, t0, cpu0);
    expect("calls", latencies.len(), count)?;
    let (p50, p99) = percentiles(latencies);
    Ok(Sample {
        metrics: vec![count as f64 / elapsed_s, p50, p99],
        cpu_s,
        cpu_per_unit: cpu_s / (count as f64 / 1e6),
        elapsed_s,
    })
}

// ---------------------------------------------------------------------------------------------
// Report

/// The typed pair's targets (issue #26): minimum rate ratio per workload; CPU per unit at
/// most 0.6x.
fn typed_rate_target(w: Workload) -> Option<f64> {
    match w {
        Workload::RpcStream64 | Workload::RpcStream4k => Some(1.5),
        Workload::RpcUnary1 | Workload::RpcUnary64 => Some(2.0),
        _ => None,
    }
}

/// The targets for braid-rpc against tonic, per workload: minimum rate ratio.
fn rate_target(w: Workload) -> Option<f64> {
    match w {
        Workload::RpcStream64 => Some(3.0),
        Workload::RpcUnary1 | Workload::RpcUnary64 => Some(2.0),
        _ => None,
    }
}

/// Lines under an RPC table: braid-rpc / tonic rate and CPU per unit (median over median) per
/// mode, against the targets (rate at least 3x for 64-byte streaming and 2x for unary, at no
/// more CPU per message).
pub fn verdict(group: &Group) -> String {
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
    let mut out = String::new();
    let pairs = [
        (BRAID_RPC, TONIC, rate_target(w), 1.0),
        (BRAID_PROST, TONIC_PROST, typed_rate_target(w), 0.6),
    ];
    for (ours, theirs, target, cpu_max) in pairs {
        for mode in Mode::ALL {
            let (Some(b), Some(t)) = (find(ours, mode), find(theirs, mode)) else {
                continue;
            };
            let rate = b.median[0] / t.median[0];
            let cpu = b.cpu / t.cpu;
            let (rate_note, met_rate) = match target {
                Some(min) if rate >= min => (format!(" (target >= {min}x: met)"), true),
                Some(min) => (format!(" (target >= {min}x: MISSED)"), false),
                None => (" (no target)".to_string(), true),
            };
            let cpu_ok = cpu <= cpu_max;
            let verdict = match (target.is_some(), met_rate && cpu_ok) {
                (false, _) => "",
                (true, true) => "  => targets met",
                (true, false) => "  => target missed",
            };
            out.push_str(&format!(
            "   {} {}: {ours}/{theirs} {} {}x{rate_note}; {} {} vs {} = {}x (target <= {cpu_max}x: {}){verdict}\n",
            w.name(),
            mode.name(),
            w.metrics()[0].unit,
            num(rate),
            w.cpu_unit().label(),
            num(b.cpu),
            num(t.cpu),
            num(cpu),
            if cpu_ok { "met" } else { "MISSED" },
        ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every implementation answers both methods with the bytes sent, over real loopback TCP.
    #[tokio::test]
    async fn all_implementations_echo() {
        for imp in [Imp::Braid, Imp::Tonic, Imp::BraidProst, Imp::TonicProst] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(serve(imp, listener));
            let client = Client::connect(imp, addr).await.unwrap();
            for size in [0, SMALL, LARGE] {
                let got = client.clone().stream(message(size), 300).await.unwrap();
                assert_eq!(got, 300, "{imp:?} stream of {size} B");
            }
            let reply = client.clone().unary(message(SMALL)).await.unwrap();
            assert_eq!(reply, message(SMALL), "{imp:?} unary");
            let latencies = unary_calls(&client, 8, 100).await.unwrap();
            assert_eq!(latencies.len(), 100, "{imp:?} unary x8");
        }
    }

    #[test]
    fn rpc_selects_the_four_workloads() {
        let names: Vec<_> = Workload::parse("rpc")
            .unwrap()
            .into_iter()
            .map(|w| w.name())
            .collect();
        assert_eq!(
            names,
            [
                "rpc-stream-64",
                "rpc-stream-4k",
                "rpc-unary-1",
                "rpc-unary-64"
            ]
        );
        assert!(Workload::ALL
            .iter()
            .all(|w| w.is_rpc() == w.name().starts_with("rpc-")));
    }
}
