//! The social layer: contacts, blocks, notification read marks, per-room mutes, settings, room
//! read marks, typing and presence.
//!
//! Contacts and blocks are signed envelopes of their author, like room control messages: every
//! node and every device that holds the same envelopes computes the same [`Pair`] state for two
//! wallets by replaying them in the order `(lamport, timestamp, id)`. An operation that did not
//! fit the state at its place (accepting a request nobody made, befriending someone who blocked
//! you) is void: it stays in the set so every node holds the same envelopes, but changes nothing.
//!
//! Envelopes that are about the author alone (contacts, blocks, notification marks, mutes,
//! settings, presence) name the author's *social id* as their room:
//! `keccak256("dchat/social/v1" || address)`. That id places them on a gossip shard and ties
//! each to its author, so nobody can sign one for another wallet. Read marks (`KIND_RECEIPT`) and
//! typing (`KIND_TYPING`) name the room they are about.

use alloy_primitives::{Address, B256, keccak256};
use prost::Message as _;

use crate::{Body, Kind, RoomId};

/// Domain prefix of social ids.
const SOCIAL_DOMAIN: &[u8] = b"dchat/social/v1";

/// Most notification ids one `NotificationsRead` marks.
pub const MAX_READ_IDS: usize = 256;

/// The social id of a wallet: the room its social envelopes name.
pub fn social_room(address: &Address) -> RoomId {
    let mut input = Vec::with_capacity(SOCIAL_DOMAIN.len() + 20);
    input.extend_from_slice(SOCIAL_DOMAIN);
    input.extend_from_slice(address.as_slice());
    RoomId(keccak256(&input).0)
}

/// Payload of the contact kinds (`KIND_FRIEND_REQUEST` .. `KIND_UNBLOCK`): the other wallet.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Peer {
    /// The other wallet, 20 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub address: Vec<u8>,
}

/// Payload of `KIND_RECEIPT`: the author has read the room up to this lamport clock. The
/// highest mark of a wallet in a room wins, whichever device sent it.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ReadMark {
    /// Every message of the room with a lamport clock up to this one is read.
    #[prost(uint64, tag = "1")]
    pub lamport: u64,
    /// The last message read (32 bytes), for display; optional.
    #[prost(bytes = "vec", tag = "2")]
    pub message: Vec<u8>,
}

/// Payload of `KIND_NOTIFICATIONS_READ`: marks notifications read, all up to a time and/or
/// some by id.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct NotificationsRead {
    /// Every notification created at or before this time (ms since the Unix epoch) is read;
    /// 0 marks none this way.
    #[prost(uint64, tag = "1")]
    pub up_to_ms: u64,
    /// Notification ids (32 bytes each) marked read, at most [`MAX_READ_IDS`].
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub ids: Vec<Vec<u8>>,
}

/// Payload of `KIND_MUTE`: mutes (or unmutes) a room's notifications for the author.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Mute {
    /// Room id, 32 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub room: Vec<u8>,
    /// Muted after this, or not.
    #[prost(bool, tag = "2")]
    pub muted: bool,
}

/// Payload of `KIND_SETTINGS`: the author's social settings; the latest wins.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Settings {
    /// Nobody sees this wallet's presence or last-seen time.
    #[prost(bool, tag = "1")]
    pub hide_presence: bool,
}

/// Payload of `KIND_TYPING` (ephemeral): typing in the envelope's room, or stopped.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Typing {
    /// The author stopped typing.
    #[prost(bool, tag = "1")]
    pub stopped: bool,
}

/// Presence states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, prost::Enumeration)]
#[repr(i32)]
pub enum Status {
    /// Not set: refused.
    Unspecified = 0,
    /// Active now.
    Online = 1,
    /// Connected, idle.
    Away = 2,
    /// Signed off.
    Offline = 3,
}

impl Status {
    /// Lowercase name, as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified | Self::Offline => "offline",
            Self::Online => "online",
            Self::Away => "away",
        }
    }
}

/// Payload of `KIND_PRESENCE` (ephemeral, on the author's social id).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Presence {
    /// [`Status`].
    #[prost(enumeration = "Status", tag = "1")]
    pub status: i32,
}

