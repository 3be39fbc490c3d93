//! The command line: subcommands, flags, and their translation into tunnel options.
// The flags' doc comments are clap's help text, written for a terminal: `[host:]port` there
// is a syntax hint, not an intra-doc link.
#![allow(rustdoc::broken_intra_doc_links)]

use std::{fmt, path::PathBuf, str::FromStr, time::Duration};

use braid::Config;
use clap::{Args, Parser, Subcommand};

use crate::rules::Rule;

/// Forwards TCP connections over one multiplexed braid connection.
#[derive(Debug, Parser)]
#[command(name = "braid-tunnel", version)]
pub struct Cli {
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, global = true, default_value = "info")]
    pub log_level: tracing::Level,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The two ends of a tunnel.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Accept tunnel clients and dial the targets they ask for.
    Server(ServerArgs),
    /// Listen locally and forward each connection through the tunnel server.
    Client(ClientArgs),
}

/// `braid-tunnel server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to accept tunnel clients on.
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// File holding the shared token (at least 16 bytes; surrounding whitespace ignored).
    #[arg(long, value_name = "FILE")]
    pub token_file: PathBuf,
    /// PEM certificate chain: serve the tunnel over TLS (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Only these targets may be dialed (host:port, exact match; repeatable). Default: any.
    #[arg(long, value_name = "HOST:PORT")]
    pub allow: Vec<String>,
    /// Let clients ask this server to listen for them (--reverse on the client).
    #[arg(long)]
    pub allow_reverse: bool,
    /// Session limits and logging.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `braid-tunnel client`.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The tunnel server, host:port.
    #[arg(long, value_name = "ADDR")]
    pub server: String,
    /// File holding the shared token.
    #[arg(long, value_name = "FILE")]
    pub token_file: PathBuf,
    /// Listen on LOCAL ([host:]port, host defaults to 127.0.0.1); the server dials REMOTE
    /// (host:port) for each connection. Repeatable.
    #[arg(long, value_name = "LOCAL=REMOTE")]
    pub forward: Vec<Rule>,
    /// The server listens on SERVER ([host:]port) and this client dials LOCAL (host:port)
    /// for each connection. Repeatable; the server needs --allow-reverse.
    #[arg(long, value_name = "SERVER=LOCAL")]
    pub reverse: Vec<Rule>,
    /// PEM CA certificate(s): connect with TLS and verify the server against them.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Name to verify the server certificate against (default: the host of --server).
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    pub tls_server_name: Option<String>,
    /// Seconds a new local connection waits for the tunnel while it is down.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub wait_secs: u64,
    /// Longest delay between reconnect attempts, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub max_backoff_secs: u64,
    /// Session limits and logging.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Flags both ends share: braid's limits (defaults are the library's) and the status line.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Streams open at once, each direction (braid max_inbound/outbound_streams).
    #[arg(long, value_name = "N", default_value_t = Config::default().max_inbound_streams)]
    pub max_streams: u32,
    /// Peer-opened streams waiting to be accepted (braid accept_backlog).
    #[arg(long, value_name = "N", default_value_t = Config::default().accept_backlog)]
    pub accept_backlog: u32,
    /// Receive window a stream starts with (braid initial_stream_window).
    #[arg(long, value_name = "BYTES", default_value_t = ByteSize(Config::default().initial_stream_window))]
    pub initial_stream_window: ByteSize,
    /// Largest receive window of one stream (braid max_stream_window).
    #[arg(long, value_name = "BYTES", default_value_t = ByteSize(Config::default().max_stream_window))]
    pub stream_window: ByteSize,
    /// Receive window of the whole session, the bound on memory buffered per tunnel; at
    /// least 16 × --initial-stream-window (braid session_window).
    #[arg(long, value_name = "BYTES", default_value_t = ByteSize(Config::default().session_window))]
    pub session_window: ByteSize,
    /// Seconds between keepalive PINGs on a quiet tunnel; 0 turns keepalive off.
    #[arg(long, value_name = "SECS", default_value_t = Config::default().keepalive_interval.map_or(0, |d| d.as_secs()))]
    pub keepalive_secs: u64,
    /// Seconds a keepalive PING may go unanswered before the tunnel counts as lost.
    #[arg(long, value_name = "SECS", default_value_t = Config::default().keepalive_timeout.as_secs())]
    pub keepalive_timeout_secs: u64,
    /// Largest DATA frame payload sent and accepted (braid max_frame_payload).
    #[arg(long, value_name = "BYTES", default_value_t = ByteSize(Config::default().max_frame_payload))]
    pub max_frame_payload: ByteSize,
    /// Bytes one stream buffers for sending before its writer waits (braid
    /// stream_send_buffer).
    #[arg(long, value_name = "BYTES", default_value_t = ByteSize(Config::default().stream_send_buffer))]
    pub stream_send_buffer: ByteSize,
    /// Bytes all streams of a tunnel buffer for sending together (braid session_send_buffer).
    #[arg(long, value_name = "BYTES", default_value_t = ByteSize(Config::default().session_send_buffer))]
    pub session_send_buffer: ByteSize,
    /// Seconds an opened stream may wait for the other end's answer (braid open_timeout).
    #[arg(long, value_name = "SECS", default_value_t = Config::default().open_timeout.as_secs())]
    pub open_timeout_secs: u64,
    /// Seconds the tunnel connection may take no bytes while some wait to be written before
    /// it counts as lost (braid write_timeout).
    #[arg(long, value_name = "SECS", default_value_t = Config::default().write_timeout.as_secs())]
    pub write_timeout_secs: u64,
    /// Seconds between status lines; 0 turns them off.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub status_secs: u64,
}

