//! The stream-id space of one session (spec §5): which side opened an id (parity), the next
//! id this side opens, and the ordering the peer's SYNs must keep. Every parity and ordering
//! rule lives here, so the rest of the core asks questions instead of doing `% 2` and `+ 2`.

use super::Role;

/// Why a peer's SYN names an id it may not open (spec §5.2): both end the session with
/// PROTOCOL_ERROR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadSyn {
    /// Our parity: the peer can't open ids of ours.
    OurParity,
    /// Not above the last id the peer opened: SYNs go out in increasing id order.
    NotIncreasing,
}

impl BadSyn {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            BadSyn::OurParity => "SYN with this side's stream-id parity",
            BadSyn::NotIncreasing => "SYN with a stream id not above the last one",
        }
    }
}

/// Ids opened so far on either side.
#[derive(Debug, Clone)]
pub(crate) struct StreamIds {
    role: Role,
    /// The next id we open; above `u32::MAX` once the space is used up (spec §5.1).
    next_local: u64,
    /// The highest id the peer opened (0: none yet).
    last_peer: u32,
}

impl StreamIds {
    /// Clients open odd ids from 1, servers even ids from 2 (spec §5.1); 0 is the session.
    pub(crate) fn new(role: Role) -> StreamIds {
        let first = match role {
            Role::Client => 1,
            Role::Server => 2,
        };
        StreamIds {
            role,
            next_local: first,
            last_peer: 0,
        }
    }

    /// Whether this side opens `id` (by parity; 0 is neither side's).
    #[inline]
    pub(crate) fn is_local(&self, id: u32) -> bool {
        id != 0 && (id % 2 == 1) == (self.role == Role::Client)
    }

    /// Whether the local id space is used up: the next open fails (spec §5.1).
    #[inline]
    pub(crate) fn exhausted(&self) -> bool {
        self.next_local > u64::from(u32::MAX)
    }

    /// Takes the next local id, `None` once the space is used up.
    #[inline]
    pub(crate) fn allocate(&mut self) -> Option<u32> {
        let id = u32::try_from(self.next_local).ok()?;
        self.next_local += 2;
        Some(id)
    }

    /// Whether `id` (not 0) was never opened by either side: a frame on it is an error
    /// (spec §5.2), unlike one on an id opened and since closed.
    #[inline]
    pub(crate) fn never_opened(&self, id: u32) -> bool {
        if self.is_local(id) {
            u64::from(id) >= self.next_local
        } else {
            id > self.last_peer
        }
    }

    /// Checks the id of a SYN from the peer (spec §5.2).
    #[inline]
    pub(crate) fn check_peer_open(&self, id: u32) -> Result<(), BadSyn> {
        if self.is_local(id) {
            return Err(BadSyn::OurParity);
        }
        if id <= self.last_peer {
            return Err(BadSyn::NotIncreasing);
        }
        Ok(())
    }

    /// Records a checked SYN's id as the peer's latest (also when the stream is then refused:
    /// its id is used, spec §5.2).
    #[inline]
    pub(crate) fn record_peer_open(&mut self, id: u32) {
        self.last_peer = id;
    }

    /// The highest id the peer opened (GOAWAY's last_stream_id, spec §8.2).
    #[inline]
    pub(crate) fn last_peer(&self) -> u32 {
        self.last_peer
    }

    /// Makes `next` the next local id (to reach the end of the space without two billion
    /// opens): unit tests only.
    #[cfg(test)]
    pub(crate) fn set_next_local(&mut self, next: u64) {
        self.next_local = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parity_order_and_the_end_of_the_space() {
        let mut client = StreamIds::new(Role::Client);
        let mut server = StreamIds::new(Role::Server);
        assert_eq!((client.allocate(), client.allocate()), (Some(1), Some(3)));
        assert_eq!(server.allocate(), Some(2));
        assert!(client.is_local(5) && !client.is_local(4) && !client.is_local(0));
        assert!(server.is_local(4) && !server.is_local(5) && !server.is_local(0));
        // Ours: opened below the next id; theirs: up to the last SYN.
        assert!(!client.never_opened(3) && client.never_opened(5));
        assert!(client.never_opened(2));
        assert_eq!(client.check_peer_open(2), Ok(()));
        client.record_peer_open(2);
        assert_eq!(client.check_peer_open(2), Err(BadSyn::NotIncreasing));
        assert_eq!(client.check_peer_open(7), Err(BadSyn::OurParity));
        assert_eq!(client.check_peer_open(8), Ok(())); // gaps are allowed
        client.record_peer_open(8);
        assert!(!client.never_opened(6) && client.never_opened(10));
        assert_eq!(client.last_peer(), 8);
        // The last client id is 2^32-1, the last server id 2^32-2.
        client.set_next_local(u64::from(u32::MAX));
        assert!(!client.exhausted());
        assert_eq!(client.allocate(), Some(u32::MAX));
        assert!(client.exhausted());
        assert_eq!(client.allocate(), None);
        server.set_next_local(u64::from(u32::MAX - 1));
        assert_eq!(server.allocate(), Some(u32::MAX - 1));
        assert_eq!(server.allocate(), None);
    }
}