/// What one contact envelope does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Asks the peer to become contacts (accepts a pending request from the peer).
    Request,
    /// Accepts the peer's pending request.
    Accept,
    /// Declines the peer's pending request, or withdraws one's own.
    Decline,
    /// Ends the contact.
    Remove,
    /// Blocks the peer: ends any contact or request between the two.
    Block,
    /// Lifts one's block of the peer.
    Unblock,
}

impl Action {
    /// The envelope kind carrying this action.
    pub fn kind(self) -> Kind {
        match self {
            Self::Request => Kind::FriendRequest,
            Self::Accept => Kind::FriendAccept,
            Self::Decline => Kind::FriendDecline,
            Self::Remove => Kind::FriendRemove,
            Self::Block => Kind::Block,
            Self::Unblock => Kind::Unblock,
        }
    }

    /// The action a kind carries, if it is a contact kind.
    pub fn of(kind: Kind) -> Option<Self> {
        Some(match kind {
            Kind::FriendRequest => Self::Request,
            Kind::FriendAccept => Self::Accept,
            Kind::FriendDecline => Self::Decline,
            Kind::FriendRemove => Self::Remove,
            Kind::Block => Self::Block,
            Kind::Unblock => Self::Unblock,
            _ => return None,
        })
    }
}

/// A decoded social operation of the author.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A contact or block action towards a peer.
    Contact(Action, Address),
    /// Notifications marked read.
    NotificationsRead {
        /// All up to this time.
        up_to_ms: u64,
        /// These by id.
        ids: Vec<B256>,
    },
    /// A room muted or unmuted.
    Mute {
        /// Room.
        room: RoomId,
        /// Muted or not.
        muted: bool,
    },
    /// Settings.
    Settings(Settings),
    /// A read mark in the envelope's room.
    Read(ReadMark),
    /// Presence.
    Presence(Status),
    /// Typing in the envelope's room (or stopped).
    Typing(bool),
}

/// Why a social payload was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SocialError {
    /// Payload bytes do not decode, or fields of the wrong size.
    #[error("malformed social payload: {0}")]
    Malformed(String),
    /// The envelope's room is not the author's social id.
    #[error("social envelopes name their author's social id as room")]
    NotSocialRoom,
    /// The peer is the author.
    #[error("a contact action names another wallet than the author")]
    SelfTarget,
}

impl SocialError {
    /// Stable snake_case code, for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "social_payload_malformed",
            Self::NotSocialRoom => "social_room_mismatch",
            Self::SelfTarget => "contact_self",
        }
    }
}

fn malformed(s: impl Into<String>) -> SocialError {
    SocialError::Malformed(s.into())
}

