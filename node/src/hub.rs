//! Live fan-out of room messages to WebSocket connections.
//!
//! Each connection owns a bounded queue of pre-serialized frames. Publishing never waits: when a
//! connection's queue is full it is marked overflowed and its task closes it (close code 4008),
//! so one slow client can neither stall the others nor grow memory without bound.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use dchat_protocol::{Address, RoomId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A frame ready to send: serialized once, shared by every receiver.
pub type Frame = axum::extract::ws::Utf8Bytes;

#[derive(Debug)]
struct Conn {
    tx: mpsc::Sender<Frame>,
    overflow: CancellationToken,
    rooms: HashSet<RoomId>,
    /// The signed-in wallet, if any.
    address: Option<Address>,
    /// Follows its wallet's social events (subscribed to the wallet's social id).
    social: bool,
}

/// Connections and the rooms they follow, under one lock so there is no lock order to get wrong.
#[derive(Debug, Default)]
struct State {
    conns: HashMap<u64, Conn>,
    rooms: HashMap<RoomId, HashSet<u64>>,
}

/// Subscriptions of all live connections.
#[derive(Debug, Default)]
pub struct Hub {
    next_id: AtomicU64,
    state: RwLock<State>,
    dropped: AtomicU64,
}

/// A registered connection; unregisters itself when dropped.
#[derive(Debug)]
pub struct Registration {
    hub: Arc<Hub>,
    id: u64,
    /// Cancelled when the connection's queue overflowed.
    pub overflow: CancellationToken,
}

impl Hub {
    /// Registers a connection with its outbound queue.
    pub fn register(self: &Arc<Self>, tx: mpsc::Sender<Frame>, address: Option<Address>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let overflow = CancellationToken::new();
        let conn = Conn { tx, overflow: overflow.clone(), rooms: HashSet::new(), address, social: false };
        write(&self.state).conns.insert(id, conn);
        Registration { hub: self.clone(), id, overflow }
    }

