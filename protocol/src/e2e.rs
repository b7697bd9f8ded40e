//! End-to-end encryption of group and direct rooms.
//!
//! - A room key epoch starts with a `RotateKey` envelope; the epoch id is that envelope's id.
//!   Its 32-byte key is random and wrapped for every member device with HPKE (RFC 9180, base
//!   mode, DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305): `info` is
//!   `"dchat/epoch/v1" || room id`, `aad` is the rotating sender's address. A device's box key
//!   is the X25519 key its wallet delegated with `urn:dchat:box:<hex>`.
//! - A message payload is [`Sealed`]: XChaCha20-Poly1305 under the epoch key with a random
//!   24-byte nonce and `aad = "dchat/msg/v1" || room || sender || epoch id || kind (u32, big
//!   endian)`, so a ciphertext cannot be moved to another room, sender, epoch or kind.
//!
//! The dApp implements the same construction; both run the vectors in
//! `protocol/testdata/e2e/vectors.json`.

use alloy_primitives::{Address, B256};
use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};
use hpke::{
    Deserializable, Kem as _, OpModeR, OpModeS, Serializable, aead::ChaCha20Poly1305, kdf::HkdfSha256,
    kem::X25519HkdfSha256,
};
use rand::{CryptoRng, RngCore};

use crate::{
    Kind, RoomId,
    control::{RotateKey, Wrap},
};

type Kem = X25519HkdfSha256;

/// Lends a `rand` 0.8 generator to `hpke`, which takes the newer `rand_core` traits.
struct Lend<'a, R>(&'a mut R);

impl<R: RngCore> hpke::rand_core::RngCore for Lend<'_, R> {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.0.fill_bytes(dst);
    }
}

impl<R: RngCore + CryptoRng> hpke::rand_core::CryptoRng for Lend<'_, R> {}

/// Payload of an encrypted message.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Sealed {
    /// Epoch id (the `RotateKey` envelope's id), 32 bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub epoch: Vec<u8>,
    /// 24-byte nonce.
    #[prost(bytes = "vec", tag = "2")]
    pub nonce: Vec<u8>,
    /// Ciphertext with its 16-byte tag.
    #[prost(bytes = "vec", tag = "3")]
    pub ciphertext: Vec<u8>,
}

/// Why encryption or decryption failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum E2eError {
    /// A key or field has the wrong length or does not decode.
    #[error("malformed encrypted payload: {0}")]
    Malformed(&'static str),
    /// The ciphertext does not open with this key (wrong key, wrong context or tampered).
    #[error("cannot decrypt: wrong key or tampered ciphertext")]
    Decrypt,
    /// The recipient's public key is not a usable X25519 key.
    #[error("unusable box key")]
    BadBoxKey,
}

/// An X25519 box key pair of a device.
#[derive(Clone)]
pub struct BoxSecret([u8; 32]);

impl std::fmt::Debug for BoxSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BoxSecret({})", crate::ids::to_hex(self.public()))
    }
}

impl BoxSecret {
    /// A fresh random key.
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// From its 32 secret bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The secret bytes (keep them private).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The public key to list in `urn:dchat:box:<hex>`.
    pub fn public(&self) -> [u8; 32] {
        // Any 32 bytes are a valid X25519 secret (clamped), so this cannot fail.
        match <Kem as hpke::Kem>::PrivateKey::from_bytes(&self.0) {
            Ok(sk) => Kem::sk_to_pk(&sk).to_bytes().into(),
            Err(_) => [0; 32],
        }
    }
}

const EPOCH_INFO: &[u8] = b"dchat/epoch/v1";
const MSG_AAD: &[u8] = b"dchat/msg/v1";

fn epoch_info(room: &RoomId) -> Vec<u8> {
    [EPOCH_INFO, room.as_bytes()].concat()
}

/// Wraps `key` for the device whose box key is `recipient`.
pub fn wrap_key<R: RngCore + CryptoRng>(
    room: &RoomId,
    sender: &Address,
    key: &[u8; 32],
    recipient: &[u8; 32],
    rng: &mut R,
) -> Result<Wrap, E2eError> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient).map_err(|_| E2eError::BadBoxKey)?;
    let (enc, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem, _>(
        &OpModeS::Base,
        &pk,
        &epoch_info(room),
        key,
        sender.as_slice(),
        &mut Lend(rng),
    )
    .map_err(|_| E2eError::BadBoxKey)?;
    Ok(Wrap { box_key: recipient.to_vec(), enc: enc.to_bytes().to_vec(), ciphertext })
}

