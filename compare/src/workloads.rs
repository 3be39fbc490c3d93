//! The workloads, written once against [`Opener`] / [`Acceptor`]: the client side (which measures)
//! and the server side (which echoes, discards or parses).
//!
//! Every stream ends with both FINs: the writer shuts its side down and the reader replies with
//! an 8-byte acknowledgement (bytes or messages received) before shutting down its own side, so
//! a measurement covers delivery to the receiving application, not just queueing.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::impls::{Acceptor, BoxStream, Opener};
use crate::sys::{self, CpuMeter};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
const GIB: f64 = (1u64 << 30) as f64;

/// Bytes per write call in all bulk transfers.
pub const WRITE_SIZE: usize = 64 * KIB;
/// Request and response size of ping-pong and open-close.
const PING_SIZE: usize = 64;
/// Payload size of one `msgs` message (plus a 4-byte big-endian length prefix).
const MSG_PAYLOAD: usize = 64;

/// One row group of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Workload {
    /// One stream, one direction, large transfer.
    #[serde(rename = "bulk-1")]
    Bulk1,
    /// 100 concurrent bulk streams.
    #[serde(rename = "bulk-100")]
    Bulk100,
    /// 64-byte request/response on one stream.
    #[serde(rename = "pingpong")]
    Pingpong,
    /// Many small length-prefixed messages, one write each.
    #[serde(rename = "msgs")]
    Msgs,
    /// Open, echo 64 bytes, close; one at a time.
    #[serde(rename = "open-close-seq")]
    OpenCloseSeq,
    /// Open, echo 64 bytes, close; 64 in flight.
    #[serde(rename = "open-close-64")]
    OpenClose64,
    /// Memory per open idle stream.
    #[serde(rename = "idle-streams")]
    IdleStreams,
    /// Ping-pong next to 4 bulk streams.
    #[serde(rename = "latency-under-load")]
    LatencyUnderLoad,
    /// One bulk stream through a 20 ms RTT delay proxy.
    #[serde(rename = "long-link")]
    LongLink,
    /// RPC: one bidirectional call, 64-byte messages echoed (`rpc` module).
    #[serde(rename = "rpc-stream-64")]
    RpcStream64,
    /// RPC: one bidirectional call, 4 KiB messages echoed.
    #[serde(rename = "rpc-stream-4k")]
    RpcStream4k,
    /// RPC: unary calls, one at a time.
    #[serde(rename = "rpc-unary-1")]
    RpcUnary1,
    /// RPC: unary calls, 64 in flight.
    #[serde(rename = "rpc-unary-64")]
    RpcUnary64,
    /// Memory per session pair of many sessions: set up, after a burst, after idle
    /// (`sessions` module).
    #[serde(rename = "sessions-idle")]
    SessionsIdle,
    /// Many sessions each making a small request every 100 ms: server CPU, latency, memory.
    #[serde(rename = "sessions-fleet")]
    SessionsFleet,
    /// Sessions opened, used once and closed: sessions per second, server CPU.
    #[serde(rename = "sessions-churn")]
    SessionsChurn,
}

/// One reported number of a workload.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Column name.
    pub name: &'static str,
    /// Unit.
    pub unit: &'static str,
    /// Direction.
    pub higher_is_better: bool,
    /// Whether the table shows ratios to the baselines for it.
    pub headline: bool,
}

const fn metric(name: &'static str, unit: &'static str, higher_is_better: bool) -> Metric {
    Metric {
        name,
        unit,
        higher_is_better,
        headline: true,
    }
}

const THROUGHPUT: &[Metric] = &[metric("throughput", "MiB/s", true)];
const LATENCY: &[Metric] = &[metric("p50", "µs", false), metric("p99", "µs", false)];
const MESSAGES: &[Metric] = &[metric("rate", "msgs/s", true)];
const STREAMS: &[Metric] = &[metric("rate", "streams/s", true)];
const IDLE: &[Metric] = &[
    metric("memory", "B/stream", false),
    Metric {
        headline: false,
        ..metric("open rate", "streams/s", true)
    },
];
const LATENCY_LOADED: &[Metric] = &[
    metric("p50", "µs", false),
    metric("p99", "µs", false),
    Metric {
        headline: false,
        ..metric("bulk", "MiB/s", true)
    },
    Metric {
        headline: false,
        ..metric("done", "rtts", true)
    },
];