    /// Connections closed for being too slow, since start.
    pub fn dropped_slow(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Live connections.
    pub fn connections(&self) -> usize {
        read(&self.state).conns.len()
    }

    /// Queues `frame` for every subscriber of `room`, never waiting.
    pub fn publish(&self, room: &RoomId, frame: &Frame) {
        self.publish_except(room, frame, |_| false);
    }

    /// [`Hub::publish`], skipping signed-in connections whose wallet `skip` names (those who
    /// blocked the sender).
    pub fn publish_except(&self, room: &RoomId, frame: &Frame, skip: impl Fn(&Address) -> bool) {
        let state = read(&self.state);
        let Some(ids) = state.rooms.get(room) else { return };
        for id in ids {
            let Some(conn) = state.conns.get(id) else { continue };
            if conn.address.as_ref().is_some_and(&skip) {
                continue;
            }
            self.queue(conn, frame);
        }
    }

    /// Queues `frame` for every connection signed in as one of `addresses` that follows its
    /// wallet's social events.
    pub fn send_to(&self, addresses: &[Address], frame: &Frame) {
        let state = read(&self.state);
        for conn in state.conns.values() {
            if conn.social && conn.address.as_ref().is_some_and(|a| addresses.contains(a)) {
                self.queue(conn, frame);
            }
        }
    }

    /// [`Hub::send_to`] for a set of wallets (a lookup per connection, for large audiences).
    pub fn send_to_set(&self, addresses: &HashSet<Address>, frame: &Frame) {
        let state = read(&self.state);
        for conn in state.conns.values() {
            if conn.social && conn.address.as_ref().is_some_and(|a| addresses.contains(a)) {
                self.queue(conn, frame);
            }
        }
    }

    fn queue(&self, conn: &Conn, frame: &Frame) {
        if let Err(mpsc::error::TrySendError::Full(_)) = conn.tx.try_send(frame.clone())
            && !conn.overflow.is_cancelled()
        {
            conn.overflow.cancel();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Hub {
    /// Unsubscribes from `room` every connection whose wallet `gone` says may no longer read
    /// it (anonymous ones included), queueing `frame` to tell each.
    pub fn evict(&self, room: &RoomId, gone: impl Fn(&Address) -> bool, frame: &Frame) {
        let mut state = write(&self.state);
        let Some(ids) = state.rooms.get(room).cloned() else { return };
        for id in ids {
            let Some(conn) = state.conns.get_mut(&id) else { continue };
            if conn.address.as_ref().is_none_or(&gone) {
                conn.rooms.remove(room);
                let _ = conn.tx.try_send(frame.clone());
                remove_from_room(&mut state.rooms, room, id);
            }
        }
    }
}

impl Registration {
    /// Marks the connection too slow (its queue is full), counting it once.
    pub fn overflowed(&self) {
        if !self.overflow.is_cancelled() {
            self.overflow.cancel();
            self.hub.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Subscribes to a room; returns how many rooms the connection now follows.
    pub fn subscribe(&self, room: RoomId) -> usize {
        let mut state = write(&self.hub.state);
        let Some(conn) = state.conns.get_mut(&self.id) else { return 0 };
        let (added, count) = (conn.rooms.insert(room), conn.rooms.len());
        if conn.address.is_some_and(|a| dchat_protocol::social::social_room(&a) == room) {
            conn.social = true;
        }
        if added {
            state.rooms.entry(room).or_default().insert(self.id);
        }
        count
    }

    /// Whether the connection follows `room`.
    pub fn is_subscribed(&self, room: &RoomId) -> bool {
        read(&self.hub.state).conns.get(&self.id).is_some_and(|c| c.rooms.contains(room))
    }

    /// Rooms followed.
    pub fn count(&self) -> usize {
        read(&self.hub.state).conns.get(&self.id).map_or(0, |c| c.rooms.len())
    }

    /// Stops following a room.
    pub fn unsubscribe(&self, room: &RoomId) {
        let mut state = write(&self.hub.state);
        if let Some(conn) = state.conns.get_mut(&self.id)
            && conn.rooms.remove(room)
        {
            if conn.address.is_some_and(|a| dchat_protocol::social::social_room(&a) == *room) {
                conn.social = false;
            }
            remove_from_room(&mut state.rooms, room, self.id);
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut state = write(&self.hub.state);
        let Some(conn) = state.conns.remove(&self.id) else { return };
        for room in &conn.rooms {
            remove_from_room(&mut state.rooms, room, self.id);
        }
    }
}

fn remove_from_room(rooms: &mut HashMap<RoomId, HashSet<u64>>, room: &RoomId, id: u64) {
    if let Some(set) = rooms.get_mut(room) {
        set.remove(&id);
        if set.is_empty() {
            rooms.remove(room);
        }
    }
}

// A poisoned lock only means another thread panicked mid-update of plain maps; the maps are
// still usable, so recover the guard rather than propagate the panic.
fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_queue_marks_connection_overflowed_and_others_still_receive() {
        let hub = Arc::new(Hub::default());
        let room = RoomId([1; 32]);
        let (slow_tx, _slow_rx) = mpsc::channel(2);
        let (fast_tx, mut fast_rx) = mpsc::channel(16);
        let slow = hub.register(slow_tx, None);
        let fast = hub.register(fast_tx, None);
        slow.subscribe(room);
        fast.subscribe(room);
        for i in 0..5 {
            hub.publish(&room, &Frame::from(format!("{i}")));
        }
        assert!(slow.overflow.is_cancelled());
        assert!(!fast.overflow.is_cancelled());
        assert_eq!(hub.dropped_slow(), 1);
        for i in 0..5 {
            assert_eq!(fast_rx.recv().await.as_deref(), Some(format!("{i}").as_str()));
        }
        drop(slow);
        assert_eq!(hub.connections(), 1);
        assert_eq!(read(&hub.state).rooms[&room].len(), 1);
    }
}
