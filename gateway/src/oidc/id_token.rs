//! id_token checks (OpenID Connect Core 3.1.3.7): an RS256 JWS whose key comes from the
//! provider's JWKS by `kid`, with issuer, audience, expiry, issue time and nonce checked.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use rsa::{
    BigUint, RsaPublicKey,
    pkcs1v15::{Signature, VerifyingKey},
    sha2::Sha256,
    signature::Verifier,
    traits::PublicKeyParts,
};
use serde::Deserialize;
use serde_json::Value;

/// Why an id_token was refused. Every variant has its own stable [`IdTokenError::code`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdTokenError {
    /// The token endpoint's answer had no id_token.
    #[error("the provider returned no id_token")]
    Missing,
    /// Not a compact JWS with JSON header and claims.
    #[error("id_token is malformed: {0}")]
    Malformed(String),
    /// Signed with another algorithm than RS256.
    #[error("id_token algorithm {0:?} is not accepted (RS256 only)")]
    UnsupportedAlg(String),
    /// No key of the provider's key set has this key id, even after fetching the set again.
    #[error("id_token is signed with a key the provider does not publish (kid {0:?})")]
    UnknownKey(Option<String>),
    /// The signature does not verify.
    #[error("id_token signature is invalid")]
    BadSignature,
    /// `iss` is not the configured issuer.
    #[error("id_token issuer {got:?} is not {expected:?}")]
    WrongIssuer {
        /// Configured issuer.
        expected: String,
        /// Issuer in the token.
        got: String,
    },
    /// `aud` does not name this client, or `azp` names another.
    #[error("id_token is not for this client")]
    WrongAudience,
    /// Past `exp` (beyond the clock skew).
    #[error("id_token expired at {0}")]
    Expired(i64),
    /// `iat` lies in the future (beyond the clock skew).
    #[error("id_token is issued in the future ({0})")]
    IssuedInFuture(i64),
    /// `nonce` differs from the one this link sent.
    #[error("id_token nonce does not match the link's")]
    NonceMismatch,
}

impl IdTokenError {
    /// Stable snake_case code, for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "id_token_missing",
            Self::Malformed(_) => "id_token_malformed",
            Self::UnsupportedAlg(_) => "id_token_unsupported_alg",
            Self::UnknownKey(_) => "id_token_unknown_key",
            Self::BadSignature => "id_token_invalid_signature",
            Self::WrongIssuer { .. } => "id_token_wrong_issuer",
            Self::WrongAudience => "id_token_wrong_audience",
            Self::Expired(_) => "id_token_expired",
            Self::IssuedInFuture(_) => "id_token_issued_in_future",
            Self::NonceMismatch => "id_token_nonce_mismatch",
        }
    }
}

/// RS256 keys of a provider, by key id.
#[derive(Debug, Clone, Default)]
pub struct RsaKeys {
    keys: Vec<(Option<String>, RsaPublicKey)>,
}

/// Smallest RSA modulus accepted, bits.
const MIN_RSA_BITS: usize = 2048;