/// Opens a wrap addressed to `secret`.
pub fn unwrap_key(room: &RoomId, sender: &Address, wrap: &Wrap, secret: &BoxSecret) -> Result<[u8; 32], E2eError> {
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&secret.0).map_err(|_| E2eError::Malformed("box secret"))?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&wrap.enc).map_err(|_| E2eError::Malformed("enc"))?;
    let key = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Base,
        &sk,
        &enc,
        &epoch_info(room),
        &wrap.ciphertext,
        sender.as_slice(),
    )
    .map_err(|_| E2eError::Decrypt)?;
    key.try_into().map_err(|_| E2eError::Malformed("epoch key length"))
}

/// A new epoch key wrapped for every device in `recipients` (duplicates dropped).
pub fn new_epoch<R: RngCore + CryptoRng>(
    room: &RoomId,
    sender: &Address,
    recipients: &[[u8; 32]],
    rng: &mut R,
) -> Result<([u8; 32], RotateKey), E2eError> {
    let mut key = [0u8; 32];
    rng.fill_bytes(&mut key);
    let mut wraps: Vec<Wrap> = Vec::with_capacity(recipients.len());
    for r in recipients {
        if !wraps.iter().any(|w| w.box_key == r) {
            wraps.push(wrap_key(room, sender, &key, r, rng)?);
        }
    }
    Ok((key, RotateKey { wraps }))
}

fn message_aad(room: &RoomId, sender: &Address, epoch: &B256, kind: Kind) -> Vec<u8> {
    let kind = u32::try_from(kind as i32).unwrap_or_default();
    [MSG_AAD, room.as_bytes(), sender.as_slice(), epoch.as_slice(), &kind.to_be_bytes()].concat()
}

/// Encrypts a message payload under an epoch key.
pub fn seal<R: RngCore + CryptoRng>(
    key: &[u8; 32],
    epoch: &B256,
    room: &RoomId,
    sender: &Address,
    kind: Kind,
    plaintext: &[u8],
    rng: &mut R,
) -> Sealed {
    let mut nonce = [0u8; 24];
    rng.fill_bytes(&mut nonce);
    seal_with_nonce(key, epoch, room, sender, kind, plaintext, nonce)
}

/// [`seal`] with a given nonce (test vectors; never reuse a nonce under one key).
pub fn seal_with_nonce(
    key: &[u8; 32],
    epoch: &B256,
    room: &RoomId,
    sender: &Address,
    kind: Kind,
    plaintext: &[u8],
    nonce: [u8; 24],
) -> Sealed {
    let cipher = XChaCha20Poly1305::new(key.into());
    let aad = message_aad(room, sender, epoch, kind);
    // Encryption into a Vec only fails on absurd lengths, which envelope bounds rule out.
    let ciphertext = cipher.encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad: &aad }).unwrap_or_default();
    Sealed { epoch: epoch.to_vec(), nonce: nonce.to_vec(), ciphertext }
}

/// Decrypts a sealed payload.
pub fn open(key: &[u8; 32], sealed: &Sealed, room: &RoomId, sender: &Address, kind: Kind) -> Result<Vec<u8>, E2eError> {
    let epoch = B256::try_from(sealed.epoch.as_slice()).map_err(|_| E2eError::Malformed("epoch"))?;
    let nonce: [u8; 24] = sealed.nonce.as_slice().try_into().map_err(|_| E2eError::Malformed("nonce"))?;
    let cipher = XChaCha20Poly1305::new(key.into());
    let aad = message_aad(room, sender, &epoch, kind);
    cipher.decrypt(&XNonce::from(nonce), Payload { msg: &sealed.ciphertext, aad: &aad }).map_err(|_| E2eError::Decrypt)
}

impl Sealed {
    /// The epoch id, when well formed.
    pub fn epoch_id(&self) -> Option<B256> {
        B256::try_from(self.epoch.as_slice()).ok()
    }
}

