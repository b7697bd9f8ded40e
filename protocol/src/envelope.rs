//! The signed message envelope.
//!
//! `body` is the protobuf encoding of [`Body`]; `hash = keccak256(body)` is the message id (and
//! later the Merkle leaf); the delegated device key signs `hash` with Ed25519. Checks run on the
//! bytes as received, so there is nothing to canonicalize. The schema is written out in
//! `protocol/proto/envelope.proto` for other languages.

use alloy_primitives::{Address, B256, keccak256};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use prost::Message as _;
use serde::{Deserialize, Serialize};

use crate::ids::{RoomId, from_hex, to_hex};

/// The only body version this code reads and writes.
pub const VERSION: u32 = 1;

/// What a message is. Ephemeral kinds are relayed but never stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(i32)]
pub enum Kind {
    /// Not set: always refused.
    Unspecified = 0,
    /// A text message; the payload is UTF-8 (or ciphertext in encrypted rooms).
    Text = 1,
    /// A media reference.
    Media = 2,
    /// A reaction to another message.
    Reaction = 3,
    /// An edit of an earlier message.
    Edit = 4,
    /// A tombstone for an earlier message.
    Delete = 5,
    /// A read receipt.
    Receipt = 6,
    /// Typing indicator (ephemeral).
    Typing = 7,
    /// Presence (ephemeral).
    Presence = 8,
    /// Room creation (control).
    CreateRoom = 16,
    /// Invite (control).
    Invite = 17,
    /// Join (control).
    Join = 18,
    /// Leave (control).
    Leave = 19,
    /// Remove a member (control).
    Remove = 20,
    /// Change a member's role (control).
    SetRole = 21,
    /// Start a new key epoch (control).
    RotateKey = 22,
    /// Change the room policy (control).
    SetPolicy = 23,
    /// Ask a wallet to become contacts (social).
    FriendRequest = 32,
    /// Accept a pending contact request (social).
    FriendAccept = 33,
    /// Decline (or withdraw) a pending contact request (social).
    FriendDecline = 34,
    /// End a contact (social).
    FriendRemove = 35,
    /// Block a wallet (social).
    Block = 36,
    /// Lift a block (social).
    Unblock = 37,
    /// Mark notifications read (social).
    NotificationsRead = 38,
    /// Mute or unmute a room's notifications (social).
    Mute = 39,
    /// Social settings such as hiding presence (social).
    Settings = 40,
}

impl Kind {
    /// Relayed live but never stored.
    pub fn is_ephemeral(self) -> bool {
        matches!(self, Self::Typing | Self::Presence)
    }

    /// Changes room membership, roles, keys or policy.
    pub fn is_control(self) -> bool {
        (16..32).contains(&(self as i32))
    }

    /// About the author's contacts, blocks, notifications and settings; names the author's
    /// social id as room (see [`crate::social`]).
    pub fn is_social(self) -> bool {
        (self as i32) >= 32
    }
}

/// The signed part of a message.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Body {
    /// Body version, [`VERSION`].
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// Room id, 32 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub room: Vec<u8>,
    /// Sending wallet, 20 bytes.
    #[prost(bytes = "vec", tag = "3")]
    pub sender: Vec<u8>,
    /// The delegated Ed25519 device key that signs, 32 bytes.
    #[prost(bytes = "vec", tag = "4")]
    pub device_key: Vec<u8>,
    /// Sender's clock, milliseconds since the Unix epoch.
    #[prost(uint64, tag = "5")]
    pub timestamp_ms: u64,
    /// Lamport clock within the room.
    #[prost(uint64, tag = "6")]
    pub lamport: u64,
    /// [`Kind`].
    #[prost(enumeration = "Kind", tag = "7")]
    pub kind: i32,
    /// Kind-specific payload.
    #[prost(bytes = "vec", tag = "8")]
    pub payload: Vec<u8>,
    /// Wallets the message mentions, 20 bytes each (they are notified). Outside the sealed
    /// payload, so the node sees them even in encrypted rooms.
    #[prost(bytes = "vec", repeated, tag = "9")]
    pub mentions: Vec<Vec<u8>>,
    /// The message this one replies to, 32 bytes (its author is notified); empty otherwise.
    #[prost(bytes = "vec", tag = "10")]
    pub reply_to: Vec<u8>,
}

/// The envelope as it travels: body bytes, their hash, the signature, the signer.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Envelope {
    /// Protobuf-encoded [`Body`].
    #[prost(bytes = "vec", tag = "1")]
    pub body: Vec<u8>,
    /// keccak256 of `body`.
    #[prost(bytes = "vec", tag = "2")]
    pub hash: Vec<u8>,
    /// Ed25519 signature of `hash` by `signer`.
    #[prost(bytes = "vec", tag = "3")]
    pub signature: Vec<u8>,
    /// The device key that signed, 32 bytes.
    #[prost(bytes = "vec", tag = "4")]
    pub signer: Vec<u8>,
}

