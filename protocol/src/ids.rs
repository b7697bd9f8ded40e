//! Identifiers: room ids are 32 bytes (`keccak256(creator || salt)`, see [`crate::room`]),
//! written as `0x`-prefixed lowercase hex.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A room id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub [u8; 32]);

/// A string or byte slice that is not a room id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("room id must be 32 bytes as 0x-prefixed hex")]
pub struct InvalidRoomId;

impl RoomId {
    /// A fresh random id.
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// Reads 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, InvalidRoomId> {
        bytes.try_into().map(Self).map_err(|_| InvalidRoomId)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomId({self})")
    }
}

impl FromStr for RoomId {
    type Err = InvalidRoomId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex_part = s.strip_prefix("0x").ok_or(InvalidRoomId)?;
        let bytes = hex::decode(hex_part).map_err(|_| InvalidRoomId)?;
        Self::from_slice(&bytes)
    }
}

impl Serialize for RoomId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RoomId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Encodes bytes as `0x`-prefixed lowercase hex.
pub fn to_hex(bytes: impl AsRef<[u8]>) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Decodes `0x`-prefixed (or bare) hex.
pub fn from_hex(s: &str) -> Result<Vec<u8>, hex::FromHexError> {
    hex::decode(s.strip_prefix("0x").unwrap_or(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_id_round_trips_and_rejects_bad_input() {
        let id = RoomId::random();
        assert_eq!(id.to_string().parse::<RoomId>(), Ok(id));
        assert_eq!("0x1234".parse::<RoomId>(), Err(InvalidRoomId));
        assert_eq!(hex::encode([0u8; 32]).parse::<RoomId>(), Err(InvalidRoomId));
    }
}
