//! How far a large write copied from the caller's buffer queues ahead of the wire
//! (`LARGE_COPY_AHEAD` in src/proto/stream_ops.rs): one 64 KiB quantum while the stream's
//! credit would let the queued bytes go at once, so the writer's next write finds the queue
//! empty and can go straight to the transport (write-through); the whole send buffer when the
//! bytes must wait for the peer's credit anyway. Two protocol cores, no IO.

mod support;

use std::{sync::atomic::Ordering::SeqCst, task::Poll};

use braid::Config;
use support::pair::{counting_waker, waker, End, Pair};

const KIB: usize = 1024;

fn open(pair: &mut Pair) -> u32 {
    let now = pair.now();
    match pair.core(End::Client).poll_open(now, waker()) {
        Poll::Ready(Ok(id)) => id,
        other => panic!("open: {other:?}"),
    }
}

/// With credit to spare, a 256 KiB write queues one quantum; the next large write waits
/// until the queue is framed (and is woken then), while small writes still use the whole
/// send buffer. Once the queue is empty, the next large write can go by write-through.
#[test]
fn a_large_write_with_credit_queues_one_quantum() {
    let mut pair = Pair::connected(Config::default());
    let id = open(&mut pair);
    let client = pair.core(End::Client);
    let big = vec![1u8; 256 * KIB];
    assert!(matches!(client.poll_write(id, waker(), &big), Poll::Ready(Ok(n)) if n == 64 * KIB));
    let (writer, wakes) = counting_waker();
    assert!(
        client
            .poll_write(id, &writer, &big[..64 * KIB])
            .is_pending(),
        "a second large write waits for the quantum to be framed"
    );
    assert!(
        matches!(client.poll_write(id, waker(), &big[..8 * KIB]), Poll::Ready(Ok(n)) if n == 8 * KIB),
        "small writes still use the whole send buffer"
    );
    assert!(
        client.take_write_through(id, 64 * KIB, 16 * KIB).is_none(),
        "no write-through behind queued bytes"
    );

    pair.pump(End::Client);
    for w in pair.core(End::Client).take_wakers() {
        w.wake();
    }
    assert!(wakes.load(SeqCst) >= 1, "the waiting writer was not woken");
    let header = pair
        .core(End::Client)
        .take_write_through(id, 64 * KIB, 16 * KIB)
        .expect("an empty queue and credit: write-through");
    assert_eq!(header.len as usize, 64 * KIB);
}

/// Bytes that wait for the peer's credit fill the whole send buffer, as large writes: the
/// writer is accepted exactly the window plus the send buffer, then waits.
#[test]
fn large_writes_without_credit_fill_the_whole_send_buffer() {
    let config = Config::default();
    let (window, send_buf) = (
        config.initial_stream_window as usize,
        config.stream_send_buffer as usize,
    );
    let mut pair = Pair::connected(config);
    let id = open(&mut pair);
    let chunk = vec![2u8; 64 * KIB];
    let mut accepted = 0;
    for _ in 0..1000 {
        match pair.core(End::Client).poll_write(id, waker(), &chunk) {
            Poll::Ready(Ok(n)) => accepted += n,
            Poll::Ready(Err(e)) => panic!("{e}"),
            // Frames what credit allows; the peer doesn't read, so no credit comes back.
            Poll::Pending if pair.pump(End::Client) == 0 => break,
            Poll::Pending => {}
        }
    }
    assert_eq!(accepted, window + send_buf);
    assert_eq!(pair.core_ref(End::Client).stats().send_buffered, send_buf);
}
