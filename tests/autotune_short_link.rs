//! Spec §7.4, short links (RTT under 1 ms): a stream's window grows while the stream has the
//! link to itself, and stays at the initial window while other streams' DATA shares it, so
//! the bytes queued ahead of another stream's message stay bounded by the initial windows.
//! Two protocol cores on a virtual 40 µs link (tests/support/pair.rs).

mod support;

use std::{task::Poll, time::Duration};

use braid::Config;
use support::pair::{waker, End, Pair};

const HALF_RTT: Duration = Duration::from_micros(20);

fn half_rtt(p: &mut Pair) {
    p.half_round_trip(HALF_RTT);
}

/// Bulk streams from the client over the short link, with a reader that keeps up.
struct Transfer {
    p: Pair,
    chunk: Vec<u8>,
    buf: Vec<u8>,
}

impl Transfer {
    fn start() -> Transfer {
        let mut p = Pair::new(Config::default(), Config::default());
        for _ in 0..4 {
            half_rtt(&mut p);
        }
        let rtt = p.core_ref(End::Server).stats().rtt.expect("RTT measured");
        assert!(rtt < Duration::from_millis(1), "a short link: {rtt:?}");
        Transfer {
            p,
            chunk: vec![7u8; 64 * 1024],
            buf: vec![0u8; 1 << 20],
        }
    }

    fn open(&mut self) -> u32 {
        let now = self.p.now();
        let id = match self.p.core(End::Client).poll_open(now, waker()) {
            Poll::Ready(Ok(id)) => id,
            other => panic!("open: {other:?}"),
        };
        // A first byte, so the server sees the stream and accepts it.
        assert!(matches!(
            self.p.core(End::Client).poll_write(id, waker(), b"x"),
            Poll::Ready(Ok(1))
        ));
        half_rtt(&mut self.p);
        assert!(matches!(self.p.poll_accept(End::Server), Poll::Ready(Ok(got)) if got == id));
        id
    }

    /// Each of `ids` writes what its credit allows, the link moves half an RTT, then the
    /// reader drains every stream completely.
    fn step(&mut self, ids: &[u32]) {
        self.step_with(ids, ids);
    }

    /// Like [`Transfer::step`], with the streams that write and those read given apart.
    fn step_with(&mut self, writers: &[u32], readers: &[u32]) {
        for &id in writers {
            while let Poll::Ready(Ok(n)) =
                self.p
                    .core(End::Client)
                    .poll_write(id, waker(), &self.chunk)
            {
                if n == 0 {
                    break;
                }
            }
        }
        half_rtt(&mut self.p);
        for &id in readers {
            while let Poll::Ready(Ok(n)) =
                self.p
                    .core(End::Server)
                    .poll_read(id, waker(), &mut self.buf)
            {
                if n == 0 {
                    break;
                }
            }
        }
    }

    fn window(&self, id: u32) -> u32 {
        self.p.core_ref(End::Server).stream_recv(id).unwrap().window
    }
}

#[test]
fn a_lone_stream_on_a_short_link_grows_its_window() {
    let initial = Config::default().initial_stream_window;
    let mut t = Transfer::start();
    let id = t.open();
    for _ in 0..20 {
        t.step(&[id]);
    }
    assert!(
        t.window(id) >= 8 * initial,
        "window {} after 10 RTTs alone",
        t.window(id)
    );
}

#[test]
fn streams_opened_and_closed_without_payload_do_not_share_the_link() {
    // Spec §7.4 counts DATA with a payload: empty SYN/FIN frames of short-lived streams
    // (opened and closed with nothing sent) leave a bulk stream alone on the link.
    let initial = Config::default().initial_stream_window;
    let mut t = Transfer::start();
    let id = t.open();
    for _ in 0..20 {
        let now = t.p.now();
        let Poll::Ready(Ok(empty)) = t.p.core(End::Client).poll_open(now, waker()) else {
            panic!("open");
        };
        t.p.core(End::Client).finish(empty).unwrap();
        t.step(&[id]);
    }
    assert!(t.window(id) >= 8 * initial, "window {}", t.window(id));
}

#[test]
fn streams_sharing_a_short_link_keep_their_initial_windows() {
    let initial = Config::default().initial_stream_window;
    let mut t = Transfer::start();
    let ids = [t.open(), t.open()];
    let mut delivered = 0u64;
    for _ in 0..20 {
        let before = t.p.core_ref(End::Server).stats().bytes_received;
        t.step(&ids);
        delivered += t.p.core_ref(End::Server).stats().bytes_received - before;
    }
    for id in ids {
        assert_eq!(t.window(id), initial, "stream {id}");
    }
    // Not starved either: each stream moved about a window per round trip.
    assert!(
        delivered >= 2 * 10 * u64::from(initial) / 2,
        "{delivered} bytes"
    );
}

#[test]
fn a_stream_grows_once_the_other_stream_has_gone_quiet() {
    let initial = Config::default().initial_stream_window;
    let mut t = Transfer::start();
    let (bulk, other) = (t.open(), t.open());
    for _ in 0..10 {
        t.step(&[bulk, other]);
    }
    assert_eq!(t.window(bulk), initial);
    // The other stream stops writing and the reader takes what it had queued; after 100 ms
    // of quiet the bulk stream has the link.
    for _ in 0..4 {
        t.step_with(&[bulk], &[bulk, other]);
    }
    t.p.advance(Duration::from_millis(101));
    for _ in 0..20 {
        t.step(&[bulk]);
    }
    assert!(t.window(bulk) >= 8 * initial, "window {}", t.window(bulk));
    assert_eq!(t.window(other), initial);
}
