//! Shared by `fuzz_targets/flow_control.rs` and `tests/fuzz_regressions.rs` (stable):
//! operations on `braid::proto::{Credit, RecvWindow}` checked against a plain u64 model.
//!
//! Two kinds of object are driven side by side:
//! * a [`Credit`] and a "raw" [`RecvWindow`], with any arguments: the result of every
//!   operation must equal the model's (errors exactly when the model leaves `0..=2^31-1`);
//! * a "used" [`RecvWindow`], driven the way its owner does (bytes received are buffered,
//!   only buffered bytes are consumed, windows start at most at 2^31-1): besides matching the
//!   model, it keeps the documented invariant `peer_credit + buffered + unacked == size`.
#![allow(dead_code)]

use braid::{
    frame::MAX_WINDOW,
    proto::{Credit, RecvWindow, WindowError},
};

const MAX: u64 = MAX_WINDOW as u64;

/// An amount, mostly near the interesting edges.
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Copy)]
pub enum Amount {
    /// 0..=255.
    Small(u8),
    /// 0..=65535.
    Mid(u16),
    /// 2^31-1 - k.
    BelowMax(u16),
    /// 2^31-1 + k.
    AboveMax(u16),
    /// u32::MAX - k.
    NearU32Max(u8),
    /// Any value.
    Raw(u32),
    /// The relevant current value (credit left, or bytes buffered) plus k.
    CurrentPlus(u8),
    /// The relevant current value minus k.
    CurrentMinus(u8),
}

impl Amount {
    pub fn value(self, current: u64) -> u32 {
        match self {
            Amount::Small(k) => k as u32,
            Amount::Mid(k) => k as u32,
            Amount::BelowMax(k) => MAX_WINDOW - k as u32,
            Amount::AboveMax(k) => MAX_WINDOW + k as u32,
            Amount::NearU32Max(k) => u32::MAX - k as u32,
            Amount::Raw(v) => v,
            Amount::CurrentPlus(k) => (current + k as u64).min(u32::MAX as u64) as u32,
            Amount::CurrentMinus(k) => current.saturating_sub(k as u64) as u32,
        }
    }
}

/// One operation.
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
#[derive(Debug, Clone, Copy)]
pub enum Op {
    CreditNew(Amount),
    CreditSpend(Amount),
    CreditGrant(Amount),
    /// Raw window.
    WindowNew(Amount),
    WindowReceive(Amount),
    WindowConsume(Amount),
    WindowGrow(Amount),
    WindowTakeUpdate(bool),
    /// Used window.
    UsedNew(Amount),
    UsedReceive(Amount),
    UsedConsume(Amount),
    UsedGrow(Amount),
    UsedTakeUpdate(bool),
}

/// Model of one [`RecvWindow`].
#[derive(Debug, Clone, Copy)]
struct WindowModel {
    size: u64,
    credit: u64,
    unacked: u64,
}

impl WindowModel {
    fn new(size: u32) -> Self {
        WindowModel {
            size: size as u64,
            credit: (size as u64).min(MAX),
            unacked: 0,
        }
    }
    fn threshold(&self) -> u64 {
        (self.size / 4).max(1)
    }
    fn receive(&mut self, n: u64) -> Result<(), WindowError> {
        if n > self.credit {
            return Err(WindowError::Exceeded);
        }
        self.credit -= n;
        Ok(())
    }
    fn consume(&mut self, n: u64) -> bool {
        self.unacked = (self.unacked + n).min(u32::MAX as u64);
        self.unacked >= self.threshold()
    }
    fn grow(&mut self, extra: u64) {
        let new = (self.size + extra).min(MAX);
        // The growth is granted with the next update: exactly what the size grew by (a window
        // already above 2^31-1, which only `RecvWindow::new` can make, is clamped, not grown).
        self.unacked = (self.unacked + new.saturating_sub(self.size)).min(u32::MAX as u64);
        self.size = new;
    }
    fn take_update(&mut self, force: bool) -> Option<u32> {
        if self.unacked == 0 || (!force && self.unacked < self.threshold()) {
            return None;
        }
        if self.credit + self.unacked > MAX {
            return None;
        }
        self.credit += self.unacked;
        let inc = self.unacked as u32;
        self.unacked = 0;
        Some(inc)
    }
    fn matches(&self, w: &RecvWindow) -> bool {
        w.size() as u64 == self.size
            && w.peer_credit() as u64 == self.credit
            && w.unacked() as u64 == self.unacked
    }
}

