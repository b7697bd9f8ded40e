//! The social layer on the node: contacts and blocks, read marks and unread counts,
//! notifications, mutes, presence and typing.
//!
//! Contacts, blocks, notification marks, mutes, settings and read marks are signed envelopes
//! stored as received and gossiped like any other, so every node and every device of a wallet
//! derives the same state from them (see `dchat_protocol::social`). Blocks are also kept in
//! memory, because live delivery checks them for every frame.
//!
//! Presence and typing are ephemeral: relayed, never stored, held in capped maps whose entries
//! expire after a TTL, and rate-limited per address.

use std::{
    collections::{HashMap, HashSet},
    hash::Hash,
    sync::{Mutex, RwLock},
};

use axum::http::StatusCode;
use dchat_protocol::{
    Address, B256, Kind, RoomId,
    control::Invite,
    envelope::Verified,
    room::{CreateRoom, RoomKind as ProtoKind},
    social::{Action, ContactVoid, Link, Op, Pair, PairEvent, Settings, Status},
};
use prost::Message as _;
use serde::{Deserialize, Serialize};

use crate::{
    api::{ApiError, AppState},
    hub::Frame,
    ingest::{Ingested, Origin},
    ratelimit::RateLimiter,
    store::{Notification, Store},
};

/// Social settings (`[social]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocialConfig {
    /// Seconds a presence envelope holds (clients refresh it sooner).
    pub presence_ttl_secs: u64,
    /// Seconds a typing indicator holds unless refreshed or stopped.
    pub typing_ttl_secs: u64,
    /// Most wallets whose presence is held in memory; past it, new ones are dropped.
    pub max_presence: usize,
    /// Most (room, wallet) typing indicators held; past it, new ones are dropped.
    pub max_typing: usize,
    /// Contact requests per address per minute (sustained), and the burst.
    pub contact_requests_per_min: f64,
    /// Burst of contact requests.
    pub contact_requests_burst: f64,
    /// Typing envelopes per address per second, and the burst.
    pub typing_per_sec: f64,
    /// Burst of typing envelopes.
    pub typing_burst: f64,
    /// Presence envelopes per address per second, and the burst.
    pub presence_per_sec: f64,
    /// Burst of presence envelopes.
    pub presence_burst: f64,
    /// A presence also reaches the members of rooms the wallet shares with them that have at
    /// most this many members (larger rooms' members poll `GET /v1/presence`).
    pub presence_room_max_members: u32,
    /// Most room members one presence is pushed to (besides contacts and the wallet itself).
    pub presence_max_recipients: u32,
    /// Tip notifications from the chain's `Payments` contract (`[social.tips]`).
    pub tips: crate::tips::TipsConfig,
}

impl Default for SocialConfig {
    fn default() -> Self {
        Self {
            presence_ttl_secs: 90,
            typing_ttl_secs: 6,
            max_presence: 100_000,
            max_typing: 20_000,
            contact_requests_per_min: 6.0,
            contact_requests_burst: 10.0,
            typing_per_sec: 1.0,
            typing_burst: 5.0,
            presence_per_sec: 0.2,
            presence_burst: 5.0,
            presence_room_max_members: 1000,
            presence_max_recipients: 10_000,
            tips: crate::tips::TipsConfig::default(),
        }
    }
}

/// A map whose entries expire, holding at most `cap` of them: when full, expired entries are
/// swept (at most once a second), and if none had expired a new key is refused.
#[derive(Debug)]
pub struct Expiring<K, V> {
    cap: usize,
    map: HashMap<K, (V, u64)>,
    swept_ms: u64,
}

impl<K: Eq + Hash, V> Expiring<K, V> {
    /// An empty map of at most `cap` entries.
    pub fn new(cap: usize) -> Self {
        Self { cap: cap.max(1), map: HashMap::new(), swept_ms: 0 }
    }

    /// Inserts or refreshes `key` until `expires_ms`; `false` when the map is full.
    pub fn put(&mut self, key: K, value: V, expires_ms: u64, now_ms: u64) -> bool {
        if !self.map.contains_key(&key) && self.map.len() >= self.cap {
            if now_ms >= self.swept_ms + 1000 {
                self.swept_ms = now_ms;
                self.map.retain(|_, (_, exp)| *exp > now_ms);
            }
            if self.map.len() >= self.cap {
                return false;
            }
        }
        self.map.insert(key, (value, expires_ms));
        true
    }

