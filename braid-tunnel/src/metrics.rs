//! Counters shared by every relay of one process, and the periodic one-line status.

use std::{
    fmt,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use braid::Session;

/// Live counters; cheap to update from any task.
#[derive(Debug, Default)]
pub struct Counters {
    /// Forwarded TCP connections currently relaying.
    pub active: AtomicU64,
    /// Forwarded TCP connections started since launch.
    pub opened: AtomicU64,
    /// Forwarded connections that ended with an error (reset, refused, tunnel lost).
    pub failed: AtomicU64,
    /// Bytes read from forwarded sockets and sent into the tunnel.
    pub from_tcp: AtomicU64,
    /// Bytes received from the tunnel and written to forwarded sockets.
    pub to_tcp: AtomicU64,
    /// Tunnel sessions established since launch (the client counts reconnects with it).
    pub sessions: AtomicU64,
}

/// Marks one forwarded connection active for as long as it lives.
#[derive(Debug)]
pub struct ActiveGuard<'a>(&'a Counters);

impl Counters {
    /// Counts a new forwarded connection; it stays "active" until the guard drops.
    pub fn start(&self) -> ActiveGuard<'_> {
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(self)
    }

    /// Counts a forwarded connection that ended with an error.
    pub fn fail(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One status line's worth of numbers.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Tunnel sessions up right now.
    pub tunnels_up: usize,
    /// Braid streams open over all those sessions.
    pub open_streams: usize,
    /// Forwarded connections relaying now.
    pub active: u64,
    /// Forwarded connections that failed since launch.
    pub failed: u64,
    /// Bytes sent into the tunnel (socket → tunnel), since launch.
    pub bytes_out: u64,
    /// Bytes received from the tunnel (tunnel → socket), since launch.
    pub bytes_in: u64,
    /// Latest round-trip time, when measured.
    pub rtt: Option<Duration>,
}

impl Snapshot {
    /// Reads the counters and adds up the given sessions' stats.
    pub fn take(counters: &Counters, sessions: &[Session]) -> Snapshot {
        let mut snap = Snapshot {
            active: counters.active.load(Ordering::Relaxed),
            failed: counters.failed.load(Ordering::Relaxed),
            bytes_out: counters.from_tcp.load(Ordering::Relaxed),
            bytes_in: counters.to_tcp.load(Ordering::Relaxed),
            ..Snapshot::default()
        };
        for session in sessions.iter().filter(|s| s.closed_reason().is_none()) {
            let stats = session.stats();
            snap.tunnels_up += 1;
            snap.open_streams += stats.open_streams;
            snap.rtt = snap.rtt.max(stats.rtt);
        }
        snap
    }
}

impl fmt::Display for Snapshot {
    /// `streams 3, connections 2 (0 failed), sent 1.2 MiB, received 30.0 KiB, rtt 0.21 ms`:
    /// "sent" went from forwarded sockets into the tunnel, "received" the other way.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "streams {}, connections {} ({} failed), sent {}, received {}, rtt {}",
            self.open_streams,
            self.active,
            self.failed,
            Bytes(self.bytes_out),
            Bytes(self.bytes_in),
            match self.rtt {
                Some(rtt) => format!("{:.2} ms", rtt.as_secs_f64() * 1e3),
                None => "-".to_string(),
            }
        )
    }
}

/// A byte count printed with a binary unit.
#[derive(Debug, Clone, Copy)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut value = self.0 as f64;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        if unit == 0 {
            write!(f, "{} B", self.0)
        } else {
            write!(f, "{value:.1} {}", UNITS[unit])
        }
    }
}

/// Logs a status line every `interval` (never when it is `None`): RTTs measured afresh on
/// the sessions `sessions()` gives (a PING each, at most 2 s), then the line `line` makes of
/// the snapshot. Run it in a task of its own: the PINGs must not hold up anything else.
pub async fn log_status_every(
    interval: Option<Duration>,
    counters: &Counters,
    sessions: impl Fn() -> Vec<Session>,
    line: impl Fn(&Snapshot) -> String,
) {
    let Some(period) = interval else {
        return;
    };
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let sessions = sessions();
        refresh_rtt(&sessions, Duration::from_secs(2)).await;
        tracing::info!("status: {}", line(&Snapshot::take(counters, &sessions)));
    }
}

/// Measures a fresh RTT on each session (a PING each), bounded by `within`.
pub async fn refresh_rtt(sessions: &[Session], within: Duration) {
    let pings = sessions
        .iter()
        .map(|s| tokio::time::timeout(within, s.ping()));
    let _ = futures::future::join_all(pings).await;
}