/// Runs `ops`; panics on any divergence from the model.
pub fn run(ops: &[Op]) {
    let mut credit = Credit::default();
    let mut credit_model = 0u64;
    let mut raw = RecvWindow::new(0);
    let mut raw_model = WindowModel::new(0);
    let mut used = RecvWindow::new(0);
    let mut used_model = WindowModel::new(0);
    let mut buffered = 0u64;

    for op in ops {
        match *op {
            Op::CreditNew(a) => {
                let n = a.value(credit_model);
                let got = Credit::new(n);
                assert_eq!(got.is_some(), n as u64 <= MAX, "Credit::new({n})");
                if let Some(c) = got {
                    assert_eq!(c.get(), n);
                    credit = c;
                    credit_model = n as u64;
                }
            }
            Op::CreditSpend(a) => {
                let n = a.value(credit_model);
                let want = if n as u64 > credit_model {
                    Err(WindowError::Exceeded)
                } else {
                    Ok(())
                };
                assert_eq!(credit.spend(n), want, "spend({n}) of {credit_model}");
                if want.is_ok() {
                    credit_model -= n as u64;
                }
            }
            Op::CreditGrant(a) => {
                let n = a.value(MAX - credit_model);
                let want = if credit_model + n as u64 > MAX {
                    Err(WindowError::Overflow)
                } else {
                    Ok(())
                };
                assert_eq!(credit.grant(n), want, "grant({n}) to {credit_model}");
                if want.is_ok() {
                    credit_model += n as u64;
                }
            }
            Op::WindowNew(a) => {
                let n = a.value(raw_model.size);
                raw = RecvWindow::new(n);
                raw_model = WindowModel::new(n);
            }
            Op::WindowReceive(a) => {
                let n = a.value(raw_model.credit);
                assert_eq!(
                    raw.receive(n),
                    raw_model.receive(n as u64),
                    "receive({n}) in {raw:?}"
                );
            }
            Op::WindowConsume(a) => {
                let n = a.value(raw_model.unacked);
                assert_eq!(
                    raw.consume(n),
                    raw_model.consume(n as u64),
                    "consume({n}) in {raw:?}"
                );
            }
            Op::WindowGrow(a) => {
                let n = a.value(MAX.saturating_sub(raw_model.size));
                raw.grow(n);
                raw_model.grow(n as u64);
            }
            Op::WindowTakeUpdate(force) => {
                assert_eq!(
                    raw.take_update(force),
                    raw_model.take_update(force),
                    "take_update in {raw:?}"
                );
            }
            Op::UsedNew(a) => {
                let n = a.value(used_model.size).min(MAX_WINDOW);
                used = RecvWindow::new(n);
                used_model = WindowModel::new(n);
                buffered = 0;
            }
            Op::UsedReceive(a) => {
                let n = a.value(used_model.credit);
                let got = used.receive(n);
                assert_eq!(
                    got,
                    used_model.receive(n as u64),
                    "receive({n}) in {used:?}"
                );
                if got.is_ok() {
                    buffered += n as u64;
                }
            }
            Op::UsedConsume(a) => {
                let n = (a.value(buffered) as u64).min(buffered);
                buffered -= n;
                assert_eq!(
                    used.consume(n as u32),
                    used_model.consume(n),
                    "consume({n}) in {used:?}"
                );
            }
            Op::UsedGrow(a) => {
                let n = a.value(MAX - used_model.size);
                used.grow(n);
                used_model.grow(n as u64);
            }
            Op::UsedTakeUpdate(force) => {
                let got = used.take_update(force);
                assert_eq!(
                    got,
                    used_model.take_update(force),
                    "take_update in {used:?}"
                );
                if force && used_model.unacked > 0 {
                    panic!("a forced update failed in a window used as documented: {used:?}");
                }
            }
        }
        assert_eq!(credit.get() as u64, credit_model);
        assert!(credit.get() <= MAX_WINDOW);
        assert!(
            raw_model.matches(&raw),
            "raw window {raw:?} != model {raw_model:?}"
        );
        assert!(raw.peer_credit() <= MAX_WINDOW);
        assert!(
            used_model.matches(&used),
            "used window {used:?} != model {used_model:?}"
        );
        assert!(used.peer_credit() <= MAX_WINDOW);
        assert_eq!(
            used.peer_credit() as u64 + buffered + used.unacked() as u64,
            used.size() as u64,
            "peer_credit + buffered ({buffered}) + unacked != size in {used:?}"
        );
    }
}
