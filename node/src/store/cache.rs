//! What every posted message reads, kept in memory: the room row, the sender's role, the
//! room's key epochs and the device key's delegations. Posting is the hot path — without this
//! each post makes five round trips to the database before its write — and these facts change
//! only when the writer task commits a room control envelope (or a delegation is stored), which
//! is where entries are dropped.
//!
//! Consistency: a reader takes the generation before it reads the database and fills the
//! cache only if no commit bumped it meanwhile, both under the cache's lock, so a value read
//! before a commit is never kept after that commit's invalidation. Commits of plain messages
//! raise the cached `max_lamport` in place. Memory is bounded: a map that reaches its cap is
//! cleared and refilled by the next reads.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use dchat_protocol::{Address, B256, RoomId};

use super::Room;

/// Most entries per map before it is cleared.
const CAP: usize = 50_000;

/// One stored delegation of a device key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DelegationRow {
    pub wallet: Address,
    pub not_before: i64,
    pub expires_at: i64,
    pub message: String,
    pub signature: Vec<u8>,
    pub revoked: bool,
}

/// A device key's delegations, latest expiry first.
pub(super) type Delegations = std::sync::Arc<Vec<DelegationRow>>;

/// Most device keys whose delegations are kept (each holds its SIWE texts, ~0.5 kB apiece).
const DEVICE_CAP: usize = 10_000;

#[derive(Debug, Default)]
struct Inner {
    /// Bumped by every commit that may change what is cached.
    generation: u64,
    rooms: HashMap<RoomId, Option<Room>>,
    roles: HashMap<RoomId, HashMap<Address, Option<String>>>,
    role_entries: usize,
    epochs: HashMap<RoomId, HashSet<B256>>,
    delegations: HashMap<[u8; 32], Delegations>,
}

/// The read cache of one store.
#[derive(Debug, Default)]
pub(super) struct Cache {
    inner: Mutex<Inner>,
}

/// Taken before a database read; the value read is cached only if the generation still holds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ticket(u64);

