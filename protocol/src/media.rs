//! Media messages and the encryption of private-room media.
//!
//! - A `KIND_MEDIA` message carries a [`MediaRef`]: the file's IPFS CID, size, type, optional
//!   dimensions and name. In group and direct rooms the whole `MediaRef` travels inside the
//!   sealed payload (see [`crate::e2e`]), so the node never sees the name, the type or the key.
//! - Private-room files are encrypted by the client before upload with a fresh 32-byte key per
//!   file: XChaCha20-Poly1305 over 64 KiB chunks in the STREAM construction (Hoang, Reyhanitabar,
//!   Rogaway, Vizár 2015). Chunk `i` uses the nonce `prefix (19 bytes) || i (u32, big endian) ||
//!   last (1 byte: 1 for the final chunk, else 0)` and the AAD `"dchat/media/v1"`. Each chunk
//!   carries its 16-byte tag, so a file decrypts as it streams; reordered, dropped, truncated or
//!   extended ciphertext fails, because every chunk is bound to its position and only the final
//!   chunk carries the last flag.
//! - Chunking: the plaintext is cut into 64 KiB chunks; the final chunk holds the remaining
//!   0..=65536 bytes (an empty file is one empty final chunk; a file whose length is a multiple
//!   of 64 KiB ends with a full final chunk). The ciphertext is therefore
//!   `len + 16 × max(1, ⌈len / 65536⌉)` bytes.

use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};
use rand::{CryptoRng, RngCore};

/// Plaintext bytes per encrypted chunk.
pub const CHUNK: usize = 64 * 1024;
/// Poly1305 tag bytes added to every chunk.
pub const TAG: usize = 16;
/// Bytes of the per-file nonce prefix.
pub const NONCE_PREFIX: usize = 19;
/// AAD of every chunk.
const AAD: &[u8] = b"dchat/media/v1";
/// Most chunks in one file (the counter is 32 bits): 256 TiB.
const MAX_CHUNKS: u64 = u32::MAX as u64 + 1;

/// Payload of a `KIND_MEDIA` message.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct MediaRef {
    /// CIDv0 (`Qm…`) of the bytes uploaded: the ciphertext in private rooms.
    #[prost(string, tag = "1")]
    pub cid: String,
    /// Size of the file in bytes (the plaintext, before encryption).
    #[prost(uint64, tag = "2")]
    pub size: u64,
    /// MIME type of the file, e.g. `image/png`.
    #[prost(string, tag = "3")]
    pub mime: String,
    /// Width in pixels, for images and video; 0 when unknown.
    #[prost(uint32, tag = "4")]
    pub width: u32,
    /// Height in pixels, for images and video; 0 when unknown.
    #[prost(uint32, tag = "5")]
    pub height: u32,
    /// File name as the sender chose it (display only; never a path).
    #[prost(string, tag = "6")]
    pub name: String,
    /// Private rooms: the file's 32-byte content key; empty for a plaintext upload.
    #[prost(bytes = "vec", tag = "7")]
    pub key: Vec<u8>,
    /// Private rooms: the 19-byte nonce prefix; empty for a plaintext upload.
    #[prost(bytes = "vec", tag = "8")]
    pub nonce_prefix: Vec<u8>,
}

impl MediaRef {
    /// Whether the uploaded bytes are encrypted (a key is present).
    pub fn is_encrypted(&self) -> bool {
        !self.key.is_empty()
    }

    /// The content key, when the reference carries a well-formed one.
    pub fn content_key(&self) -> Result<Option<ContentKey>, MediaError> {
        if self.key.is_empty() && self.nonce_prefix.is_empty() {
            return Ok(None);
        }
        let key: [u8; 32] = self.key.as_slice().try_into().map_err(|_| MediaError::Malformed("key length"))?;
        let prefix: [u8; NONCE_PREFIX] =
            self.nonce_prefix.as_slice().try_into().map_err(|_| MediaError::Malformed("nonce prefix length"))?;
        Ok(Some(ContentKey { key, prefix }))
    }
}

