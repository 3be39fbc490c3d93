//! The `tunnel` workload: HTTP/1.1 requests per second, latency percentiles and CPU per
//! request with N concurrent keep-alive connections, on four paths to the same HTTP server:
//!
//! - `direct`: straight to the server;
//! - `forward`: through a plain port forwarder that opens one TCP connection to the server
//!   per client connection and copies bytes (the cost of any forwarder's two extra sockets,
//!   multiplexing aside);
//! - `tunnel`: through a braid-tunnel client and server (the built `braid-tunnel` binary);
//! - `rathole`: through a rathole server and client (the `rathole` on `PATH`, or `$RATHOLE`;
//!   skipped with a message when it is not installed: `cargo install rathole`), which is
//!   what many users pick instead. rathole gives every forwarded connection its own TCP
//!   "data channel" between its two ends (a small pool of them is opened in advance); braid
//!   puts them all on one connection as streams.
//!
//! The load generator and the HTTP server run in this process; the forwarder and the tunnel
//! ends run as child processes (the forwarder is this executable started again with a hidden
//! flag), so every path's ends are measured the same way: CPU per request is reported for
//! the ends (their processes' user + system time from `/proc/PID/stat`), for this process
//! (load generator and HTTP server), and for the whole machine (`/proc/stat`; it includes
//! softirq time charged to no process, and anything else running). Everything is on
//! loopback and shares the machine's cores, so the overhead is the CPU cost of forwarding
//! and tunnelling, not network latency. `--in-process` runs the forwarder and braid-tunnel
//! inside this process instead (one process to profile; no separate CPU for the ends).
//!
//! The HTTP server writes a response's head and body with two writes unless `--one-write`.
//! The two-write case shows rathole's Nagle stall: it leaves `TCP_NODELAY` off on the
//! connections it accepts, so the body waits for the client's delayed ACK of the head.
//! `--end-threads N` sets the child ends' tokio worker threads.
//!
//! ```text
//! cargo bench -p braid-tunnel --bench tunnel -- [--connections 64] [--seconds 5] [--body 1024] [--rounds 2]
//!     [--only direct|forward|tunnel|rathole] [--one-write] [--end-threads N] [--in-process]
//! ```

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use clap::Parser;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

#[allow(dead_code)]
#[path = "../testkit/mod.rs"]
mod testkit;

use testkit::{
    free_addr,
    harness::{start_client, start_server, RunningClient, RunningServer},
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
    /// Runs per path; the paths alternate within each round.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Run only this path (`direct`, `forward`, `tunnel` or `rathole`), e.g. under a
    /// profiler.
    #[arg(long)]
    only: Option<String>,
    /// The HTTP server writes each response's head and body together (one write), not with
    /// two writes.
    #[arg(long)]
    one_write: bool,
    /// Tokio worker threads in each child end (`TOKIO_WORKER_THREADS`, which the forwarder,
    /// braid-tunnel and rathole all honour); default: tokio's, one per core.
    #[arg(long, value_name = "N")]
    end_threads: Option<usize>,
    /// Run the plain forwarder and braid-tunnel inside this process, not as child processes.
    #[arg(long)]
    in_process: bool,
    /// Internal: be the plain forwarder to this target, print the listening address, run.
    #[arg(long, hide = true, value_name = "TARGET")]
    plain_forwarder: Option<SocketAddr>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// CPU time, in seconds (over one interval), or microseconds per request (in a [`Run`]).
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    /// The forwarder's or the tunnel ends' processes.
    ends: f64,
    /// This process: the load generator and the HTTP server (and the ends with
    /// `--in-process`).
    bench: f64,
    /// Every core of the machine (busy time from `/proc/stat`).
    machine: f64,
}

/// One run's result, or the medians of several.
#[derive(Debug, Clone)]
struct Run {
    /// Requests per second.
    rate: f64,
    p50: Duration,
    p99: Duration,
    p999: Duration,
    /// CPU microseconds per request; `None` where `/proc` is not available.
    cpu: Option<Cpu>,
}

