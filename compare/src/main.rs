//! `compare`: braid against h2, yamux and raw TCP, the same workloads over loopback TCP;
//! `braid::rpc` against tonic (gRPC) on the rpc-* workloads; and many sessions at once
//! (braid, h2, yamux, tonic, TCP) on the sessions-* workloads.
//!
//! ```text
//! cargo run --release -p braid-compare [-- --quick|--full] [--only braid,h2]
//!     [--workload pingpong,...] [--rounds N] [--mode split,shared] [--timeout SECS] [--out DIR]
//!     [--sessions N]
//! ```
//!
//! Every measurement runs in a fresh child process (this same binary with `--child`), so CPU
//! time and memory are per measurement and a hung implementation is killed at its timeout.
//! Implementations run interleaved (A B C A B C ...) for each workload.
#![forbid(unsafe_code)]

mod chart;
mod child;
mod impls;
mod proxy;
mod report;
mod rpc;
mod sessions;
mod sys;
mod workloads;

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use child::{Job, Mode, Outcome, CHILD_FLAG};
use impls::{Mux, Scope};
use report::{Group, Results, Row};
use workloads::{Params, Preset, Workload};

const USAGE: &str = "\
usage: compare [--quick | --full] [--only IMPL,..] [--workload NAME,..] [--rounds N]
               [--mode split,shared] [--timeout SECS] [--out DIR] [--sessions N]

  --quick          scaled-down sizes, about two minutes on two cores (default); the
                   sessions-* workloads add about ten more (sessions-idle moves 8 GiB
                   per measurement)
  --full           the full sizes (1 GiB bulk, 20,000 round trips, ...); sessions-idle
                   then moves 80 GiB per measurement, 1.5-3 minutes each, and holds
                   10,000 session pairs in one process
  --only           implementations: braid, braid-tuned, h2, h2-tuned, yamux, yamux-tuned,
                   tcp, tcp-nconn, braid-rpc, tonic, braid-prost, tonic-prost
                   (default: all)
  --workload       bulk-1, bulk-100, pingpong, msgs, open-close (= open-close-seq and
                   open-close-64), idle-streams, latency-under-load, long-link,
                   rpc (= rpc-stream-64, rpc-stream-4k, rpc-unary-1, rpc-unary-64; run by
                   braid-rpc, tonic and their typed prost pair braid-prost and
                   tonic-prost only),
                   sessions (= sessions-idle, sessions-fleet, sessions-churn: many sessions,
                   one TCP connection each; run by braid, h2, h2-tuned, yamux, tonic and tcp)
                   (default: all)
  --rounds N       rounds per implementation, at least 1 (default 3)
  --mode           split (client and server on separate single-threaded runtimes),
                   shared (one two-worker runtime); default both. sessions-fleet and
                   sessions-churn run client and server in two processes: split gives
                   each a single-threaded runtime, shared a two-worker one
  --timeout SECS   per measurement (default 10 quick, 120 full; the sessions-* workloads
                   get at least what their sizes need)
  --sessions N     sessions in sessions-idle and sessions-fleet (default 1,000 and 200
                   quick, 10,000 and 1,000 full)
  --out DIR        where results.json, results.csv and chart.svg go
                   (default $CARGO_TARGET_DIR/compare or <crate>/target/compare)
";