impl RsaKeys {
    /// Parses a JWKS document, keeping the RSA signing keys usable with RS256.
    pub fn from_jwks(bytes: &[u8]) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Jwks {
            keys: Vec<Value>,
        }
        let jwks: Jwks = serde_json::from_slice(bytes).map_err(|e| format!("not a JWKS document: {e}"))?;
        let keys = jwks
            .keys
            .iter()
            .filter(|k| k["kty"] == "RSA")
            .filter(|k| k.get("use").is_none_or(|u| u == "sig"))
            .filter(|k| k.get("alg").is_none_or(|a| a == "RS256"))
            .filter_map(|k| {
                let n = B64.decode(k["n"].as_str()?).ok()?;
                let e = B64.decode(k["e"].as_str()?).ok()?;
                let key = RsaPublicKey::new(BigUint::from_bytes_be(&n), BigUint::from_bytes_be(&e)).ok()?;
                (key.size() * 8 >= MIN_RSA_BITS).then(|| (k["kid"].as_str().map(str::to_string), key))
            })
            .collect();
        Ok(Self { keys })
    }

    /// The key a token names; a token without `kid` may use the only key of a one-key set.
    pub fn find(&self, kid: Option<&str>) -> Option<&RsaPublicKey> {
        match kid {
            Some(kid) => self.keys.iter().find(|(k, _)| k.as_deref() == Some(kid)).map(|(_, key)| key),
            None if self.keys.len() == 1 => self.keys.first().map(|(_, key)| key),
            None => None,
        }
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A parsed, not yet trusted, id_token.
#[derive(Debug, Clone)]
pub struct IdToken {
    /// `kid` of the header.
    pub kid: Option<String>,
    /// The claims as sent.
    pub claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

/// What an id_token must say.
#[derive(Debug, Clone)]
pub struct Expect<'a> {
    /// Configured issuer.
    pub issuer: &'a str,
    /// This client's id.
    pub client_id: &'a str,
    /// The nonce the authorization request carried.
    pub nonce: &'a str,
    /// Now, Unix seconds.
    pub now: i64,
    /// Tolerated clock skew, seconds.
    pub skew: i64,
}

impl IdToken {
    /// Splits and decodes a compact JWS; refuses any algorithm but RS256.
    pub fn parse(token: &str) -> Result<Self, IdTokenError> {
        let malformed = |m: &str| IdTokenError::Malformed(m.to_string());
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(malformed("expected three dot-separated parts"));
        };
        let header: Value = decode_json(h)?;
        let alg = header["alg"].as_str().ok_or_else(|| malformed("header has no alg"))?;
        if alg != "RS256" {
            return Err(IdTokenError::UnsupportedAlg(alg.to_string()));
        }
        let claims: Value = decode_json(c)?;
        if !claims.is_object() {
            return Err(malformed("claims are not a JSON object"));
        }
        let signature = B64.decode(s).map_err(|_| malformed("signature is not base64url"))?;
        Ok(Self {
            kid: header["kid"].as_str().map(str::to_string),
            claims,
            signing_input: format!("{h}.{c}"),
            signature,
        })
    }

    /// Checks the RS256 signature (RSASSA-PKCS1-v1_5 with SHA-256).
    pub fn verify_signature(&self, key: &RsaPublicKey) -> Result<(), IdTokenError> {
        let sig = Signature::try_from(self.signature.as_slice()).map_err(|_| IdTokenError::BadSignature)?;
        VerifyingKey::<Sha256>::new(key.clone())
            .verify(self.signing_input.as_bytes(), &sig)
            .map_err(|_| IdTokenError::BadSignature)
    }

    /// Checks issuer, audience (and `azp` when there are several audiences), expiry, issue
    /// time and nonce; returns the subject.
    pub fn check(&self, expect: &Expect<'_>) -> Result<String, IdTokenError> {
        let c = &self.claims;
        let iss = c["iss"].as_str().unwrap_or_default();
        if iss != expect.issuer {
            return Err(IdTokenError::WrongIssuer { expected: expect.issuer.to_string(), got: iss.to_string() });
        }
        let audiences: Vec<&str> = match &c["aud"] {
            Value::String(a) => vec![a.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !audiences.contains(&expect.client_id) {
            return Err(IdTokenError::WrongAudience);
        }
        if let Some(azp) = c["azp"].as_str()
            && azp != expect.client_id
        {
            return Err(IdTokenError::WrongAudience);
        }
        if audiences.len() > 1 && c["azp"].as_str().is_none() {
            return Err(IdTokenError::WrongAudience);
        }
        let exp = numeric_date(&c["exp"]).ok_or_else(|| IdTokenError::Malformed("exp is missing".into()))?;
        if expect.now >= exp.saturating_add(expect.skew) {
            return Err(IdTokenError::Expired(exp));
        }
        if let Some(iat) = numeric_date(&c["iat"])
            && iat > expect.now.saturating_add(expect.skew)
        {
            return Err(IdTokenError::IssuedInFuture(iat));
        }
        // Compared in constant time: the nonce is a secret of the link until it completes.
        let nonce = c["nonce"].as_str().unwrap_or_default();
        if !constant_time_eq(nonce.as_bytes(), expect.nonce.as_bytes()) {
            return Err(IdTokenError::NonceMismatch);
        }
        match c["sub"].as_str() {
            Some(sub) if !sub.is_empty() => Ok(sub.to_string()),
            _ => Err(IdTokenError::Malformed("sub is missing".into())),
        }
    }
}

/// A JWT NumericDate: seconds, possibly with a fraction.
fn numeric_date(v: &Value) -> Option<i64> {
    // Truncation of a fractional second is intended.
    #[allow(clippy::cast_possible_truncation)]
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn decode_json(part: &str) -> Result<Value, IdTokenError> {
    let bytes = B64.decode(part).map_err(|_| IdTokenError::Malformed("part is not base64url".into()))?;
    serde_json::from_slice(&bytes).map_err(|_| IdTokenError::Malformed("part is not JSON".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::{
        RsaPrivateKey,
        pkcs1v15::SigningKey,
        pkcs8::DecodePrivateKey,
        signature::{SignatureEncoding, Signer},
    };
    use serde_json::json;

    /// A fixed test-only key (testdata/): generating one takes seconds in a debug build.
    fn key() -> RsaPrivateKey {
        RsaPrivateKey::from_pkcs8_pem(include_str!("../../testdata/test-rsa-2048.pem")).expect("key")
    }

    fn sign(key: &RsaPrivateKey, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            B64.encode(serde_json::to_vec(header).expect("json")),
            B64.encode(serde_json::to_vec(claims).expect("json"))
        );
        let sig = SigningKey::<Sha256>::new(key.clone()).sign(input.as_bytes());
        format!("{input}.{}", B64.encode(sig.to_bytes()))
    }

    fn jwks(key: &RsaPrivateKey, kid: &str) -> Vec<u8> {
        let public = key.to_public_key();
        serde_json::to_vec(&json!({"keys": [
            {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
             "n": B64.encode(public.n().to_bytes_be()), "e": B64.encode(public.e().to_bytes_be())},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "", "y": ""},
        ]}))
        .expect("json")
    }

    fn claims() -> Value {
        json!({"iss": "https://issuer.example/oauth", "aud": "client", "sub": "abc", "nonce": "n1",
               "iat": 1000, "exp": 4600, "name": "Alice"})
    }

    fn expect() -> Expect<'static> {
        Expect { issuer: "https://issuer.example/oauth", client_id: "client", nonce: "n1", now: 1100, skew: 60 }
    }

    #[test]
    fn accepts_a_good_token_and_refuses_each_wrong_claim() {
        let key = key();
        let keys = RsaKeys::from_jwks(&jwks(&key, "k1")).expect("jwks");
        assert_eq!(keys.len(), 1, "the EC key is skipped");
        let header = json!({"alg": "RS256", "kid": "k1"});
        let token = IdToken::parse(&sign(&key, &header, &claims())).expect("parses");
        assert_eq!(token.kid.as_deref(), Some("k1"));
        token.verify_signature(keys.find(Some("k1")).expect("key")).expect("signature");
        assert_eq!(token.check(&expect()), Ok("abc".to_string()));

        let cases: Vec<(Value, &str)> = vec![
            (json!({"iss": "https://www.linkedin.com"}), "id_token_wrong_issuer"),
            (json!({"aud": "other"}), "id_token_wrong_audience"),
            (json!({"aud": ["client", "other"]}), "id_token_wrong_audience"),
            (json!({"aud": ["client"], "azp": "other"}), "id_token_wrong_audience"),
            (json!({"exp": 1000}), "id_token_expired"),
            (json!({"iat": 2000}), "id_token_issued_in_future"),
            (json!({"nonce": "n2"}), "id_token_nonce_mismatch"),
            (json!({"nonce": null}), "id_token_nonce_mismatch"),
            (json!({"sub": ""}), "id_token_malformed"),
            (json!({"exp": null}), "id_token_malformed"),
        ];
        for (change, code) in cases {
            let mut c = claims();
            for (k, v) in change.as_object().expect("object") {
                c[k] = v.clone();
            }
            let token = IdToken::parse(&sign(&key, &header, &c)).expect("parses");
            assert_eq!(token.check(&expect()).map_err(|e| e.code()), Err(code), "{change}");
        }
        let mut c = claims();
        c["aud"] = json!(["client", "other"]);
        c["azp"] = json!("client");
        assert!(IdToken::parse(&sign(&key, &header, &c)).expect("parses").check(&expect()).is_ok());
        let mut c = claims();
        c["exp"] = json!(1050.5);
        assert!(IdToken::parse(&sign(&key, &header, &c)).expect("parses").check(&expect()).is_ok(), "within skew");
    }

    #[test]
    fn refuses_forged_and_foreign_tokens() {
        let key = key();
        let keys = RsaKeys::from_jwks(&jwks(&key, "k1")).expect("jwks");
        let token = sign(&key, &json!({"alg": "RS256", "kid": "k1"}), &claims());
        let (input, _) = token.rsplit_once('.').expect("parts");
        let mut forged_claims = claims();
        forged_claims["sub"] = json!("mallory");
        let forged = format!(
            "{}.{}.{}",
            input.split('.').next().expect("header"),
            B64.encode(serde_json::to_vec(&forged_claims).expect("json")),
            token.rsplit('.').next().expect("sig")
        );
        let t = IdToken::parse(&forged).expect("parses");
        assert_eq!(t.verify_signature(keys.find(Some("k1")).expect("key")), Err(IdTokenError::BadSignature));

        let none = format!("{}.{}.", B64.encode(br#"{"alg":"none"}"#), B64.encode(b"{}"));
        assert_eq!(IdToken::parse(&none).map_err(|e| e.code()).err(), Some("id_token_unsupported_alg"));
        let hs = sign(&key, &json!({"alg": "HS256", "kid": "k1"}), &claims());
        assert_eq!(IdToken::parse(&hs).map_err(|e| e.code()).err(), Some("id_token_unsupported_alg"));
        assert_eq!(IdToken::parse("a.b").map_err(|e| e.code()).err(), Some("id_token_malformed"));
        assert!(keys.find(Some("k2")).is_none());
        assert!(keys.find(None).is_some(), "a one-key set serves tokens without kid");
    }

    #[test]
    fn refuses_small_rsa_keys() {
        let small = RsaPrivateKey::from_pkcs8_pem(include_str!("../../testdata/test-rsa-1024.pem")).expect("key");
        assert!(RsaKeys::from_jwks(&jwks(&small, "k")).expect("jwks").is_empty());
    }
}