/// Why encrypting or decrypting media failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// A field has the wrong length.
    #[error("malformed media reference: {0}")]
    Malformed(&'static str),
    /// A chunk does not open: wrong key, tampered, reordered or moved.
    #[error("cannot decrypt media chunk {0}: wrong key or tampered ciphertext")]
    Decrypt(u64),
    /// The ciphertext ended before its final chunk.
    #[error("encrypted media is truncated: it ends before its final chunk")]
    Truncated,
    /// More chunks than the 32-bit counter allows.
    #[error("file too large to encrypt")]
    TooLarge,
}

/// A file's content key and nonce prefix.
#[derive(Clone, PartialEq, Eq)]
pub struct ContentKey {
    /// XChaCha20-Poly1305 key.
    pub key: [u8; 32],
    /// First 19 bytes of every chunk nonce.
    pub prefix: [u8; NONCE_PREFIX],
}

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentKey(..)")
    }
}

impl ContentKey {
    /// A fresh random key and prefix.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut key = [0u8; 32];
        let mut prefix = [0u8; NONCE_PREFIX];
        rng.fill_bytes(&mut key);
        rng.fill_bytes(&mut prefix);
        Self { key, prefix }
    }

    fn nonce(&self, counter: u64, last: bool) -> Result<XNonce, MediaError> {
        let counter = u32::try_from(counter).map_err(|_| MediaError::TooLarge)?;
        let mut n = [0u8; 24];
        n[..NONCE_PREFIX].copy_from_slice(&self.prefix);
        n[NONCE_PREFIX..23].copy_from_slice(&counter.to_be_bytes());
        n[23] = u8::from(last);
        Ok(XNonce::from(n))
    }
}

/// Size of the ciphertext of a `len`-byte file.
pub fn encrypted_len(len: u64) -> u64 {
    let chunks = len.div_ceil(CHUNK as u64).max(1);
    len + chunks * TAG as u64
}

/// Encrypts a file chunk by chunk: feed plaintext with [`Encryptor::push`] in pieces of any
/// size, then call [`Encryptor::finish`]. Holds at most one chunk.
pub struct Encryptor {
    cipher: XChaCha20Poly1305,
    key: ContentKey,
    counter: u64,
    pending: Vec<u8>,
}

impl std::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryptor").field("counter", &self.counter).finish_non_exhaustive()
    }
}

impl Encryptor {
    /// An encryptor under `key`.
    pub fn new(key: &ContentKey) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new((&key.key).into()),
            key: key.clone(),
            counter: 0,
            pending: Vec::with_capacity(CHUNK),
        }
    }

    fn seal(&mut self, last: bool) -> Result<Vec<u8>, MediaError> {
        if self.counter >= MAX_CHUNKS {
            return Err(MediaError::TooLarge);
        }
        let nonce = self.key.nonce(self.counter, last)?;
        let out =
            self.cipher.encrypt(&nonce, Payload { msg: &self.pending, aad: AAD }).map_err(|_| MediaError::TooLarge)?;
        self.counter += 1;
        self.pending.clear();
        Ok(out)
    }

    /// Adds plaintext; returns the ciphertext of every chunk it completed.
    ///
    /// A full chunk is sealed only once more plaintext follows it, because only then is it
    /// known not to be the final one.
    pub fn push(&mut self, mut data: &[u8]) -> Result<Vec<u8>, MediaError> {
        let mut out = Vec::new();
        while !data.is_empty() {
            if self.pending.len() == CHUNK {
                out.extend(self.seal(false)?);
            }
            let take = (CHUNK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(out)
    }

    /// Seals the final chunk.
    pub fn finish(mut self) -> Result<Vec<u8>, MediaError> {
        self.seal(true)
    }
}

/// Decrypts a file chunk by chunk: feed ciphertext with [`Decryptor::push`] in pieces of any
/// size, then call [`Decryptor::finish`], which fails when the final chunk is missing. Holds at
/// most one chunk.
pub struct Decryptor {
    cipher: XChaCha20Poly1305,
    key: ContentKey,
    counter: u64,
    pending: Vec<u8>,
}

impl std::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decryptor").field("counter", &self.counter).finish_non_exhaustive()
    }
}