/// Limits every envelope is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bounds {
    /// Largest encoded envelope accepted, bytes.
    pub max_envelope_bytes: usize,
    /// How far a timestamp may run ahead of the receiver's clock, milliseconds.
    pub max_future_skew_ms: u64,
    /// How far a lamport clock may jump past the highest one seen in the room.
    pub max_lamport_jump: u64,
}

impl Default for Bounds {
    fn default() -> Self {
        Self { max_envelope_bytes: 64 * 1024, max_future_skew_ms: 120_000, max_lamport_jump: 100_000 }
    }
}

impl Bounds {
    /// Checks a lamport clock against the highest one already seen in the room.
    pub fn check_lamport(&self, lamport: u64, room_max: u64) -> Result<(), EnvelopeError> {
        if lamport > room_max.saturating_add(self.max_lamport_jump) {
            return Err(EnvelopeError::LamportJump { lamport, limit: room_max.saturating_add(self.max_lamport_jump) });
        }
        Ok(())
    }
}

/// Why an envelope was refused. Every variant has a stable [`EnvelopeError::code`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Over [`Bounds::max_envelope_bytes`].
    #[error("envelope is {size} bytes, the limit is {limit}")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// Bytes that do not decode, or fields of the wrong length.
    #[error("malformed envelope: {0}")]
    Malformed(String),
    /// `hash` is not keccak256 of `body`.
    #[error("hash does not match keccak256(body)")]
    HashMismatch,
    /// A body version this node does not read.
    #[error("unsupported body version {0}")]
    UnsupportedVersion(u32),
    /// An unknown or unspecified kind.
    #[error("unknown message kind {0}")]
    UnknownKind(i32),
    /// `signer` differs from the body's device key.
    #[error("signer is not the body's device key")]
    SignerMismatch,
    /// The Ed25519 signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// Timestamp too far in the future.
    #[error("timestamp {timestamp_ms} is more than {skew_ms} ms ahead of this node's clock")]
    ClockSkew {
        /// The body's timestamp.
        timestamp_ms: u64,
        /// Allowed skew.
        skew_ms: u64,
    },
    /// Lamport clock jumps too far.
    #[error("lamport {lamport} is past the room limit {limit}")]
    LamportJump {
        /// The body's lamport.
        lamport: u64,
        /// Highest accepted.
        limit: u64,
    },
}

impl EnvelopeError {
    /// Stable snake_case code, for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "envelope_too_large",
            Self::Malformed(_) => "envelope_malformed",
            Self::HashMismatch => "envelope_hash_mismatch",
            Self::UnsupportedVersion(_) => "envelope_unsupported_version",
            Self::UnknownKind(_) => "envelope_unknown_kind",
            Self::SignerMismatch => "envelope_signer_mismatch",
            Self::BadSignature => "envelope_signature_invalid",
            Self::ClockSkew { .. } => "envelope_clock_skew",
            Self::LamportJump { .. } => "envelope_lamport_jump",
        }
    }
}

/// An envelope whose hash, signature and body have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The envelope as received.
    pub envelope: Envelope,
    /// The decoded body.
    pub body: Body,
    /// Message id.
    pub id: B256,
    /// Room.
    pub room: RoomId,
    /// Sending wallet.
    pub sender: Address,
    /// Signing device key.
    pub device_key: [u8; 32],
    /// Kind.
    pub kind: Kind,
}

impl Envelope {
    /// Encodes `body`, hashes it and signs the hash with `key`.
    pub fn seal(body: &Body, key: &SigningKey) -> Self {
        let body = body.encode_to_vec();
        let hash = keccak256(&body);
        let signature = key.sign(hash.as_slice()).to_bytes().to_vec();
        Self { body, hash: hash.to_vec(), signature, signer: key.verifying_key().to_bytes().to_vec() }
    }

    /// Encoded size on the wire.
    pub fn wire_size(&self) -> usize {
        self.encoded_len()
    }