/// What CPU time is divided by (CPU seconds per ...).
#[derive(Debug, Clone, Copy)]
pub enum CpuUnit {
    /// Per GiB of payload moved.
    Gib,
    /// Per million round trips.
    MillionRoundTrips,
    /// Per million messages.
    MillionMsgs,
    /// Per million streams.
    MillionStreams,
    /// Per million RPC calls.
    MillionCalls,
    /// Per million requests.
    MillionRequests,
    /// Per million sessions.
    MillionSessions,
}

impl CpuUnit {
    /// Column label.
    pub fn label(self) -> &'static str {
        match self {
            CpuUnit::Gib => "CPU s/GiB",
            CpuUnit::MillionRoundTrips => "CPU s/M rtt",
            CpuUnit::MillionMsgs => "CPU s/M msgs",
            CpuUnit::MillionStreams => "CPU s/M streams",
            CpuUnit::MillionCalls => "CPU s/M calls",
            CpuUnit::MillionRequests => "CPU s/M req",
            CpuUnit::MillionSessions => "CPU s/M sessions",
        }
    }
}

/// Workload sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preset {
    /// Scaled down: the whole run in about two minutes on two cores.
    #[serde(rename = "quick")]
    Quick,
    /// The sizes of the issue.
    #[serde(rename = "full")]
    Full,
}

/// Sizes of every workload for one preset.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// bulk-1 bytes.
    pub bulk1_bytes: u64,
    /// bulk-100 stream count.
    pub bulk100_streams: usize,
    /// bulk-100 bytes per stream.
    pub bulk100_bytes: u64,
    /// pingpong measured round trips.
    pub pingpong_rounds: usize,
    /// msgs message count.
    pub msgs: usize,
    /// open-close stream count.
    pub open_close: usize,
    /// open-close-64 streams in flight.
    pub open_close_inflight: usize,
    /// idle-streams stream count.
    pub idle_streams: usize,
    /// latency-under-load measured round trips.
    pub loaded_rounds: usize,
    /// latency-under-load bulk streams.
    pub loaded_bulk_streams: usize,
    /// latency-under-load stops measuring after this long even if rounds are left.
    pub loaded_max_time: Duration,
    /// long-link bytes.
    pub long_link_bytes: u64,
    /// long-link stops sending after this long even if bytes are left (window-limited
    /// implementations are slow here; the rate is what is reported).
    pub long_link_max_time: Duration,
    /// long-link one-way delay.
    pub long_link_one_way: Duration,
    /// The rpc-* workloads.
    pub rpc: crate::rpc::RpcParams,
    /// The sessions-* workloads.
    pub sessions: crate::sessions::SessionParams,
}

impl Params {
    /// Sizes for `preset`.
    pub fn new(preset: Preset) -> Self {
        let mib = MIB as u64;
        match preset {
            Preset::Quick => Params {
                bulk1_bytes: 64 * mib,
                bulk100_streams: 100,
                bulk100_bytes: mib,
                pingpong_rounds: 5_000,
                msgs: 100_000,
                open_close: 5_000,
                open_close_inflight: 64,
                idle_streams: 2_000,
                loaded_rounds: 1_000,
                loaded_bulk_streams: 4,
                loaded_max_time: Duration::from_millis(750),
                long_link_bytes: 16 * mib,
                long_link_max_time: Duration::from_secs(1),
                long_link_one_way: Duration::from_millis(10),
                rpc: crate::rpc::RpcParams::new(preset),
                sessions: crate::sessions::SessionParams::new(preset),
            },
            Preset::Full => Params {
                // Long enough (~0.4 s at 2.5 GiB/s) that one run spans many scheduling
                // decisions of a shared runtime instead of catching one placement.
                bulk1_bytes: 1024 * mib,
                bulk100_streams: 100,
                bulk100_bytes: 16 * mib,
                pingpong_rounds: 20_000,
                msgs: 1_000_000,
                open_close: 20_000,
                open_close_inflight: 64,
                idle_streams: 10_000,
                loaded_rounds: 10_000,
                loaded_bulk_streams: 4,
                loaded_max_time: Duration::from_secs(10),
                long_link_bytes: 64 * mib,
                long_link_max_time: Duration::from_secs(30),
                long_link_one_way: Duration::from_millis(10),
                rpc: crate::rpc::RpcParams::new(preset),
                sessions: crate::sessions::SessionParams::new(preset),
            },
        }
    }
}

impl Params {
    /// With `--sessions N` applied (`None`: the preset's numbers).
    pub fn with_sessions(mut self, sessions: Option<usize>) -> Self {
        self.sessions = self.sessions.with_sessions(sessions);
        self
    }
}

