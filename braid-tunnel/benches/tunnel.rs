//! The `tunnel` workload: HTTP/1.1 requests per second and latency percentiles with N
//! concurrent keep-alive connections, straight to an HTTP server ("direct"), through a plain
//! port forwarder that opens one TCP connection to the server per client connection and
//! copies bytes ("forward": the cost of any forwarder's two extra sockets, multiplexing
//! aside), and through a braid-tunnel client and server ("tunnel"). Everything runs in this
//! process on loopback, so the tunnel's two ends, the HTTP server and the load generator
//! share the machine's cores — the overhead it reports is the CPU cost of forwarding and
//! tunnelling, not network latency.
//!
//! ```text
//! cargo bench -p braid-tunnel --bench tunnel -- [--connections 64] [--seconds 5] [--body 1024] [--rounds 2]
//!     [--only direct|forward|tunnel]
//! ```

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use clap::Parser;

#[allow(dead_code)]
#[path = "../testkit/mod.rs"]
mod testkit;

use testkit::{
    harness::{start_client, start_server},
    http::{HttpClient, HttpServer},
};

/// Flags.
#[derive(Debug, Parser)]
struct Args {
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Measured seconds per run (after a one-second warm-up).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Response body size in bytes.
    #[arg(long, default_value_t = 1024)]
    body: u64,
    /// Runs per path; direct, forward and tunnel alternate.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Run only this path (`direct`, `forward` or `tunnel`) and print its rows, e.g. under a
    /// profiler.
    #[arg(long)]
    only: Option<String>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// One run's result.
#[derive(Debug, Clone)]
struct Run {
    requests: usize,
    seconds: f64,
    p50: Duration,
    p99: Duration,
    p999: Duration,
}

impl Run {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// Drives `connections` keep-alive clients against `addr` for `measure`, after `warmup`.
async fn load(addr: SocketAddr, args: &Args, warmup: Duration) -> Run {
    let measure = Duration::from_secs_f64(args.seconds);
    let start = Instant::now() + warmup;
    let end = start + measure;
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let body = args.body;
        tasks.push(tokio::spawn(async move {
            let mut http = HttpClient::connect(addr).await.expect("connect");
            let mut latencies = Vec::new();
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                http.get_pattern(body).await.expect("request");
                if sent >= start {
                    latencies.push(sent.elapsed());
                }
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("load task"));
    }
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Run {
        requests: all.len(),
        seconds: measure.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        p999: pct(0.999),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn print_row(path: &str, run: &Run) {
    println!(
        "{path:<8} {:>12.0} {:>10} {:>10} {:>10}",
        run.rate(),
        ms(run.p50),
        ms(run.p99),
        ms(run.p999)
    );
}

/// A plain forwarder: every connection accepted on the returned address gets its own TCP
/// connection to `target`, and bytes are copied both ways (half-closes included).
async fn start_plain_forwarder(target: SocketAddr) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind forwarder");
    let addr = listener.local_addr().expect("forwarder address");
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    addr
}

/// The run with the median request rate.
fn median(runs: &mut [Run]) -> Run {
    runs.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    runs[runs.len() / 2].clone()
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let web = HttpServer::start().await.expect("http server");
    let server = start_server(|_| {}).await;
    let mut client = start_client(server.addr, &[web.addr], |_| {}).await;
    client.wait_up(1).await;
    let tunnel_addr = client.local[0];
    let forward_addr = start_plain_forwarder(web.addr).await;

    println!(
        "workload tunnel: {} keep-alive connections, GET {} B bodies, {:.1} s per run, {} runs per path",
        args.connections, args.body, args.seconds, args.rounds
    );
    println!(
        "{:<8} {:>12} {:>10} {:>10} {:>10}",
        "path", "requests/s", "p50", "p99", "p99.9"
    );
    let warmup = Duration::from_secs(1);
    let (mut direct, mut forwarded, mut tunnelled) = (Vec::new(), Vec::new(), Vec::new());
    if let Some(path) = &args.only {
        let addr = match path.as_str() {
            "direct" => web.addr,
            "forward" => forward_addr,
            "tunnel" => tunnel_addr,
            other => panic!("--only {other}: expected direct, forward or tunnel"),
        };
        for _ in 0..args.rounds.max(1) {
            print_row(path, &load(addr, &args, warmup).await);
        }
        return;
    }
    for _ in 0..args.rounds.max(1) {
        let run = load(web.addr, &args, warmup).await;
        print_row("direct", &run);
        direct.push(run);
        let run = load(forward_addr, &args, warmup).await;
        print_row("forward", &run);
        forwarded.push(run);
        let run = load(tunnel_addr, &args, warmup).await;
        print_row("tunnel", &run);
        tunnelled.push(run);
    }
    let (direct, forwarded, tunnelled) = (
        median(&mut direct),
        median(&mut forwarded),
        median(&mut tunnelled),
    );
    println!(
        "median: forward {:.0} req/s p99 {} ({:+.1}% vs direct); tunnel vs forward: {:+.1}% req/s",
        forwarded.rate(),
        ms(forwarded.p99),
        (forwarded.rate() / direct.rate() - 1.0) * 100.0,
        (tunnelled.rate() / forwarded.rate() - 1.0) * 100.0,
    );
    println!(
        "median: direct {:.0} req/s p99 {}, tunnel {:.0} req/s p99 {}",
        direct.rate(),
        ms(direct.p99),
        tunnelled.rate(),
        ms(tunnelled.p99)
    );
    println!(
        "overhead: throughput {:+.1}%, p99 {:+.2} ms ({:.2}x)",
        (tunnelled.rate() / direct.rate() - 1.0) * 100.0,
        (tunnelled.p99.as_secs_f64() - direct.p99.as_secs_f64()) * 1e3,
        tunnelled.p99.as_secs_f64() / direct.p99.as_secs_f64()
    );
    assert_eq!(
        client
            .counters
            .failed
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "tunnelled connections failed"
    );
}
