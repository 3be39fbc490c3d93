//! The state a session's handles and its driver share: the core behind one short-held lock,
//! and how to reach the driver.

use std::{task::Waker, time::Instant};

use parking_lot::Mutex;

use crate::proto::Core;

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) core: Core,
    /// The driver task, to wake when the core has frames to send or a new deadline.
    pub(crate) driver: Option<Waker>,
    /// The driver was woken and has not run since: no need to wake it again.
    pub(crate) driver_notified: bool,
    /// The deadline the driver's timer is armed for.
    pub(crate) armed: Option<Instant>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) inner: Mutex<Inner>,
}

impl Shared {
    pub(crate) fn new(core: Core) -> Shared {
        Shared {
            inner: Mutex::new(Inner {
                core,
                driver: None,
                driver_notified: false,
                armed: None,
            }),
        }
    }

    /// Runs an application command on the core, then (after unlocking) wakes the tasks it
    /// released and the driver if there is something new to send or an earlier deadline.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        let (result, wakers, driver) = {
            let mut inner = self.inner.lock();
            let result = f(&mut inner.core);
            let wakers = inner.core.take_wakers();
            let earlier_deadline = match (inner.core.poll_timeout(), inner.armed) {
                (Some(want), Some(armed)) => want < armed,
                (Some(_), None) => true,
                _ => false,
            };
            let wake_driver = !inner.driver_notified
                && (earlier_deadline
                    || inner.core.wants_transmit()
                    || inner.core.error().is_some());
            let driver = if wake_driver {
                inner.driver_notified = true;
                inner.driver.clone()
            } else {
                None
            };
            (result, wakers, driver)
        };
        for w in wakers {
            w.wake();
        }
        if let Some(d) = driver {
            d.wake();
        }
        result
    }
}
