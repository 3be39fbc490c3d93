//! Bounded memory of recently closed stream ids (spec §6.6, L18): tells a late
//! frame the peer could not avoid sending (discard) from one it had no right to send
//! (`STREAM_CLOSED`). Older ids are forgotten; frames for them are discarded.

use std::collections::{HashMap, VecDeque};

use super::IdBuildHasher;

/// How a closed stream ended, as far as late DATA from the peer is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LateData {
    /// We reset or stopped it: the peer may still have DATA in flight; discard it.
    Discard,
    /// The peer ended its direction itself (FIN or RESET): more DATA is a protocol error.
    Error,
}

#[derive(Debug)]
pub(crate) struct RecentlyClosed {
    order: VecDeque<u32>,
    how: HashMap<u32, LateData, IdBuildHasher>,
    cap: usize,
}

impl RecentlyClosed {
    pub(crate) fn new(cap: usize) -> Self {
        RecentlyClosed {
            order: VecDeque::new(),
            how: HashMap::default(),
            cap: cap.max(1),
        }
    }

    pub(crate) fn insert(&mut self, id: u32, how: LateData) {
        if self.how.insert(id, how).is_none() {
            self.order.push_back(id);
            if self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.how.remove(&old);
                }
            }
        }
    }

    /// Frees room beyond the ids remembered now.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.order.shrink_to_fit();
        self.how.shrink_to_fit();
    }

    pub(crate) fn get(&self, id: u32) -> Option<LateData> {
        self.how.get(&id).copied()
    }

    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_oldest_beyond_cap() {
        let mut c = RecentlyClosed::new(2);
        c.insert(1, LateData::Error);
        c.insert(3, LateData::Discard);
        c.insert(5, LateData::Discard);
        assert_eq!(c.get(1), None);
        assert_eq!(c.get(3), Some(LateData::Discard));
        assert_eq!(c.len(), 2);
    }
}
