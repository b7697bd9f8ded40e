//! Room control payloads. A room exists because its creator signed a `CreateRoom` envelope, and
//! a member joined a public channel because they signed a `Join`; these envelopes travel and sync
//! like any other message, so every node derives the same rooms and members from them.
//!
//! The room id is `keccak256(creator address || salt)`: only the creator can make a `CreateRoom`
//! for a given id, so nobody can squat or shadow another wallet's room. A direct room's id is
//! `keccak256("dchat/direct/v1" || lower address || higher address)`: either of the two can
//! create it and both find the same room.

use alloy_primitives::{Address, keccak256};
use prost::Message as _;

use crate::{RoomId, envelope::Verified};

/// Kinds of room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, prost::Enumeration)]
#[repr(i32)]
pub enum RoomKind {
    /// Not set: refused.
    Unspecified = 0,
    /// Private group: members only.
    Group = 1,
    /// Public channel: anyone reads and may join.
    Channel = 2,
    /// Direct messages between exactly two wallets, encrypted.
    Direct = 3,
}

impl RoomKind {
    /// Whether messages are end-to-end encrypted (group and direct rooms).
    pub fn is_private(self) -> bool {
        matches!(self, Self::Group | Self::Direct)
    }
}

/// Payload of a `CreateRoom` envelope.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CreateRoom {
    /// Display name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// [`RoomKind`].
    #[prost(enumeration = "RoomKind", tag = "2")]
    pub kind: i32,
    /// Initial members besides the creator, 20 bytes each.
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub members: Vec<Vec<u8>>,
    /// 32 random bytes; the room id is `keccak256(creator || salt)`.
    #[prost(bytes = "vec", tag = "4")]
    pub salt: Vec<u8>,
}

/// Longest room name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Most initial members in one `CreateRoom`.
pub const MAX_INITIAL_MEMBERS: usize = 256;

/// Why a control payload was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoomError {
    /// Payload bytes do not decode.
    #[error("malformed room payload: {0}")]
    Malformed(String),
    /// The envelope's room is not `keccak256(sender || salt)`.
    #[error("room id does not derive from the creator and salt")]
    IdMismatch,
    /// Empty, too long or containing control characters.
    #[error("room name must be 1 to {MAX_NAME_CHARS} printable characters")]
    InvalidName,
    /// Unknown kind.
    #[error("unknown room kind {0}")]
    InvalidKind(i32),
    /// Too many initial members.
    #[error("at most {MAX_INITIAL_MEMBERS} initial members")]
    TooManyMembers,
    /// A direct room needs exactly one other member, and its id derives from the two.
    #[error("a direct room has exactly two members and the id derived from their addresses")]
    InvalidDirect,
}

impl RoomError {
    /// Stable snake_case code, for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "room_payload_malformed",
            Self::IdMismatch => "room_id_mismatch",
            Self::InvalidName => "invalid_name",
            Self::InvalidKind(_) => "invalid_room_kind",
            Self::TooManyMembers => "too_many_members",
            Self::InvalidDirect => "invalid_direct_room",
        }
    }
}

/// The id of the room `creator` makes with `salt`.
pub fn room_id(creator: &Address, salt: &[u8]) -> RoomId {
    let mut input = Vec::with_capacity(20 + salt.len());
    input.extend_from_slice(creator.as_slice());
    input.extend_from_slice(salt);
    RoomId(keccak256(&input).0)
}

/// The id of the direct room between `a` and `b` (the same whichever order they come in).
pub fn direct_room_id(a: &Address, b: &Address) -> RoomId {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut input = Vec::with_capacity(15 + 40);
    input.extend_from_slice(DIRECT_DOMAIN);
    input.extend_from_slice(lo.as_slice());
    input.extend_from_slice(hi.as_slice());
    RoomId(keccak256(&input).0)
}

/// Domain prefix of direct room ids.
const DIRECT_DOMAIN: &[u8] = b"dchat/direct/v1";

/// A checked `CreateRoom`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creation {
    /// Room id.
    pub room: RoomId,
    /// Creator and owner.
    pub owner: Address,
    /// Name, trimmed.
    pub name: String,
    /// Kind.
    pub kind: RoomKind,
    /// Initial members, without the owner and without repeats.
    pub members: Vec<Address>,
}

impl CreateRoom {
    /// Builds the payload of the direct room between `creator` and `peer`, with its id.
    pub fn direct(creator: &Address, peer: &Address) -> (RoomId, Self) {
        let payload = Self {
            name: "direct".into(),
            kind: RoomKind::Direct as i32,
            members: vec![peer.to_vec()],
            salt: Vec::new(),
        };
        (direct_room_id(creator, peer), payload)
    }

    /// Builds the payload for a new room, returning it with the room id.
    pub fn new(creator: &Address, name: &str, kind: RoomKind, members: &[Address]) -> (RoomId, Self) {
        let salt: [u8; 32] = rand::random();
        let payload = Self {
            name: name.to_string(),
            kind: kind as i32,
            members: members.iter().map(|m| m.to_vec()).collect(),
            salt: salt.to_vec(),
        };
        (room_id(creator, &salt), payload)
    }