struct Options {
    preset: Preset,
    impls: Vec<Arc<dyn Mux>>,
    workloads: Vec<Workload>,
    modes: Vec<Mode>,
    rounds: usize,
    timeout_s: u64,
    out: PathBuf,
    sessions: Option<usize>,
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut preset = Preset::Quick;
    let mut only: Option<Vec<String>> = None;
    let mut workloads: Option<Vec<Workload>> = None;
    let mut modes: Option<Vec<Mode>> = None;
    let mut rounds = 3;
    let mut timeout_s = None;
    let mut out = None;
    let mut sessions = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag {
            "--quick" => preset = Preset::Quick,
            "--full" => preset = Preset::Full,
            "--only" | "--impl" => only = Some(list(&value()?).map(String::from).collect()),
            "--workload" | "--workloads" => {
                let mut chosen = Vec::new();
                for name in list(&value()?) {
                    chosen.extend(
                        Workload::parse(name).ok_or_else(|| format!("unknown workload {name}"))?,
                    );
                }
                workloads = Some(chosen);
            }
            "--mode" | "--modes" => {
                let mut chosen = Vec::new();
                for name in list(&value()?) {
                    let mode = Mode::ALL
                        .into_iter()
                        .find(|m| m.name() == name)
                        .ok_or_else(|| format!("unknown mode {name}"))?;
                    chosen.push(mode);
                }
                modes = Some(chosen);
            }
            "--rounds" => {
                rounds = value()?
                    .parse()
                    .ok()
                    .filter(|&n: &usize| n >= 1)
                    .ok_or("--rounds needs a number >= 1")?;
            }
            "--timeout" => {
                timeout_s = Some(
                    value()?
                        .parse()
                        .ok()
                        .filter(|&n: &u64| n >= 1)
                        .ok_or("--timeout needs whole seconds >= 1")?,
                );
            }
            "--out" => out = Some(PathBuf::from(value()?)),
            "--sessions" => {
                sessions = Some(
                    value()?
                        .parse()
                        .ok()
                        .filter(|&n: &usize| n >= 1)
                        .ok_or("--sessions needs a number >= 1")?,
                );
            }
            "-h" | "--help" => return Err(String::new()),
            // `cargo bench`-style harness flags are ignored.
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let mut all = impls::all();
    all.extend(rpc::impls());
    let impls = match only {
        None => all,
        Some(names) => {
            let mut chosen = Vec::new();
            for name in names {
                let found = all
                    .iter()
                    .find(|m| m.name() == name)
                    .ok_or_else(|| format!("unknown implementation {name}"))?;
                chosen.push(found.clone());
            }
            chosen
        }
    };
    let out = out.unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("..")
                    .join("target")
            })
            .join("compare")
    });
    Ok(Options {
        preset,
        impls,
        workloads: workloads.unwrap_or_else(|| Workload::ALL.to_vec()),
        modes: modes.unwrap_or_else(|| Mode::ALL.to_vec()),
        rounds,
        timeout_s: timeout_s.unwrap_or(match preset {
            Preset::Quick => 10,
            Preset::Full => 120,
        }),
        out,
        sessions,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(CHILD_FLAG) {
        child::main(&args[1..]);
    }
    if args.first().map(String::as_str) == Some(sessions::SERVER_FLAG) {
        sessions::server_main(&args[1..]);
    }
    match parse_args(&args) {
        Ok(opts) => run(opts),
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("compare: {msg}\n");
            }
            eprint!("{USAGE}");
            std::process::exit(if msg.is_empty() { 0 } else { 2 });
        }
    }
}

fn takes_part(mux: &dyn Mux, workload: Workload) -> bool {
    // The sessions workloads have their own set of implementations (tonic among them).
    if workload.is_sessions() {
        return sessions::takes_part(mux.name());
    }
    // The RPC implementations run the RPC workloads, and nothing else runs them.
    if rpc::is_rpc_impl(mux.name()) || workload.is_rpc() {
        return rpc::is_rpc_impl(mux.name()) && workload.is_rpc();
    }
    match mux.scope() {
        Scope::All => true,
        Scope::SingleStream => !workload.multi_stream(),
        Scope::MultiStream => workload.multi_stream(),
    }
}