impl Op {
    /// Decodes the social operation of a verified body. `Ok(None)` for a kind outside the
    /// social layer.
    pub fn decode(body: &Body) -> Result<Option<Self>, SocialError> {
        let kind = Kind::try_from(body.kind).unwrap_or(Kind::Unspecified);
        let author = Address::try_from(body.sender.as_slice()).map_err(|_| malformed("sender must be 20 bytes"))?;
        let payload = body.payload.as_slice();
        let about_author = kind.is_social() || kind == Kind::Presence;
        if about_author && body.room.as_slice() != social_room(&author).as_bytes().as_slice() {
            return Err(SocialError::NotSocialRoom);
        }
        let op = match kind {
            k if Action::of(k).is_some() => {
                let p = Peer::decode(payload).map_err(|e| malformed(e.to_string()))?;
                let peer = Address::try_from(p.address.as_slice()).map_err(|_| malformed("peer must be 20 bytes"))?;
                if peer == author {
                    return Err(SocialError::SelfTarget);
                }
                Self::Contact(Action::of(k).unwrap_or(Action::Request), peer)
            }
            Kind::NotificationsRead => {
                let p = NotificationsRead::decode(payload).map_err(|e| malformed(e.to_string()))?;
                if p.ids.len() > MAX_READ_IDS {
                    return Err(malformed(format!("at most {MAX_READ_IDS} notification ids")));
                }
                if p.up_to_ms == 0 && p.ids.is_empty() {
                    return Err(malformed("mark notifications read up to a time or by id"));
                }
                let ids = p
                    .ids
                    .iter()
                    .map(|i| (i.len() == 32).then(|| B256::from_slice(i)).ok_or_else(|| malformed("ids are 32 bytes")))
                    .collect::<Result<_, _>>()?;
                Self::NotificationsRead { up_to_ms: p.up_to_ms, ids }
            }
            Kind::Mute => {
                let p = Mute::decode(payload).map_err(|e| malformed(e.to_string()))?;
                let room = RoomId::from_slice(&p.room).map_err(|_| malformed("room must be 32 bytes"))?;
                Self::Mute { room, muted: p.muted }
            }
            Kind::Settings => Self::Settings(Settings::decode(payload).map_err(|e| malformed(e.to_string()))?),
            Kind::Receipt => {
                let p = ReadMark::decode(payload).map_err(|e| malformed(e.to_string()))?;
                if !(p.message.is_empty() || p.message.len() == 32) {
                    return Err(malformed("the message read is 32 bytes"));
                }
                Self::Read(p)
            }
            Kind::Presence => {
                let p = Presence::decode(payload).map_err(|e| malformed(e.to_string()))?;
                match Status::try_from(p.status) {
                    Ok(s) if s != Status::Unspecified => Self::Presence(s),
                    _ => return Err(malformed("unknown presence status")),
                }
            }
            Kind::Typing => Self::Typing(!Typing::decode(payload).map_err(|e| malformed(e.to_string()))?.stopped),
            _ => return Ok(None),
        };
        Ok(Some(op))
    }
}

/// One contact envelope between two wallets, positioned in their order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairEvent {
    /// Envelope id.
    pub id: B256,
    /// The author's social clock.
    pub lamport: u64,
    /// The author's timestamp, ms.
    pub timestamp_ms: u64,
    /// Author.
    pub author: Address,
    /// What it does.
    pub action: Action,
}

impl PairEvent {
    /// Position in the pair's order.
    pub fn position(&self) -> (u64, u64, B256) {
        (self.lamport, self.timestamp_ms, self.id)
    }
}

/// Where two wallets stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Link {
    /// Strangers.
    #[default]
    None,
    /// `from` asked; the other has not answered.
    Pending {
        /// Who asked.
        from: Address,
        /// When (the request's timestamp), ms.
        at_ms: u64,
    },
    /// Contacts.
    Friends {
        /// Since when (the accepting envelope's timestamp), ms.
        since_ms: u64,
    },
}

/// Why a contact action is void at its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ContactVoid {
    /// One of the two blocked the other.
    #[error("one of you blocked the other")]
    Blocked,
    /// Already contacts.
    #[error("you are already contacts")]
    AlreadyFriends,
    /// The author's request is already pending.
    #[error("your request is already pending")]
    AlreadyRequested,
    /// There is no pending request to answer.
    #[error("there is no pending request to answer")]
    NoRequest,
    /// Not contacts.
    #[error("you are not contacts")]
    NotFriends,
    /// Already blocked.
    #[error("you already blocked this address")]
    AlreadyBlocked,
    /// Not blocked.
    #[error("you have not blocked this address")]
    NotBlocked,
}

impl ContactVoid {
    /// Stable snake_case code, for API clients.
    pub fn code(self) -> &'static str {
        match self {
            Self::Blocked => "blocked",
            Self::AlreadyFriends => "already_contacts",
            Self::AlreadyRequested => "request_pending",
            Self::NoRequest => "no_request",
            Self::NotFriends => "not_contacts",
            Self::AlreadyBlocked => "already_blocked",
            Self::NotBlocked => "not_blocked",
        }
    }
}

/// The state of two wallets after replaying their contact envelopes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pair {
    /// Contact state.
    pub link: Link,
    /// Wallets that blocked the other (one or both of the two).
    pub blocked_by: Vec<Address>,
}

impl Pair {
    /// Replays a pair's events in order.
    pub fn replay(events: impl IntoIterator<Item = PairEvent>) -> Self {
        Self::replay_checked(events, None).0
    }

