//! Keyed search tokens: search inside end-to-end encrypted rooms without showing the indexer
//! any text.
//!
//! - Words: text is normalized (Unicode NFKC, lowercase) and split on every character that is
//!   not alphanumeric. Each word longer than [`MAX_WORD_CHARS`] characters is cut to that length.
//! - Room search key: `HKDF-SHA256(ikm = epoch key, salt = none, info = "dchat/search/v1" ||
//!   room id)`, 32 bytes. Only holders of the epoch key (the room's members) can compute it.
//! - Tokens: `HMAC-SHA256(search key, "w:" || word)` for each word and `HMAC-SHA256(search key,
//!   "p:" || prefix)` for each prefix of 3 up to all of its characters, each truncated to
//!   [`TOKEN_LEN`] (16) bytes. A message's tokens are deduplicated and sorted, so their order says
//!   nothing of the word order.
//! - A query sends one token per word: the `w:` token for a whole word, the `p:` token for a
//!   prefix (a word of fewer than three characters is matched whole).
//!
//! How tokens reach the indexer: the sealed payload is opaque to nodes and indexers, so the
//! sending client computes the tokens of its plaintext and uploads them to the indexer itself
//! (`POST /v1/search/tokens`, [`TokenUpload`]) with its node access token; the indexer accepts
//! them only from the message's sender while a member of the room.
//!
//! Leakage, accepted by design and stated here so nobody relies on more:
//! - Within one room and one key epoch, equal words give equal tokens: the indexer sees which
//!   messages share words (and prefixes) and how often a token recurs, though not the words.
//! - The number of tokens of a message reveals roughly how many distinct words (and how long)
//!   it has.
//! - A query's tokens, and which messages they match, are visible to the indexer.
//! - Tokens differ between rooms and between epochs of a room: a new epoch (after a member
//!   leaves) gives new tokens, so a removed member's old key cannot build tokens for later
//!   messages. A member searching a room with several epochs sends one alternative per epoch key
//!   it holds.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use unicode_normalization::UnicodeNormalization;

use crate::RoomId;

/// Bytes of one token.
pub const TOKEN_LEN: usize = 16;
/// Shortest prefix that gets a token, in characters.
pub const MIN_PREFIX_CHARS: usize = 3;
/// Longest word kept, in characters; longer words are cut.
pub const MAX_WORD_CHARS: usize = 32;
/// Most tokens one message may carry (what an indexer should accept).
pub const MAX_TOKENS: usize = 4096;

const INFO: &[u8] = b"dchat/search/v1";

/// One search token.
pub type Token = [u8; TOKEN_LEN];

/// How a query word matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Match {
    /// The whole word.
    #[default]
    Word,
    /// Words starting with it (three characters or more; shorter ones match whole words).
    Prefix,
}

/// A room's search key for one key epoch.
#[derive(Clone)]
pub struct SearchKey([u8; 32]);

impl std::fmt::Debug for SearchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SearchKey(..)")
    }
}

type HmacSha256 = Hmac<Sha256>;

impl SearchKey {
    /// Derives the search key of `room` from one of its epoch keys.
    pub fn derive(epoch_key: &[u8; 32], room: &RoomId) -> Self {
        let hk = Hkdf::<Sha256>::new(None, epoch_key);
        let mut out = [0u8; 32];
        let info = [INFO, room.as_bytes()].concat();
        // 32 bytes is far below HKDF-SHA256's limit of 255 * 32, so expansion cannot fail.
        if hk.expand(&info, &mut out).is_err() {
            out = [0; 32];
        }
        Self(out)
    }

