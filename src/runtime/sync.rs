//! The synchronisation the runtime's hand-offs are built from, in one place (wake table in
//! the module docs of [`super`]): plain re-exports of `std` and `parking_lot` in a normal
//! build, and `loom`'s model-checked versions in the library's unit tests under
//! `--cfg braid_loom`, where the model tests (`runtime::loom_tests`) run the real hand-off
//! code under every interleaving loom explores (loom is a dev-dependency). A crate-specific cfg rather than `loom`: tokio and others change their own
//! code under `cfg(loom)` (tokio drops `tokio::net`), which would break the workspace.
//!
//! Only the hand-offs go through here: the writer lock and its hand-over flag
//! ([`HandOverLock`]), the session lock (the driver-notified flag, the stream waker slots),
//! the transport's split halves and the driver's read-wake flag.

#[cfg(not(all(test, braid_loom)))]
pub(crate) use futures::task::AtomicWaker;
#[cfg(not(all(test, braid_loom)))]
pub(crate) use parking_lot::{Mutex, MutexGuard};
#[cfg(not(all(test, braid_loom)))]
pub(crate) use std::sync::{
    atomic::{fence, AtomicBool, Ordering},
    Arc,
};

#[cfg(all(test, braid_loom))]
pub(crate) use loom::sync::{
    atomic::{fence, AtomicBool, Ordering},
    Arc, MutexGuard,
};

/// `loom`'s mutex with `parking_lot`'s interface (no poisoning).
#[cfg(all(test, braid_loom))]
#[derive(Debug)]
pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

#[cfg(all(test, braid_loom))]
impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Mutex<T> {
        Mutex(loom::sync::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().expect("no panics while held")
    }

    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.0.try_lock().ok()
    }
}

/// `loom`'s atomic waker with the interface of `futures`'.
#[cfg(all(test, braid_loom))]
#[derive(Debug, Default)]
pub(crate) struct AtomicWaker(loom::future::AtomicWaker);

#[cfg(all(test, braid_loom))]
impl AtomicWaker {
    pub(crate) fn register(&self, waker: &std::task::Waker) {
        self.0.register_by_ref(waker);
    }

    pub(crate) fn wake(&self) {
        self.0.wake();
    }
}

/// A lock that one party (the driver) never waits for: finding it taken, it leaves a
/// request ([`HandOverLock::try_lock_or_ask`]), and whoever holds the lock learns of the
/// request when it lets go ([`HandOverLock::unlock`]) and wakes the asker (wake table W4,
/// P3). The writer lock ([`super::shared::Shared`]) is one.
#[derive(Debug)]
pub(crate) struct HandOverLock<T> {
    lock: Mutex<T>,
    /// Someone found the lock taken and waits to be woken when it is let go.
    asked: AtomicBool,
}

impl<T> HandOverLock<T> {
    pub(crate) fn new(value: T) -> HandOverLock<T> {
        HandOverLock {
            lock: Mutex::new(value),
            asked: AtomicBool::new(false),
        }
    }

    /// The lock if it is free; no request is left.
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.lock.try_lock()
    }

    /// The lock if it is free; else `None`, and the holder's [`HandOverLock::unlock`]
    /// reports the request, so the caller can wait to be woken instead of blocking.
    pub(crate) fn try_lock_or_ask(&self) -> Option<MutexGuard<'_, T>> {
        if let Some(guard) = self.lock.try_lock() {
            return Some(guard);
        }
        self.asked.store(true, Ordering::SeqCst);
        // Pairs with the fence in `unlock`: either the retry below sees the lock free, or
        // the holder's swap sees the request (store-buffering on both sides otherwise).
        fence(Ordering::SeqCst);
        // The holder may have let go before it could see the request: try once more.
        let guard = self.lock.try_lock();
        if guard.is_some() {
            // Got it after all: no wake needed (nobody else can let go while we hold it).
            self.asked.store(false, Ordering::SeqCst);
        }
        guard
    }

    /// The lock, waiting for it if need be.
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.lock.lock()
    }

    /// Lets go of `guard`; returns whether someone asked for the lock meanwhile (the caller
    /// must wake it).
    pub(crate) fn unlock(&self, guard: MutexGuard<'_, T>) -> bool {
        drop(guard);
        fence(Ordering::SeqCst); // see `try_lock_or_ask`
        self.asked.swap(false, Ordering::SeqCst)
    }
}
