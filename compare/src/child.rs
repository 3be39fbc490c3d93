//! One measurement in a fresh child process: one implementation, one workload, one runtime mode.
//!
//! A process per measurement keeps CPU time and RSS clean, and a hung implementation can be
//! killed without leaving tasks behind. The result goes to stdout as one JSON line.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::impls::{self, Mux};
use crate::proxy;
use crate::sys::CpuMeter;
use crate::workloads::{self, Params, Preset, Sample, Workload};

/// First argument that makes the binary run as a child.
pub const CHILD_FLAG: &str = "--child";

/// How client and server are scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mode {
    /// Client and server each on a single-threaded tokio runtime in its own OS thread.
    #[serde(rename = "split")]
    Split,
    /// Client and server on one two-worker multi-thread runtime.
    #[serde(rename = "shared")]
    Shared,
}

impl Mode {
    /// Both modes.
    pub const ALL: [Mode; 2] = [Mode::Split, Mode::Shared];

    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Split => "split",
            Mode::Shared => "shared",
        }
    }
}

/// What a child is asked to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// Implementation name.
    pub imp: String,
    /// Workload.
    pub workload: Workload,
    /// Runtime mode.
    pub mode: Mode,
    /// Sizes.
    pub preset: Preset,
    /// Seconds before the measurement is abandoned.
    pub timeout_s: u64,
    /// `--sessions N`: sessions of the sessions-* workloads instead of the preset's.
    #[serde(default)]
    pub sessions: Option<usize>,
}

/// What a child reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Outcome {
    /// Measured.
    #[serde(rename = "ok")]
    Ok(Sample),
    /// Did not finish in time.
    #[serde(rename = "timeout")]
    Timeout,
    /// Failed.
    #[serde(rename = "error")]
    Error(String),
    /// Not built in.
    #[serde(rename = "unavailable")]
    Unavailable(String),
}

/// Entry point of a child: runs the job given as JSON in `args[0]`, prints the outcome, exits.
pub fn main(args: &[String]) -> ! {
    let outcome = match args.first().map(|a| serde_json::from_str::<Job>(a)) {
        Some(Ok(job)) => run(&job),
        Some(Err(e)) => Outcome::Error(format!("bad job: {e}")),
        None => Outcome::Error("no job".into()),
    };
    let line = serde_json::to_string(&outcome).unwrap_or_else(|e| format!("{e}"));
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    // Exit without tearing down runtimes: a stuck implementation must not hang the exit.
    std::process::exit(0)
}

fn run(job: &Job) -> Outcome {
    if job.workload.is_sessions() {
        return crate::sessions::run(job);
    }
    if crate::rpc::handles(job) {
        return crate::rpc::run(job);
    }
    let Some(mux) = impls::by_name(&job.imp) else {
        return Outcome::Error(format!("unknown implementation {}", job.imp));
    };
    if let Some(why) = mux.unavailable() {
        return Outcome::Unavailable(why);
    }
    match setup_and_run(job, mux) {
        Ok(outcome) => outcome,
        Err(e) => Outcome::Error(format!("setup: {e}")),
    }
}

fn setup_and_run(job: &Job, mux: Arc<dyn Mux>) -> io::Result<Outcome> {
    let params = Params::new(job.preset);
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let server_addr = listener.local_addr()?;
    let (client_addr, cpu) = if job.workload == Workload::LongLink {
        let proxy = proxy::start(server_addr, params.long_link_one_way)?;
        (proxy.addr, CpuMeter::excluding(proxy.tid))
    } else {
        (server_addr, CpuMeter::process())
    };
    let (errors_tx, errors_rx) = mpsc::unbounded_channel();
    let server = server(mux.clone(), job.workload, listener, errors_tx);
    let client = client(
        mux,
        client_addr,
        job.workload,
        params,
        cpu,
        Duration::from_secs(job.timeout_s),
        errors_rx,
    );
    run_in_mode(job.mode, server, client)
}

/// Runs `server` and `client` in the runtime layout of `mode` and returns the client's outcome:
/// `split` puts each on a current-thread runtime in its own OS thread, `shared` puts both on
/// one two-worker runtime.
pub fn run_in_mode<S, C>(mode: Mode, server: S, client: C) -> io::Result<Outcome>
where
    S: std::future::Future<Output = ()> + Send + 'static,
    C: std::future::Future<Output = Outcome> + Send + 'static,
{
    match mode {
        Mode::Split => {
            std::thread::Builder::new().name("server".into()).spawn(
                move || match single_threaded() {
                    Ok(runtime) => runtime.block_on(server),
                    Err(e) => eprintln!("server runtime: {e}"),
                },
            )?;
            Ok(single_threaded()?.block_on(client))
        }
        Mode::Shared => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            Ok(runtime.block_on(async move {
                tokio::spawn(server);
                tokio::spawn(client)
                    .await
                    .unwrap_or_else(|e| Outcome::Error(format!("client task: {e}")))
            }))
        }
    }
}

fn single_threaded() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

async fn server(
    mux: Arc<dyn Mux>,
    workload: Workload,
    listener: std::net::TcpListener,
    errors: mpsc::UnboundedSender<String>,
) {
    let result = async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let acceptor = mux.listen(listener).await?;
        workloads::serve(workload, acceptor, errors.clone()).await
    }
    .await;
    if let Err(e) = result {
        let _ = errors.send(format!("server: {e}"));
    }
}

async fn client(
    mux: Arc<dyn Mux>,
    addr: SocketAddr,
    workload: Workload,
    params: Params,
    cpu: CpuMeter,
    timeout: Duration,
    server_errors: mpsc::UnboundedReceiver<String>,
) -> Outcome {
    let work = async {
        let opener = mux.connect(addr).await?;
        workloads::run_client(workload, &params, opener, cpu).await
    };
    finish(work, timeout, server_errors).await
}

/// Runs a measurement's client `work` against `timeout`, failing early if the server side
/// reports an error; a client error is annotated with the server's, which often knows the
/// real cause (e.g. a GOAWAY it sent).
pub async fn finish(
    work: impl std::future::Future<Output = io::Result<Sample>>,
    timeout: Duration,
    mut server_errors: mpsc::UnboundedReceiver<String>,
) -> Outcome {
    let server_failed = async {
        match server_errors.recv().await {
            Some(e) => e,
            None => std::future::pending().await,
        }
    };
    let raced = async {
        tokio::select! {
            biased;
            result = work => result,
            e = server_failed => Err(io::Error::other(e)),
        }
    };
    match tokio::time::timeout(timeout, raced).await {
        Ok(Ok(sample)) => Outcome::Ok(sample),
        Ok(Err(e)) => {
            // The server side often knows the real cause (e.g. a GOAWAY it sent).
            tokio::time::sleep(Duration::from_millis(20)).await;
            let mut message = e.to_string();
            if let Ok(server) = server_errors.try_recv() {
                if !message.contains(&server) {
                    message = format!("{message} [{server}]");
                }
            }
            Outcome::Error(message)
        }
        Err(_) => Outcome::Timeout,
    }
}
