//! Access tokens: compact JWS (JWT) signed with the node's Ed25519 key (`alg: EdDSA`), and the
//! JWKS document that publishes the key so other services verify tokens without a shared secret.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Audience every dchat access token carries.
pub const AUDIENCE: &str = "dchat";

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuing node (its public URL).
    pub iss: String,
    /// Wallet address, EIP-55.
    pub sub: String,
    /// Audience, [`AUDIENCE`].
    pub aud: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// Token id.
    pub jti: String,
    /// Delegated device signing key (`0x` hex), when the sign-in delegated one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not three base64url parts of JSON.
    #[error("token is malformed")]
    Malformed,
    /// Header names another algorithm or an unknown key id.
    #[error("token is signed with an unknown key or algorithm")]
    UnknownKey,
    /// Signature does not verify.
    #[error("token signature is invalid")]
    BadSignature,
    /// Past `exp`.
    #[error("token expired")]
    Expired,
    /// Wrong audience.
    #[error("token is for another audience")]
    WrongAudience,
}

impl TokenError {
    /// Stable snake_case code, for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "token_malformed",
            Self::UnknownKey => "token_unknown_key",
            Self::BadSignature => "token_invalid",
            Self::Expired => "token_expired",
            Self::WrongAudience => "token_wrong_audience",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    typ: String,
    kid: String,
}

/// One public key in a JWKS document (RFC 8037 OKP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `OKP`.
    pub kty: String,
    /// `Ed25519`.
    pub crv: String,
    /// base64url public key.
    pub x: String,
    /// Key id.
    pub kid: String,
    /// `EdDSA`.
    pub alg: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub use_: String,
}

/// A JWKS document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// Keys.
    pub keys: Vec<Jwk>,
}

/// Key id of a public key: the first 8 bytes of its keccak256, hex.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&alloy_primitives::keccak256(key.as_bytes())[..8])
}

/// Signs tokens with a node key.
#[derive(Clone)]
pub struct TokenSigner {
    key: SigningKey,
    kid: String,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// Wraps a signing key.
    pub fn new(key: SigningKey) -> Self {
        let kid = key_id(&key.verifying_key());
        Self { key, kid }
    }

    /// Key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs claims into a compact JWT.
    pub fn sign(&self, claims: &Claims) -> String {
        let header = Header { alg: "EdDSA".into(), typ: "JWT".into(), kid: self.kid.clone() };
        let signing_input = format!("{}.{}", b64_json(&header), b64_json(claims));
        let sig = self.key.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", B64.encode(sig.to_bytes()))
    }

    /// The JWKS publishing this key.
    pub fn jwks(&self) -> Jwks {
        Jwks { keys: vec![jwk(&self.key.verifying_key())] }
    }

    /// A verifier for tokens of this key.
    pub fn verifier(&self) -> TokenVerifier {
        TokenVerifier { keys: vec![(self.kid.clone(), self.key.verifying_key())], verified: Default::default() }
    }
}

fn jwk(key: &VerifyingKey) -> Jwk {
    Jwk {
        kty: "OKP".into(),
        crv: "Ed25519".into(),
        x: B64.encode(key.as_bytes()),
        kid: key_id(key),
        alg: "EdDSA".into(),
        use_: "sig".into(),
    }
}

fn b64_json<T: Serialize>(value: &T) -> String {
    // Serializing these plain structs cannot fail.
    B64.encode(serde_json::to_vec(value).unwrap_or_default())
}

/// Verifies tokens against a set of public keys (for example a fetched JWKS).
///
/// A client sends the same token with every request until it expires, so a verifier remembers
/// the tokens whose signature it has checked (by SHA-256 of the whole token, at most
/// [`VERIFIED_CAP`] of them; clones share the memory) and checks only expiry for those.
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    keys: Vec<(String, VerifyingKey)>,
    verified: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<[u8; 32], Claims>>>,
}

/// Most verified tokens a [`TokenVerifier`] remembers; it forgets them all when full.
pub const VERIFIED_CAP: usize = 20_000;

impl TokenVerifier {
    /// Builds a verifier from a JWKS document, skipping keys that are not Ed25519.
    pub fn from_jwks(jwks: &Jwks) -> Self {
        let keys = jwks
            .keys
            .iter()
            .filter(|k| k.kty == "OKP" && k.crv == "Ed25519")
            .filter_map(|k| {
                let bytes: [u8; 32] = B64.decode(&k.x).ok()?.try_into().ok()?;
                Some((k.kid.clone(), VerifyingKey::from_bytes(&bytes).ok()?))
            })
            .collect();
        Self { keys, verified: Default::default() }
    }