impl Workload {
    /// All workloads in report order.
    pub const ALL: [Workload; 16] = [
        Workload::Bulk1,
        Workload::Bulk100,
        Workload::Pingpong,
        Workload::Msgs,
        Workload::OpenCloseSeq,
        Workload::OpenClose64,
        Workload::IdleStreams,
        Workload::LatencyUnderLoad,
        Workload::LongLink,
        Workload::RpcStream64,
        Workload::RpcStream4k,
        Workload::RpcUnary1,
        Workload::RpcUnary64,
        Workload::SessionsIdle,
        Workload::SessionsFleet,
        Workload::SessionsChurn,
    ];

    /// Name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Bulk1 => "bulk-1",
            Workload::Bulk100 => "bulk-100",
            Workload::Pingpong => "pingpong",
            Workload::Msgs => "msgs",
            Workload::OpenCloseSeq => "open-close-seq",
            Workload::OpenClose64 => "open-close-64",
            Workload::IdleStreams => "idle-streams",
            Workload::LatencyUnderLoad => "latency-under-load",
            Workload::LongLink => "long-link",
            Workload::RpcStream64 => "rpc-stream-64",
            Workload::RpcStream4k => "rpc-stream-4k",
            Workload::RpcUnary1 => "rpc-unary-1",
            Workload::RpcUnary64 => "rpc-unary-64",
            Workload::SessionsIdle => "sessions-idle",
            Workload::SessionsFleet => "sessions-fleet",
            Workload::SessionsChurn => "sessions-churn",
        }
    }

    /// Workloads selected by a command-line name (`open-close` selects both variants).
    pub fn parse(name: &str) -> Option<Vec<Workload>> {
        match name {
            "open-close" => Some(vec![Workload::OpenCloseSeq, Workload::OpenClose64]),
            "idle" => Some(vec![Workload::IdleStreams]),
            "rpc" => Some(Workload::ALL.into_iter().filter(|w| w.is_rpc()).collect()),
            "sessions" => Some(
                Workload::ALL
                    .into_iter()
                    .filter(|w| w.is_sessions())
                    .collect(),
            ),
            _ => Workload::ALL
                .into_iter()
                .find(|w| w.name() == name)
                .map(|w| vec![w]),
        }
    }

    /// Whether the workload is one of the RPC workloads (only the RPC implementations run them,
    /// and they run nothing else).
    pub fn is_rpc(self) -> bool {
        matches!(
            self,
            Workload::RpcStream64
                | Workload::RpcStream4k
                | Workload::RpcUnary1
                | Workload::RpcUnary64
        )
    }

    /// Whether the workload is one of the sessions workloads (many sessions, each its own
    /// connection; run by the `sessions` module for its own set of implementations).
    pub fn is_sessions(self) -> bool {
        matches!(
            self,
            Workload::SessionsIdle | Workload::SessionsFleet | Workload::SessionsChurn
        )
    }

    /// Whether the workload uses more than one stream (then `tcp-nconn` is the baseline).
    pub fn multi_stream(self) -> bool {
        matches!(
            self,
            Workload::Bulk100
                | Workload::OpenCloseSeq
                | Workload::OpenClose64
                | Workload::IdleStreams
                | Workload::LatencyUnderLoad
        )
    }

    /// Reported numbers.
    pub fn metrics(self) -> &'static [Metric] {
        match self {
            Workload::Bulk1 | Workload::Bulk100 | Workload::LongLink => THROUGHPUT,
            Workload::Pingpong => LATENCY,
            Workload::Msgs => MESSAGES,
            Workload::OpenCloseSeq | Workload::OpenClose64 => STREAMS,
            Workload::IdleStreams => IDLE,
            Workload::LatencyUnderLoad => LATENCY_LOADED,
            Workload::RpcStream64 | Workload::RpcStream4k => crate::rpc::STREAM_METRICS,
            Workload::RpcUnary1 | Workload::RpcUnary64 => crate::rpc::UNARY_METRICS,
            Workload::SessionsIdle => crate::sessions::IDLE_METRICS,
            Workload::SessionsFleet => crate::sessions::FLEET_METRICS,
            Workload::SessionsChurn => crate::sessions::CHURN_METRICS,
        }
    }

    /// What CPU time is normalised by.
    pub fn cpu_unit(self) -> CpuUnit {
        match self {
            Workload::Bulk1
            | Workload::Bulk100
            | Workload::LongLink
            | Workload::LatencyUnderLoad
            | Workload::SessionsIdle => CpuUnit::Gib,
            Workload::Pingpong => CpuUnit::MillionRoundTrips,
            Workload::Msgs => CpuUnit::MillionMsgs,
            Workload::OpenCloseSeq | Workload::OpenClose64 | Workload::IdleStreams => {
                CpuUnit::MillionStreams
            }
            Workload::RpcStream64 | Workload::RpcStream4k => CpuUnit::MillionMsgs,
            Workload::RpcUnary1 | Workload::RpcUnary64 => CpuUnit::MillionCalls,
            Workload::SessionsFleet => CpuUnit::MillionRequests,
            Workload::SessionsChurn => CpuUnit::MillionSessions,
        }
    }

    /// One line saying what is measured, with this preset's sizes.
    pub fn describe(self, p: &Params) -> String {
        let mib = |b: u64| b / MIB as u64;
        let w = WRITE_SIZE / KIB;
        match self {
            Workload::Bulk1 => format!(
                "one stream sends {} MiB in {w} KiB writes, the peer reads and discards",
                mib(p.bulk1_bytes)
            ),
            Workload::Bulk100 => format!(
                "{} concurrent streams send {} MiB each in {w} KiB writes; aggregate",
                p.bulk100_streams,
                mib(p.bulk100_bytes)
            ),
            Workload::Pingpong => format!(
                "one stream, {PING_SIZE}-byte request/response, {} round trips",
                p.pingpong_rounds
            ),
            Workload::Msgs => format!(
                "one stream, {} messages of {MSG_PAYLOAD} bytes, each one write of {} bytes \
                 (u32 length + payload), parsed by the receiver",
                p.msgs,
                MSG_PAYLOAD + 4
            ),
            Workload::OpenCloseSeq => format!(
                "{} streams, each opened, {PING_SIZE} bytes echoed, closed; one at a time",
                p.open_close
            ),
            Workload::OpenClose64 => format!(
                "{} streams, each opened, {PING_SIZE} bytes echoed, closed; {} in flight",
                p.open_close, p.open_close_inflight
            ),
            Workload::IdleStreams => format!(
                "{} streams opened, 1 byte echoed, left open; (RSS after - before) / N, \
                 both ends in one process",
                p.idle_streams
            ),
            Workload::LatencyUnderLoad => format!(
                "{PING_SIZE}-byte ping-pong on one stream, {} round trips (or {} s), while {} \
                 other streams send bulk in {w} KiB writes",
                p.loaded_rounds,
                p.loaded_max_time.as_secs_f64(),
                p.loaded_bulk_streams
            ),
            Workload::LongLink => format!(
                "one stream sends {} MiB (or for {} s) in {w} KiB writes through a delay proxy \
                 adding {} ms each way",
                mib(p.long_link_bytes),
                p.long_link_max_time.as_secs_f64(),
                p.long_link_one_way.as_millis()
            ),
            Workload::RpcStream64
            | Workload::RpcStream4k
            | Workload::RpcUnary1
            | Workload::RpcUnary64 => crate::rpc::describe(self, &p.rpc),
            Workload::SessionsIdle | Workload::SessionsFleet | Workload::SessionsChurn => {
                crate::sessions::describe(self, &p.sessions)
            }
        }
    }
}

