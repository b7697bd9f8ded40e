//! Profile attestations: the EIP-712 typed data a dchat gateway signs (secp256k1) when a wallet
//! links a LinkedIn account, and the checks anyone can run on it without trusting the gateway's
//! API: rebuild the EIP-712 digest from the fields, recover the signer, compare it with the
//! gateway's known address, check the validity window.
//!
//! The JSON form ([`SignedAttestation`]) is the `eth_signTypedData_v4` shape (`types`,
//! `primaryType`, `domain`, `message`) plus the signature, so wallets and viem's
//! `verifyTypedData` read it as is. [`SignedAttestation::verify`] ignores the `types` it is given
//! and always hashes [`ProfileAttestation`]'s own type.

use std::str::FromStr;

use alloy_primitives::{Address, B256, Signature, U256, keccak256};
use alloy_sol_types::{Eip712Domain, SolStruct, sol};
use serde::{Deserialize, Serialize};

use crate::UnixSeconds;

/// EIP-712 domain `name` of every gateway attestation.
pub const DOMAIN_NAME: &str = "dchat-gateway";
/// EIP-712 domain `version`.
pub const DOMAIN_VERSION: &str = "1";
/// EIP-712 primary type.
pub const PRIMARY_TYPE: &str = "ProfileAttestation";

sol! {
    /// What a gateway attests: this wallet controls the LinkedIn account whose subject hashes to
    /// `subjectHash`, whose profile showed this name and picture and a verified email address in
    /// `emailDomain`, from `issuedAt` until `expiry` (Unix seconds). Empty strings stand for
    /// values the profile did not have.
    #[derive(Debug, PartialEq, Eq)]
    struct ProfileAttestation {
        address wallet;
        bytes32 subjectHash;
        string name;
        string picture;
        string emailDomain;
        uint64 issuedAt;
        uint64 expiry;
    }
}

/// Why an attestation was refused. Every variant has its own stable [`AttestationError::code`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttestationError {
    /// A field of the JSON form does not parse (address, hash, signature hex).
    #[error("malformed attestation: {0}")]
    Malformed(String),
    /// The domain is not a gateway attestation's (`name`, `version`).
    #[error("attestation domain is {name:?} version {version:?}, not {DOMAIN_NAME:?} version {DOMAIN_VERSION:?}")]
    WrongDomain {
        /// Domain name found.
        name: String,
        /// Domain version found.
        version: String,
    },
    /// The signature is not 65 bytes of r, s, v, or recovers to no key.
    #[error("attestation signature is malformed: {0}")]
    SignatureMalformed(String),
    /// The signature recovers to another address than the expected gateway's.
    #[error("attestation was not signed by {expected} (recovered {recovered})")]
    WrongSigner {
        /// The gateway address the caller trusts.
        expected: Address,
        /// The address the signature recovers to.
        recovered: Address,
    },
    /// `issuedAt` lies in the future.
    #[error("attestation is issued in the future ({0})")]
    NotYetValid(u64),
    /// `expiry` has passed.
    #[error("attestation expired at {0}")]
    Expired(u64),
}

impl AttestationError {
    /// Stable snake_case code, for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "attestation_malformed",
            Self::WrongDomain { .. } => "attestation_wrong_domain",
            Self::SignatureMalformed(_) => "attestation_signature_malformed",
            Self::WrongSigner { .. } => "attestation_wrong_signer",
            Self::NotYetValid(_) => "attestation_not_yet_valid",
            Self::Expired(_) => "attestation_expired",
        }
    }
}

/// The EIP-712 domain of a gateway's attestations: `name` and `version` are fixed, `chainId`
/// comes from the gateway's configuration, `verifyingContract` only when one is configured (it
/// is then part of the domain type; otherwise the domain type has no such field).
pub fn domain(chain_id: u64, verifying_contract: Option<Address>) -> Eip712Domain {
    Eip712Domain::new(
        Some(DOMAIN_NAME.into()),
        Some(DOMAIN_VERSION.into()),
        Some(U256::from(chain_id)),
        verifying_contract,
        None,
    )
}

/// `subjectHash`: keccak256 of the provider's subject identifier (`sub`) as UTF-8.
pub fn subject_hash(subject: &str) -> B256 {
    keccak256(subject.as_bytes())
}

impl ProfileAttestation {
    /// The EIP-712 digest the gateway signs: keccak256(0x1901 ‖ domainSeparator ‖ hashStruct).
    pub fn digest(&self, domain: &Eip712Domain) -> B256 {
        self.eip712_signing_hash(domain)
    }

