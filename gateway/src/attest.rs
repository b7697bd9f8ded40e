//! Signing profile attestations with the gateway key (secp256k1, EIP-712). The typed data and
//! the verifier are in `dchat_protocol::attestation`.

use alloy::{
    primitives::{Address, B256},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::Eip712Domain,
};
use dchat_protocol::attestation::{self, ProfileAttestation, SignedAttestation};
use serde::{Deserialize, Serialize};

use crate::config::AttestationConfig;

/// Signs attestations.
#[derive(Debug, Clone)]
pub struct Attester {
    key: PrivateKeySigner,
    domain: Eip712Domain,
    ttl_secs: u64,
}

/// An attestation as the API shows it: the signed typed data, its digest and the signer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationView {
    /// The typed data and signature.
    #[serde(flatten)]
    pub signed: SignedAttestation,
    /// EIP-712 digest, 0x hex.
    pub digest: String,
    /// The gateway address that signed it (EIP-55).
    pub signer: String,
}

/// What a profile attests.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// Linked wallet.
    pub wallet: Address,
    /// Provider subject (hashed before signing).
    pub subject: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Picture URL.
    pub picture: Option<&'a str>,
    /// Verified email domain.
    pub email_domain: Option<&'a str>,
}

impl Attester {
    /// An attester with `key`, for the configured domain and lifetime.
    pub fn new(key: PrivateKeySigner, config: &AttestationConfig) -> Self {
        Self { key, domain: attestation::domain(config.chain_id, config.verifying_contract), ttl_secs: config.ttl_secs }
    }

    /// The gateway's address: what verifiers compare the recovered signer with.
    pub fn address(&self) -> Address {
        self.key.address()
    }

    /// The EIP-712 domain.
    pub fn domain(&self) -> &Eip712Domain {
        &self.domain
    }

    /// Signs an attestation issued at `now`.
    pub fn sign(&self, s: &Subject<'_>, now: u64) -> Result<(AttestationView, B256), alloy::signers::Error> {
        let message = ProfileAttestation {
            wallet: s.wallet,
            subjectHash: attestation::subject_hash(s.subject),
            name: s.name.to_string(),
            picture: s.picture.unwrap_or_default().to_string(),
            emailDomain: s.email_domain.unwrap_or_default().to_string(),
            issuedAt: now,
            expiry: now.saturating_add(self.ttl_secs),
        };
        let digest = message.digest(&self.domain);
        let signature = self.key.sign_hash_sync(&digest)?;
        let signed = SignedAttestation::new(&message, &self.domain, &signature.as_bytes());
        let view = AttestationView { signed, digest: digest.to_string(), signer: self.address().to_checksum(None) };
        Ok((view, digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_attestations_verify_with_the_protocol_verifier() {
        let key = PrivateKeySigner::random();
        let attester = Attester::new(key.clone(), &AttestationConfig::default());
        let wallet = Address::repeat_byte(0x11);
        let s = Subject { wallet, subject: "abc", name: "Alice", picture: None, email_domain: Some("example.com") };
        let (view, digest) = attester.sign(&s, 1_000).expect("signs");
        assert_eq!(view.signer, key.address().to_checksum(None));
        assert_eq!(view.signed.digest(), Ok(digest));
        let m = view.signed.verify(key.address(), 1_001, 0).expect("verifies");
        assert_eq!(m.wallet, wallet);
        assert_eq!(m.subjectHash, attestation::subject_hash("abc"));
        assert_eq!(m.picture, "");
        assert_eq!(m.expiry, 1_000 + AttestationConfig::default().ttl_secs);
        let json = serde_json::to_value(&view).expect("json");
        assert_eq!(json["primaryType"], "ProfileAttestation");
        assert_eq!(json["digest"], digest.to_string());
    }
}
