//! Byte queues for one stream direction: chunks kept without copying when large, small
//! payloads coalesced into one contiguous tail so memory follows bytes, not frame count
//! (hostile-peer row 8: a flood of 1-byte frames costs bytes, not 1 allocation each).

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// Payloads below this are copied into the tail instead of kept as their own `Bytes`, which
/// would also pin the whole read buffer they were split from.
pub(crate) const COPY_BELOW: usize = 4096;

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
            None => {
                let n = max.min(self.tail.len());
                self.tail.split_to(n).freeze()
            }
        };
        self.len -= out.len();
        if self.len == 0 {
            // Release the tail's allocation once idle: idle streams hold no buffer.
            self.tail = BytesMut::new();
        }
        Some(out)
    }

    /// Copies up to `dst.len()` bytes out; returns how many.
    pub(crate) fn read_into(&mut self, dst: &mut [u8]) -> usize {
        let mut n = 0;
        while n < dst.len() {
            let Some(chunk) = self.pop(dst.len() - n) else {
                break;
            };
            dst[n..n + chunk.len()].copy_from_slice(&chunk);
            n += chunk.len();
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
    fn pop_splits_chunks() {
        let mut q = ByteQueue::default();
        q.push(Bytes::from(vec![1u8; 10_000]));
        assert_eq!(q.pop(4000).unwrap().len(), 4000);
        assert_eq!(q.len(), 6000);
        assert_eq!(q.pop(100_000).unwrap().len(), 6000);
        assert_eq!(q.pop(1), None);
    }
}