/// Kinds whose payload is sealed in private rooms.
pub fn is_sealed_kind(kind: Kind) -> bool {
    matches!(kind, Kind::Text | Kind::Media | Kind::Reaction | Kind::Edit)
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use rand::{SeedableRng, rngs::StdRng};
    use serde_json::{Value, json};

    use super::*;
    use crate::ids::{from_hex, to_hex};

    fn vectors_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/e2e/vectors.json")
    }

    fn hex32(v: &Value) -> [u8; 32] {
        from_hex(v.as_str().expect("hex")).expect("hex").try_into().expect("32 bytes")
    }

    #[test]
    fn round_trip_and_context_binding() {
        let mut rng = StdRng::seed_from_u64(1);
        let room = RoomId([1; 32]);
        let sender = Address::repeat_byte(2);
        let alice = BoxSecret::from_bytes([3; 32]);
        let bob = BoxSecret::from_bytes([4; 32]);
        let (key, rotate) =
            new_epoch(&room, &sender, &[alice.public(), bob.public(), alice.public()], &mut rng).expect("epoch");
        assert_eq!(rotate.wraps.len(), 2);
        for (wrap, secret) in rotate.wraps.iter().zip([&alice, &bob]) {
            assert_eq!(unwrap_key(&room, &sender, wrap, secret), Ok(key));
        }
        // Bob's secret does not open Alice's wrap; nor does another room or sender.
        assert_eq!(unwrap_key(&room, &sender, &rotate.wraps[0], &bob), Err(E2eError::Decrypt));
        assert_eq!(unwrap_key(&RoomId([9; 32]), &sender, &rotate.wraps[0], &alice), Err(E2eError::Decrypt));
        assert_eq!(unwrap_key(&room, &Address::ZERO, &rotate.wraps[0], &alice), Err(E2eError::Decrypt));

        let epoch = B256::repeat_byte(5);
        let sealed = seal(&key, &epoch, &room, &sender, Kind::Text, b"hello", &mut rng);
        assert_eq!(open(&key, &sealed, &room, &sender, Kind::Text).as_deref(), Ok(&b"hello"[..]));
        assert_eq!(open(&key, &sealed, &room, &sender, Kind::Reaction), Err(E2eError::Decrypt));
        assert_eq!(open(&key, &sealed, &room, &Address::ZERO, Kind::Text), Err(E2eError::Decrypt));
        assert_eq!(open(&[0; 32], &sealed, &room, &sender, Kind::Text), Err(E2eError::Decrypt));
        let mut moved = sealed.clone();
        moved.epoch = B256::repeat_byte(6).to_vec();
        assert_eq!(open(&key, &moved, &room, &sender, Kind::Text), Err(E2eError::Decrypt));
        let mut tampered = sealed;
        tampered.ciphertext[0] ^= 1;
        assert_eq!(open(&key, &tampered, &room, &sender, Kind::Text), Err(E2eError::Decrypt));
    }

    /// The shared vectors open as recorded (the dApp's tests open the same file).
    #[test]
    fn vectors_open() {
        let text = std::fs::read_to_string(vectors_path()).expect("protocol/testdata/e2e/vectors.json");
        let v: Value = serde_json::from_str(&text).expect("json");
        let wraps = v["wraps"].as_array().expect("wraps");
        assert!(!wraps.is_empty());
        for w in wraps {
            let secret = BoxSecret::from_bytes(hex32(&w["recipient_secret"]));
            assert_eq!(to_hex(secret.public()), w["recipient_public"].as_str().expect("public"));
            let room = RoomId(hex32(&w["room"]));
            let sender = Address::from_slice(&from_hex(w["sender"].as_str().expect("sender")).expect("hex"));
            let wrap = Wrap {
                box_key: secret.public().to_vec(),
                enc: from_hex(w["enc"].as_str().expect("enc")).expect("hex"),
                ciphertext: from_hex(w["ciphertext"].as_str().expect("ct")).expect("hex"),
            };
            assert_eq!(to_hex(unwrap_key(&room, &sender, &wrap, &secret).expect("opens")), w["epoch_key"]);
        }
        let messages = v["messages"].as_array().expect("messages");
        assert!(!messages.is_empty());
        for m in messages {
            let key = hex32(&m["epoch_key"]);
            let room = RoomId(hex32(&m["room"]));
            let sender = Address::from_slice(&from_hex(m["sender"].as_str().expect("sender")).expect("hex"));
            let kind = Kind::try_from(i32::try_from(m["kind"].as_u64().expect("kind")).expect("kind")).expect("kind");
            let payload = from_hex(m["payload"].as_str().expect("payload")).expect("hex");
            let sealed = Sealed::decode(payload.as_slice()).expect("Sealed");
            let plaintext = open(&key, &sealed, &room, &sender, kind).expect("opens");
            assert_eq!(to_hex(&plaintext), m["plaintext"]);
            // Sealing is deterministic given the nonce, so the payload bytes match too.
            let nonce: [u8; 24] = sealed.nonce.clone().try_into().expect("nonce");
            let epoch = sealed.epoch_id().expect("epoch");
            let again = seal_with_nonce(&key, &epoch, &room, &sender, kind, &plaintext, nonce);
            assert_eq!(to_hex(again.encode_to_vec()), m["payload"]);
        }
    }

    /// Writes the vectors file (run with DCHAT_WRITE_VECTORS=1 and --ignored).
    #[test]
    #[ignore = "writes protocol/testdata/e2e/vectors.json"]
    fn write_vectors() {
        if std::env::var("DCHAT_WRITE_VECTORS").as_deref() != Ok("1") {
            return;
        }
        let mut rng = StdRng::seed_from_u64(0x0dc4a7);
        let mut wraps = Vec::new();
        for i in 0..3u8 {
            let secret = BoxSecret::from_bytes(std::array::from_fn(|j| (j as u8).wrapping_mul(7).wrapping_add(i)));
            let room = RoomId(std::array::from_fn(|j| j as u8 ^ i));
            let sender = Address::repeat_byte(0x10 + i);
            let mut key = [0u8; 32];
            rng.fill_bytes(&mut key);
            let w = wrap_key(&room, &sender, &key, &secret.public(), &mut rng).expect("wrap");
            wraps.push(json!({
                "recipient_secret": to_hex(secret.to_bytes()), "recipient_public": to_hex(secret.public()),
                "room": to_hex(room.as_bytes()), "sender": to_hex(sender), "epoch_key": to_hex(key),
                "enc": to_hex(&w.enc), "ciphertext": to_hex(&w.ciphertext),
            }));
        }
        let mut messages = Vec::new();
        for (i, (kind, text)) in
            [(Kind::Text, "hello, dchat"), (Kind::Text, ""), (Kind::Reaction, "👍"), (Kind::Text, "ünïcödé ✓")]
                .into_iter()
                .enumerate()
        {
            let mut key = [0u8; 32];
            rng.fill_bytes(&mut key);
            let room = RoomId(std::array::from_fn(|j| (j as u8).wrapping_add(i as u8)));
            let sender = Address::repeat_byte(0x20 + i as u8);
            let epoch = B256::repeat_byte(0x30 + i as u8);
            let sealed = seal(&key, &epoch, &room, &sender, kind, text.as_bytes(), &mut rng);
            messages.push(json!({
                "epoch_key": to_hex(key), "room": to_hex(room.as_bytes()), "sender": to_hex(sender),
                "epoch": to_hex(epoch), "kind": kind as i32, "plaintext": to_hex(text.as_bytes()),
                "payload": to_hex(sealed.encode_to_vec()),
            }));
        }
        let doc = json!({
            "description": "dchat end-to-end encryption vectors: HPKE-wrapped epoch keys (RFC 9180 base mode, \
                X25519-HKDF-SHA256 / HKDF-SHA256 / ChaCha20-Poly1305, info = 'dchat/epoch/v1' || room, \
                aad = sender) and XChaCha20-Poly1305 sealed payloads (aad = 'dchat/msg/v1' || room || \
                sender || epoch || kind as u32 big endian; payload = protobuf Sealed). Hex is 0x-prefixed.",
            "wraps": wraps,
            "messages": messages,
        });
        std::fs::create_dir_all(vectors_path().parent().expect("dir")).expect("mkdir");
        std::fs::write(vectors_path(), serde_json::to_string_pretty(&doc).expect("json") + "\n").expect("write");
    }
}
