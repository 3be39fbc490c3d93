//! Byte queues for one stream direction: chunks kept without copying when large, small
//! payloads coalesced into one contiguous tail so memory follows bytes, not frame count
//! (spec §12 "data dribble": a flood of 1-byte frames costs bytes, not 1 allocation each).

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

/// Payloads below this are copied into the tail instead of kept as their own `Bytes`, which
/// would also pin the whole read buffer they were split from.
pub(crate) const COPY_BELOW: usize = 4096;

/// A drained queue keeps a tail allocation up to this size for the next small payload. Only
/// queues in use or in the session's [`QueuePool`] hold one: a stream gives its queue back
/// once it is empty, so idle streams still hold no buffer.
const KEEP_TAIL: usize = 512;

/// An ordered queue of bytes.
#[derive(Debug, Default)]
pub(crate) struct ByteQueue {
    chunks: VecDeque<Bytes>,
    tail: BytesMut,
    len: usize,
}

impl ByteQueue {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends owned bytes; small ones are copied into the tail.
    pub(crate) fn push(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        self.len += data.len();
        if data.len() < COPY_BELOW {
            self.tail.extend_from_slice(&data);
        } else {
            self.seal_tail();
            self.chunks.push_back(data);
        }
    }

    /// Appends borrowed bytes (a copy is unavoidable).
    pub(crate) fn push_slice(&mut self, data: &[u8]) {
        self.len += data.len();
        if data.len() >= COPY_BELOW && self.tail.is_empty() {
            self.chunks.push_back(Bytes::copy_from_slice(data));
        } else {
            self.tail.extend_from_slice(data);
        }
    }

    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        }
    }

    /// Takes up to `max` bytes from the front as one `Bytes` (no copy).
    pub(crate) fn pop(&mut self, max: usize) -> Option<Bytes> {
        if self.len == 0 || max == 0 {
            return None;
        }
        let out = match self.chunks.front_mut() {
            Some(front) if front.len() > max => front.split_to(max),
            Some(_) => self.chunks.pop_front().expect("front exists"),
            // The whole tail: hand its allocation over as is (splitting it would allocate
            // the shared header `bytes` needs for a buffer with two owners).
            None if max >= self.tail.len() => std::mem::take(&mut self.tail).freeze(),
            None => self.tail.split_to(max).freeze(),
        };
        self.len -= out.len();
        if self.len == 0 {
            // Release the tail's allocation once idle: idle streams hold no buffer.
            self.tail = BytesMut::new();
        }
        Some(out)
    }

    /// Copies up to `dst.len()` bytes out; returns how many. Copies straight from the
    /// queue's chunks (no `Bytes` made on the way).
    pub(crate) fn read_into(&mut self, dst: &mut [u8]) -> usize {
        let mut n = 0;
        self.take_into(dst.len(), |part| {
            dst[n..n + part.len()].copy_from_slice(part);
            n += part.len();
        })
    }

    /// Hands up to `max` bytes from the front to `sink`, in order, as borrowed slices (no
    /// `Bytes` made on the way); returns how many. A small tail's allocation stays for the
    /// next bytes ([`KEEP_TAIL`]), so a stream trading small messages allocates nothing.
    pub(crate) fn take_into(&mut self, max: usize, mut sink: impl FnMut(&[u8])) -> usize {
        let mut n = 0;
        while n < max && self.len > 0 {
            let want = max - n;
            let taken = match self.chunks.front_mut() {
                Some(front) => {
                    let k = want.min(front.len());
                    sink(&front[..k]);
                    if k == front.len() {
                        self.chunks.pop_front();
                    } else {
                        front.advance(k);
                    }
                    k
                }
                None => {
                    let k = want.min(self.tail.len());
                    sink(&self.tail[..k]);
                    if k == self.tail.len() {
                        self.tail.clear(); // keeps the whole allocation (`advance` would not)
                    } else {
                        self.tail.advance(k);
                    }
                    k
                }
            };
            self.len -= taken;
            n += taken;
        }
        if self.len == 0 && self.tail.capacity() > KEEP_TAIL {
            self.tail = BytesMut::new(); // idle: hold no large buffer (as in `pop`)
        }
        n
    }

    /// Drops everything; returns how many bytes were dropped.
    pub(crate) fn clear(&mut self) -> usize {
        let n = self.len;
        *self = ByteQueue::default();
        n
    }
}

/// Empty queues kept by a session for its streams' next bytes, so a stream that sends or
/// receives one message at a time doesn't allocate and free its queue for each one. A
/// stream holds a queue only while bytes are in it (idle streams cost no buffer); the pool
/// is per session and bounded, whatever the number of streams.
#[derive(Debug, Default)]
pub(crate) struct QueuePool {
    // Streams hold their queue boxed (an idle stream pays one pointer); keeping the boxes
    // is the point: they go back to a stream without an allocation.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<ByteQueue>>,
}

