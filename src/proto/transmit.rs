//! The outgoing byte queue the core fills and the runtime writes: frame headers and small
//! payloads are packed into one contiguous buffer, large payloads ride along as their own
//! `Bytes`, and the whole batch goes out in one vectored write.

use std::{collections::VecDeque, io::IoSlice};

use bytes::{Buf, Bytes, BytesMut};

use crate::frame::{Frame, Header};

/// Payloads at least this large are sent without copying.
pub(crate) const ZERO_COPY_FROM: usize = 2048;

/// Bytes waiting to be written to the transport, in order.
#[derive(Debug, Default)]
pub struct Transmit {
    queue: VecDeque<Bytes>,
    scratch: BytesMut,
    len: usize,
    /// Queued bytes up to the end of the last forced reply (a PING reply or a refusal) in
    /// the queue: while any remain unwritten, the core frames no further one (spec §8.1, L20).
    forced_left: usize,
}

impl Transmit {
    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn push_header(&mut self, header: &Header) {
        self.scratch.extend_from_slice(&header.encode());
        self.len += crate::frame::HEADER_LEN;
    }

    pub(crate) fn push_payload(&mut self, payload: Bytes) {
        self.len += payload.len();
        if payload.len() < ZERO_COPY_FROM {
            self.scratch.extend_from_slice(&payload);
        } else {
            self.seal();
            self.queue.push_back(payload);
        }
    }

    pub(crate) fn push_raw(&mut self, bytes: &[u8]) {
        self.scratch.extend_from_slice(bytes);
        self.len += bytes.len();
    }

    pub(crate) fn push_control(&mut self, frame: &Frame) {
        let before = self.scratch.len();
        crate::frame::encode_frame(frame, &mut self.scratch);
        self.len += self.scratch.len() - before;
    }

    fn seal(&mut self) {
        if !self.scratch.is_empty() {
            self.queue.push_back(self.scratch.split().freeze());
        }
    }

    /// Whether a forced reply queued earlier is still unwritten (spec §8.1, L20): the single
    /// slot is taken, and [`crate::proto::Core::poll_transmit`] waits for it to free.
    #[inline]
    pub fn holds_forced_reply(&self) -> bool {
        self.forced_left > 0
    }

    /// Everything queued so far ends with a forced reply.
    #[inline]
    pub(crate) fn mark_forced_reply(&mut self) {
        self.forced_left = self.len;
    }

    /// Gives back the queue's allocations if nothing is queued (a quiet session, spec §11
    /// L23); the next frames allocate afresh.
    pub(crate) fn release_memory(&mut self) {
        if self.is_empty() {
            *self = Transmit::default();
        }
    }

    /// Fills `dst` with the queued bytes in order; returns how many slices were used.
    pub fn io_slices<'a>(&'a mut self, dst: &mut [IoSlice<'a>]) -> usize {
        self.seal();
        let mut n = 0;
        for (slot, chunk) in dst.iter_mut().zip(self.queue.iter()) {
            *slot = IoSlice::new(chunk);
            n += 1;
        }
        n
    }

    /// The first contiguous chunk (for transports without vectored writes).
    pub fn first_chunk(&mut self) -> &[u8] {
        self.seal();
        self.queue.front().map(|b| &b[..]).unwrap_or(&[])
    }

    /// Everything queued as one slice, when it is one: headers and small payloads only, all
    /// packed in the scratch buffer (the usual case for messages). Written without sealing
    /// it, so the buffer is reused in place rather than frozen and dropped per write.
    pub fn contiguous(&self) -> Option<&[u8]> {
        self.queue.is_empty().then_some(&self.scratch[..])
    }

    /// Marks `n` bytes as written.
    pub fn advance(&mut self, mut n: usize) {
        self.len -= n;
        self.forced_left = self.forced_left.saturating_sub(n);
        while n > 0 {
            let Some(front) = self.queue.front_mut() else {
                // Into the scratch buffer (written through `contiguous`).
                if n == self.scratch.len() {
                    self.scratch.clear(); // keeps the allocation, all of it
                } else {
                    self.scratch.advance(n);
                }
                break;
            };
            if front.len() > n {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.queue.pop_front();
        }
        if self.len == 0 && self.scratch.capacity() > 256 * 1024 {
            self.scratch = BytesMut::new();
        }
    }

    /// Everything queued, concatenated (tests and the in-memory harness).
    pub fn take_all(&mut self) -> BytesMut {
        self.seal();
        let mut out = BytesMut::with_capacity(self.len);
        for chunk in self.queue.drain(..) {
            out.extend_from_slice(&chunk);
        }
        self.len = 0;
        self.forced_left = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a writer taking `n` bytes at a time from the front would send, in order.
    fn drain(tx: &mut Transmit, n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while !tx.is_empty() {
            let chunk = match tx.contiguous() {
                Some(bytes) => bytes[..n.min(bytes.len())].to_vec(),
                None => {
                    let first = tx.first_chunk();
                    first[..n.min(first.len())].to_vec()
                }
            };
            tx.advance(chunk.len());
            out.extend_from_slice(&chunk);
        }
        out
    }

    #[test]
    fn small_bytes_go_out_as_one_slice_in_order_with_large_payloads_between() {
        let mut tx = Transmit::default();
        tx.push_raw(b"head");
        tx.push_payload(Bytes::from_static(b"small"));
        assert_eq!(tx.contiguous(), Some(&b"headsmall"[..]));
        // A partial write from the scratch buffer, then more queued behind it.
        tx.advance(3);
        tx.push_payload(Bytes::from(vec![b'L'; ZERO_COPY_FROM]));
        tx.push_raw(b"tail");
        assert_eq!(
            tx.contiguous(),
            None,
            "a large payload rides as its own chunk"
        );
        let mut want = b"dsmall".to_vec();
        want.extend_from_slice(&[b'L'; ZERO_COPY_FROM]);
        want.extend_from_slice(b"tail");
        assert_eq!(tx.len(), want.len());
        assert_eq!(drain(&mut tx, 700), want);
        // Drained: the scratch buffer is reused for the next bytes.
        tx.push_raw(b"next");
        assert_eq!(tx.contiguous(), Some(&b"next"[..]));
        tx.advance(4);
        assert!(tx.is_empty());
    }
}