impl Cache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain maps behind, still usable.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The generation to hand back with a value read from the database.
    pub(super) fn ticket(&self) -> Ticket {
        Ticket(self.lock().generation)
    }

    pub(super) fn room(&self, id: &RoomId) -> Option<Option<Room>> {
        self.lock().rooms.get(id).cloned()
    }

    pub(super) fn put_room(&self, t: Ticket, id: &RoomId, room: &Option<Room>) {
        let mut g = self.lock();
        if g.generation != t.0 {
            return;
        }
        if g.rooms.len() >= CAP {
            g.rooms.clear();
        }
        g.rooms.insert(*id, room.clone());
    }

    pub(super) fn role(&self, room: &RoomId, address: &Address) -> Option<Option<String>> {
        self.lock().roles.get(room).and_then(|m| m.get(address)).cloned()
    }

    pub(super) fn put_role(&self, t: Ticket, room: &RoomId, address: &Address, role: &Option<String>) {
        let mut g = self.lock();
        if g.generation != t.0 {
            return;
        }
        if g.role_entries >= CAP {
            g.roles.clear();
            g.role_entries = 0;
        }
        if g.roles.entry(*room).or_default().insert(*address, role.clone()).is_none() {
            g.role_entries += 1;
        }
    }

    /// Whether the epoch is known to exist (absence is not cached: a rotation may add it).
    pub(super) fn has_epoch(&self, room: &RoomId, epoch: &B256) -> bool {
        self.lock().epochs.get(room).is_some_and(|s| s.contains(epoch))
    }

    pub(super) fn put_epoch(&self, t: Ticket, room: &RoomId, epoch: &B256) {
        let mut g = self.lock();
        if g.generation != t.0 {
            return;
        }
        if g.epochs.len() >= CAP {
            g.epochs.clear();
        }
        g.epochs.entry(*room).or_default().insert(*epoch);
    }

    pub(super) fn delegations(&self, device_key: &[u8; 32]) -> Option<Delegations> {
        self.lock().delegations.get(device_key).cloned()
    }

    pub(super) fn put_delegations(&self, t: Ticket, device_key: &[u8; 32], d: &Delegations) {
        let mut g = self.lock();
        if g.generation != t.0 {
            return;
        }
        if g.delegations.len() >= DEVICE_CAP {
            g.delegations.clear();
        }
        g.delegations.insert(*device_key, d.clone());
    }

    /// After a write transaction committed (or failed: it may have partly applied before the
    /// retry): rooms whose control changed lose everything cached about them; the others'
    /// cached `max_lamport` rises to what was stored.
    pub(super) fn committed(&self, changed: &[RoomId], lamports: &[(RoomId, u64)]) {
        let mut g = self.lock();
        g.generation += 1;
        for room in changed {
            g.rooms.remove(room);
            if let Some(m) = g.roles.remove(room) {
                g.role_entries -= m.len();
            }
            g.epochs.remove(room);
        }
        for (room, lamport) in lamports {
            if let Some(Some(r)) = g.rooms.get_mut(room) {
                r.max_lamport = r.max_lamport.max(*lamport);
            }
        }
    }

    /// After a delegation of `device_key` was stored.
    pub(super) fn delegation_changed(&self, device_key: &[u8; 32]) {
        let mut g = self.lock();
        g.generation += 1;
        g.delegations.remove(device_key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RoomKind;

    fn room(id: RoomId, max_lamport: u64) -> Room {
        Room {
            id,
            kind: RoomKind::Channel,
            name: "r".into(),
            owner: Address::ZERO,
            created_at: 0,
            max_lamport,
            policy: "open".into(),
        }
    }

    #[test]
    fn a_value_read_before_a_commit_is_not_kept_after_it() {
        let c = Cache::default();
        let id = RoomId([1; 32]);
        let t = c.ticket();
        // The writer commits a control envelope of the room while the reader is in the database.
        c.committed(&[id], &[]);
        c.put_room(t, &id, &Some(room(id, 1)));
        assert_eq!(c.room(&id), None, "stale read discarded");
        let t = c.ticket();
        c.put_room(t, &id, &Some(room(id, 1)));
        assert_eq!(c.room(&id), Some(Some(room(id, 1))));
    }

    #[test]
    fn control_commits_drop_the_room_and_plain_commits_raise_its_lamport() {
        let c = Cache::default();
        let (a, b) = (RoomId([1; 32]), RoomId([2; 32]));
        let who = Address::repeat_byte(7);
        let t = c.ticket();
        c.put_room(t, &a, &Some(room(a, 3)));
        c.put_room(t, &b, &Some(room(b, 3)));
        c.put_role(t, &a, &who, &Some("member".into()));
        c.put_epoch(t, &a, &B256::repeat_byte(9));
        c.committed(&[], &[(b, 10), (b, 7)]);
        assert_eq!(c.room(&b).flatten().map(|r| r.max_lamport), Some(10));
        assert_eq!(c.role(&a, &who), Some(Some("member".into())));
        c.committed(&[a], &[]);
        assert_eq!(c.room(&a), None);
        assert_eq!(c.role(&a, &who), None);
        assert!(!c.has_epoch(&a, &B256::repeat_byte(9)));
        assert_eq!(c.room(&b).flatten().map(|r| r.max_lamport), Some(10), "other rooms stay");
    }

    #[test]
    fn maps_stay_within_their_cap() {
        let c = Cache::default();
        let who = Address::repeat_byte(7);
        for i in 0..(CAP as u64 + 10) {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&i.to_be_bytes());
            let t = c.ticket();
            c.put_role(t, &RoomId(id), &who, &None);
        }
        let g = c.lock();
        assert!(g.role_entries <= CAP && g.roles.values().map(HashMap::len).sum::<usize>() == g.role_entries);
    }
}