/// The numbers of one measurement. (JSON writes a non-finite number as `null`; reading maps
/// `null` back to NaN.)
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// Values in the order of [`Workload::metrics`].
    #[serde(deserialize_with = "nan_vec")]
    pub metrics: Vec<f64>,
    /// Process CPU seconds (user + sys) during the measurement.
    #[serde(deserialize_with = "nan")]
    pub cpu_s: f64,
    /// `cpu_s` divided by the work done, in [`Workload::cpu_unit`].
    #[serde(deserialize_with = "nan")]
    pub cpu_per_unit: f64,
    /// Wall-clock seconds of the measured part.
    #[serde(deserialize_with = "nan")]
    pub elapsed_s: f64,
}

fn nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

fn nan_vec<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    let values = Vec::<Option<f64>>::deserialize(d)?;
    Ok(values.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

// ---------------------------------------------------------------------------------------------
// Server side

/// Serves every stream the peer opens until the connection ends. Per-stream failures are sent
/// to `errors` so the client side can fail fast instead of waiting for its timeout.
pub async fn serve(
    workload: Workload,
    mut acceptor: Box<dyn Acceptor>,
    errors: mpsc::UnboundedSender<String>,
) -> io::Result<()> {
    while let Some(stream) = acceptor.accept().await? {
        let errors = errors.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(workload, stream).await {
                let _ = errors.send(format!("server stream: {e}"));
            }
        });
    }
    Ok(())
}

