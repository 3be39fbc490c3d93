//! Checked flow-control arithmetic (spec §7): credit can't go negative or past 2³¹−1, and
//! every violation is an error value, never a panic or a wrap.

use crate::frame::MAX_WINDOW;

/// Send or receive credit, in bytes, always within `0..=2³¹−1`.
///
/// ```
/// use braid::proto::Credit;
/// let mut credit = Credit::new(10).unwrap();
/// assert!(credit.spend(4).is_ok());
/// assert!(credit.spend(7).is_err()); // beyond the window
/// assert!(credit.grant(u32::MAX).is_err()); // past 2^31-1
/// assert_eq!(credit.get(), 6);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Credit(u32);

/// A window operation that would leave the allowed range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WindowError {
    /// More bytes than the credit allows.
    Exceeded,
    /// Credit would pass 2³¹−1.
    Overflow,
}

impl Credit {
    /// Credit of `n` bytes; `None` past 2³¹−1.
    pub fn new(n: u32) -> Option<Credit> {
        (n <= MAX_WINDOW).then_some(Credit(n))
    }

    /// Bytes of credit left.
    pub fn get(self) -> u32 {
        self.0
    }

    /// Uses `n` bytes of credit.
    pub fn spend(&mut self, n: u32) -> Result<(), WindowError> {
        self.0 = self.0.checked_sub(n).ok_or(WindowError::Exceeded)?;
        Ok(())
    }

    /// Adds `n` bytes of credit.
    pub fn grant(&mut self, n: u32) -> Result<(), WindowError> {
        let sum = self.0.checked_add(n).filter(|s| *s <= MAX_WINDOW);
        self.0 = sum.ok_or(WindowError::Overflow)?;
        Ok(())
    }
}

/// Receive-side accounting for one window (a stream's or the session's): how much the peer
/// may still send, and how much the application consumed that was not yet granted back.
///
/// Invariant: `peer_credit + buffered + unacked == size` where `buffered` is what the
/// receiver holds unread (tracked by its owner), so a peer can never make us hold more than
/// `size` bytes.
///
/// The fields are private so the invariant holds by construction: they change only through
/// the methods below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvWindow {
    size: u32,
    peer_credit: Credit,
    unacked: u32,
}

/// Spec §7.3: credit is granted back once the consumed, not yet granted bytes reach
/// `size / UPDATE_DIVISOR` (a quarter of the window), so small reads share one update.
pub(crate) const UPDATE_DIVISOR: u32 = 4;

/// The update threshold of a window of `size` bytes (spec §7.3): a quarter, at least 1.
#[inline]
pub(crate) fn update_threshold(size: u32) -> u32 {
    (size / UPDATE_DIVISOR).max(1)
}

impl RecvWindow {
    /// A window of `size` bytes, all granted.
    pub fn new(size: u32) -> RecvWindow {
        RecvWindow {
            size,
            peer_credit: Credit(size.min(MAX_WINDOW)),
            unacked: 0,
        }
    }

    /// The window's current size: the most the peer may have outstanding.
    #[inline]
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Credit the peer still has.
    #[inline]
    pub fn peer_credit(&self) -> u32 {
        self.peer_credit.get()
    }

    /// Consumed bytes not yet granted back.
    #[inline]
    pub fn unacked(&self) -> u32 {
        self.unacked
    }

    /// Whether an update is due at the threshold (spec §7.3): a quarter of the window was
    /// consumed, or something was while the peer's remaining credit is under a quarter.
    #[inline]
    pub fn update_due(&self) -> bool {
        let threshold = update_threshold(self.size);
        self.unacked >= threshold || (self.unacked > 0 && self.peer_credit.get() < threshold)
    }

    /// Shrinks the window of a stream that takes no more DATA back to `initial` (its growth
    /// returns to the session's budget, spec §7.4); returns by how much it shrank. The
    /// credit the peer holds is left alone: nothing more is accepted on the stream anyway.
    pub(crate) fn give_back_growth(&mut self, initial: u32) -> u32 {
        let grown = self.size.saturating_sub(initial);
        self.size -= grown;
        grown
    }