/// Queues a [`QueuePool`] keeps at most (a few KiB per session).
const SPARE_QUEUES: usize = 16;

/// A returned queue whose chunk list grew beyond this is dropped rather than kept.
const SPARE_CHUNK_CAPACITY: usize = 8;

impl QueuePool {
    /// An empty queue: a kept one if there is one.
    pub(crate) fn take(&mut self) -> Box<ByteQueue> {
        self.spare.pop().unwrap_or_default()
    }

    /// Drops every kept queue (a quiet session, spec §11 L23).
    pub(crate) fn clear(&mut self) {
        self.spare = Vec::new();
    }

    /// Takes back a queue that a stream emptied.
    pub(crate) fn put(&mut self, queue: Box<ByteQueue>) {
        debug_assert!(queue.is_empty(), "only empty queues are kept");
        if queue.is_empty()
            && queue.chunks.capacity() <= SPARE_CHUNK_CAPACITY
            && self.spare.len() < SPARE_QUEUES
        {
            self.spare.push(queue);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_across_small_and_large_pushes() {
        let mut q = ByteQueue::default();
        q.push(Bytes::from_static(b"ab"));
        q.push(Bytes::from(vec![b'x'; COPY_BELOW]));
        q.push_slice(b"cd");
        let mut out = vec![0u8; COPY_BELOW + 10];
        let n = q.read_into(&mut out);
        assert_eq!(n, COPY_BELOW + 4);
        assert_eq!(&out[..2], b"ab");
        assert!(out[2..2 + COPY_BELOW].iter().all(|b| *b == b'x'));
        assert_eq!(&out[2 + COPY_BELOW..n], b"cd");
        assert!(q.is_empty());
    }

    #[test]
    fn partial_reads_and_pops_keep_the_remaining_bytes_in_order() {
        let mut q = ByteQueue::default();
        q.push(Bytes::from(vec![b'a'; COPY_BELOW]));
        q.push_slice(b"0123456789");
        let mut out = vec![0u8; COPY_BELOW - 1];
        assert_eq!(q.read_into(&mut out), COPY_BELOW - 1); // inside the big chunk
        let mut out = [0u8; 4];
        assert_eq!(q.read_into(&mut out), 4); // its last byte, then the tail
        assert_eq!(&out, b"a012");
        assert_eq!(q.pop(2).unwrap(), &b"34"[..]); // part of the tail
        assert_eq!(q.pop(100).unwrap(), &b"56789"[..]); // all of it
        assert!(q.is_empty());
        assert_eq!(q.pop(1), None);
        q.push_slice(b"again"); // the queue works after going empty
        let mut out = [0u8; 8];
        assert_eq!(q.read_into(&mut out), 5);
        assert_eq!(&out[..5], b"again");
    }

    #[test]
    fn the_pool_hands_back_empty_queues_and_stays_bounded() {
        let mut pool = QueuePool::default();
        for _ in 0..2 * SPARE_QUEUES {
            pool.put(Box::default());
        }
        assert_eq!(pool.spare.len(), SPARE_QUEUES);
        let mut q = pool.take();
        assert!(q.is_empty());
        q.push_slice(b"x");
        assert_eq!(q.pop(1).unwrap(), &b"x"[..]);
        pool.put(q);
        assert_eq!(pool.spare.len(), SPARE_QUEUES);
    }

    #[test]
    fn a_drained_queue_keeps_a_small_tail_and_drops_a_large_one() {
        let mut q = ByteQueue::default();
        q.push_slice(&[7u8; 64]);
        let mut seen = Vec::new();
        assert_eq!(q.take_into(usize::MAX, |p| seen.extend_from_slice(p)), 64);
        assert_eq!(seen, [7u8; 64]);
        assert!(q.is_empty());
        let kept = q.tail.capacity();
        assert!((64..=KEEP_TAIL).contains(&kept), "kept {kept}");
        // The next small message reuses it.
        q.push_slice(&[8u8; 64]);
        assert_eq!(q.tail.capacity(), kept);
        assert_eq!(q.take_into(10, |_| {}), 10); // partly: the rest stays, in order
        let mut out = [0u8; 100];
        assert_eq!(q.read_into(&mut out), 54);
        assert_eq!(out[..54], [8u8; 54]);
        // Many small pushes coalesce into one big tail; drained, it is let go.
        for _ in 0..8 {
            q.push_slice(&[9u8; 1000]);
        }
        assert_eq!(q.take_into(usize::MAX, |_| {}), 8000);
        assert_eq!(q.tail.capacity(), 0);
    }

    #[test]
    fn pop_splits_chunks() {
        let mut q = ByteQueue::default();
        q.push(Bytes::from(vec![1u8; 10_000]));
        assert_eq!(q.pop(4000).unwrap().len(), 4000);
        assert_eq!(q.len(), 6000);
        assert_eq!(q.pop(100_000).unwrap().len(), 6000);
        assert_eq!(q.pop(1), None);
    }
}