async fn handle(workload: Workload, mut stream: BoxStream) -> io::Result<()> {
    match workload {
        Workload::Bulk1 | Workload::Bulk100 | Workload::LongLink => sink(stream, false).await,
        Workload::Msgs => sink(stream, true).await,
        Workload::Pingpong | Workload::OpenCloseSeq | Workload::OpenClose64 => echo(stream).await,
        Workload::IdleStreams => idle(stream).await,
        Workload::RpcStream64
        | Workload::RpcStream4k
        | Workload::RpcUnary1
        | Workload::RpcUnary64 => Err(io::Error::other("rpc workloads have no byte streams")),
        Workload::SessionsIdle | Workload::SessionsFleet | Workload::SessionsChurn => Err(
            io::Error::other("sessions workloads run in the sessions module"),
        ),
        Workload::LatencyUnderLoad => {
            // The first byte says what the stream is for.
            let mut tag = [0u8; 1];
            stream.read_exact(&mut tag).await?;
            if tag[0] == b'P' {
                echo(stream).await
            } else {
                sink_yielding(stream).await
            }
        }
    }
}

/// Reads until EOF, then answers with the byte count (or parsed message count).
async fn sink(mut stream: BoxStream, parse_msgs: bool) -> io::Result<()> {
    let mut buf = vec![0u8; WRITE_SIZE];
    let mut bytes = 0u64;
    let mut parser = MsgParser::default();
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        if parse_msgs {
            parser.feed(&buf[..n])?;
        }
    }
    let ack = if parse_msgs { parser.finish()? } else { bytes };
    stream.write_all(&ack.to_be_bytes()).await?;
    stream.shutdown().await
}

/// [`sink`] for latency-under-load: yields to the scheduler after every read, so that on a
/// single-threaded runtime the echo task is not starved by the runtime itself (the point is
/// the transport's queueing, not tokio's cooperative budget).
async fn sink_yielding(mut stream: BoxStream) -> io::Result<()> {
    let mut buf = vec![0u8; WRITE_SIZE];
    let mut bytes = 0u64;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        tokio::task::yield_now().await;
    }
    stream.write_all(&bytes.to_be_bytes()).await?;
    stream.shutdown().await
}

/// Writes back whatever it reads, until EOF.
async fn echo(mut stream: BoxStream) -> io::Result<()> {
    // Echoed messages are PING_SIZE bytes: a small buffer in the task itself, so that a
    // stream's echo costs no heap allocation (a zeroed 16 KiB one per stream was 15 % of the
    // open-close profile, for every implementation alike, through malloc, page faults and trims).
    let mut buf = [0u8; 2 * KIB];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        stream.write_all(&buf[..n]).await?;
        stream.flush().await?;
    }
    stream.shutdown().await
}

/// Echoes one byte, then holds the stream open until EOF with no buffer of its own.
async fn idle(mut stream: BoxStream) -> io::Result<()> {
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).await?;
    stream.write_all(&byte).await?;
    stream.flush().await?;
    while stream.read(&mut byte).await? != 0 {}
    stream.shutdown().await
}

/// Incremental parser of `u32 big-endian length + payload` messages.
#[derive(Default)]
struct MsgParser {
    partial: Vec<u8>,
    count: u64,
}

impl MsgParser {
    const MAX_LEN: usize = MIB;