fn run(opts: Options) {
    let params = Params::new(opts.preset).with_sessions(opts.sessions);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "braid compare: {:?} preset, {} round(s), modes {}, timeout {} s per measurement, {cpus} CPUs",
        opts.preset,
        opts.rounds,
        opts.modes.iter().map(|m| m.name()).collect::<Vec<_>>().join("+"),
        opts.timeout_s
    );
    println!("implementations:");
    for mux in &opts.impls {
        let note = mux
            .unavailable()
            .map_or(String::new(), |why| format!("  [not available: {why}]"));
        println!("  {:<12} {}{note}", mux.name(), mux.settings());
    }
    println!(
        "split = client and server each on a single-threaded tokio runtime in its own OS thread; \
         shared = one 2-worker multi-thread runtime for both.\n\
         CPU = user+sys of the whole process (both ends) during the measured part, from {}; \
         long-link leaves out the delay proxy thread; sessions-fleet and sessions-churn run \
         the server in a process of its own and add its CPU.",
        sys::cpu_source()
    );

    let total: usize = opts
        .workloads
        .iter()
        .map(|&w| {
            let runnable = opts
                .impls
                .iter()
                .filter(|m| takes_part(&***m, w) && m.unavailable().is_none())
                .count();
            runnable * opts.modes.len() * opts.rounds
        })
        .sum();
    let mut progress = Progress::new(total);
    let mut results = Results {
        preset: opts.preset,
        rounds: opts.rounds,
        impls: opts
            .impls
            .iter()
            .map(|m| (m.name().to_string(), m.settings()))
            .collect(),
        groups: Vec::new(),
    };

    for &workload in &opts.workloads {
        let muxes: Vec<&Arc<dyn Mux>> = opts
            .impls
            .iter()
            .filter(|m| takes_part(&***m, workload))
            .collect();
        let mut group = Group {
            workload,
            description: workload.describe(&params),
            rows: Vec::new(),
        };
        for &mode in &opts.modes {
            for mux in &muxes {
                let outcomes = match mux.unavailable() {
                    Some(why) => vec![Outcome::Unavailable(why)],
                    None => Vec::new(),
                };
                group.rows.push(Row {
                    imp: mux.name().to_string(),
                    mode,
                    outcomes,
                });
            }
        }
        for round in 0..opts.rounds {
            for row in group.rows.iter_mut() {
                if row.given_up() {
                    if !matches!(row.outcomes.last(), Some(Outcome::Unavailable(_))) {
                        progress.done += 1;
                    }
                    continue;
                }
                progress.show(&format!(
                    "{} {} {} round {}/{}",
                    workload.name(),
                    row.imp,
                    row.mode.name(),
                    round + 1,
                    opts.rounds
                ));
                let job = Job {
                    imp: row.imp.clone(),
                    workload,
                    mode: row.mode,
                    preset: opts.preset,
                    timeout_s: opts
                        .timeout_s
                        .max(sessions::min_timeout(workload, &params.sessions)),
                    sessions: opts.sessions,
                };
                row.outcomes.push(run_child(&job));
                progress.done += 1;
            }
        }
        progress.clear();
        print!("{}", report::table(&group));
        if workload.is_rpc() {
            print!("{}", rpc::verdict(&group));
        }
        if workload.is_sessions() {
            print!("{}", sessions::verdict(&group, &params.sessions));
        }
        let _ = std::io::stdout().flush();
        results.groups.push(group);
    }
    progress.clear();
    println!(
        "\n{} measurements in {:.0} s",
        progress.done,
        progress.start.elapsed().as_secs_f64()
    );
    write_outputs(&opts.out, &results);
}

fn write_outputs(dir: &std::path::Path, results: &Results) {
    let files = [
        (
            "results.json",
            serde_json::to_string_pretty(&report::to_json(results)).unwrap_or_default(),
        ),
        ("results.csv", report::to_csv(results)),
        ("chart.svg", chart::svg(results)),
    ];
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("compare: cannot create {}: {e}", dir.display());
        return;
    }
    for (name, text) in files {
        let path = dir.join(name);
        match std::fs::write(&path, text) {
            Ok(()) => println!("wrote {}", path.display()),
            Err(e) => eprintln!("compare: cannot write {}: {e}", path.display()),
        }
    }
}

/// Runs one measurement in a child process, killing it if it overruns its own timeout.
fn run_child(job: &Job) -> Outcome {
    let spawned = std::env::current_exe().and_then(|exe| {
        Command::new(exe)
            .arg(CHILD_FLAG)
            .arg(serde_json::to_string(job).map_err(std::io::Error::other)?)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
    });
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return Outcome::Error(format!("cannot start child: {e}")),
    };
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Outcome::Error("child without pipes".into());
    };
    // Stdout reaches EOF when the child exits: a reader thread turns that into a timed wait.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // The child gives up by itself at timeout_s; this is the backstop for a wedged process.
    let limit = Duration::from_secs(job.timeout_s + 15);
    let stdout_text = match rx.recv_timeout(limit) {
        Ok(text) => text,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return Outcome::Timeout;
        }
    };
    let status = child.wait();
    let stderr_text = stderr_reader.join().unwrap_or_default();
    let parsed = stdout_text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .and_then(|line| serde_json::from_str::<Outcome>(line).ok());
    parsed.unwrap_or_else(|| {
        let tail: String = stderr_text
            .lines()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .join(" | ");
        let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
        Outcome::Error(format!("child failed ({status}): {tail}"))
    })
}

/// A one-line progress bar on stderr (only when stderr is a terminal).
struct Progress {
    total: usize,
    done: usize,
    start: Instant,
    tty: bool,
}

impl Progress {
    fn new(total: usize) -> Self {
        Progress {
            total,
            done: 0,
            start: Instant::now(),
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn show(&self, what: &str) {
        let elapsed = self.start.elapsed().as_secs();
        let width = 24;
        let filled = (self.done * width).checked_div(self.total).unwrap_or(0);
        let bar = format!("{}{}", "#".repeat(filled), "-".repeat(width - filled));
        let line = format!(
            "[{bar}] {}/{} {:02}:{:02} {what}",
            self.done + 1,
            self.total,
            elapsed / 60,
            elapsed % 60
        );
        if self.tty {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
        let _ = std::io::stderr().flush();
    }

    fn clear(&self) {
        if self.tty {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }
}