    /// The entry of `key` and when it expires (expired entries included until swept).
    pub fn get(&self, key: &K) -> Option<(&V, u64)> {
        self.map.get(key).map(|(v, e)| (v, *e))
    }

    /// Drops `key`; whether it was held.
    pub fn remove(&mut self, key: &K) -> bool {
        self.map.remove(key).is_some()
    }

    /// Whether as many entries are held as allowed.
    pub fn is_full(&self) -> bool {
        self.map.len() >= self.cap
    }

    /// Drops every entry expired at `now_ms` and returns their keys.
    pub fn drain_expired(&mut self, now_ms: u64) -> Vec<K>
    where
        K: Clone,
    {
        let gone: Vec<K> = self.map.iter().filter(|(_, (_, e))| *e <= now_ms).map(|(k, _)| k.clone()).collect();
        for k in &gone {
            self.map.remove(k);
        }
        gone
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Slots allocated (what the map's memory follows).
    pub fn capacity(&self) -> usize {
        self.map.capacity()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Entries expired at `now_ms` and not yet swept, to update in place.
    pub fn expired_mut(&mut self, now_ms: u64) -> impl Iterator<Item = (&K, &mut V)> {
        self.map.iter_mut().filter(move |(_, (_, e))| *e <= now_ms).map(|(k, (v, _))| (k, v))
    }

    /// Live entries matching `pick`.
    pub fn live<'a>(&'a self, now_ms: u64, pick: impl Fn(&K) -> bool + 'a) -> impl Iterator<Item = (&'a K, u64)> + 'a {
        self.map.iter().filter(move |(k, (_, e))| *e > now_ms && pick(k)).map(|(k, (_, e))| (k, *e))
    }
}

/// A wallet's last presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceEntry {
    /// Status it announced.
    pub status: Status,
    /// Its presence envelope's timestamp, ms.
    pub last_seen_ms: u64,
    /// Its lapse (to `offline`) was pushed live.
    pub lapse_told: bool,
}