    fn length(header: &[u8]) -> io::Result<usize> {
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > Self::MAX_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("msgs: bad length {len}"),
            ));
        }
        Ok(len)
    }

    fn feed(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.partial.is_empty() {
                // Whole messages straight from the read buffer.
                if data.len() >= 4 {
                    let len = Self::length(data)?;
                    if data.len() >= 4 + len {
                        self.count += 1;
                        data = &data[4 + len..];
                        continue;
                    }
                }
                self.partial.extend_from_slice(data);
                return Ok(());
            }
            // Complete the message split across reads.
            if self.partial.len() < 4 {
                let take = (4 - self.partial.len()).min(data.len());
                self.partial.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.partial.len() < 4 {
                    return Ok(());
                }
            }
            let len = Self::length(&self.partial)?;
            let take = (4 + len - self.partial.len()).min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial.len() == 4 + len {
                self.count += 1;
                self.partial.clear();
            }
        }
        Ok(())
    }

    fn finish(self) -> io::Result<u64> {
        if self.partial.is_empty() {
            Ok(self.count)
        } else {
            Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "msgs: stream ended inside a message",
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Client side

/// Runs the client side of `workload` over an established connection and measures it.
pub async fn run_client(
    workload: Workload,
    p: &Params,
    opener: Arc<dyn Opener>,
    cpu: CpuMeter,
) -> io::Result<Sample> {
    match workload {
        Workload::Bulk1 => bulk(opener, 1, p.bulk1_bytes, None, cpu).await,
        Workload::Bulk100 => bulk(opener, p.bulk100_streams, p.bulk100_bytes, None, cpu).await,
        Workload::LongLink => {
            let deadline = Instant::now() + p.long_link_max_time;
            bulk(opener, 1, p.long_link_bytes, Some(deadline), cpu).await
        }
        Workload::Pingpong => pingpong(opener, p.pingpong_rounds, cpu).await,
        Workload::Msgs => msgs(opener, p.msgs, cpu).await,
        Workload::OpenCloseSeq => open_close(opener, p.open_close, 1, cpu).await,
        Workload::OpenClose64 => open_close(opener, p.open_close, p.open_close_inflight, cpu).await,
        Workload::IdleStreams => idle_streams(opener, p.idle_streams, cpu).await,
        Workload::LatencyUnderLoad => latency_under_load(opener, p, cpu).await,
        Workload::RpcStream64
        | Workload::RpcStream4k
        | Workload::RpcUnary1
        | Workload::RpcUnary64 => Err(io::Error::other("rpc workloads run in the rpc module")),
        Workload::SessionsIdle | Workload::SessionsFleet | Workload::SessionsChurn => Err(
            io::Error::other("sessions workloads run in the sessions module"),
        ),
    }
}

/// Start of a measured section.
struct Meter {
    cpu: CpuMeter,
    cpu0: f64,
    t0: Instant,
}

impl Meter {
    fn start(cpu: CpuMeter) -> Self {
        Meter {
            cpu0: cpu.now(),
            cpu,
            t0: Instant::now(),
        }
    }

    /// (elapsed seconds, CPU seconds) so far.
    fn stop(&self) -> (f64, f64) {
        (self.t0.elapsed().as_secs_f64(), self.cpu.now() - self.cpu0)
    }
}

fn sample(metrics: Vec<f64>, (elapsed_s, cpu_s): (f64, f64), units: f64) -> Sample {
    Sample {
        metrics,
        cpu_s,
        cpu_per_unit: cpu_s / units,
        elapsed_s,
    }
}

fn mismatch(what: &str, got: u64, want: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{what}: peer acknowledged {got}, expected {want}"),
    )
}

/// After our FIN: reads the peer's 8-byte acknowledgement and its FIN.
async fn read_ack(stream: &mut BoxStream) -> io::Result<u64> {
    let mut ack = [0u8; 8];
    stream.read_exact(&mut ack).await?;
    let mut extra = [0u8; 1];
    if stream.read(&mut extra).await? != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "data after acknowledgement",
        ));
    }
    Ok(u64::from_be_bytes(ack))
}

/// Sends `bytes` (or fewer if `deadline` passes first) on a new stream and waits for the
/// acknowledgement; returns the bytes sent.
async fn send_bulk(
    opener: Arc<dyn Opener>,
    bytes: u64,
    deadline: Option<Instant>,
) -> io::Result<u64> {
    let mut stream = opener.open().await?;
    let buf = vec![0x5au8; WRITE_SIZE];
    let mut sent = 0;
    while sent < bytes && deadline.is_none_or(|d| Instant::now() < d) {
        let n = (bytes - sent).min(WRITE_SIZE as u64) as usize;
        stream.write_all(&buf[..n]).await?;
        sent += n as u64;
    }
    stream.shutdown().await?;
    let got = read_ack(&mut stream).await?;
    if got != sent {
        return Err(mismatch("bulk", got, sent));
    }
    Ok(sent)
}

async fn bulk(
    opener: Arc<dyn Opener>,
    streams: usize,
    bytes_each: u64,
    deadline: Option<Instant>,
    cpu: CpuMeter,
) -> io::Result<Sample> {
    let meter = Meter::start(cpu);
    let total = if streams == 1 {
        send_bulk(opener, bytes_each, deadline).await?
    } else {
        let mut tasks = JoinSet::new();
        for _ in 0..streams {
            tasks.spawn(send_bulk(opener.clone(), bytes_each, deadline));
        }
        join_all(tasks).await?.into_iter().sum()
    };
    let measured = meter.stop();
    let total = total as f64;
    let mibs = total / MIB as f64 / measured.0;
    Ok(sample(vec![mibs], measured, total / GIB))
}

