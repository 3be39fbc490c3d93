//! Room for the driver's transport reads, in recycled buffers.
//!
//! Frames go to their streams as slices of the read buffer (no copy), so a buffer lives
//! until its frames are read. Growing it with `reserve` then allocated a new ~128 KiB
//! buffer for nearly every read of a bulk transfer, and glibc handed each one back to the
//! kernel once its frames were gone (an `mmap`ed chunk, or a trimmed heap top): a page
//! fault and a zeroed page for every 4 KiB read, a large share of a bulk transfer's CPU
//! (figures: spec/DECISIONS.md). Keeping the last few buffers and reusing the first one
//! whose frames are all gone avoids it.

use bytes::BytesMut;

/// Emptied buffers kept for reuse.
const SPARE_BUFFERS: usize = 2;
/// Larger buffers (grown for a large frame) are not kept.
const MAX_SPARE_CAPACITY: usize = 512 * 1024;

/// The driver's spare read buffers.
#[derive(Debug, Default)]
pub(crate) struct ReadBuffers {
    spare: Vec<BytesMut>,
}

impl ReadBuffers {
    /// Drops the spare buffers (a quiet session, spec §11 L23).
    pub(crate) fn release(&mut self) {
        self.spare = Vec::new();
    }

    /// Makes sure `buf` has at least `min_room` free bytes after what it holds. When it must
    /// grow, it gets `room` (at least `min_room`) in place if no frame still uses it, else
    /// a spare buffer whose frames are all gone (with at least `min_room` free), else a new
    /// one with `room` free. The bytes `buf` holds (part of a frame) move along.
    pub(crate) fn make_room(&mut self, buf: &mut BytesMut, min_room: usize, room: usize) {
        if buf.capacity() - buf.len() >= min_room {
            return;
        }
        let room = room.max(min_room);
        if buf.try_reclaim(room) {
            return; // nothing else holds it: its bytes moved to the front
        }
        let held = buf.len();
        let reusable = self
            .spare
            .iter_mut()
            .position(|spare| spare.try_reclaim(held + min_room));
        let mut next = match reusable {
            Some(i) => self.spare.swap_remove(i),
            None => BytesMut::with_capacity(held + room),
        };
        next.extend_from_slice(buf);
        let mut old = std::mem::replace(buf, next);
        old.clear(); // its frames keep their bytes; the buffer waits for them to go
        if old.capacity() <= MAX_SPARE_CAPACITY {
            if self.spare.len() == SPARE_BUFFERS {
                self.spare.remove(0);
            }
            self.spare.push(old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_whose_frames_are_gone_is_reused_and_held_bytes_move_along() {
        let mut pool = ReadBuffers::default();
        let mut buf = BytesMut::with_capacity(1024);
        buf.extend_from_slice(&[1u8; 1000]);
        let frame = buf.split_to(990).freeze(); // a stream holds this
        let first = frame.as_ptr();
        pool.make_room(&mut buf, 512, 1024);
        assert_eq!(&buf[..], &[1u8; 10]); // the partial frame moved along
        assert!(buf.capacity() - buf.len() >= 1024);
        assert_eq!(pool.spare.len(), 1);
        // Fill the second buffer; the first one's frame is read meanwhile.
        buf.extend_from_slice(&[2u8; 1024]);
        let second = buf.split_to(1030).freeze();
        drop(frame);
        pool.make_room(&mut buf, 512, 1024);
        assert_eq!(&buf[..], &[2u8; 4]);
        assert_eq!(buf.as_ptr(), first, "the first buffer came back");
        drop(second);
    }

    #[test]
    fn at_most_spare_buffers_are_kept_while_frames_pin_them() {
        let mut pool = ReadBuffers::default();
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for _ in 0..6 {
            pool.make_room(&mut buf, 64, 256);
            buf.extend_from_slice(&[5u8; 256]);
            frames.push(buf.split().freeze()); // every buffer stays pinned
        }
        assert_eq!(pool.spare.len(), SPARE_BUFFERS);
        assert!(frames.iter().all(|f| f[..] == [5u8; 256]));
    }

    #[test]
    fn an_unshared_buffer_grows_in_place_and_big_ones_are_not_kept() {
        let mut pool = ReadBuffers::default();
        let mut buf = BytesMut::with_capacity(100);
        buf.extend_from_slice(&[3u8; 90]);
        let start = buf.as_ptr() as usize;
        let _ = buf.split_to(80); // dropped at once: nothing holds the buffer
        pool.make_room(&mut buf, 50, 90);
        assert_eq!(&buf[..], &[3u8; 10]);
        assert_eq!(
            buf.as_ptr() as usize,
            start,
            "reclaimed in place, bytes moved to the front"
        );
        assert!(pool.spare.is_empty());
        let mut big = BytesMut::with_capacity(MAX_SPARE_CAPACITY * 2);
        big.extend_from_slice(&[4u8; 16]);
        let held = big.split_to(8).freeze();
        pool.make_room(&mut big, MAX_SPARE_CAPACITY * 2, MAX_SPARE_CAPACITY * 2);
        assert!(pool.spare.is_empty(), "too big to keep");
        assert_eq!(&big[..], &[4u8; 8]);
        drop(held);
    }
}
