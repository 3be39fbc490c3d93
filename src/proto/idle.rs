//! What a quiet session gives back (spec §11 L23): the runtime calls
//! [`Core::release_memory`] once no byte has moved for `Config::idle_release`, so a session
//! holds what it needs now rather than what its busiest moment needed.

use super::Core;

impl Core {
    /// Frees the core's spare capacity: the pool of empty byte queues, the stream table's and
    /// the work queues' room beyond what they hold. Nothing a stream needs is touched, and
    /// the next burst allocates again. The runtime calls it when the session has been quiet
    /// for `Config::idle_release`; calling it on a busy session only costs allocations.
    pub fn release_memory(&mut self) {
        self.queue_pool.clear();
        self.streams.shrink_to_fit();
        for queue in [
            &mut self.backlog,
            &mut self.send_queue,
            &mut self.update_queue,
        ] {
            queue.shrink_to_fit();
        }
        self.control.shrink_to_fit();
        for timers in [
            &mut self.open_timers,
            &mut self.linger_timers,
            &mut self.ack_timers,
        ] {
            timers.shrink_to_fit();
        }
        self.wake.shrink_to_fit();
        self.closed.shrink_to_fit();
    }
}