/// Waits for every task; the first error wins.
async fn join_all<T: 'static>(mut tasks: JoinSet<io::Result<T>>) -> io::Result<Vec<T>> {
    let mut out = Vec::with_capacity(tasks.len());
    while let Some(joined) = tasks.join_next().await {
        out.push(joined.map_err(io::Error::other)??);
    }
    Ok(out)
}

/// `rounds` timed 64-byte round trips (after `warmup` untimed ones), stopping early once
/// `deadline` has passed; latencies in ns.
async fn ping_rounds(
    stream: &mut BoxStream,
    warmup: usize,
    rounds: usize,
    deadline: Option<Instant>,
) -> io::Result<Vec<u64>> {
    let mut request = [0u8; PING_SIZE];
    let mut response = [0u8; PING_SIZE];
    let mut latencies = Vec::with_capacity(rounds);
    for i in 0..warmup + rounds {
        if i > warmup && deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        request[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let t0 = Instant::now();
        stream.write_all(&request).await?;
        stream.flush().await?;
        stream.read_exact(&mut response).await?;
        let ns = t0.elapsed().as_nanos() as u64;
        if response != request {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "bad echo"));
        }
        if i >= warmup {
            latencies.push(ns);
        }
    }
    Ok(latencies)
}

/// Closes our side and waits for the peer's FIN.
async fn finish_echo(stream: &mut BoxStream) -> io::Result<()> {
    stream.shutdown().await?;
    let mut rest = [0u8; 16];
    if stream.read(&mut rest).await? != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "data after echo",
        ));
    }
    Ok(())
}

/// (p50, p99) in microseconds, nearest-rank.
pub fn percentiles(mut ns: Vec<u64>) -> (f64, f64) {
    ns.sort_unstable();
    let at = |q: f64| {
        let rank = ((q * ns.len() as f64).ceil() as usize).clamp(1, ns.len());
        ns[rank - 1] as f64 / 1_000.0
    };
    (at(0.50), at(0.99))
}

async fn pingpong(opener: Arc<dyn Opener>, rounds: usize, cpu: CpuMeter) -> io::Result<Sample> {
    let mut stream = opener.open().await?;
    let warmup = (rounds / 20).max(50);
    let _ = ping_rounds(&mut stream, warmup, 0, None).await?;
    let meter = Meter::start(cpu);
    let latencies = ping_rounds(&mut stream, 0, rounds, None).await?;
    let measured = meter.stop();
    finish_echo(&mut stream).await?;
    let (p50, p99) = percentiles(latencies);
    Ok(sample(vec![p50, p99], measured, rounds as f64 / 1e6))
}

async fn msgs(opener: Arc<dyn Opener>, count: usize, cpu: CpuMeter) -> io::Result<Sample> {
    let meter = Meter::start(cpu);
    let mut stream = opener.open().await?;
    let mut message = [0x33u8; 4 + MSG_PAYLOAD];
    message[..4].copy_from_slice(&(MSG_PAYLOAD as u32).to_be_bytes());
    for _ in 0..count {
        // One write call per message, length prefix included.
        stream.write_all(&message).await?;
    }
    stream.shutdown().await?;
    let got = read_ack(&mut stream).await?;
    let measured = meter.stop();
    if got != count as u64 {
        return Err(mismatch("msgs", got, count as u64));
    }
    Ok(sample(
        vec![count as f64 / measured.0],
        measured,
        count as f64 / 1e6,
    ))
}

/// One stream: open, 64 bytes echoed, both sides closed.
async fn open_echo_close(opener: &dyn Opener) -> io::Result<()> {
    let mut stream = opener.open().await?;
    let request = [0x42u8; PING_SIZE];
    stream.write_all(&request).await?;
    stream.shutdown().await?;
    let mut response = [0u8; PING_SIZE];
    stream.read_exact(&mut response).await?;
    let mut rest = [0u8; 1];
    if response != request || stream.read(&mut rest).await? != 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad echo"));
    }
    Ok(())
}

async fn open_close(
    opener: Arc<dyn Opener>,
    count: usize,
    inflight: usize,
    cpu: CpuMeter,
) -> io::Result<Sample> {
    let meter = Meter::start(cpu);
    if inflight <= 1 {
        for _ in 0..count {
            open_echo_close(&*opener).await?;
        }
    } else {
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        for _ in 0..inflight.min(count) {
            let (opener, next) = (opener.clone(), next.clone());
            tasks.spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    open_echo_close(&*opener).await?;
                }
                Ok(())
            });
        }
        join_all(tasks).await?;
    }
    let measured = meter.stop();
    Ok(sample(
        vec![count as f64 / measured.0],
        measured,
        count as f64 / 1e6,
    ))
}