    /// The key bytes (for clients that cache them).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    fn mac(&self, tag: &[u8], text: &str) -> Token {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(tag);
        mac.update(text.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; TOKEN_LEN];
        out.copy_from_slice(&full[..TOKEN_LEN]);
        out
    }

    /// Token of a whole (normalized) word.
    pub fn word_token(&self, word: &str) -> Token {
        self.mac(b"w:", word)
    }

    /// Token of a (normalized) prefix.
    pub fn prefix_token(&self, prefix: &str) -> Token {
        self.mac(b"p:", prefix)
    }

    /// Every token of a message text: its words and their prefixes, deduplicated and sorted.
    pub fn message_tokens(&self, text: &str) -> Vec<Token> {
        let mut out = Vec::new();
        for word in words(text) {
            out.push(self.word_token(&word));
            let chars: Vec<(usize, char)> = word.char_indices().collect();
            for n in MIN_PREFIX_CHARS..=chars.len() {
                let end = chars.get(n).map_or(word.len(), |(i, _)| *i);
                out.push(self.prefix_token(&word[..end]));
            }
        }
        out.sort_unstable();
        out.dedup();
        out.truncate(MAX_TOKENS);
        out
    }

    /// One token per query word; a message matches when it carries all of them.
    pub fn query_tokens(&self, query: &str, how: Match) -> Vec<Token> {
        let mut out: Vec<Token> = words(query)
            .iter()
            .map(|w| match how {
                Match::Prefix if w.chars().count() >= MIN_PREFIX_CHARS => self.prefix_token(w),
                _ => self.word_token(w),
            })
            .collect();
        out.dedup();
        out
    }
}

/// The normalized words of a text, in order: NFKC, lowercase, split on non-alphanumerics, each
/// cut to [`MAX_WORD_CHARS`] characters.
pub fn words(text: &str) -> Vec<String> {
    let normalized: String = text.nfkc().collect::<String>().to_lowercase();
    normalized
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(MAX_WORD_CHARS).collect())
        .collect()
}

/// The body of `POST /v1/search/tokens` at an indexer: the tokens of one message the caller sent
/// to an encrypted room, each `0x` hex of [`TOKEN_LEN`] bytes. A later upload for the same
/// message replaces the earlier one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUpload {
    /// Message id, `0x` hex.
    pub message_id: String,
    /// The message's tokens.
    pub tokens: Vec<String>,
}