/// The social layer's live state.
#[derive(Debug)]
pub struct Social {
    config: SocialConfig,
    /// Blocker -> wallets it blocks.
    blocks: RwLock<HashMap<Address, HashSet<Address>>>,
    /// Wallets hiding their presence.
    hidden: RwLock<HashSet<Address>>,
    presence: Mutex<Expiring<Address, PresenceEntry>>,
    typing: Mutex<Expiring<(RoomId, Address), ()>>,
    contact_limits: RateLimiter<Address>,
    typing_limits: RateLimiter<Address>,
    presence_limits: RateLimiter<Address>,
    /// The tip follower's counters.
    pub tips: crate::tips::TipMetrics,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Social {
    /// Empty state for `config`.
    pub fn new(config: &SocialConfig) -> Self {
        let keys = 100_000;
        Self {
            config: config.clone(),
            blocks: RwLock::default(),
            hidden: RwLock::default(),
            presence: Mutex::new(Expiring::new(config.max_presence)),
            typing: Mutex::new(Expiring::new(config.max_typing)),
            contact_limits: RateLimiter::new(
                config.contact_requests_per_min / 60.0,
                config.contact_requests_burst,
                keys,
            ),
            typing_limits: RateLimiter::new(config.typing_per_sec, config.typing_burst, keys),
            presence_limits: RateLimiter::new(config.presence_per_sec, config.presence_burst, keys),
            tips: crate::tips::TipMetrics::default(),
        }
    }

    /// Loads blocks and presence settings from the store.
    pub async fn load(&self, store: &Store) -> Result<(), sqlx::Error> {
        for (a, b) in store.block_pairs().await? {
            let pair = Pair::replay(store.pair_events(&a, &b).await?);
            self.set_blocks(&a, &b, &pair);
        }
        for a in store.social_authors(Kind::Settings).await? {
            let s = settings_of(store, &a).await?;
            self.set_hidden(a, s.hide_presence);
        }
        Ok(())
    }

    /// Whether `blocker` blocked `sender`.
    pub fn blocks(&self, blocker: &Address, sender: &Address) -> bool {
        read(&self.blocks).get(blocker).is_some_and(|s| s.contains(sender))
    }

    /// Wallets `blocker` blocks.
    pub fn blocked_by(&self, blocker: &Address) -> Vec<Address> {
        let mut v: Vec<Address> =
            read(&self.blocks).get(blocker).map(|s| s.iter().copied().collect()).unwrap_or_default();
        v.sort();
        v
    }

    fn set_blocks(&self, a: &Address, b: &Address, pair: &Pair) {
        let mut blocks = write(&self.blocks);
        for (x, y) in [(a, b), (b, a)] {
            if pair.blocks(x) {
                blocks.entry(*x).or_default().insert(*y);
            } else if let Some(set) = blocks.get_mut(x) {
                set.remove(y);
                if set.is_empty() {
                    blocks.remove(x);
                }
            }
        }
    }

    fn set_hidden(&self, a: Address, hidden: bool) {
        if hidden {
            write(&self.hidden).insert(a);
            lock(&self.presence).remove(&a);
        } else {
            write(&self.hidden).remove(&a);
        }
    }

    /// Whether `a` hides its presence.
    pub fn hides_presence(&self, a: &Address) -> bool {
        read(&self.hidden).contains(a)
    }

    /// Presence entries held (live or expired but not yet swept).
    pub fn presence_entries(&self) -> usize {
        lock(&self.presence).len()
    }

    /// Typing indicators held.
    pub fn typing_entries(&self) -> usize {
        lock(&self.typing).len()
    }

    /// `a`'s presence as others see it: status and last seen (none when hidden or unknown).
    pub fn presence_of(&self, a: &Address, now_ms: u64) -> (Status, Option<u64>) {
        if self.hides_presence(a) {
            return (Status::Offline, None);
        }
        match lock(&self.presence).get(a) {
            Some((p, expires)) if expires > now_ms => (p.status, Some(p.last_seen_ms)),
            Some((p, _)) => (Status::Offline, Some(p.last_seen_ms)),
            None => (Status::Offline, None),
        }
    }

    /// Wallets typing in `room` now, with when each indicator expires.
    pub fn typing_in(&self, room: &RoomId, now_ms: u64) -> Vec<(Address, u64)> {
        let mut v: Vec<(Address, u64)> =
            lock(&self.typing).live(now_ms, |(r, _)| r == room).map(|((_, a), e)| (*a, e)).collect();
        v.sort();
        v
    }
}

/// A live social event on the WebSocket (besides room messages).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SocialEvent {
    /// A new notification for the signed-in wallet.
    Notification {
        /// The notification.
        notification: NotificationView,
        /// Unread notifications now.
        unread: u64,
    },
    /// Notifications were marked read (on any device of the wallet).
    NotificationsRead {
        /// Unread notifications now.
        unread: u64,
    },
    /// The relation with another wallet changed.
    Contact {
        /// The other wallet, EIP-55.
        peer: String,
        /// `none`, `incoming`, `outgoing`, `contact` or `blocked` (as the receiver sees it).
        state: String,
    },
    /// A wallet's presence changed.
    Presence {
        /// The wallet, EIP-55.
        address: String,
        /// `online`, `away` or `offline`.
        status: String,
        /// Its last presence, ms.
        last_seen_ms: Option<u64>,
    },
    /// A member stopped typing in a room: its indicator lapsed (`expired`), it said so
    /// (`stopped`) or it posted a message there (`message`).
    TypingStopped {
        /// The room.
        room: RoomId,
        /// The member, EIP-55.
        address: String,
        /// `expired`, `stopped` or `message`.
        reason: String,
    },
    /// A member read a room up to a point.
    Read {
        /// The room.
        room: RoomId,
        /// The reader, EIP-55.
        address: String,
        /// Read up to this lamport clock.
        lamport: u64,
    },
}

/// A notification as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NotificationView {
    /// Id: the envelope that caused it (for a tip, derived from its chain event).
    pub id: String,
    /// `mention`, `reply`, `invite`, `contact_request`, `contact_accepted` or `tip`.
    pub kind: String,
    /// The room concerned, if any.
    pub room: Option<RoomId>,
    /// Who caused it, EIP-55.
    pub actor: String,
    /// When, ms.
    pub created_ms: u64,
    /// Marked read.
    pub read: bool,
    /// For a tip: what was paid, for which message (the actor is the tipper).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tip: Option<crate::tips::TipView>,
}

fn event_frame(e: &SocialEvent) -> Frame {
    serde_json::to_string(e).unwrap_or_default().into()
}

/// Whether this layer (rather than the room path) takes envelopes of `kind`.
pub fn handles(kind: Kind) -> bool {
    kind.is_social() || matches!(kind, Kind::Receipt | Kind::Presence)
}

fn decode(v: &Verified) -> Result<Op, ApiError> {
    Op::decode(&v.body)
        .map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?
        .ok_or_else(|| ApiError::bad_request("unsupported_kind", "not a social kind"))
}

