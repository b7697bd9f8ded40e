//! Device delegation: a wallet authorises a device key by listing it in the `Resources` of a
//! SIWE message it signs. The signed message is the certificate, so any node can check it on
//! its own: the wallet's signature, the time window, and the keys it names.

use alloy_primitives::Address;
use ed25519_dalek::VerifyingKey;
use time::{Duration, OffsetDateTime};

use crate::siwe::{SiweError, SiweMessage, VerifyOpts};

/// Resource prefix naming the device's Ed25519 signing key (32 bytes hex).
pub const SIGN_PREFIX: &str = "urn:dchat:sign:";
/// Resource prefix naming the device's X25519 encryption key (32 bytes hex).
pub const BOX_PREFIX: &str = "urn:dchat:box:";

/// Why a delegation was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DelegationError {
    /// The SIWE message itself was refused.
    #[error(transparent)]
    Siwe(#[from] SiweError),
    /// A `urn:dchat:` resource does not hold a 32-byte hex key.
    #[error("resource {0} does not hold a valid 32-byte key")]
    InvalidKey(String),
    /// More than one signing key in one message.
    #[error("a delegation names exactly one device signing key")]
    MultipleKeys,
    /// A delegation must say when it ends.
    #[error("a delegation needs an Expiration Time")]
    ExpiryRequired,
    /// The message names no device key.
    #[error("the message delegates no device key")]
    NoDeviceKey,
}

impl DelegationError {
    /// Stable snake_case code, for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Siwe(e) => e.code(),
            Self::InvalidKey(_) => "delegation_invalid_key",
            Self::MultipleKeys => "delegation_multiple_keys",
            Self::ExpiryRequired => "delegation_expiry_required",
            Self::NoDeviceKey => "delegation_missing",
        }
    }
}

/// A wallet's authorisation of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    /// The wallet.
    pub wallet: Address,
    /// The device's Ed25519 key that signs envelopes.
    pub device_key: [u8; 32],
    /// The device's X25519 key for end-to-end encryption, when listed.
    pub box_key: Option<[u8; 32]>,
    /// Start of validity (`Not Before`, else `Issued At`), Unix seconds.
    pub not_before: i64,
    /// End of validity (`Expiration Time`), Unix seconds.
    pub expires_at: i64,
    /// The signed SIWE text.
    pub message: String,
    /// The wallet's signature over `message`.
    pub signature: Vec<u8>,
}

impl Delegation {
    /// Reads the delegation out of a message whose signature the caller has already checked.
    /// `Ok(None)` when the message names no device key (a plain sign-in).
    pub fn from_verified(msg: &SiweMessage, signature: &[u8]) -> Result<Option<Self>, DelegationError> {
        let mut sign = None;
        let mut boxk = None;
        for resource in msg.resources() {
            if let Some(hex) = resource.strip_prefix(SIGN_PREFIX) {
                if sign.is_some() {
                    return Err(DelegationError::MultipleKeys);
                }
                let key = parse_key(resource, hex)?;
                VerifyingKey::from_bytes(&key).map_err(|_| DelegationError::InvalidKey(resource.into()))?;
                sign = Some(key);
            } else if let Some(hex) = resource.strip_prefix(BOX_PREFIX) {
                if boxk.is_some() {
                    return Err(DelegationError::MultipleKeys);
                }
                boxk = Some(parse_key(resource, hex)?);
            }
        }
        let Some(device_key) = sign else { return Ok(None) };
        let expires_at = msg.expiration_time().ok_or(DelegationError::ExpiryRequired)?;
        let not_before = msg.not_before().unwrap_or_else(|| msg.issued_at());
        Ok(Some(Self {
            wallet: msg.address(),
            device_key,
            box_key: boxk,
            not_before: not_before.unix_timestamp(),
            expires_at: expires_at.unix_timestamp(),
            message: msg.raw().to_string(),
            signature: signature.to_vec(),
        }))
    }

    /// Checks a delegation from scratch, trusting nobody: parses the text, checks the wallet's
    /// EOA signature and that it is valid at `now` (with `skew`), and reads the device keys.
    pub fn verify(
        message: &str,
        signature: &[u8],
        now: OffsetDateTime,
        skew: Duration,
    ) -> Result<Self, DelegationError> {
        let msg = SiweMessage::parse(message)?;
        msg.verify_signature(signature)?;
        msg.check(&VerifyOpts { skew, ..VerifyOpts::at(now) })?;
        Self::from_verified(&msg, signature)?.ok_or(DelegationError::NoDeviceKey)
    }

    /// Whether the delegation covers the instant `t` (Unix seconds), with `skew` seconds of
    /// tolerance on both ends.
    pub fn covers(&self, t: i64, skew: i64) -> bool {
        t + skew >= self.not_before && t - skew < self.expires_at
    }
}

fn parse_key(resource: &str, hex_part: &str) -> Result<[u8; 32], DelegationError> {
    let bytes = hex::decode(hex_part).map_err(|_| DelegationError::InvalidKey(resource.into()))?;
    bytes.try_into().map_err(|_| DelegationError::InvalidKey(resource.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(resources: &[String], expiry: bool) -> SiweMessage {
        let fields = crate::siwe::Fields {
            domain: "localhost:8480".into(),
            address: "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2".into(),
            uri: "http://localhost:8480".into(),
            version: "1".into(),
            chain_id: 1,
            nonce: "abcdefgh12".into(),
            issued_at: "2030-01-01T00:00:00Z".into(),
            expiration_time: expiry.then(|| "2030-01-02T00:00:00Z".into()),
            resources: resources.to_vec(),
            ..Default::default()
        };
        fields.build().expect("valid fields")
    }

    #[test]
    fn reads_sign_and_box_keys() {
        let sign = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes();
        let res =
            vec![format!("{SIGN_PREFIX}{}", hex::encode(sign)), format!("{BOX_PREFIX}{}", hex::encode([9u8; 32]))];
        let d = Delegation::from_verified(&message(&res, true), &[0; 65]).expect("ok").expect("some");
        assert_eq!(d.device_key, sign);
        assert_eq!(d.box_key, Some([9; 32]));
        assert!(d.covers(d.not_before, 0));
        assert!(!d.covers(d.expires_at, 0));
    }

    #[test]
    fn refuses_delegation_without_expiry_or_with_bad_key() {
        let sign = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes();
        let res = vec![format!("{SIGN_PREFIX}{}", hex::encode(sign))];
        assert_eq!(Delegation::from_verified(&message(&res, false), &[]), Err(DelegationError::ExpiryRequired));
        let bad = vec![format!("{SIGN_PREFIX}abcd")];
        assert_eq!(
            Delegation::from_verified(&message(&bad, true), &[]).expect_err("bad key").code(),
            "delegation_invalid_key"
        );
        assert_eq!(Delegation::from_verified(&message(&[], true), &[]), Ok(None));
    }
}