impl Decryptor {
    /// A decryptor under `key`.
    pub fn new(key: &ContentKey) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new((&key.key).into()),
            key: key.clone(),
            counter: 0,
            pending: Vec::with_capacity(CHUNK + TAG),
        }
    }

    fn open(&mut self, last: bool) -> Result<Vec<u8>, MediaError> {
        let nonce = self.key.nonce(self.counter, last)?;
        let out = self
            .cipher
            .decrypt(&nonce, Payload { msg: &self.pending, aad: AAD })
            .map_err(|_| MediaError::Decrypt(self.counter))?;
        self.counter += 1;
        self.pending.clear();
        Ok(out)
    }

    /// Adds ciphertext; returns the plaintext of every chunk it completed (a full chunk is
    /// opened once more ciphertext follows it).
    pub fn push(&mut self, mut data: &[u8]) -> Result<Vec<u8>, MediaError> {
        let mut out = Vec::new();
        while !data.is_empty() {
            if self.pending.len() == CHUNK + TAG {
                out.extend(self.open(false)?);
            }
            let take = (CHUNK + TAG - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(out)
    }

    /// Opens the final chunk. Fails when the ciphertext was cut short (including cut at a chunk
    /// boundary: that chunk then lacks the last flag) or is otherwise damaged.
    pub fn finish(mut self) -> Result<Vec<u8>, MediaError> {
        if self.pending.len() < TAG {
            return Err(MediaError::Truncated);
        }
        match self.open(true) {
            Ok(plain) => Ok(plain),
            Err(e) => {
                // A chunk that opens as a middle one: the ciphertext stops before its final chunk.
                let nonce = self.key.nonce(self.counter, false)?;
                let middle = self.cipher.decrypt(&nonce, Payload { msg: &self.pending, aad: AAD }).is_ok();
                Err(if middle { MediaError::Truncated } else { e })
            }
        }
    }
}

/// Encrypts a whole file in memory (small files and tests; large files use [`Encryptor`]).
pub fn encrypt(key: &ContentKey, plaintext: &[u8]) -> Result<Vec<u8>, MediaError> {
    let mut e = Encryptor::new(key);
    let mut out = e.push(plaintext)?;
    out.extend(e.finish()?);
    Ok(out)
}

/// Decrypts a whole file in memory (small files and tests; large files use [`Decryptor`]).
pub fn decrypt(key: &ContentKey, ciphertext: &[u8]) -> Result<Vec<u8>, MediaError> {
    let mut d = Decryptor::new(key);
    let mut out = d.push(ciphertext)?;
    out.extend(d.finish()?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    fn key(seed: u64) -> ContentKey {
        ContentKey::random(&mut StdRng::seed_from_u64(seed))
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i.wrapping_mul(31) ^ (i >> 9)) as u8).collect()
    }

    #[test]
    fn round_trips_at_every_chunk_boundary() {
        let k = key(1);
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17] {
            let plain = data(len);
            let ct = encrypt(&k, &plain).expect("encrypts");
            assert_eq!(ct.len() as u64, encrypted_len(len as u64), "length of {len}");
            assert_eq!(decrypt(&k, &ct).expect("decrypts"), plain, "round trip of {len}");
        }
    }

    #[test]
    fn streams_in_pieces_of_any_size() {
        let k = key(2);
        let plain = data(5 * CHUNK + 1234);
        let whole = encrypt(&k, &plain).expect("encrypts");
        for piece in [1usize, 7, 4096, CHUNK, CHUNK + TAG, 100_000] {
            let mut e = Encryptor::new(&k);
            let mut ct = Vec::new();
            for p in plain.chunks(piece) {
                ct.extend(e.push(p).expect("push"));
            }
            ct.extend(e.finish().expect("finish"));
            assert_eq!(ct, whole, "same ciphertext whatever the piece size ({piece})");
            let mut d = Decryptor::new(&k);
            let mut out = Vec::new();
            for p in ct.chunks(piece) {
                out.extend(d.push(p).expect("push"));
            }
            out.extend(d.finish().expect("finish"));
            assert_eq!(out, plain);
        }
    }

    #[test]
    fn detects_tampering_truncation_reordering_and_extension() {
        let k = key(3);
        let plain = data(3 * CHUNK + 100);
        let ct = encrypt(&k, &plain).expect("encrypts");
        let step = CHUNK + TAG;

        let mut flipped = ct.clone();
        flipped[step + 5] ^= 1;
        assert_eq!(decrypt(&k, &flipped), Err(MediaError::Decrypt(1)));
        assert_eq!(decrypt(&key(4), &ct), Err(MediaError::Decrypt(0)), "wrong key");

        // Cut at a chunk boundary: the last chunk present is not marked final.
        assert_eq!(decrypt(&k, &ct[..2 * step]), Err(MediaError::Truncated));
        // Cut inside a chunk, or to nothing at all.
        assert!(decrypt(&k, &ct[..2 * step + 40]).is_err());
        assert_eq!(decrypt(&k, &[]), Err(MediaError::Truncated));
        assert_eq!(decrypt(&k, &ct[..TAG - 1]), Err(MediaError::Truncated));

        // Two chunks swapped.
        let mut swapped = ct.clone();
        swapped[..step].copy_from_slice(&ct[step..2 * step]);
        swapped[step..2 * step].copy_from_slice(&ct[..step]);
        assert_eq!(decrypt(&k, &swapped), Err(MediaError::Decrypt(0)));

        // Anything after the final chunk.
        let mut d = Decryptor::new(&k);
        let mut extended = ct.clone();
        extended.extend_from_slice(&[0u8; 20]);
        let r = d.push(&extended).and_then(|_| d.finish());
        assert!(r.is_err(), "extra bytes make the final chunk fail to open");

        // A file of exactly one full chunk cut to nothing after its chunk stays detectable:
        // a full final chunk opens only as final.
        let one = encrypt(&k, &data(CHUNK)).expect("encrypts");
        assert_eq!(one.len(), step);
        assert_eq!(decrypt(&k, &one).expect("opens"), data(CHUNK));
        let two = encrypt(&k, &data(2 * CHUNK)).expect("encrypts");
        assert_eq!(decrypt(&k, &two[..step]), Err(MediaError::Truncated));
    }

    #[test]
    fn media_ref_round_trips_and_checks_key_lengths() {
        let k = key(5);
        let r = MediaRef {
            cid: "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH".into(),
            size: 0,
            mime: "image/png".into(),
            width: 640,
            height: 480,
            name: "cat.png".into(),
            key: k.key.to_vec(),
            nonce_prefix: k.prefix.to_vec(),
        };
        let back = MediaRef::decode(r.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(back, r);
        assert!(back.is_encrypted());
        assert_eq!(back.content_key().expect("well formed"), Some(k));
        let plain = MediaRef { key: vec![], nonce_prefix: vec![], ..r.clone() };
        assert_eq!(plain.content_key(), Ok(None));
        let bad = MediaRef { key: vec![1; 31], ..r };
        assert_eq!(bad.content_key(), Err(MediaError::Malformed("key length")));
    }

    fn vectors_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/media/vectors.json")
    }

    fn sha256_hex(b: &[u8]) -> String {
        use sha2::Digest as _;
        crate::ids::to_hex(sha2::Sha256::digest(b))
    }

    /// The shared vectors (`testdata/media/vectors.json`, also run by the dApp's tests): each
    /// file's ciphertext hashes as recorded (and equals it, for the small ones) and decrypts back;
    /// the `MediaRef` encodings decode to their fields.
    #[test]
    fn vectors_match() {
        use crate::ids::{from_hex, to_hex};
        let text = std::fs::read_to_string(vectors_path()).expect("protocol/testdata/media/vectors.json");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        let files = v["files"].as_array().expect("files");
        assert!(!files.is_empty());
        for f in files {
            let k = ContentKey {
                key: from_hex(f["key"].as_str().expect("key")).expect("hex").try_into().expect("32"),
                prefix: from_hex(f["nonce_prefix"].as_str().expect("prefix")).expect("hex").try_into().expect("19"),
            };
            let plain = data(usize::try_from(f["len"].as_u64().expect("len")).expect("len"));
            let ct = encrypt(&k, &plain).expect("encrypts");
            assert_eq!(ct.len() as u64, f["ciphertext_len"].as_u64().expect("ciphertext_len"));
            assert_eq!(sha256_hex(&ct), f["ciphertext_sha256"].as_str().expect("sha"));
            if let Some(hex) = f["ciphertext"].as_str() {
                assert_eq!(to_hex(&ct), hex);
            }
            assert_eq!(decrypt(&k, &ct).expect("decrypts"), plain);
        }
        for r in v["refs"].as_array().expect("refs") {
            let bytes = from_hex(r["encoded"].as_str().expect("encoded")).expect("hex");
            let m = MediaRef::decode(bytes.as_slice()).expect("decodes");
            assert_eq!(m.cid, r["cid"].as_str().expect("cid"));
            assert_eq!(m.size, r["size"].as_u64().expect("size"));
            assert_eq!(m.name, r["name"].as_str().expect("name"));
            assert_eq!(to_hex(m.encode_to_vec()), r["encoded"].as_str().expect("encoded"));
        }
    }

    /// Writes the vectors file (run with DCHAT_WRITE_VECTORS=1 and --ignored).
    #[test]
    #[ignore = "writes protocol/testdata/media/vectors.json"]
    fn write_vectors() {
        use crate::ids::to_hex;
        use serde_json::json;
        if std::env::var("DCHAT_WRITE_VECTORS").as_deref() != Ok("1") {
            return;
        }
        let mut files = Vec::new();
        for (i, len) in [0, 1, 100, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17].into_iter().enumerate() {
            let k = key(100 + i as u64);
            let ct = encrypt(&k, &data(len)).expect("encrypts");
            let mut f = json!({
                "len": len, "key": to_hex(k.key), "nonce_prefix": to_hex(k.prefix),
                "ciphertext_len": ct.len(), "ciphertext_sha256": sha256_hex(&ct),
            });
            if len <= 100 {
                f["ciphertext"] = json!(to_hex(&ct));
            }
            files.push(f);
        }
        let k = key(200);
        let refs: Vec<_> = [
            MediaRef {
                cid: "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH".into(),
                size: 48213,
                mime: "image/png".into(),
                width: 640,
                height: 480,
                name: "cat.png".into(),
                key: k.key.to_vec(),
                nonce_prefix: k.prefix.to_vec(),
            },
            MediaRef {
                cid: "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o".into(),
                size: 12,
                mime: "text/plain".into(),
                name: "notes – été.txt".into(),
                ..MediaRef::default()
            },
        ]
        .iter()
        .map(|m| {
            json!({
                "cid": m.cid, "size": m.size, "mime": m.mime, "width": m.width, "height": m.height, "name": m.name,
                "key": to_hex(&m.key), "nonce_prefix": to_hex(&m.nonce_prefix), "encoded": to_hex(m.encode_to_vec()),
            })
        })
        .collect();
        let out = json!({
            "description": "dchat media encryption (protocol/src/media.rs): plaintext byte i of a file of len bytes is (i * 31 ^ (i >> 9)) & 0xff",
            "files": files,
            "refs": refs,
        });
        std::fs::create_dir_all(vectors_path().parent().expect("dir")).expect("mkdir");
        std::fs::write(vectors_path(), serde_json::to_string_pretty(&out).expect("json") + "\n").expect("write");
    }
}