impl CommonArgs {
    /// The braid config these flags describe, validated.
    pub fn config(&self) -> Result<Config, braid::ConfigError> {
        let config = Config::default()
            .with_max_inbound_streams(self.max_streams)
            .with_max_outbound_streams(self.max_streams)
            .with_accept_backlog(self.accept_backlog)
            .with_initial_stream_window(self.initial_stream_window.0)
            .with_max_stream_window(self.stream_window.0)
            .with_session_window(self.session_window.0)
            .with_keepalive_interval(
                (self.keepalive_secs > 0).then(|| Duration::from_secs(self.keepalive_secs)),
            )
            .with_keepalive_timeout(Duration::from_secs(self.keepalive_timeout_secs))
            .with_max_frame_payload(self.max_frame_payload.0)
            .with_stream_send_buffer(self.stream_send_buffer.0)
            .with_session_send_buffer(self.session_send_buffer.0)
            .with_open_timeout(Duration::from_secs(self.open_timeout_secs))
            .with_write_timeout(Duration::from_secs(self.write_timeout_secs));
        config.validate()?;
        Ok(config)
    }

    /// The status interval, `None` when off.
    pub fn status_interval(&self) -> Option<Duration> {
        (self.status_secs > 0).then(|| Duration::from_secs(self.status_secs))
    }
}

/// A byte count on the command line: `65536`, `64KiB`, `4MiB`, `1GiB` (`K`/`M`/`G` too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u32);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<ByteSize, String> {
        let s = s.trim();
        let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(digits);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("`{s}`: expected a number of bytes like 65536 or 4MiB"))?;
        let shift = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            _ => return Err(format!("`{s}`: unknown unit (use KiB, MiB or GiB)")),
        };
        number
            .checked_mul(1 << shift)
            .and_then(|n| u32::try_from(n).ok())
            .map(ByteSize)
            .ok_or_else(|| format!("`{s}` is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            n if n >= 1 << 20 && n % (1 << 20) == 0 => write!(f, "{}MiB", n >> 20),
            n if n >= 1 << 10 && n % (1 << 10) == 0 => write!(f, "{}KiB", n >> 10),
            n => write!(f, "{n}"),
        }
    }
}
