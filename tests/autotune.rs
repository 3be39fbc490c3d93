//! Spec §7.4: a stream's receive window grows from the measured RTT when its reader keeps up,
//! up to `max_stream_window`, so one stream fills a long link; and it stays put when the
//! reader is slow. Two protocol cores on a virtual 20 ms link (tests/support/pair.rs).

mod support;

use std::{task::Poll, time::Duration};

use braid::Config;
use support::pair::{waker, End, Pair};

const HALF_RTT: Duration = Duration::from_millis(10);

fn half_rtt(p: &mut Pair) {
    p.half_round_trip(HALF_RTT);
}

/// One bulk stream over a 20 ms virtual link, advanced half a round trip at a time.
struct Transfer {
    p: Pair,
    id: u32,
    accepted: bool,
    chunk: Vec<u8>,
    buf: Vec<u8>,
}

impl Transfer {
    /// Both ends have measured the RTT and the client has opened the stream.
    fn start(config: Config) -> Transfer {
        let mut p = Pair::new(config.clone(), config);
        // Prefaces and the first PINGs cross the 20 ms link: both ends measure the RTT.
        for _ in 0..4 {
            half_rtt(&mut p);
        }
        assert!(p.core_ref(End::Server).stats().rtt >= Some(Duration::from_millis(20)));
        let now = p.now();
        let id = match p.core(End::Client).poll_open(now, waker()) {
            Poll::Ready(Ok(id)) => id,
            other => panic!("open: {other:?}"),
        };
        Transfer {
            p,
            id,
            accepted: false,
            chunk: vec![7u8; 64 * 1024],
            buf: vec![0u8; 1 << 20],
        }
    }

    /// The writer fills what credit allows, the link moves for half an RTT, then the reader
    /// takes up to `read_per_step` bytes. Returns the bytes read.
    fn step(&mut self, read_per_step: usize) -> usize {
        let (p, id) = (&mut self.p, self.id);
        loop {
            while let Poll::Ready(Ok(n)) = p.core(End::Client).poll_write(id, waker(), &self.chunk)
            {
                if n == 0 {
                    break;
                }
            }
            p.settle();
            if p.core_ref(End::Client).stats().send_buffered > 0 {
                break; // out of credit until the peer grants more
            }
        }
        half_rtt(p);
        if !self.accepted {
            self.accepted = matches!(p.poll_accept(End::Server), Poll::Ready(Ok(_)));
        }
        let mut read = 0;
        while read < read_per_step {
            let want = (read_per_step - read).min(self.buf.len());
            match p
                .core(End::Server)
                .poll_read(id, waker(), &mut self.buf[..want])
            {
                Poll::Ready(Ok(n)) if n > 0 => read += n,
                _ => break,
            }
        }
        read
    }

    /// The receiver's window for the stream.
    fn window(&self) -> u32 {
        self.p
            .core_ref(End::Server)
            .stream_recv(self.id)
            .unwrap()
            .window
    }
}

/// The largest window one stream can reach: `max_stream_window`, or the initial window plus
/// the session's whole growth budget if that is less (spec §7.4; the case with the defaults).
fn window_cap(config: &Config) -> u32 {
    let budget = config.session_window - 16 * config.initial_stream_window;
    config
        .max_stream_window
        .min(config.initial_stream_window + budget)
}

/// Runs a bulk transfer for `rtts` round trips; the reader drains `read_per_step` bytes
/// per half round trip. Returns (bytes delivered in the last round trip, final window).
fn run(config: Config, rtts: usize, read_per_step: usize) -> (usize, u32) {
    let mut t = Transfer::start(config);
    let mut last_rtt_bytes = 0;
    for step in 0..rtts * 2 {
        let read = t.step(read_per_step);
        if step >= rtts * 2 - 2 {
            last_rtt_bytes += read;
        }
    }
    (last_rtt_bytes, t.window())
}

#[test]
fn a_finished_stream_gives_its_growth_back() {
    let config = Config::default();
    let mut t = Transfer::start(config.clone());
    for _ in 0..8 {
        t.step(usize::MAX);
    }
    assert_eq!(t.window(), window_cap(&config));
    let server = End::Server;
    assert!(t.p.core_ref(server).window_growth() > 0);
    t.p.core(End::Client).finish(t.id).unwrap();
    // Read to the end: after the EOF the growth is back in the session's budget.
    let mut eof = false;
    for _ in 0..20 {
        t.p.settle();
        half_rtt(&mut t.p);
        match t.p.core(server).poll_read(t.id, waker(), &mut t.buf) {
            Poll::Ready(Ok(0)) => {
                eof = true;
                break;
            }
            Poll::Ready(Ok(_)) | Poll::Pending => {}
            Poll::Ready(Err(e)) => panic!("{e}"),
        }
    }
    assert!(eof, "the stream ends");
    assert_eq!(t.p.core_ref(server).window_growth(), 0);
}

#[test]
fn window_grows_to_the_cap_when_the_reader_keeps_up() {
    let config = Config::default();
    let (per_rtt, window) = run(config.clone(), 12, usize::MAX);
    assert_eq!(window, window_cap(&config));
    // A full window per round trip: the link, not the initial 256 KiB window, is the limit.
    assert!(
        per_rtt as u32 >= window_cap(&config) * 3 / 4,
        "{per_rtt} bytes per RTT"
    );
}

#[test]
fn window_stays_put_when_the_reader_is_slow() {
    let config = Config::default();
    // The reader takes 16 KiB per half round trip: far less than a window per RTT.
    let (_, window) = run(config.clone(), 12, 16 * 1024);
    assert_eq!(window, config.initial_stream_window);
}

#[test]
fn window_reaches_the_cap_within_four_round_trips() {
    // A long link's transfer is over in a few round trips: growth must not take seven
    // doublings (256 KiB -> 32 MiB) to get there.
    let config = Config::default();
    let (_, window) = run(config.clone(), 4, usize::MAX);
    assert_eq!(window, window_cap(&config));
}

#[test]
fn windows_read_in_bursts_jump_to_the_budget_in_two_steps() {
    // The first 256 KiB arrive together and are read at once: the link holds far more, and
    // the window jumps at once, by half of the session's growth budget (one step never takes
    // more, in case this reader stalls next); the next burst takes it to the cap (here the
    // whole budget), not one eightfold step per round trip.
    let config = Config::default();
    let budget = config.session_window - 16 * config.initial_stream_window;
    let mut t = Transfer::start(config.clone());
    t.step(usize::MAX); // the SYN's 256 KiB arrive and are read
    t.step(usize::MAX); // the update leaves
    assert_eq!(t.window(), config.initial_stream_window + budget / 2);
    for _ in 0..2 {
        t.step(usize::MAX);
    }
    assert_eq!(t.window(), window_cap(&config));
}

#[test]
fn a_window_never_grows_past_max_stream_window() {
    // Spec §11 L2: with a cap below the growth budget, the cap binds, however fast the link.
    let config = Config::default().with_max_stream_window(4 << 20);
    let (_, window) = run(config.clone(), 8, usize::MAX);
    assert_eq!(window, 4 << 20);
}
