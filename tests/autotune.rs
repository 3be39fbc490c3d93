//! Spec §7.4: a stream's receive window grows from the measured RTT when its reader keeps up,
//! up to `max_stream_window`, so one stream fills a long link; and it stays put when the
//! reader is slow. Two protocol cores on a virtual 20 ms link (tests/support/pair.rs).

mod support;

use std::{task::Poll, time::Duration};

use braid::Config;
use support::pair::{waker, End, Pair};

const HALF_RTT: Duration = Duration::from_millis(10);

/// One half round trip: both ends transmit, the wire takes `HALF_RTT`, everything arrives.
fn half_rtt(p: &mut Pair) {
    p.settle();
    p.advance(HALF_RTT);
    for end in End::BOTH {
        let n = p.in_flight(end);
        p.deliver(end, n);
    }
}

/// Runs a bulk transfer for `rtts` round trips; the reader drains `read_per_step` bytes
/// per half round trip. Returns (bytes delivered in the last round trip, final window).
fn run(config: Config, rtts: usize, read_per_step: usize) -> (usize, u32) {
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
    let chunk = vec![7u8; 64 * 1024];
    let mut accepted = false;
    let mut buf = vec![0u8; 1 << 20];
    let mut last_rtt_bytes = 0;
    for step in 0..rtts * 2 {
        // The writer keeps the stream's send buffer full; the driver frames what credit allows.
        loop {
            while let Poll::Ready(Ok(n)) = p.core(End::Client).poll_write(id, waker(), &chunk) {
                if n == 0 {
                    break;
                }
            }
            p.settle();
            if p.core_ref(End::Client).stats().send_buffered > 0 {
                break; // out of credit until the peer grants more
            }
        }
        half_rtt(&mut p);
        if !accepted {
            accepted = matches!(p.poll_accept(End::Server), Poll::Ready(Ok(_)));
        }
        let mut read = 0;
        while read < read_per_step {
            let want = (read_per_step - read).min(buf.len());
            match p.core(End::Server).poll_read(id, waker(), &mut buf[..want]) {
                Poll::Ready(Ok(n)) if n > 0 => read += n,
                _ => break,
            }
        }
        if step >= rtts * 2 - 2 {
            last_rtt_bytes += read;
        }
    }
    let window = p.core_ref(End::Server).stream_recv_state(id).unwrap().1;
    (last_rtt_bytes, window)
}

#[test]
fn window_grows_to_the_cap_when_the_reader_keeps_up() {
    let config = Config::default();
    let (per_rtt, window) = run(config.clone(), 12, usize::MAX);
    assert_eq!(window, config.max_stream_window);
    // A full window per round trip: the link, not the initial 256 KiB window, is the limit.
    assert!(
        per_rtt as u32 >= config.max_stream_window * 3 / 4,
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
    assert_eq!(window, config.max_stream_window);
}