/// Linux's `USER_HZ`: the unit of the times in `/proc/PID/stat` and `/proc/stat` (100 on
/// every architecture Linux exports to user space with these files' current format).
const TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU seconds of process `pid` (`self` for this one), all threads.
fn process_cpu(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it are space-separated,
    // starting with field 3 (state). utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

/// Busy CPU seconds of the whole machine, all cores (everything but idle and iowait).
fn machine_cpu() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .map(|t| t.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is
    // already inside user.
    let busy: u64 = ticks.iter().take(8).sum::<u64>() - ticks.get(3)? - ticks.get(4)?;
    Some(busy as f64 / TICKS_PER_SECOND)
}

/// A snapshot of [`Cpu`] counters for this process, the `ends` pids and the machine.
fn cpu_now(ends: &[u32]) -> Option<Cpu> {
    let mut cpu = Cpu {
        bench: process_cpu("self")?,
        machine: machine_cpu()?,
        ends: 0.0,
    };
    for pid in ends {
        cpu.ends += process_cpu(&pid.to_string())?;
    }
    Some(cpu)
}

/// Drives `connections` keep-alive clients against `addr` for `measure`, after `warmup`,
/// measuring the CPU of this process, the `ends` processes and the machine meanwhile.
async fn load(addr: SocketAddr, ends: &[u32], args: &Args, warmup: Duration) -> Run {
    let measure = Duration::from_secs_f64(args.seconds);
    let start = Instant::now() + warmup;
    let end = start + measure;
    let pids = ends.to_vec();
    let sampler = tokio::spawn(async move {
        tokio::time::sleep_until(start.into()).await;
        let (t0, before) = (Instant::now(), cpu_now(&pids));
        tokio::time::sleep_until(end.into()).await;
        let (t1, after) = (Instant::now(), cpu_now(&pids));
        // Scale to exactly the measured interval, in case the sampler woke late.
        let scale = measure.as_secs_f64() / (t1 - t0).as_secs_f64();
        before.zip(after).map(|(b, a)| Cpu {
            ends: (a.ends - b.ends) * scale,
            bench: (a.bench - b.bench) * scale,
            machine: (a.machine - b.machine) * scale,
        })
    });
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
    let per_request = |seconds: f64| seconds * 1e6 / all.len().max(1) as f64;
    Run {
        rate: all.len() as f64 / measure.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        p999: pct(0.999),
        cpu: sampler.await.expect("cpu sampler").map(|c| Cpu {
            ends: per_request(c.ends),
            bench: per_request(c.bench),
            machine: per_request(c.machine),
        }),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn print_header() {
    println!(
        "{:<8} {:>11} {:>9} {:>9} {:>9}   {:>7} {:>9} {:>8}",
        "path", "requests/s", "p50", "p99", "p99.9", "ends", "load+http", "machine"
    );
}

fn print_row(path: &str, run: &Run) {
    let cpu = match run.cpu {
        Some(Cpu {
            ends,
            bench,
            machine,
        }) => format!("{ends:>7.1} {bench:>9.1} {machine:>8.1}"),
        None => format!("{:>7} {:>9} {:>8}", "-", "-", "-"),
    };
    println!(
        "{path:<8} {:>11.0} {:>9} {:>9} {:>9}   {cpu}",
        run.rate,
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

/// `--end-threads`, for [`Ends::spawn`].
static END_THREADS: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();

/// Child processes forming one path's ends; killed when dropped.
#[derive(Debug, Default)]
struct Ends {
    children: Vec<Child>,
    /// The in-process alternative, kept alive while the path is in use.
    in_process: Option<(RunningServer, RunningClient)>,
}

impl Ends {
    fn pids(&self) -> Vec<u32> {
        self.children.iter().filter_map(Child::id).collect()
    }

    /// Starts `program args` with its output in `log` (stdout piped instead if `pipe`).
    fn spawn(&mut self, program: &Path, args: &[&str], log: &Path, pipe: bool) -> &mut Child {
        let threads = END_THREADS.get().copied().flatten();
        let file = std::fs::File::create(log).expect("child log file");
        let stdout = if pipe {
            Stdio::piped()
        } else {
            file.try_clone().expect("log file").into()
        };
        let mut command = Command::new(program);
        if let Some(n) = threads {
            command.env("TOKIO_WORKER_THREADS", n.to_string());
        }
        let child = command
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        self.children.push(child);
        self.children.last_mut().expect("just pushed")
    }

    /// Waits until a request through `addr` succeeds (at most 20 s); panics if an end exits.
    async fn wait_ready(&mut self, addr: SocketAddr, body: u64, logs: &Path) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            for child in &mut self.children {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("a tunnel end exited ({status}); logs in {}", logs.display());
                }
            }
            let attempt = async {
                let mut http = HttpClient::connect(addr).await?;
                http.get_pattern(body).await?;
                http.close().await
            };
            if let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(2), attempt).await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no request got through {addr} within 20 s; logs in {}",
                logs.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(mut self) {
        for child in &mut self.children {
            let _ = child.kill().await;
        }
        if let Some((_, client)) = &self.in_process {
            assert_eq!(
                client
                    .counters
                    .failed
                    .load(std::sync::atomic::Ordering::Relaxed),
                0,
                "tunnelled connections failed"
            );
        }
    }
}

/// The plain forwarder, as a child process (this executable again) or in-process.
async fn forward_path(target: SocketAddr, dir: &Path, in_process: bool) -> (SocketAddr, Ends) {
    let mut ends = Ends::default();
    if in_process {
        return (start_plain_forwarder(target).await, ends);
    }
    let me = std::env::current_exe().expect("own executable");
    let child = ends.spawn(
        &me,
        &["--plain-forwarder", &target.to_string()],
        &dir.join("forward.log"),
        true,
    );
    let stdout = child.stdout.take().expect("forwarder stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .await
        .expect("forwarder address");
    let addr = line.trim().parse().expect("forwarder printed its address");
    (addr, ends)
}

const TOKEN: &str = "3f8a1c9e6b2d4f7a0e5c8b1d9f2a6c4e";

/// braid-tunnel's server and client, as child processes (the built binary) or in-process.
async fn tunnel_path(target: SocketAddr, dir: &Path, in_process: bool) -> (SocketAddr, Ends) {
    let mut ends = Ends::default();
    if in_process {
        let server = start_server(|_| {}).await;
        let mut client = start_client(server.addr, &[target], |_| {}).await;
        client.wait_up(1).await;
        let addr = client.local[0];
        ends.in_process = Some((server, client));
        return (addr, ends);
    }
    let token = dir.join("token");
    std::fs::write(&token, TOKEN).expect("token file");
    let token = token.to_str().expect("utf-8 temp path");
    let (server, local) = (free_addr().to_string(), free_addr());
    let bin = Path::new(env!("CARGO_BIN_EXE_braid-tunnel"));
    let quiet = ["--log-level", "warn", "--status-secs", "0"];
    let mut args = vec!["server", "--listen", &server, "--token-file", token];
    args.extend(quiet);
    ends.spawn(bin, &args, &dir.join("braid-server.log"), false);
    let forward = format!("{local}={target}");
    let mut args = vec!["client", "--server", &server, "--token-file", token];
    args.extend(["--forward", &forward]);
    args.extend(quiet);
    ends.spawn(bin, &args, &dir.join("braid-client.log"), false);
    (local, ends)
}

/// The `rathole` executable: `$RATHOLE`, or `rathole` on `PATH`.
fn find_rathole() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("RATHOLE") {
        return Some(path.into());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("rathole"))
        .find(|p| p.is_file())
}

/// rathole's server and client as child processes: the load connects to the server's
/// service port, the client dials `target` (rathole's direction: the server exposes a
/// service of the client). Plain TCP transport, nodelay on the tunnel connections (rathole's
/// default), one token.
fn rathole_path(rathole: &Path, target: SocketAddr, dir: &Path) -> (SocketAddr, Ends) {
    let (control, service) = (free_addr(), free_addr());
    let server = format!(
        "[server]\nbind_addr = \"{control}\"\ndefault_token = \"{TOKEN}\"\n\n\
         [server.transport]\ntype = \"tcp\"\n[server.transport.tcp]\nnodelay = true\n\n\
         [server.services.web]\nbind_addr = \"{service}\"\n"
    );
    let client = format!(
        "[client]\nremote_addr = \"{control}\"\ndefault_token = \"{TOKEN}\"\n\n\
         [client.transport]\ntype = \"tcp\"\n[client.transport.tcp]\nnodelay = true\n\n\
         [client.services.web]\nlocal_addr = \"{target}\"\n"
    );
    let (server_toml, client_toml) = (
        dir.join("rathole-server.toml"),
        dir.join("rathole-client.toml"),
    );
    std::fs::write(&server_toml, server).expect("rathole server config");
    std::fs::write(&client_toml, client).expect("rathole client config");
    let mut ends = Ends::default();
    let path = |p: &Path| p.to_str().expect("utf-8 temp path").to_string();
    ends.spawn(
        rathole,
        &["--server", &path(&server_toml)],
        &dir.join("rathole-server.log"),
        false,
    );
    ends.spawn(
        rathole,
        &["--client", &path(&client_toml)],
        &dir.join("rathole-client.log"),
        false,
    );
    (service, ends)
}

/// Median of each column over the runs (they need not come from the same run).
fn median(runs: &[Run]) -> Run {
    fn mid<T: Copy>(mut v: Vec<T>, cmp: impl Fn(&T, &T) -> std::cmp::Ordering) -> T {
        v.sort_by(cmp);
        v[v.len() / 2]
    }
    let f = |get: &dyn Fn(&Run) -> f64| mid(runs.iter().map(get).collect(), f64::total_cmp);
    let d = |get: fn(&Run) -> Duration| mid(runs.iter().map(get).collect(), Ord::cmp);
    let cpu = |get: fn(&Cpu) -> f64| f(&|r: &Run| r.cpu.as_ref().map_or(0.0, get));
    Run {
        rate: f(&|r: &Run| r.rate),
        p50: d(|r| r.p50),
        p99: d(|r| r.p99),
        p999: d(|r| r.p999),
        cpu: runs.iter().all(|r| r.cpu.is_some()).then(|| Cpu {
            ends: cpu(|c| c.ends),
            bench: cpu(|c| c.bench),
            machine: cpu(|c| c.machine),
        }),
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Some(target) = args.plain_forwarder {
        println!("{}", start_plain_forwarder(target).await);
        return std::future::pending().await;
    }
    END_THREADS.set(args.end_threads).expect("set once");
    let web = HttpServer::start_with(args.one_write)
        .await
        .expect("http server");
    let dir = std::env::temp_dir().join(format!("braid-tunnel-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");

    let wanted = |path: &str| args.only.as_deref().is_none_or(|only| only == path);
    if let Some(only) = &args.only {
        assert!(
            ["direct", "forward", "tunnel", "rathole"].contains(&only.as_str()),
            "--only {only}: expected direct, forward, tunnel or rathole"
        );
    }
    let mut paths: Vec<(&str, SocketAddr, Ends)> = Vec::new();
    if wanted("direct") {
        paths.push(("direct", web.addr, Ends::default()));
    }
    if wanted("forward") {
        let (addr, ends) = forward_path(web.addr, &dir, args.in_process).await;
        paths.push(("forward", addr, ends));
    }
    if wanted("tunnel") {
        let (addr, ends) = tunnel_path(web.addr, &dir, args.in_process).await;
        paths.push(("tunnel", addr, ends));
    }
    if wanted("rathole") {
        match find_rathole() {
            Some(rathole) => {
                let (addr, ends) = rathole_path(&rathole, web.addr, &dir);
                paths.push(("rathole", addr, ends));
            }
            None => println!(
                "rathole: SKIPPED, not installed (`cargo install rathole`, or set RATHOLE=/path/to/rathole)"
            ),
        }
    }
    if paths.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    for (_, addr, ends) in &mut paths {
        ends.wait_ready(*addr, args.body, &dir).await;
    }

    println!(
        "workload tunnel: {} keep-alive connections, GET {} B bodies ({}), {:.1} s per run, {} runs per path{}",
        args.connections,
        args.body,
        if args.one_write { "head and body in one write" } else { "head and body in two writes" },
        args.seconds,
        args.rounds,
        if args.in_process { ", ends in-process" } else { "" }
    );
    if let Some(n) = args.end_threads {
        println!("{n} tokio worker thread(s) per end process");
    }
    println!("CPU columns: microseconds per request (tunnel or forwarder ends / this process: load generator and HTTP server / whole machine)");
    print_header();
    let warmup = Duration::from_secs(1);
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); paths.len()];
    for _ in 0..args.rounds.max(1) {
        for (i, (name, addr, ends)) in paths.iter().enumerate() {
            let run = load(*addr, &ends.pids(), &args, warmup).await;
            print_row(name, &run);
            runs[i].push(run);
        }
    }
    if runs[0].len() > 1 || paths.len() > 1 {
        println!("median of {} runs, each column on its own:", runs[0].len());
        let medians: Vec<Run> = runs.iter().map(|r| median(r)).collect();
        for ((name, _, _), run) in paths.iter().zip(&medians) {
            print_row(name, run);
        }
        let rate = |name: &str| {
            paths
                .iter()
                .zip(&medians)
                .find(|((n, _, _), _)| *n == name)
                .map(|(_, run)| run.rate)
        };
        if let Some(direct) = rate("direct") {
            for name in ["forward", "tunnel", "rathole"] {
                if let Some(r) = rate(name) {
                    println!(
                        "{name}: {:+.1}% requests/s vs direct",
                        (r / direct - 1.0) * 100.0
                    );
                }
            }
        }
        if let (Some(tunnel), Some(rathole)) = (rate("tunnel"), rate("rathole")) {
            println!("tunnel / rathole requests/s: {:.2}x", tunnel / rathole);
        }
    }
    for (_, _, ends) in paths {
        ends.stop().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