/// Checks, stores and fans out one social envelope (already verified, its delegation checked).
pub async fn ingest(state: &AppState, v: Verified, raw: &[u8], origin: Origin) -> Result<Ingested, ApiError> {
    let now_ms = i64::try_from(state.now_ms()).unwrap_or(i64::MAX);
    let op = decode(&v)?;
    // The social clock is bounded like a room's: past the author's highest plus the allowed jump
    // is refused (read marks are bounded by their room's clock below).
    if !matches!(op, Op::Presence(_) | Op::Read(_)) {
        let highest = state.store.next_social_lamport(&v.sender).await?.saturating_sub(1);
        state.config.limits.envelope.check_lamport(v.body.lamport, highest)?;
    }
    match op {
        Op::Contact(action, peer) => contact(state, v, raw, action, peer, origin).await,
        Op::Read(mark) => {
            let room = state.store.room(&v.room).await?.ok_or_else(crate::api::rooms::room_not_found)?;
            // A peer may relay the mark of a member who has left since: it stays in the set.
            let member = state.store.role(&v.room, &v.sender).await?.is_some()
                || (origin == Origin::Peer && state.store.departure(&v.room, &v.sender).await?.is_some());
            if !member {
                return Err(ApiError::forbidden("not_a_member", "only members mark a room read"));
            }
            state.config.limits.envelope.check_lamport(mark.lamport, room.max_lamport)?;
            state.config.limits.envelope.check_lamport(v.body.lamport, room.max_lamport)?;
            let fresh = state.store.insert_social(&v, raw, v.room.as_bytes(), now_ms).await?;
            if fresh {
                state.store.raise_read_mark(&v.sender, &v.room, mark.lamport).await?;
                let lamport = state.store.read_mark(&v.sender, &v.room).await?;
                let frame =
                    event_frame(&SocialEvent::Read { room: v.room, address: v.sender.to_checksum(None), lamport });
                let sender = v.sender;
                state.hub.publish_except(&v.room, &frame, |a| *a == sender);
                state.hub.send_to(&[sender], &frame);
            }
            Ok(Ingested { verified: v, fresh, stored: true })
        }
        Op::Presence(status) => presence(state, v, status),
        Op::Typing(_) => Err(ApiError::bad_request("unsupported_kind", "typing goes to the room's messages")),
        op @ (Op::NotificationsRead { .. } | Op::Mute { .. } | Op::Settings(_)) => {
            let subject = match &op {
                Op::Mute { room, .. } => room.as_bytes().to_vec(),
                _ => Vec::new(),
            };
            let fresh = state.store.insert_social(&v, raw, &subject, now_ms).await?;
            if fresh {
                match op {
                    Op::Settings(_) => {
                        let s = settings_of(&state.store, &v.sender).await?;
                        state.social.set_hidden(v.sender, s.hide_presence);
                    }
                    Op::NotificationsRead { .. } => {
                        let unread = unread_notifications(state, &v.sender).await?;
                        state.hub.send_to(&[v.sender], &event_frame(&SocialEvent::NotificationsRead { unread }));
                    }
                    _ => {}
                }
            }
            Ok(Ingested { verified: v, fresh, stored: true })
        }
    }
}

fn contact_void(v: ContactVoid) -> ApiError {
    let status = if v == ContactVoid::Blocked { StatusCode::FORBIDDEN } else { StatusCode::CONFLICT };
    ApiError::new(status, v.code(), v.to_string())
}

/// How `me` sees its relation with the other wallet of `pair`.
pub fn relation(pair: &Pair, me: &Address) -> &'static str {
    if pair.blocks(me) {
        return "blocked";
    }
    match pair.link {
        Link::Friends { .. } => "contact",
        Link::Pending { from, .. } if from == *me => "outgoing",
        Link::Pending { .. } => "incoming",
        Link::None => "none",
    }
}