    /// The peer sent `n` bytes (spec §7: beyond the credit is a FLOW_CONTROL_ERROR).
    pub fn receive(&mut self, n: u32) -> Result<(), WindowError> {
        self.peer_credit.spend(n)
    }

    /// The application consumed `n` bytes. Returns whether an update is due: the unacked
    /// amount reached a quarter of the window (spec §7.3), so small reads share one update.
    pub fn consume(&mut self, n: u32) -> bool {
        self.unacked = self.unacked.saturating_add(n);
        self.unacked >= update_threshold(self.size)
    }

    /// Grows the window by `extra` bytes (auto-tuning, spec §7.4); the growth is granted with
    /// the next update.
    pub fn grow(&mut self, extra: u32) {
        let size = self.size.saturating_add(extra).min(MAX_WINDOW);
        // Grant only what the size actually grew by: granting a clamped-off excess would break
        // `peer_credit + buffered + unacked == size` and make every later update overflow.
        self.unacked = self.unacked.saturating_add(size.saturating_sub(self.size));
        self.size = size;
    }

    /// Grants up to `max` of the consumed bytes not yet granted (a memory budget may allow
    /// less than all of them, spec §7.6); `None` if that is nothing.
    pub fn take_update_up_to(&mut self, max: u32) -> Option<u32> {
        let inc = self.unacked.min(max);
        if inc == 0 {
            return None;
        }
        self.peer_credit.grant(inc).ok()?;
        self.unacked -= inc;
        Some(inc)
    }

    /// The pending increment, if it is worth a frame (or `force`d and non-zero).
    pub fn take_update(&mut self, force: bool) -> Option<u32> {
        let threshold = update_threshold(self.size);
        if self.unacked == 0 || (!force && self.unacked < threshold) {
            return None;
        }
        let inc = self.unacked;
        // Our own bookkeeping keeps peer_credit + unacked <= size <= 2^31-1.
        self.peer_credit.grant(inc).ok()?;
        self.unacked = 0;
        Some(inc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_update_threshold_is_a_quarter_and_at_least_one_byte() {
        assert_eq!(update_threshold(1000), 250);
        assert_eq!(update_threshold(1003), 250);
        assert_eq!(update_threshold(3), 1);
        assert_eq!(update_threshold(0), 1);
        // The peer holds plenty of credit: due at a quarter consumed.
        let mut w = RecvWindow::new(64);
        w.receive(10).unwrap();
        assert!(!w.consume(10));
        assert!(!w.update_due());
        assert!(w.consume(6));
        assert!(w.update_due());
        // The peer has less than a quarter left: any consumption is due at once.
        let mut w = RecvWindow::new(64);
        w.receive(64).unwrap();
        assert!(!w.consume(15));
        assert!(w.update_due());
        assert_eq!(w.take_update_up_to(u32::MAX), Some(15));
        assert!(!w.update_due());
    }

    #[test]
    fn grant_and_spend_stay_in_range() {
        let mut c = Credit::new(MAX_WINDOW).unwrap();
        assert_eq!(c.grant(1), Err(WindowError::Overflow));
        assert_eq!(c.get(), MAX_WINDOW);
        c.spend(MAX_WINDOW).unwrap();
        assert_eq!(c.spend(1), Err(WindowError::Exceeded));
        assert!(Credit::new(MAX_WINDOW + 1).is_none());
    }

    #[test]
    fn recv_window_batches_updates_to_a_quarter() {
        let mut w = RecvWindow::new(1000);
        w.receive(1000).unwrap();
        assert_eq!(w.receive(1), Err(WindowError::Exceeded));
        assert!(!w.consume(100));
        assert!(!w.consume(149));
        assert_eq!(w.take_update(false), None);
        assert!(w.consume(1));
        assert_eq!(w.take_update(false), Some(250));
        assert_eq!(w.peer_credit(), 250);
        assert!(!w.consume(5));
        assert_eq!(w.take_update(true), Some(5));
    }
}
