//! A receive-memory budget shared by many sessions (spec §7.6): what every session holding an
//! [`Arc<MemoryBudget>`](MemoryBudget) may have the peer buffer beyond its own floor, drawn
//! from one pool, so a server with thousands of sessions can bound their receive memory
//! together. [`BudgetShare`] is one session's account with it.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

/// How soon a session whose update the budget could not cover first asks again (spec
/// §7.6); each failed retry doubles the wait, up to [`BUDGET_RETRY_MAX`], so thousands of
/// starved sessions cost a few wake-ups a second, not hundreds each.
pub(crate) const BUDGET_RETRY: std::time::Duration = std::time::Duration::from_millis(5);
/// The longest wait between retries.
pub(crate) const BUDGET_RETRY_MAX: std::time::Duration = std::time::Duration::from_millis(500);

/// A cap on the receive memory of many sessions together (spec §7.6). Create it once and put
/// the same `Arc` in the [`Config`](crate::Config) of every session it should cover.
///
/// Each session may always let its peer have up to its **floor** of unread and in-flight
/// bytes, `min(session_window, 16 × initial_stream_window)` (so its own streams never starve
/// each other, §7.5); beyond the floor it grants session credit only from the budget, and
/// gives it back as its application consumes bytes. When the budget is spent, sessions whose
/// applications read keep moving within their floors, while windows stop growing. Credit a
/// session already promised is honoured: its preface promised `session_window`, and until its
/// application has consumed that much, the part above the floor is not charged. So the bytes
/// all sessions buffer for receiving stay within **the budget + the sum of their floors + the
/// promises not yet consumed**.
///
/// ```
/// let budget = braid::MemoryBudget::new(256 << 20); // 256 MiB for all sessions together
/// let config = braid::Config::default()
///     .with_memory_budget(Some(budget.clone()))
///     .with_initial_stream_window(64 << 10)
///     .with_session_window(16 << 20) // floor: 16 × 64 KiB = 1 MiB per session
///     .validated()
///     .unwrap();
/// assert_eq!(budget.charged(), 0);
/// ```
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    charged: AtomicU64,
}

impl MemoryBudget {
    /// A budget of `limit` bytes, shared by every session whose config holds it.
    pub fn new(limit: u64) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit,
            charged: AtomicU64::new(0),
        })
    }

    /// The cap, in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes of session credit currently granted from the budget, all sessions together.
    pub fn charged(&self) -> u64 {
        self.charged.load(Ordering::Relaxed)
    }

    /// Whether less than an eighth of the budget is left: windows stop growing (§7.6).
    pub(crate) fn is_tight(&self) -> bool {
        self.limit.saturating_sub(self.charged()) < self.limit / 8
    }

    /// Takes up to `want` bytes; returns how many it got.
    fn acquire(&self, want: u64) -> u64 {
        let mut charged = self.charged.load(Ordering::Relaxed);
        loop {
            let got = want.min(self.limit.saturating_sub(charged));
            if got == 0 {
                return 0;
            }
            match self.charged.compare_exchange_weak(
                charged,
                charged + got,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return got,
                Err(now) => charged = now,
            }
        }
    }

    fn release(&self, n: u64) {
        if n > 0 {
            self.charged.fetch_sub(n, Ordering::AcqRel);
        }
    }
}

/// Budgets compare by identity: two configs are equal only if they share the same budget.
impl PartialEq for MemoryBudget {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for MemoryBudget {}

/// One session's account with a [`MemoryBudget`] (spec §7.6). The session's receive exposure
/// (session credit granted and unused, plus bytes received and not yet consumed) is backed by
/// its floor, by what is left of its preface's promise, and by bytes charged to the budget.
#[derive(Debug)]
pub(crate) struct BudgetShare {
    budget: Arc<MemoryBudget>,
    /// Exposure the session may always have, budget or not.
    floor: u64,
    /// What is left of the preface's promise above the floor: spent as bytes are consumed.
    promised: u64,
    /// Exposure backed by the budget.
    charged: u64,
}

impl BudgetShare {
    pub(crate) fn new(
        budget: Arc<MemoryBudget>,
        session_window: u32,
        initial_stream_window: u32,
    ) -> Self {
        let floor = u64::from(session_window).min(16 * u64::from(initial_stream_window));
        BudgetShare {
            budget,
            floor,
            promised: u64::from(session_window) - floor,
            charged: 0,
        }
    }

    pub(crate) fn budget(&self) -> &MemoryBudget {
        &self.budget
    }

    /// `n` bytes were consumed (the exposure shrank by `n`): the preface's promise is spent
    /// first (once read, the peer's initial credit is used up, and re-granting it is new
    /// credit), then what the budget backed goes back.
    pub(crate) fn consumed(&mut self, n: u64) {
        let spent = self.promised.min(n);
        self.promised -= spent;
        let back = self.charged.min(n - spent);
        self.charged -= back;
        self.budget.release(back);
    }

    /// How much of an update of `want` bytes may be granted when the exposure is `exposure`:
    /// the room left in the floor and the promise, then what the budget gives.
    pub(crate) fn grant(&mut self, exposure: u64, want: u64) -> u64 {
        let free =
            (self.floor + self.promised).saturating_sub(exposure - self.charged.min(exposure));
        let covered = want.min(free);
        let got = self.budget.acquire(want - covered);
        self.charged += got;
        covered + got
    }

    /// The session has ended: nothing more will arrive, so its charge goes back.
    pub(crate) fn release_all(&mut self) {
        self.budget.release(std::mem::take(&mut self.charged));
        self.promised = 0;
    }
}

impl Drop for BudgetShare {
    fn drop(&mut self) {
        self.release_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_always_regrants_and_the_rest_comes_from_the_budget() {
        let budget = MemoryBudget::new(1000);
        // Window 4096, floor 16 × 64 = 1024, promise 3072 above it.
        let mut share = BudgetShare::new(budget.clone(), 4096, 64);
        // Everything promised was consumed: the promise is spent, nothing charged.
        share.consumed(4096);
        assert_eq!(share.promised, 0);
        // Re-granting 4096 at exposure 0: 1024 from the floor, 1000 from the budget.
        assert_eq!(share.grant(0, 4096), 2024);
        assert_eq!(budget.charged(), 1000);
        // Another session finds the budget spent but keeps its floor.
        let mut other = BudgetShare::new(budget.clone(), 4096, 64);
        other.consumed(4096);
        assert_eq!(other.grant(0, 4096), 1024);
        // With the promise spent, consuming gives the budget back.
        share.consumed(600);
        assert_eq!(budget.charged(), 400);
        assert_eq!(other.grant(1024, 3072), 600);
        drop(share);
        drop(other);
        assert_eq!(budget.charged(), 0);
    }
}