    /// Replays and reports whether the event `target` took effect at its place.
    pub fn replay_checked(
        events: impl IntoIterator<Item = PairEvent>,
        target: Option<B256>,
    ) -> (Self, Result<(), ContactVoid>) {
        let mut events: Vec<PairEvent> = events.into_iter().collect();
        events.sort_by_key(PairEvent::position);
        events.dedup_by_key(|e| e.id);
        let mut state = Self::default();
        let mut outcome = Ok(());
        for e in &events {
            let r = state.apply(e);
            if Some(e.id) == target {
                outcome = r;
            }
        }
        (state, outcome)
    }

    /// Whether `who` blocked the other.
    pub fn blocks(&self, who: &Address) -> bool {
        self.blocked_by.contains(who)
    }

    /// Whether the two are contacts.
    pub fn friends(&self) -> bool {
        matches!(self.link, Link::Friends { .. })
    }

    /// Applies one event placed after everything applied so far.
    pub fn apply(&mut self, e: &PairEvent) -> Result<(), ContactVoid> {
        let me = e.author;
        match e.action {
            Action::Block => {
                if self.blocks(&me) {
                    return Err(ContactVoid::AlreadyBlocked);
                }
                self.blocked_by.push(me);
                self.link = Link::None;
            }
            Action::Unblock => {
                if !self.blocks(&me) {
                    return Err(ContactVoid::NotBlocked);
                }
                self.blocked_by.retain(|a| *a != me);
            }
            _ if !self.blocked_by.is_empty() && e.action != Action::Remove && e.action != Action::Decline => {
                return Err(ContactVoid::Blocked);
            }
            Action::Request => match self.link {
                Link::None => self.link = Link::Pending { from: me, at_ms: e.timestamp_ms },
                Link::Pending { from, .. } if from == me => return Err(ContactVoid::AlreadyRequested),
                // Both asked: that is agreement.
                Link::Pending { .. } => self.link = Link::Friends { since_ms: e.timestamp_ms },
                Link::Friends { .. } => return Err(ContactVoid::AlreadyFriends),
            },
            Action::Accept => match self.link {
                Link::Pending { from, .. } if from != me => self.link = Link::Friends { since_ms: e.timestamp_ms },
                Link::Friends { .. } => return Err(ContactVoid::AlreadyFriends),
                _ => return Err(ContactVoid::NoRequest),
            },
            Action::Decline => match self.link {
                Link::Pending { .. } => self.link = Link::None,
                _ => return Err(ContactVoid::NoRequest),
            },
            Action::Remove => match self.link {
                Link::Friends { .. } => self.link = Link::None,
                _ => return Err(ContactVoid::NotFriends),
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ev(n: u64, lamport: u64, author: Address, action: Action) -> PairEvent {
        let mut id = [0u8; 32];
        id[24..].copy_from_slice(&n.to_be_bytes());
        PairEvent { id: B256::from(id), lamport, timestamp_ms: 1_000 + n, author, action }
    }

    #[test]
    fn request_accept_remove_and_blocks() {
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let mut p = Pair::default();
        assert_eq!(p.apply(&ev(0, 1, a, Action::Accept)), Err(ContactVoid::NoRequest));
        p.apply(&ev(1, 1, a, Action::Request)).expect("request");
        assert_eq!(p.apply(&ev(2, 2, a, Action::Request)), Err(ContactVoid::AlreadyRequested));
        assert_eq!(p.apply(&ev(3, 2, a, Action::Accept)), Err(ContactVoid::NoRequest), "not one's own request");
        p.apply(&ev(4, 3, b, Action::Accept)).expect("accept");
        assert!(p.friends());
        p.apply(&ev(5, 4, b, Action::Block)).expect("block");
        assert!(!p.friends() && p.blocks(&b) && !p.blocks(&a));
        assert_eq!(p.apply(&ev(6, 5, a, Action::Request)), Err(ContactVoid::Blocked));
        assert_eq!(p.apply(&ev(7, 5, a, Action::Unblock)), Err(ContactVoid::NotBlocked));
        p.apply(&ev(8, 6, b, Action::Unblock)).expect("unblock");
        p.apply(&ev(9, 7, a, Action::Request)).expect("request again");
        p.apply(&ev(10, 7, b, Action::Request)).expect("crossing requests make contacts");
        assert!(p.friends());
    }

    #[test]
    fn social_envelopes_name_their_authors_id() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let body = |room: RoomId, peer: Address| Body {
            version: 1,
            room: room.0.to_vec(),
            sender: a.to_vec(),
            device_key: key.verifying_key().to_bytes().to_vec(),
            kind: Kind::FriendRequest as i32,
            payload: Peer { address: peer.to_vec() }.encode_to_vec(),
            ..Body::default()
        };
        assert_eq!(Op::decode(&body(social_room(&a), b)), Ok(Some(Op::Contact(Action::Request, b))));
        assert_eq!(Op::decode(&body(social_room(&b), b)), Err(SocialError::NotSocialRoom));
        assert_eq!(Op::decode(&body(social_room(&a), a)), Err(SocialError::SelfTarget));
    }

    fn action(i: u8) -> Action {
        [Action::Request, Action::Accept, Action::Decline, Action::Remove, Action::Block, Action::Unblock]
            [usize::from(i) % 6]
    }

    proptest! {
        /// Any delivery order gives the same state as the replay in the pair's order.
        #[test]
        fn replicas_agree(ops in prop::collection::vec((any::<bool>(), 1u64..8, 0u8..6), 1..40), seed in any::<u64>()) {
            let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
            let all: Vec<PairEvent> = ops
                .iter()
                .enumerate()
                .map(|(i, (by_a, l, act))| ev(i as u64, *l, if *by_a { a } else { b }, action(*act)))
                .collect();
            let reference = Pair::replay(all.clone());
            let mut shuffled = all;
            let mut rng = seed;
            for i in (1..shuffled.len()).rev() {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (rng >> 33) as usize % (i + 1));
            }
            let mut replayed = Pair::replay(shuffled);
            let mut r = reference.clone();
            replayed.blocked_by.sort();
            r.blocked_by.sort();
            prop_assert_eq!(replayed, r);
            // Blocked pairs are never contacts.
            prop_assert!(reference.blocked_by.is_empty() || reference.link == Link::None);
        }
    }

    fn vectors_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/social/vectors.json")
    }