async fn contact(
    state: &AppState,
    v: Verified,
    raw: &[u8],
    action: Action,
    peer: Address,
    origin: Origin,
) -> Result<Ingested, ApiError> {
    if origin == Origin::Client && action == Action::Request {
        state.social.contact_limits.check(&v.sender).map_err(ApiError::rate_limited)?;
    }
    let mut events = state.store.pair_events(&v.sender, &peer).await?;
    let before = Pair::replay(events.clone());
    events.push(PairEvent {
        id: v.id,
        lamport: v.body.lamport,
        timestamp_ms: v.body.timestamp_ms,
        author: v.sender,
        action,
    });
    let (pair, outcome) = Pair::replay_checked(events, Some(v.id));
    if origin == Origin::Client {
        outcome.map_err(contact_void)?;
    }
    let now_ms = i64::try_from(state.now_ms()).unwrap_or(i64::MAX);
    let fresh = state.store.insert_social(&v, raw, peer.as_slice(), now_ms).await?;
    if !fresh {
        return Ok(Ingested { verified: v, fresh, stored: true });
    }
    state.social.set_blocks(&v.sender, &peer, &pair);
    if pair != before {
        let link_kind = match (before.link, pair.link) {
            (Link::None, Link::Pending { from, .. }) if from == v.sender => Some("contact_request"),
            (Link::Pending { .. }, Link::Friends { .. }) => Some("contact_accepted"),
            _ => None,
        };
        if let Some(kind) = link_kind {
            let n = Notification {
                id: v.id,
                kind: kind.into(),
                room: None,
                actor: v.sender,
                created_ms: v.body.timestamp_ms,
                detail: None,
            };
            notify(state, &peer, &n).await?;
        }
        for (me, other) in [(v.sender, peer), (peer, v.sender)] {
            let e = SocialEvent::Contact { peer: other.to_checksum(None), state: relation(&pair, &me).into() };
            state.hub.send_to(&[me], &event_frame(&e));
        }
    }
    Ok(Ingested { verified: v, fresh, stored: true })
}

fn presence(state: &AppState, v: Verified, status: Status) -> Result<Ingested, ApiError> {
    let social = &state.social;
    if social.hides_presence(&v.sender) {
        return Err(ApiError::forbidden("presence_hidden", "this wallet hides its presence (see /v1/settings)"));
    }
    social.presence_limits.check(&v.sender).map_err(ApiError::rate_limited)?;
    let now_ms = state.now_ms();
    let ttl_ms = social.config.presence_ttl_secs * 1000;
    let expires_ms = if status == Status::Offline { v.body.timestamp_ms } else { v.body.timestamp_ms + ttl_ms };
    if expires_ms <= now_ms && status != Status::Offline {
        return Err(ApiError::bad_request("presence_stale", "the presence envelope is older than its TTL"));
    }
    // An explicit offline needs no lapse push of its own.
    let entry = PresenceEntry { status, last_seen_ms: v.body.timestamp_ms, lapse_told: status == Status::Offline };
    {
        let mut map = lock(&social.presence);
        // An older envelope (arriving late through another path) does not undo a newer one.
        if map.get(&v.sender).is_some_and(|(p, _)| p.last_seen_ms > entry.last_seen_ms) {
            return Ok(Ingested { verified: v, fresh: false, stored: false });
        }
        if !map.put(v.sender, entry, expires_ms, now_ms) {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "presence_full",
                "this node holds as many presences as it may; try again later",
            ));
        }
    }
    let e = SocialEvent::Presence {
        address: v.sender.to_checksum(None),
        status: status.as_str().into(),
        last_seen_ms: Some(entry.last_seen_ms),
    };
    let frame = event_frame(&e);
    let (sender, state2) = (v.sender, state.clone());
    // Contacts, members of rooms shared with the wallet and its own devices hear of it; finding
    // them needs the store.
    tokio::spawn(async move { push_presence(&state2, &sender, &frame).await });
    Ok(Ingested { verified: v, fresh: false, stored: false })
}

async fn push_presence(state: &AppState, sender: &Address, frame: &Frame) {
    match presence_audience(state, sender).await {
        Ok(to) => state.hub.send_to_set(&to, frame),
        Err(e) => tracing::warn!(target: "node::social", error = %e, "presence fan-out"),
    }
}

/// Pushes `offline` (with the last-seen time) for presences that lapsed without a refresh, to
/// the same audience as the presence itself, once each; checks every second until shutdown.
pub async fn sweep_presence(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let lapsed: Vec<(Address, u64)> = {
            let mut map = lock(&state.social.presence);
            map.expired_mut(state.now_ms())
                .filter(|(_, p)| !p.lapse_told)
                .map(|(a, p)| {
                    p.lapse_told = true;
                    (*a, p.last_seen_ms)
                })
                .collect()
        };
        // One at a time: many lapsing together cost time, not memory or connections.
        for (who, last_seen_ms) in lapsed {
            if state.social.hides_presence(&who) {
                continue;
            }
            let e = SocialEvent::Presence {
                address: who.to_checksum(None),
                status: Status::Offline.as_str().into(),
                last_seen_ms: Some(last_seen_ms),
            };
            let frame = event_frame(&e);
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                () = push_presence(&state, &who, &frame) => {}
            }
        }
    }
}

