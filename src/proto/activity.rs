//! Which streams DATA arrived on lately: whether a stream has the session's link to itself,
//! for the short-link window growth rule (spec §7.4).

use std::time::{Duration, Instant};

/// How recently DATA on another stream must have arrived for a stream to count as sharing
/// the link. Long enough to see a conversation that sends a message every few milliseconds
/// (an interactive stream beside a bulk one), short enough that a stream that went quiet
/// soon stops holding the bulk stream's window down.
pub(crate) const SHARED_WITHIN: Duration = Duration::from_millis(100);

/// The stream that received DATA last, and since when every DATA frame was its own.
///
/// Two stream ids and two instants, whatever the number of streams: enough to answer "did
/// DATA for any stream other than `id` arrive within [`SHARED_WITHIN`]?" exactly.
#[derive(Debug, Default)]
pub(crate) struct DataActivity {
    /// The stream of the latest DATA frame with a payload, and when it arrived.
    last: Option<(u32, Instant)>,
    /// When the latest DATA frame for a stream other than `last`'s arrived.
    other: Option<Instant>,
}

impl DataActivity {
    /// Notes a DATA frame with a payload for stream `id`, arriving at `now`.
    pub(crate) fn note(&mut self, id: u32, now: Instant) {
        if let Some((last_id, at)) = self.last {
            if last_id != id {
                self.other = Some(at);
            }
        }
        self.last = Some((id, now));
    }

    /// Whether DATA for a stream other than `id` arrived within [`SHARED_WITHIN`] of `now`.
    pub(crate) fn shared_with_others(&self, id: u32, now: Instant) -> bool {
        let others_latest = match self.last {
            Some((last_id, at)) if last_id != id => Some(at),
            Some(_) => self.other,
            None => None,
        };
        others_latest.is_some_and(|at| now.saturating_duration_since(at) < SHARED_WITHIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_stream_has_the_link_to_itself() {
        let t0 = Instant::now();
        let mut a = DataActivity::default();
        assert!(!a.shared_with_others(1, t0));
        for i in 0..10 {
            a.note(1, t0 + Duration::from_millis(i));
        }
        assert!(!a.shared_with_others(1, t0 + Duration::from_millis(10)));
        // Any other stream sees stream 1 as recent traffic.
        assert!(a.shared_with_others(3, t0 + Duration::from_millis(10)));
    }

    #[test]
    fn another_streams_data_counts_until_it_is_old() {
        let t0 = Instant::now();
        let mut a = DataActivity::default();
        a.note(3, t0);
        a.note(1, t0 + Duration::from_millis(1));
        a.note(1, t0 + Duration::from_millis(2));
        assert!(a.shared_with_others(1, t0 + Duration::from_millis(2)));
        assert!(a.shared_with_others(3, t0 + Duration::from_millis(2)));
        // Stream 3 went quiet: just under SHARED_WITHIN it still counts...
        let almost = t0 + SHARED_WITHIN - Duration::from_millis(1);
        a.note(1, almost);
        assert!(a.shared_with_others(1, almost));
        // ...after it, stream 1 is alone again.
        let later = t0 + SHARED_WITHIN + Duration::from_millis(1);
        a.note(1, later);
        assert!(!a.shared_with_others(1, later));
    }

    #[test]
    fn three_streams_interleaved_all_share() {
        let t0 = Instant::now();
        let mut a = DataActivity::default();
        for (i, id) in [1, 3, 5, 1, 3, 5].into_iter().enumerate() {
            a.note(id, t0 + Duration::from_micros(i as u64));
        }
        let now = t0 + Duration::from_millis(1);
        assert!([1, 3, 5, 7].iter().all(|&id| a.shared_with_others(id, now)));
    }
}