impl TokenUpload {
    /// An upload of `tokens` for `message_id` (`0x` hex).
    pub fn new(message_id: impl Into<String>, tokens: &[Token]) -> Self {
        Self { message_id: message_id.into(), tokens: tokens.iter().map(crate::ids::to_hex).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(room: &RoomId) -> SearchKey {
        SearchKey::derive(&[7u8; 32], room)
    }

    #[test]
    fn normalizes_case_width_ligatures_and_punctuation() {
        assert_eq!(words("Hello, WORLD! ｆｕｌｌ-width ﬁle"), ["hello", "world", "full", "width", "file"]);
        assert_eq!(words("Straße café_42"), ["straße", "café", "42"]);
        assert!(words("  ...  ").is_empty());
        let long = "a".repeat(100);
        assert_eq!(words(&long)[0].chars().count(), MAX_WORD_CHARS);
    }

    #[test]
    fn a_word_is_found_by_itself_and_its_prefixes() {
        let room = RoomId([1; 32]);
        let k = key(&room);
        let tokens = k.message_tokens("Meeting moved to Thursday");
        for q in ["meeting", "THURSDAY", "moved to"] {
            for t in k.query_tokens(q, Match::Word) {
                assert!(tokens.contains(&t), "{q}");
            }
        }
        for q in ["meet", "thu", "Thursd"] {
            for t in k.query_tokens(q, Match::Prefix) {
                assert!(tokens.contains(&t), "{q}");
            }
        }
        let miss = k.query_tokens("friday", Match::Word);
        assert!(!tokens.contains(&miss[0]));
        // "meet" is a prefix, not a word, of the message.
        assert!(!tokens.contains(&k.query_tokens("meet", Match::Word)[0]));
        // sorted and unique
        assert!(tokens.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn tokens_depend_on_room_and_epoch_key() {
        let a = RoomId([1; 32]);
        let b = RoomId([2; 32]);
        let t = |k: &SearchKey| k.word_token("hello");
        assert_ne!(t(&key(&a)), t(&key(&b)));
        assert_ne!(t(&key(&a)), t(&SearchKey::derive(&[8u8; 32], &a)));
        assert_eq!(t(&key(&a)), t(&key(&a)));
    }

    #[test]
    fn known_answer() {
        // HKDF-SHA256(ikm = 32 x 0x07, info = "dchat/search/v1" || 32 x 0x01), then
        // HMAC-SHA256(key, "w:hello")[..16]: pinned (and checked with Python's hmac) so other
        // implementations can check theirs.
        let k = key(&RoomId([1; 32]));
        let hkdf = Hkdf::<Sha256>::new(None, &[7u8; 32]);
        let mut expect = [0u8; 32];
        hkdf.expand(&[INFO, &[1u8; 32][..]].concat(), &mut expect).expect("expand");
        assert_eq!(k.to_bytes(), expect);
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&expect).expect("key");
        mac.update(b"w:hello");
        assert_eq!(k.word_token("hello")[..], mac.finalize().into_bytes()[..16]);
        assert_eq!(crate::ids::to_hex(k.word_token("hello")), "0x870fd2e30f953846814040021db3cd8c");
        let both = k.message_tokens("hel");
        assert_eq!(both.len(), 2, "a three-letter word has its word token and one prefix token");
        assert!(both.contains(&k.prefix_token("hel")) && both.contains(&k.word_token("hel")));
    }

    fn vectors_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/search/vectors.json")
    }

    fn vector_cases() -> Vec<serde_json::Value> {
        use crate::ids::to_hex;
        let texts = [
            "Meeting moved to Thursday",
            "Hello, WORLD! ｆｕｌｌ-width ﬁle",
            "Straße café_42 ΟΔΟΣ",
            "hel",
            "  ...  ",
            "x1 naïve Ⅻ ½ ① 東京タワー",
        ];
        texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let room = RoomId(std::array::from_fn(|j| (j as u8).wrapping_mul(3).wrapping_add(i as u8)));
                let epoch: [u8; 32] = std::array::from_fn(|j| (j as u8) ^ (0x40 + i as u8));
                let k = SearchKey::derive(&epoch, &room);
                let hex = |ts: Vec<Token>| ts.iter().map(to_hex).collect::<Vec<_>>();
                serde_json::json!({
                    "text": text, "room": to_hex(room.as_bytes()), "epoch_key": to_hex(epoch),
                    "search_key": to_hex(k.to_bytes()), "words": words(text),
                    "message_tokens": hex(k.message_tokens(text)),
                    "query_word_tokens": hex(k.query_tokens(text, Match::Word)),
                    "query_prefix_tokens": hex(k.query_tokens(text, Match::Prefix)),
                })
            })
            .collect()
    }

    /// The shared vectors (`testdata/search/vectors.json`, also run by the dApp's tests).
    #[test]
    fn vectors_match() {
        let text = std::fs::read_to_string(vectors_path()).expect("protocol/testdata/search/vectors.json");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["cases"].as_array().expect("cases"), &vector_cases());
    }

    /// Writes the vectors file (run with DCHAT_WRITE_VECTORS=1 and --ignored).
    #[test]
    #[ignore = "writes protocol/testdata/search/vectors.json"]
    fn write_vectors() {
        if std::env::var("DCHAT_WRITE_VECTORS").as_deref() != Ok("1") {
            return;
        }
        let out = serde_json::json!({
            "description": "dchat keyed search tokens (protocol/src/search.rs)",
            "cases": vector_cases(),
        });
        std::fs::create_dir_all(vectors_path().parent().expect("dir")).expect("mkdir");
        std::fs::write(vectors_path(), serde_json::to_string_pretty(&out).expect("json") + "\n").expect("write");
    }
}