    /// Checks signature, audience and expiry at `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        use sha2::Digest as _;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let remembered = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&digest).cloned();
        let claims = match remembered {
            Some(claims) => claims,
            None => {
                let claims = self.check_signature(token)?;
                let mut seen = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if seen.len() >= VERIFIED_CAP {
                    seen.clear();
                }
                seen.insert(digest, claims.clone());
                claims
            }
        };
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// Checks a token's form, key, signature and audience (not its expiry).
    fn check_signature(&self, token: &str) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(TokenError::Malformed);
        };
        let header: Header = decode_json(h)?;
        if header.alg != "EdDSA" {
            return Err(TokenError::UnknownKey);
        }
        let (_, key) = self.keys.iter().find(|(kid, _)| *kid == header.kid).ok_or(TokenError::UnknownKey)?;
        let sig_bytes = B64.decode(s).map_err(|_| TokenError::Malformed)?;
        let sig = ed25519_dalek::Signature::from_slice(&sig_bytes).map_err(|_| TokenError::Malformed)?;
        let signing_input = &token[..h.len() + 1 + c.len()];
        key.verify(signing_input.as_bytes(), &sig).map_err(|_| TokenError::BadSignature)?;
        let claims: Claims = decode_json(c)?;
        if claims.aud != AUDIENCE {
            return Err(TokenError::WrongAudience);
        }
        Ok(claims)
    }
}

fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, TokenError> {
    let bytes = B64.decode(part).map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: "http://localhost".into(),
            sub: "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2".into(),
            aud: AUDIENCE.into(),
            iat: 0,
            exp,
            jti: "1".into(),
            dev: None,
        }
    }

    #[test]
    fn signs_and_verifies_through_jwks() {
        let signer = TokenSigner::new(SigningKey::from_bytes(&[5; 32]));
        let token = signer.sign(&claims(100));
        let verifier = TokenVerifier::from_jwks(&signer.jwks());
        assert_eq!(verifier.verify(&token, 50), Ok(claims(100)));
        assert_eq!(verifier.verify(&token, 100), Err(TokenError::Expired));
    }

    #[test]
    fn rejects_forgeries() {
        let signer = TokenSigner::new(SigningKey::from_bytes(&[5; 32]));
        let other = TokenSigner::new(SigningKey::from_bytes(&[6; 32]));
        let verifier = signer.verifier();
        assert_eq!(verifier.verify(&other.sign(&claims(100)), 0), Err(TokenError::UnknownKey));
        let token = signer.sign(&claims(100));
        let (head, _) = token.rsplit_once('.').expect("three parts");
        let forged_claims = B64.encode(serde_json::to_vec(&claims(10_000)).expect("json"));
        let parts: Vec<&str> = head.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], forged_claims, token.rsplit('.').next().expect("sig"));
        assert_eq!(verifier.verify(&forged, 0), Err(TokenError::BadSignature));
        assert_eq!(verifier.verify("a.b", 0), Err(TokenError::Malformed));
    }

    #[test]
    fn a_remembered_token_still_expires_and_its_forgeries_are_still_checked() {
        let signer = TokenSigner::new(SigningKey::from_bytes(&[5; 32]));
        let verifier = signer.verifier();
        let token = signer.sign(&claims(100));
        assert_eq!(verifier.verify(&token, 10), Ok(claims(100)));
        // A clone shares what was checked, and expiry is still applied to it.
        let clone = verifier.clone();
        assert_eq!(clone.verified.lock().expect("lock").len(), 1);
        assert_eq!(clone.verify(&token, 10), Ok(claims(100)));
        assert_eq!(clone.verify(&token, 100), Err(TokenError::Expired));
        // The same header and signature with other claims is another token: checked, refused.
        let parts: Vec<&str> = token.split('.').collect();
        let forged_claims = B64.encode(serde_json::to_vec(&claims(10_000)).expect("json"));
        let forged = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
        assert_eq!(verifier.verify(&forged, 10), Err(TokenError::BadSignature));
        assert_eq!(verifier.verified.lock().expect("lock").len(), 1, "refused tokens are not remembered");
    }

    #[test]
    fn the_memory_of_verified_tokens_is_bounded() {
        let signer = TokenSigner::new(SigningKey::from_bytes(&[5; 32]));
        let verifier = signer.verifier();
        for i in 0..(VERIFIED_CAP as i64 + 5) {
            let token = signer.sign(&Claims { jti: i.to_string(), ..claims(100) });
            assert!(verifier.verify(&token, 10).is_ok());
        }
        assert!(verifier.verified.lock().expect("lock").len() <= VERIFIED_CAP);
    }
}