    /// Checks size, hash, body, signer and signature, and that the timestamp is not ahead of
    /// `now_ms` by more than the allowed skew. Delegation, membership and lamport checks need
    /// the store and are the caller's.
    pub fn open(self, bounds: &Bounds, now_ms: u64) -> Result<Verified, EnvelopeError> {
        let size = self.wire_size();
        if size > bounds.max_envelope_bytes {
            return Err(EnvelopeError::TooLarge { size, limit: bounds.max_envelope_bytes });
        }
        let id = keccak256(&self.body);
        if self.hash.as_slice() != id.as_slice() {
            return Err(EnvelopeError::HashMismatch);
        }
        let body = Body::decode(self.body.as_slice()).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if body.version != VERSION {
            return Err(EnvelopeError::UnsupportedVersion(body.version));
        }
        let kind = match Kind::try_from(body.kind) {
            Ok(Kind::Unspecified) | Err(_) => return Err(EnvelopeError::UnknownKind(body.kind)),
            Ok(kind) => kind,
        };
        let room = RoomId::from_slice(&body.room).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        let sender = Address::try_from(body.sender.as_slice())
            .map_err(|_| EnvelopeError::Malformed("sender must be 20 bytes".into()))?;
        let device_key: [u8; 32] = body
            .device_key
            .as_slice()
            .try_into()
            .map_err(|_| EnvelopeError::Malformed("device key must be 32 bytes".into()))?;
        if self.signer.as_slice() != device_key {
            return Err(EnvelopeError::SignerMismatch);
        }
        let key = VerifyingKey::from_bytes(&device_key).map_err(|_| EnvelopeError::BadSignature)?;
        let signature =
            ed25519_dalek::Signature::from_slice(&self.signature).map_err(|_| EnvelopeError::BadSignature)?;
        key.verify_strict(id.as_slice(), &signature).map_err(|_| EnvelopeError::BadSignature)?;
        if body.timestamp_ms > now_ms.saturating_add(bounds.max_future_skew_ms) {
            return Err(EnvelopeError::ClockSkew {
                timestamp_ms: body.timestamp_ms,
                skew_ms: bounds.max_future_skew_ms,
            });
        }
        Ok(Verified { envelope: self, body, id, room, sender, device_key, kind })
    }
}

/// JSON form of an [`Envelope`]: every field `0x`-hex. `hash` may be left out; when present it
/// must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeJson {
    /// Body bytes.
    pub body: String,
    /// Hash, optional on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Signature.
    pub signature: String,
    /// Signer.
    pub signer: String,
}

impl From<&Envelope> for EnvelopeJson {
    fn from(e: &Envelope) -> Self {
        Self {
            body: to_hex(&e.body),
            hash: Some(to_hex(&e.hash)),
            signature: to_hex(&e.signature),
            signer: to_hex(&e.signer),
        }
    }
}

impl TryFrom<&EnvelopeJson> for Envelope {
    type Error = EnvelopeError;
    fn try_from(j: &EnvelopeJson) -> Result<Self, Self::Error> {
        let field =
            |name: &str, s: &str| from_hex(s).map_err(|_| EnvelopeError::Malformed(format!("{name} is not hex")));
        let body = field("body", &j.body)?;
        let hash = match &j.hash {
            Some(h) => field("hash", h)?,
            None => keccak256(&body).to_vec(),
        };
        Ok(Self { body, hash, signature: field("signature", &j.signature)?, signer: field("signer", &j.signer)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(key: &SigningKey) -> Body {
        Body {
            version: VERSION,
            room: vec![1; 32],
            sender: vec![2; 20],
            device_key: key.verifying_key().to_bytes().to_vec(),
            timestamp_ms: 1_000,
            lamport: 1,
            kind: Kind::Text as i32,
            payload: b"hello".to_vec(),
            ..Body::default()
        }
    }

    #[test]
    fn sealed_envelope_opens() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let v = Envelope::seal(&body(&key), &key).open(&Bounds::default(), 1_000).expect("valid");
        assert_eq!(v.kind, Kind::Text);
        assert_eq!(v.id.as_slice(), keccak256(&v.envelope.body).as_slice());
    }

    #[test]
    fn tampering_is_caught() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let bounds = Bounds::default();
        let mut e = Envelope::seal(&body(&key), &key);
        e.body[0] ^= 1;
        assert_eq!(e.open(&bounds, 1_000).expect_err("tampered").code(), "envelope_hash_mismatch");

        let mut e = Envelope::seal(&body(&key), &key);
        e.signature[0] ^= 1;
        assert_eq!(e.open(&bounds, 1_000), Err(EnvelopeError::BadSignature));

        let other = SigningKey::from_bytes(&[4; 32]);
        let e = Envelope::seal(&body(&key), &other);
        assert_eq!(e.open(&bounds, 1_000), Err(EnvelopeError::SignerMismatch));
    }

    #[test]
    fn bounds_are_enforced() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let bounds = Bounds { max_envelope_bytes: 400, ..Bounds::default() };
        let mut b = body(&key);
        b.payload = vec![0; 500];
        assert_eq!(Envelope::seal(&b, &key).open(&bounds, 1_000).expect_err("big").code(), "envelope_too_large");
        let b = Body { timestamp_ms: 10_000_000, ..body(&key) };
        assert_eq!(Envelope::seal(&b, &key).open(&bounds, 1_000).expect_err("skew").code(), "envelope_clock_skew");
        assert_eq!(bounds.check_lamport(100_002, 1).expect_err("jump").code(), "envelope_lamport_jump");
        assert!(bounds.check_lamport(5, 1).is_ok());
        let b = Body { kind: 99, ..body(&key) };
        assert_eq!(Envelope::seal(&b, &key).open(&bounds, 1_000), Err(EnvelopeError::UnknownKind(99)));
    }

    #[test]
    fn json_form_round_trips() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let e = Envelope::seal(&body(&key), &key);
        let j = EnvelopeJson::from(&e);
        assert_eq!(Envelope::try_from(&j), Ok(e));
    }
}