async fn idle_streams(opener: Arc<dyn Opener>, count: usize, cpu: CpuMeter) -> io::Result<Sample> {
    // tcp-nconn holds two descriptors per stream (both ends in this process): stay under the
    // open-files limit, for every implementation alike (the figure is per stream).
    let count = match sys::open_files_limit() {
        Some(limit) if 2 * count + 256 > limit => (limit.saturating_sub(256)) / 2,
        _ => count,
    };
    let rss0 = sys::rss_bytes().ok_or_else(|| io::Error::other("no /proc/self/status"))?;
    let meter = Meter::start(cpu);
    let mut streams = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = opener.open().await?;
        stream.write_all(&[1]).await?;
        stream.flush().await?;
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await?;
        streams.push(stream);
    }
    let measured = meter.stop();
    // Give the server side a moment to settle its last accepted streams.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let rss1 = sys::rss_bytes().ok_or_else(|| io::Error::other("no /proc/self/status"))?;
    // `streams` (and the vector's own 16 B per entry, the same for everyone) is still alive here.
    let per_stream = (rss1 as f64 - rss0 as f64) / count as f64;
    let out = sample(
        vec![per_stream, count as f64 / measured.0],
        measured,
        count as f64 / 1e6,
    );
    drop(streams);
    Ok(out)
}

async fn latency_under_load(
    opener: Arc<dyn Opener>,
    p: &Params,
    cpu: CpuMeter,
) -> io::Result<Sample> {
    let mut ping = opener.open().await?;
    ping.write_all(b"P").await?;
    let stop = Arc::new(AtomicBool::new(false));
    let meter = Meter::start(cpu);
    let mut tasks = JoinSet::new();
    for _ in 0..p.loaded_bulk_streams {
        let (opener, stop) = (opener.clone(), stop.clone());
        tasks.spawn(async move {
            let mut stream = opener.open().await?;
            stream.write_all(b"B").await?;
            let buf = vec![0x5au8; WRITE_SIZE];
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                stream.write_all(&buf).await?;
                sent += buf.len() as u64;
                // Same reason as in `sink_yielding`.
                tokio::task::yield_now().await;
            }
            stream.shutdown().await?;
            let got = read_ack(&mut stream).await?;
            if got != sent {
                return Err(mismatch("bulk", got, sent));
            }
            Ok(sent)
        });
    }
    let deadline = Instant::now() + p.loaded_max_time;
    let result = ping_rounds(&mut ping, 10, p.loaded_rounds, Some(deadline)).await;
    stop.store(true, Ordering::Relaxed);
    let latencies = result?;
    let round_trips = latencies.len();
    finish_echo(&mut ping).await?;
    let sent: u64 = join_all(tasks).await?.into_iter().sum();
    let measured = meter.stop();
    let (p50, p99) = percentiles(latencies);
    let mibs = sent as f64 / MIB as f64 / measured.0;
    Ok(sample(
        vec![p50, p99, mibs, round_trips as f64],
        measured,
        sent as f64 / GIB,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_handles_any_split() {
        let mut stream = Vec::new();
        for i in 0..50u8 {
            let payload = vec![i; usize::from(i) % 7 * 10];
            stream.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            stream.extend_from_slice(&payload);
        }
        for chunk in [1, 2, 3, 5, 13, 68, 1000] {
            let mut p = MsgParser::default();
            for piece in stream.chunks(chunk) {
                p.feed(piece).unwrap();
            }
            assert_eq!(p.finish().unwrap(), 50, "chunk {chunk}");
        }
    }

    #[test]
    fn sample_survives_nan() {
        let s = Sample {
            metrics: vec![1.0, f64::NAN],
            cpu_s: f64::NAN,
            cpu_per_unit: 2.0,
            elapsed_s: 3.0,
        };
        let back: Sample = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert!(back.metrics[1].is_nan() && back.cpu_s.is_nan());
        assert_eq!((back.metrics[0], back.cpu_per_unit), (1.0, 2.0));
    }

    #[test]
    fn percentiles_nearest_rank() {
        let (p50, p99) = percentiles((1..=100).map(|x| x * 1000).collect());
        assert_eq!((p50, p99), (50.0, 99.0));
    }
}