    /// Checks a verified `CreateRoom` envelope's payload against its sender and room.
    pub fn check(v: &Verified) -> Result<Creation, RoomError> {
        Self::check_parts(&v.sender, &v.room, &v.body.payload)
    }

    /// [`CreateRoom::check`] on the parts of an envelope's body.
    pub fn check_parts(sender: &Address, room: &RoomId, payload: &[u8]) -> Result<Creation, RoomError> {
        let p = Self::decode(payload).map_err(|e| RoomError::Malformed(e.to_string()))?;
        if p.kind == RoomKind::Direct as i32 {
            let peer = match p.members.as_slice() {
                [m] => Address::try_from(m.as_slice()).map_err(|_| RoomError::InvalidDirect)?,
                _ => return Err(RoomError::InvalidDirect),
            };
            if peer == *sender || direct_room_id(sender, &peer) != *room || !p.salt.is_empty() {
                return Err(RoomError::InvalidDirect);
            }
            return Ok(Creation {
                room: *room,
                owner: *sender,
                name: "direct".into(),
                kind: RoomKind::Direct,
                members: vec![peer],
            });
        }
        if room_id(sender, &p.salt) != *room || p.salt.len() != 32 {
            return Err(RoomError::IdMismatch);
        }
        let name = p.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(RoomError::InvalidName);
        }
        let kind = match RoomKind::try_from(p.kind) {
            Ok(RoomKind::Group) => RoomKind::Group,
            Ok(RoomKind::Channel) => RoomKind::Channel,
            _ => return Err(RoomError::InvalidKind(p.kind)),
        };
        if p.members.len() > MAX_INITIAL_MEMBERS {
            return Err(RoomError::TooManyMembers);
        }
        let mut members = Vec::with_capacity(p.members.len());
        for m in &p.members {
            let a =
                Address::try_from(m.as_slice()).map_err(|_| RoomError::Malformed("member must be 20 bytes".into()))?;
            if a != *sender && !members.contains(&a) {
                members.push(a);
            }
        }
        Ok(Creation { room: *room, owner: *sender, name: name.to_string(), kind, members })
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::{Body, Envelope, Kind, envelope::Bounds};

    fn seal(sender: Address, room: RoomId, payload: Vec<u8>) -> Verified {
        let key = SigningKey::from_bytes(&[1; 32]);
        let body = Body {
            version: 1,
            room: room.0.to_vec(),
            sender: sender.to_vec(),
            device_key: key.verifying_key().to_bytes().to_vec(),
            timestamp_ms: 1,
            lamport: 0,
            kind: Kind::CreateRoom as i32,
            payload,
            ..Body::default()
        };
        Envelope::seal(&body, &key).open(&Bounds::default(), 1).expect("valid")
    }

    #[test]
    fn creation_checks_id_name_and_members() {
        let alice = Address::repeat_byte(1);
        let bob = Address::repeat_byte(2);
        let (room, p) = CreateRoom::new(&alice, " team ", RoomKind::Group, &[bob, bob, alice]);
        let c = CreateRoom::check(&seal(alice, room, p.encode_to_vec())).expect("valid");
        assert_eq!((c.name.as_str(), c.kind, c.members.clone()), ("team", RoomKind::Group, vec![bob]));

        // Someone else cannot create a room under Alice's id.
        assert_eq!(CreateRoom::check(&seal(bob, room, p.encode_to_vec())), Err(RoomError::IdMismatch));
        let (room, mut p) = CreateRoom::new(&alice, "", RoomKind::Group, &[]);
        assert_eq!(CreateRoom::check(&seal(alice, room, p.encode_to_vec())), Err(RoomError::InvalidName));
        p.name = "x".into();
        p.kind = 9;
        assert_eq!(CreateRoom::check(&seal(alice, room, p.encode_to_vec())), Err(RoomError::InvalidKind(9)));
    }

    #[test]
    fn direct_rooms_derive_from_both_addresses() {
        let alice = Address::repeat_byte(1);
        let bob = Address::repeat_byte(2);
        let carol = Address::repeat_byte(3);
        let (room, p) = CreateRoom::direct(&alice, &bob);
        let (room_b, p_b) = CreateRoom::direct(&bob, &alice);
        assert_eq!(room, room_b);
        let c = CreateRoom::check(&seal(alice, room, p.encode_to_vec())).expect("valid");
        assert_eq!((c.kind, c.members.clone()), (RoomKind::Direct, vec![bob]));
        assert!(CreateRoom::check(&seal(bob, room, p_b.encode_to_vec())).is_ok());
        // A third wallet cannot create (or shadow) Alice and Bob's room.
        let mut forged = p.clone();
        forged.members = vec![bob.to_vec()];
        assert_eq!(CreateRoom::check(&seal(carol, room, forged.encode_to_vec())), Err(RoomError::InvalidDirect));
        // Not with oneself, not with two peers.
        let (self_room, self_p) = CreateRoom::direct(&alice, &alice);
        assert_eq!(CreateRoom::check(&seal(alice, self_room, self_p.encode_to_vec())), Err(RoomError::InvalidDirect));
        let mut two = p;
        two.members.push(carol.to_vec());
        assert_eq!(CreateRoom::check(&seal(alice, room, two.encode_to_vec())), Err(RoomError::InvalidDirect));
    }
}