    /// The address whose key made `signature` (65 bytes, r ‖ s ‖ v) over this attestation.
    pub fn recover_signer(&self, domain: &Eip712Domain, signature: &[u8]) -> Result<Address, AttestationError> {
        if signature.len() != 65 {
            return Err(AttestationError::SignatureMalformed(format!("expected 65 bytes, got {}", signature.len())));
        }
        let sig = Signature::from_raw(signature).map_err(|e| AttestationError::SignatureMalformed(e.to_string()))?;
        sig.recover_address_from_prehash(&self.digest(domain))
            .map_err(|e| AttestationError::SignatureMalformed(e.to_string()))
    }

    /// Checks that `signer` made `signature` and that `now` lies in `[issuedAt, expiry)`, with
    /// `skew` seconds of tolerance on `issuedAt` for clocks that differ.
    pub fn verify(
        &self,
        domain: &Eip712Domain,
        signature: &[u8],
        signer: Address,
        now: UnixSeconds,
        skew: i64,
    ) -> Result<(), AttestationError> {
        let recovered = self.recover_signer(domain, signature)?;
        if recovered != signer {
            return Err(AttestationError::WrongSigner { expected: signer, recovered });
        }
        if i128::from(self.issuedAt) > i128::from(now) + i128::from(skew) {
            return Err(AttestationError::NotYetValid(self.issuedAt));
        }
        if i128::from(now) >= i128::from(self.expiry) {
            return Err(AttestationError::Expired(self.expiry));
        }
        Ok(())
    }
}

/// An attestation with its signature, in the JSON form gateways serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedAttestation {
    /// The EIP-712 types (`EIP712Domain` and `ProfileAttestation`), for wallets and libraries.
    /// Informational: verification always uses [`ProfileAttestation`]'s type.
    #[serde(default)]
    pub types: serde_json::Value,
    /// `ProfileAttestation`.
    pub primary_type: String,
    /// The EIP-712 domain.
    pub domain: DomainJson,
    /// The signed fields.
    pub message: MessageJson,
    /// The signature, `0x` hex of r ‖ s ‖ v (65 bytes).
    pub signature: String,
}

/// The EIP-712 domain, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainJson {
    /// [`DOMAIN_NAME`].
    pub name: String,
    /// [`DOMAIN_VERSION`].
    pub version: String,
    /// Chain id.
    pub chain_id: u64,
    /// Verifying contract (EIP-55), when the gateway is configured with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifying_contract: Option<String>,
}

/// The signed fields, as JSON: addresses EIP-55, hashes `0x` hex, times Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageJson {
    /// Linked wallet.
    pub wallet: String,
    /// keccak256 of the LinkedIn subject.
    pub subject_hash: String,
    /// Display name.
    pub name: String,
    /// Picture URL, or empty.
    pub picture: String,
    /// Domain of the verified email address, or empty.
    pub email_domain: String,
    /// Issue time.
    pub issued_at: u64,
    /// End of validity.
    pub expiry: u64,
}

impl SignedAttestation {
    /// Signs nothing: assembles the JSON form of an attestation and a signature made over
    /// [`ProfileAttestation::digest`].
    pub fn new(message: &ProfileAttestation, domain: &Eip712Domain, signature: &[u8]) -> Self {
        let chain_id = domain.chain_id.map(|c| c.saturating_to::<u64>()).unwrap_or_default();
        Self {
            types: types_json(domain.verifying_contract.is_some()),
            primary_type: PRIMARY_TYPE.into(),
            domain: DomainJson {
                name: domain.name.as_deref().unwrap_or_default().to_string(),
                version: domain.version.as_deref().unwrap_or_default().to_string(),
                chain_id,
                verifying_contract: domain.verifying_contract.map(|a| a.to_checksum(None)),
            },
            message: MessageJson {
                wallet: message.wallet.to_checksum(None),
                subject_hash: message.subjectHash.to_string(),
                name: message.name.clone(),
                picture: message.picture.clone(),
                email_domain: message.emailDomain.clone(),
                issued_at: message.issuedAt,
                expiry: message.expiry,
            },
            signature: format!("0x{}", hex::encode(signature)),
        }
    }

    /// The typed fields, domain and signature bytes, parsed.
    pub fn parts(&self) -> Result<(ProfileAttestation, Eip712Domain, Vec<u8>), AttestationError> {
        let d = &self.domain;
        if d.name != DOMAIN_NAME || d.version != DOMAIN_VERSION {
            return Err(AttestationError::WrongDomain { name: d.name.clone(), version: d.version.clone() });
        }
        let contract = d.verifying_contract.as_deref().map(|c| parse_address("verifyingContract", c)).transpose()?;
        let m = &self.message;
        let message = ProfileAttestation {
            wallet: parse_address("wallet", &m.wallet)?,
            subjectHash: B256::from_str(&m.subject_hash)
                .map_err(|e| AttestationError::Malformed(format!("subjectHash: {e}")))?,
            name: m.name.clone(),
            picture: m.picture.clone(),
            emailDomain: m.email_domain.clone(),
            issuedAt: m.issued_at,
            expiry: m.expiry,
        };
        let signature = hex::decode(self.signature.trim_start_matches("0x"))
            .map_err(|e| AttestationError::SignatureMalformed(e.to_string()))?;
        Ok((message, domain(d.chain_id, contract), signature))
    }