/// Who is pushed `sender`'s presence: its contacts, the members of the rooms it shares with
/// them (rooms of at most `presence_room_max_members`, at most `presence_max_recipients` of
/// them), and its own devices; not those who block it or whom it blocks.
async fn presence_audience(state: &AppState, sender: &Address) -> Result<HashSet<Address>, sqlx::Error> {
    let cfg = &state.social.config;
    let mut to: HashSet<Address> = contacts_of(&state.store, sender).await?.into_iter().collect();
    to.extend(state.store.room_peers(sender, cfg.presence_room_max_members, cfg.presence_max_recipients).await?);
    to.retain(|a| !state.social.blocks(a, sender) && !state.social.blocks(sender, a));
    to.insert(*sender);
    Ok(to)
}

/// Records a typing envelope (in the room path, after the membership check); `Err` when the
/// sender is over its rate or the table is full.
pub fn typing(state: &AppState, v: &Verified) -> Result<(), ApiError> {
    if v.kind != Kind::Typing {
        return Ok(());
    }
    let Op::Typing(on) = decode(v)? else { return Err(ApiError::bad_request("unsupported_kind", "not typing")) };
    let social = &state.social;
    social.typing_limits.check(&v.sender).map_err(ApiError::rate_limited)?;
    let now_ms = state.now_ms();
    if !on {
        let held = lock(&social.typing).remove(&(v.room, v.sender));
        if held {
            typing_stopped(state, &v.room, &v.sender, "stopped");
        }
        return Ok(());
    }
    let expires_ms = v.body.timestamp_ms.min(now_ms) + social.config.typing_ttl_secs * 1000;
    let (put, lapsed) = {
        let mut map = lock(&social.typing);
        // Lapsed indicators make room, and their subscribers hear they stopped.
        let lapsed = if map.is_full() { map.drain_expired(now_ms) } else { Vec::new() };
        (map.put((v.room, v.sender), (), expires_ms, now_ms), lapsed)
    };
    for (room, who) in lapsed {
        typing_stopped(state, &room, &who, "expired");
    }
    if !put {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "typing_full", "too many typing indicators"));
    }
    Ok(())
}

/// Tells a room's subscribers (but those who block `who`) that `who` stopped typing there.
fn typing_stopped(state: &AppState, room: &RoomId, who: &Address, reason: &str) {
    let e = SocialEvent::TypingStopped { room: *room, address: who.to_checksum(None), reason: reason.into() };
    state.hub.publish_except(room, &event_frame(&e), |a| state.social.blocks(a, who));
}

/// Ends lapsed typing indicators until shutdown, telling each room's subscribers: a few times per
/// TTL, so a `typing_stopped` frame follows the lapse closely.
pub async fn sweep_typing(state: AppState) {
    let ttl_ms = state.social.config.typing_ttl_secs.max(1) * 1000;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis((ttl_ms / 8).clamp(50, 500)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let lapsed = {
            let mut map = lock(&state.social.typing);
            if map.is_empty() { Vec::new() } else { map.drain_expired(state.now_ms()) }
        };
        for (room, who) in lapsed {
            typing_stopped(&state, &room, &who, "expired");
        }
    }
}

/// Refuses a client's room change that would reach someone who blocked its author: a direct
/// room with them, or an invite (at creation or later).
pub fn refuse_blocked(state: &AppState, v: &Verified) -> Result<(), ApiError> {
    let named: Vec<Address> = match v.kind {
        Kind::CreateRoom => {
            CreateRoom::check_parts(&v.sender, &v.room, &v.body.payload).map(|c| c.members).unwrap_or_default()
        }
        Kind::Invite => Invite::decode(v.body.payload.as_slice())
            .map(|i| i.members.iter().filter_map(|m| Address::try_from(m.as_slice()).ok()).collect())
            .unwrap_or_default(),
        _ => return Ok(()),
    };
    if named.iter().any(|m| state.social.blocks(m, &v.sender)) {
        return Err(ApiError::forbidden("blocked", "an address named here does not accept rooms or invites from you"));
    }
    Ok(())
}