    /// One body per social kind (and read marks, typing, presence, and a text with mentions and
    /// a reply), as clients must encode them: `body` is the encoded `Body`, `id` its Keccak-256.
    fn vector_cases() -> Vec<serde_json::Value> {
        use crate::ids::to_hex;
        let author = Address::from([0x11; 20]);
        let peer = Address::from([0x22; 20]);
        let room = [0x33u8; 32];
        let message = [0x44u8; 32];
        let social = social_room(&author);
        let case = |name: &str,
                    kind: Kind,
                    room: &[u8],
                    lamport: u64,
                    payload: Vec<u8>,
                    mentions: Vec<Vec<u8>>,
                    reply_to: Vec<u8>| {
            let body = Body {
                version: 1,
                room: room.to_vec(),
                sender: author.to_vec(),
                device_key: vec![0x55; 32],
                timestamp_ms: 1_767_225_600_000,
                lamport,
                kind: kind as i32,
                payload: payload.clone(),
                mentions: mentions.clone(),
                reply_to: reply_to.clone(),
            };
            let bytes = body.encode_to_vec();
            serde_json::json!({
                "name": name, "kind": kind as i32, "room": to_hex(room), "lamport": lamport,
                "payload": to_hex(&payload), "mentions": mentions.iter().map(to_hex).collect::<Vec<_>>(),
                "reply_to": to_hex(&reply_to), "body": to_hex(&bytes), "id": to_hex(keccak256(&bytes)),
            })
        };
        let peer_payload = Peer { address: peer.to_vec() }.encode_to_vec();
        let s = social.as_bytes();
        vec![
            case("friend_request", Kind::FriendRequest, s, 1, peer_payload.clone(), vec![], vec![]),
            case("friend_accept", Kind::FriendAccept, s, 2, peer_payload.clone(), vec![], vec![]),
            case("friend_decline", Kind::FriendDecline, s, 3, peer_payload.clone(), vec![], vec![]),
            case("friend_remove", Kind::FriendRemove, s, 4, peer_payload.clone(), vec![], vec![]),
            case("block", Kind::Block, s, 5, peer_payload.clone(), vec![], vec![]),
            case("unblock", Kind::Unblock, s, 6, peer_payload, vec![], vec![]),
            case(
                "notifications_read_all",
                Kind::NotificationsRead,
                s,
                7,
                NotificationsRead { up_to_ms: 1_767_225_600_000, ids: vec![] }.encode_to_vec(),
                vec![],
                vec![],
            ),
            case(
                "notifications_read_ids",
                Kind::NotificationsRead,
                s,
                8,
                NotificationsRead { up_to_ms: 0, ids: vec![message.to_vec()] }.encode_to_vec(),
                vec![],
                vec![],
            ),
            case("mute", Kind::Mute, s, 9, Mute { room: room.to_vec(), muted: true }.encode_to_vec(), vec![], vec![]),
            case(
                "unmute",
                Kind::Mute,
                s,
                10,
                Mute { room: room.to_vec(), muted: false }.encode_to_vec(),
                vec![],
                vec![],
            ),
            case(
                "hide_presence",
                Kind::Settings,
                s,
                11,
                Settings { hide_presence: true }.encode_to_vec(),
                vec![],
                vec![],
            ),
            case(
                "show_presence",
                Kind::Settings,
                s,
                12,
                Settings { hide_presence: false }.encode_to_vec(),
                vec![],
                vec![],
            ),
            case(
                "presence_online",
                Kind::Presence,
                s,
                13,
                Presence { status: Status::Online as i32 }.encode_to_vec(),
                vec![],
                vec![],
            ),
            case(
                "presence_away",
                Kind::Presence,
                s,
                13,
                Presence { status: Status::Away as i32 }.encode_to_vec(),
                vec![],
                vec![],
            ),
            case(
                "presence_offline",
                Kind::Presence,
                s,
                13,
                Presence { status: Status::Offline as i32 }.encode_to_vec(),
                vec![],
                vec![],
            ),
            case(
                "read_mark",
                Kind::Receipt,
                &room,
                12,
                ReadMark { lamport: 12, message: message.to_vec() }.encode_to_vec(),
                vec![],
                vec![],
            ),
            case("typing", Kind::Typing, &room, 12, Typing { stopped: false }.encode_to_vec(), vec![], vec![]),
            case("typing_stopped", Kind::Typing, &room, 12, Typing { stopped: true }.encode_to_vec(), vec![], vec![]),
            case("text_mention_reply", Kind::Text, &room, 13, b"hi".to_vec(), vec![peer.to_vec()], message.to_vec()),
        ]
    }