    /// The EIP-712 digest of the fields as given.
    pub fn digest(&self) -> Result<B256, AttestationError> {
        let (message, domain, _) = self.parts()?;
        Ok(message.digest(&domain))
    }

    /// Verifies the attestation was made by `signer` (the gateway's address) and is valid at
    /// `now`; returns the typed fields.
    pub fn verify(&self, signer: Address, now: UnixSeconds, skew: i64) -> Result<ProfileAttestation, AttestationError> {
        let (message, domain, signature) = self.parts()?;
        message.verify(&domain, &signature, signer, now, skew)?;
        Ok(message)
    }
}

fn parse_address(field: &str, s: &str) -> Result<Address, AttestationError> {
    Address::from_str(s).map_err(|e| AttestationError::Malformed(format!("{field}: {e}")))
}

/// The `types` member of `eth_signTypedData_v4` for these attestations.
fn types_json(with_contract: bool) -> serde_json::Value {
    let field = |name: &str, ty: &str| serde_json::json!({ "name": name, "type": ty });
    let mut domain = vec![field("name", "string"), field("version", "string"), field("chainId", "uint256")];
    if with_contract {
        domain.push(field("verifyingContract", "address"));
    }
    serde_json::json!({
        "EIP712Domain": domain,
        "ProfileAttestation": [
            field("wallet", "address"),
            field("subjectHash", "bytes32"),
            field("name", "string"),
            field("picture", "string"),
            field("emailDomain", "string"),
            field("issuedAt", "uint64"),
            field("expiry", "uint64"),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::{SignerSync, local::PrivateKeySigner};

    fn sample() -> ProfileAttestation {
        ProfileAttestation {
            wallet: Address::from_str("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2").expect("address"),
            subjectHash: subject_hash("782bbtaQ"),
            name: "Alice Example".into(),
            picture: "https://media.licdn.example/alice.jpg".into(),
            emailDomain: "example.com".into(),
            issuedAt: 1_700_000_000,
            expiry: 1_715_552_000,
        }
    }

    fn gateway() -> PrivateKeySigner {
        // anvil's second development key.
        "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d".parse().expect("key")
    }

    fn sign(m: &ProfileAttestation, d: &Eip712Domain) -> Vec<u8> {
        gateway().sign_hash_sync(&m.digest(d)).expect("sign").as_bytes().to_vec()
    }

    #[test]
    fn type_string_is_the_documented_one() {
        assert_eq!(
            ProfileAttestation::eip712_encode_type(),
            "ProfileAttestation(address wallet,bytes32 subjectHash,string name,string picture,\
             string emailDomain,uint64 issuedAt,uint64 expiry)"
        );
    }

    /// Pinned against viem's `hashTypedData` over the same domain and message (see
    /// docs/gateway.md), so a change to the type or the encoding shows up here.
    #[test]
    fn digest_matches_an_independent_implementation() {
        let d = domain(1, None);
        assert_eq!(sample().digest(&d).to_string(), DIGEST_VIEM_CHAIN_1);
        let contract = Address::from_str("0x5FbDB2315678afecb367f032d93F642f64180aa3").expect("address");
        assert_eq!(sample().digest(&domain(31337, Some(contract))).to_string(), DIGEST_VIEM_CONTRACT);
    }

    /// viem's `signTypedData` with the same key over the same data: signatures are
    /// deterministic (RFC 6979), so both libraries give the same bytes.
    #[test]
    fn signature_matches_viem() {
        let d = domain(1, None);
        assert_eq!(format!("0x{}", hex::encode(sign(&sample(), &d))), SIGNATURE_VIEM_CHAIN_1);
        let sig = hex::decode(&SIGNATURE_VIEM_CHAIN_1[2..]).expect("hex");
        assert_eq!(sample().recover_signer(&d, &sig), Ok(gateway().address()));
    }

    const SIGNATURE_VIEM_CHAIN_1: &str = "0x765b47829bb190a5d0177cd81bb85aa8c7350ac5e180699f4db09e7f4f6544ca\
                                          063f57ebfbcbd8e0d652c7828c1810a36f5b01e06e7f882ec6ef1f12de62b3171c";
    const DIGEST_VIEM_CHAIN_1: &str = "0x185fc16e0bd7b062fd0d1685bbe42ca5e5eca20f4789e8b320608ba9a4e2580c";
    const DIGEST_VIEM_CONTRACT: &str = "0xa584f64c5a3b54f132b2a4dc011de904109a91fcbc694017a0f353e79af80382";

    #[test]
    fn recovers_the_gateway_and_checks_the_window() {
        let d = domain(1, None);
        let m = sample();
        let sig = sign(&m, &d);
        assert_eq!(m.recover_signer(&d, &sig), Ok(gateway().address()));
        assert_eq!(m.verify(&d, &sig, gateway().address(), 1_700_000_100, 60), Ok(()));
        assert_eq!(
            m.verify(&d, &sig, gateway().address(), 1_715_552_000, 60),
            Err(AttestationError::Expired(1_715_552_000))
        );
        assert_eq!(
            m.verify(&d, &sig, gateway().address(), 1_699_999_000, 60),
            Err(AttestationError::NotYetValid(1_700_000_000))
        );
        assert_eq!(m.verify(&d, &sig, gateway().address(), 1_699_999_950, 60), Ok(()), "within the skew");
    }

    #[test]
    fn any_changed_field_or_domain_changes_the_signer() {
        let d = domain(1, None);
        let m = sample();
        let sig = sign(&m, &d);
        let me = gateway().address();
        let mut changed = vec![];
        let mut x = sample();
        x.wallet = Address::repeat_byte(1);
        changed.push(x);
        let mut x = sample();
        x.subjectHash = subject_hash("someone-else");
        changed.push(x);
        let mut x = sample();
        x.name = "Mallory".into();
        changed.push(x);
        let mut x = sample();
        x.picture = String::new();
        changed.push(x);
        let mut x = sample();
        x.emailDomain = "example.org".into();
        changed.push(x);
        let mut x = sample();
        x.issuedAt += 1;
        changed.push(x);
        let mut x = sample();
        x.expiry += 1;
        changed.push(x);
        for x in changed {
            assert!(
                matches!(x.verify(&d, &sig, me, 1_700_000_100, 0), Err(AttestationError::WrongSigner { .. })),
                "{x:?}"
            );
        }
        for other in [domain(10, None), domain(1, Some(Address::repeat_byte(2)))] {
            assert!(matches!(m.verify(&other, &sig, me, 1_700_000_100, 0), Err(AttestationError::WrongSigner { .. })));
        }
        assert!(matches!(m.verify(&d, &sig[..64], me, 1_700_000_100, 0), Err(AttestationError::SignatureMalformed(_))));
    }

    #[test]
    fn json_form_round_trips_and_verifies() {
        for d in [domain(1, None), domain(31337, Some(Address::repeat_byte(9)))] {
            let m = sample();
            let signed = SignedAttestation::new(&m, &d, &sign(&m, &d));
            let json = serde_json::to_string(&signed).expect("json");
            let back: SignedAttestation = serde_json::from_str(&json).expect("parses");
            assert_eq!(back, signed);
            assert_eq!(back.verify(gateway().address(), 1_700_000_100, 60), Ok(m.clone()));
            assert_eq!(back.digest(), Ok(m.digest(&d)));
            let v: serde_json::Value = serde_json::from_str(&json).expect("json");
            assert_eq!(v["primaryType"], "ProfileAttestation");
            assert_eq!(v["message"]["emailDomain"], "example.com");
            assert_eq!(v["domain"]["verifyingContract"].is_null(), d.verifying_contract.is_none());
            assert_eq!(
                v["types"]["EIP712Domain"].as_array().map(Vec::len),
                Some(3 + usize::from(d.verifying_contract.is_some()))
            );
        }
    }

    #[test]
    fn json_form_refuses_tampering() {
        let d = domain(1, None);
        let m = sample();
        let signed = SignedAttestation::new(&m, &d, &sign(&m, &d));
        let mut x = signed.clone();
        x.message.name = "Mallory".into();
        assert!(matches!(x.verify(gateway().address(), 1_700_000_100, 0), Err(AttestationError::WrongSigner { .. })));
        let mut x = signed.clone();
        x.domain.name = "other".into();
        assert_eq!(
            x.verify(gateway().address(), 1_700_000_100, 0).map_err(|e| e.code()),
            Err("attestation_wrong_domain")
        );
        let mut x = signed.clone();
        x.message.wallet = "0x1234".into();
        assert_eq!(x.verify(gateway().address(), 1_700_000_100, 0).map_err(|e| e.code()), Err("attestation_malformed"));
        let mut x = signed;
        x.signature = "0xzz".into();
        assert_eq!(
            x.verify(gateway().address(), 1_700_000_100, 0).map_err(|e| e.code()),
            Err("attestation_signature_malformed")
        );
    }
}