/// After a room message or change is stored: ends its author's typing indicator in the room
/// (for a text or media message) and notifies those it mentions, replies to or invites.
pub async fn after_message(state: &AppState, v: &Verified) {
    if matches!(v.kind, Kind::Text | Kind::Media) && lock(&state.social.typing).remove(&(v.room, v.sender)) {
        typing_stopped(state, &v.room, &v.sender, "message");
    }
    if let Err(e) = notify_message(state, v).await {
        tracing::warn!(target: "node::social", error = e.message, "notifying");
    }
}

async fn notify_message(state: &AppState, v: &Verified) -> Result<(), ApiError> {
    let mut targets: Vec<(Address, &'static str)> = Vec::new();
    match v.kind {
        Kind::Text | Kind::Media | Kind::Reaction | Kind::Edit => {
            if v.body.reply_to.len() == 32
                && let Some((room, author)) = state.store.message_sender(&v.body.reply_to).await?
                && room == v.room
            {
                targets.push((author, "reply"));
            }
            for m in v.body.mentions.iter().take(64) {
                if let Ok(a) = Address::try_from(m.as_slice()) {
                    targets.push((a, "mention"));
                }
            }
        }
        Kind::Invite => {
            if let Ok(i) = Invite::decode(v.body.payload.as_slice()) {
                targets.extend(
                    i.members.iter().filter_map(|m| Address::try_from(m.as_slice()).ok()).map(|a| (a, "invite")),
                );
            }
        }
        Kind::CreateRoom => {
            if let Ok(c) = CreateRoom::check_parts(&v.sender, &v.room, &v.body.payload)
                && c.kind != ProtoKind::Direct
            {
                targets.extend(c.members.into_iter().map(|a| (a, "invite")));
            }
        }
        _ => return Ok(()),
    }
    let mut seen = HashSet::new();
    for (to, kind) in targets {
        if to == v.sender || !seen.insert(to) || state.social.blocks(&to, &v.sender) {
            continue;
        }
        if state.store.role(&v.room, &to).await?.is_none() {
            continue;
        }
        let n = Notification {
            id: v.id,
            kind: kind.into(),
            room: Some(v.room),
            actor: v.sender,
            created_ms: v.body.timestamp_ms,
            detail: None,
        };
        notify(state, &to, &n).await?;
    }
    Ok(())
}

/// Stores a notification and pushes it live, unless its room is muted (or it is read already);
/// `false` when it was stored before.
pub(crate) async fn notify(state: &AppState, to: &Address, n: &Notification) -> Result<bool, ApiError> {
    if !state.store.insert_notification(to, n).await? {
        return Ok(false);
    }
    if let Some(room) = &n.room
        && mutes_of(&state.store, to).await?.contains(room)
    {
        return Ok(true);
    }
    // A tip reaches the node some blocks after it was made: a device may have marked everything
    // up to a later time read since, and then it arrives read.
    let read = read_state(&state.store, to).await?.is_read(n);
    let unread = unread_notifications(state, to).await?;
    let e = SocialEvent::Notification { notification: view(n, read), unread };
    state.hub.send_to(&[*to], &event_frame(&e));
    Ok(true)
}

/// The room of a tipped message, when this node holds the message and the wallet tipped is a
/// member of its room (a tip names only a message hash; its room is not revealed to others).
pub async fn tip_room(store: &Store, to: &Address, message: &B256) -> Result<Option<RoomId>, sqlx::Error> {
    let Some(room) = store.message_room(message).await? else { return Ok(None) };
    Ok(store.role(&room, to).await?.is_some().then_some(room))
}

/// The API view of a notification.
pub fn view(n: &Notification, read: bool) -> NotificationView {
    NotificationView {
        id: dchat_protocol::ids::to_hex(n.id),
        kind: n.kind.clone(),
        room: n.room,
        actor: n.actor.to_checksum(None),
        created_ms: n.created_ms,
        read,
        tip: if n.kind == "tip" { crate::tips::view_of(n.detail.as_deref()) } else { None },
    }
}

/// What a wallet marked read: everything up to a time, and some ids.
#[derive(Debug, Default, Clone)]
pub struct ReadState {
    /// Notifications created up to this time are read.
    pub up_to_ms: u64,
    /// These are read too.
    pub ids: HashSet<B256>,
}

impl ReadState {
    /// Whether `n` is read.
    pub fn is_read(&self, n: &Notification) -> bool {
        n.created_ms <= self.up_to_ms || self.ids.contains(&n.id)
    }
}

/// Folds a wallet's `NotificationsRead` envelopes.
pub async fn read_state(store: &Store, a: &Address) -> Result<ReadState, sqlx::Error> {
    let mut rs = ReadState::default();
    for (_, body) in store.social_bodies(a, Kind::NotificationsRead).await? {
        if let Ok(Some(Op::NotificationsRead { up_to_ms, ids })) = Op::decode(&body) {
            rs.up_to_ms = rs.up_to_ms.max(up_to_ms);
            rs.ids.extend(ids);
        }
    }
    Ok(rs)
}

/// Rooms a wallet muted (the latest `Mute` per room wins).
pub async fn mutes_of(store: &Store, a: &Address) -> Result<HashSet<RoomId>, sqlx::Error> {
    let mut muted = HashSet::new();
    for (_, body) in store.social_bodies(a, Kind::Mute).await? {
        if let Ok(Some(Op::Mute { room, muted: m })) = Op::decode(&body) {
            if m {
                muted.insert(room);
            } else {
                muted.remove(&room);
            }
        }
    }
    Ok(muted)
}

/// A wallet's settings (the latest wins).
pub async fn settings_of(store: &Store, a: &Address) -> Result<Settings, sqlx::Error> {
    let bodies = store.social_bodies(a, Kind::Settings).await?;
    Ok(bodies
        .last()
        .and_then(|(_, b)| match Op::decode(b) {
            Ok(Some(Op::Settings(s))) => Some(s),
            _ => None,
        })
        .unwrap_or_default())
}

/// Unread notifications of a wallet, outside muted rooms.
pub async fn unread_notifications(state: &AppState, a: &Address) -> Result<u64, sqlx::Error> {
    let rs = read_state(&state.store, a).await?;
    let muted = mutes_of(&state.store, a).await?;
    let list = state.store.notifications(a, rs.up_to_ms, None, 100_000).await?;
    Ok(list.iter().filter(|n| !rs.is_read(n) && n.room.is_none_or(|r| !muted.contains(&r))).count() as u64)
}

/// Every pair a wallet is part of, replayed: (other wallet, state).
pub async fn pairs_of(store: &Store, a: &Address) -> Result<Vec<(Address, Pair)>, sqlx::Error> {
    let mut by_peer: HashMap<Address, Vec<PairEvent>> = HashMap::new();
    for (other, e) in store.contact_events_of(a).await? {
        by_peer.entry(other).or_default().push(e);
    }
    let mut out: Vec<(Address, Pair)> = by_peer.into_iter().map(|(o, ev)| (o, Pair::replay(ev))).collect();
    out.sort_by_key(|(o, _)| *o);
    Ok(out)
}

/// A wallet's contacts.
pub async fn contacts_of(store: &Store, a: &Address) -> Result<Vec<Address>, sqlx::Error> {
    Ok(pairs_of(store, a).await?.into_iter().filter(|(_, p)| p.friends()).map(|(o, _)| o).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiring_map_stays_at_its_cap() {
        let mut m = Expiring::new(3);
        for i in 0..3u8 {
            assert!(m.put(i, (), 1_000, 0));
        }
        assert!(!m.put(9, (), 1_000, 10), "full of live entries: a new key is dropped");
        assert!(m.put(1, (), 2_000, 10), "an existing key refreshes");
        assert_eq!(m.len(), 3);
        assert!(m.put(9, (), 5_000, 1_500), "expired entries are swept to make room");
        assert_eq!(m.len(), 2);
        assert_eq!(m.live(1_500, |_| true).count(), 2);
    }

    /// Memory follows the cap, not the number of wallets that tried: 100 000 distinct presences
    /// against a cap of 1 000 leave the table at 1 000 entries and its first allocation.
    #[test]
    fn presence_spam_does_not_grow_the_table() {
        let cap = 1_000;
        let mut m: Expiring<Address, PresenceEntry> = Expiring::new(cap);
        let entry = PresenceEntry { status: Status::Online, last_seen_ms: 0, lapse_told: false };
        for i in 0..cap as u64 {
            m.put(Address::left_padding_from(&i.to_be_bytes()), entry, u64::MAX, 0);
        }
        let allocated = m.capacity();
        for i in cap as u64..100_000 {
            assert!(!m.put(Address::left_padding_from(&i.to_be_bytes()), entry, u64::MAX, i));
        }
        assert_eq!((m.len(), m.capacity()), (cap, allocated));
        // One slot: a 20-byte key, the entry and its expiry (plus a control byte in the table).
        let slot = std::mem::size_of::<(Address, (PresenceEntry, u64))>();
        assert!(slot <= 48, "{slot} bytes per slot");
    }
}