    /// The shared vectors (`testdata/social/vectors.json`, also run by the dApp's tests).
    #[test]
    fn vectors_match() {
        let text = std::fs::read_to_string(vectors_path()).expect("protocol/testdata/social/vectors.json");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["social_room"], crate::ids::to_hex(social_room(&Address::from([0x11; 20])).as_bytes()));
        assert_eq!(v["cases"].as_array().expect("cases"), &vector_cases());
    }

    /// Writes the vectors file (run with DCHAT_WRITE_VECTORS=1 and --ignored).
    #[test]
    #[ignore = "writes protocol/testdata/social/vectors.json"]
    fn write_vectors() {
        if std::env::var("DCHAT_WRITE_VECTORS").as_deref() != Ok("1") {
            return;
        }
        let out = serde_json::json!({
            "description": "dchat social envelope bodies (protocol/src/social.rs): author 0x11..11, peer 0x22..22, device key 0x55..55, timestamp_ms 1767225600000",
            "author": crate::ids::to_hex([0x11u8; 20]),
            "social_room": crate::ids::to_hex(social_room(&Address::from([0x11; 20])).as_bytes()),
            "cases": vector_cases(),
        });
        std::fs::create_dir_all(vectors_path().parent().expect("dir")).expect("mkdir");
        std::fs::write(vectors_path(), serde_json::to_string_pretty(&out).expect("json") + "\n").expect("write");
    }
}
