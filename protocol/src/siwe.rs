//! Sign-In with Ethereum (EIP-4361).
//!
//! Parsing is delegated to the `siwe` crate, with two additions it lacks: the optional
//! `scheme://` before the domain that the current EIP text allows, and a distinct error for an
//! address that is hex but not EIP-55 checksummed. Signatures are always checked over the exact
//! text the wallet signed (EIP-191 personal message), never over a re-serialized copy.

use std::str::FromStr;

use alloy_primitives::{Address, B256, Signature, eip191_hash_message};
use time::{Duration, OffsetDateTime};

/// The line that ends the first line of every message, after the domain.
const PREAMBLE: &str = " wants you to sign in with your Ethereum account:";

/// Why a SIWE message was refused. Every variant has its own stable [`SiweError::code`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SiweError {
    /// The text is not an EIP-4361 message.
    #[error("malformed SIWE message: {0}")]
    Malformed(String),
    /// The address is hex but not in EIP-55 mixed-case checksum form.
    #[error("address {0} is not EIP-55 checksummed")]
    AddressNotChecksummed(String),
    /// The signature is not 65 bytes of r, s, v.
    #[error("signature is malformed: {0}")]
    SignatureMalformed(String),
    /// The signature does not recover to the message's address.
    #[error("signature was not made by {expected} (recovered {recovered:?})")]
    SignatureInvalid {
        /// The address named in the message.
        expected: Address,
        /// The address the signature recovers to, when it recovers at all.
        recovered: Option<Address>,
    },
    /// The message is bound to another domain than this relying party's.
    #[error("message is for domain {got}, expected {expected}")]
    DomainMismatch {
        /// Domain the verifier serves.
        expected: String,
        /// Domain in the message.
        got: String,
    },
    /// The message names a scheme that differs from the expected one.
    #[error("message scheme {got} does not match {expected}")]
    SchemeMismatch {
        /// Scheme the verifier serves.
        expected: String,
        /// Scheme in the message.
        got: String,
    },
    /// The message's URI is not on the relying party's origin.
    #[error("message URI {got} is not on {expected}")]
    UriMismatch {
        /// Origin the verifier serves.
        expected: String,
        /// URI in the message.
        got: String,
    },
    /// The chain id is not one the verifier accepts.
    #[error("chain id {0} is not allowed")]
    ChainNotAllowed(u64),
    /// The nonce differs from the one the verifier expected.
    #[error("nonce does not match")]
    NonceMismatch,
    /// `Expiration Time` has passed.
    #[error("message expired at {0}")]
    Expired(OffsetDateTime),
    /// `Not Before` is still in the future.
    #[error("message is not valid before {0}")]
    NotYetValid(OffsetDateTime),
    /// `Issued At` lies in the future beyond the allowed clock skew.
    #[error("message is issued in the future ({0})")]
    IssuedInFuture(OffsetDateTime),
}

impl SiweError {
    /// Stable snake_case code, for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "siwe_malformed",
            Self::AddressNotChecksummed(_) => "siwe_address_not_checksummed",
            Self::SignatureMalformed(_) => "siwe_signature_malformed",
            Self::SignatureInvalid { .. } => "siwe_signature_invalid",
            Self::DomainMismatch { .. } => "siwe_domain_mismatch",
            Self::SchemeMismatch { .. } => "siwe_scheme_mismatch",
            Self::UriMismatch { .. } => "siwe_uri_mismatch",
            Self::ChainNotAllowed(_) => "siwe_chain_not_allowed",
            Self::NonceMismatch => "siwe_nonce_mismatch",
            Self::Expired(_) => "siwe_expired",
            Self::NotYetValid(_) => "siwe_not_yet_valid",
            Self::IssuedInFuture(_) => "siwe_issued_in_future",
        }
    }
}

/// What a relying party checks a message against. Fields left `None` are not checked.
#[derive(Debug, Clone)]
pub struct VerifyOpts<'a> {
    /// The RFC 3986 authority this verifier serves (`host[:port]`).
    pub domain: Option<&'a str>,
    /// The scheme this verifier serves; a message that names another one is refused.
    pub scheme: Option<&'a str>,
    /// The origin (`scheme://authority`) the message's URI must start with.
    pub uri_origin: Option<&'a str>,
    /// Chain ids accepted.
    pub chain_ids: Option<&'a [u64]>,
    /// The nonce that must appear in the message.
    pub nonce: Option<&'a str>,
    /// The time the message is checked at.
    pub now: OffsetDateTime,
    /// Clock skew tolerated on every time bound.
    pub skew: Duration,
    /// Refuse messages whose `Issued At` lies beyond `now + skew`.
    pub reject_future_issued_at: bool,
}

impl VerifyOpts<'_> {
    /// Options that check only the time window, at `now`, with no skew.
    pub fn at(now: OffsetDateTime) -> Self {
        Self {
            domain: None,
            scheme: None,
            uri_origin: None,
            chain_ids: None,
            nonce: None,
            now,
            skew: Duration::ZERO,
            reject_future_issued_at: false,
        }
    }
}

/// A parsed EIP-4361 message that keeps the exact text it was parsed from.
#[derive(Debug, Clone)]
pub struct SiweMessage {
    raw: String,
    scheme: Option<String>,
    inner: ::siwe::Message,
}

impl SiweMessage {
    /// Parses a message, keeping `raw` as the bytes any signature is checked against.
    pub fn parse(raw: &str) -> Result<Self, SiweError> {
        let (first, rest) = raw.split_once('\n').unwrap_or((raw, ""));
        let authority =
            first.strip_suffix(PREAMBLE).ok_or_else(|| SiweError::Malformed("missing preamble line".into()))?;
        let (scheme, authority) = split_scheme(authority)?;

        let address_line = rest.split('\n').next().unwrap_or_default();
        if let Some(hex) = address_line.strip_prefix("0x")
            && hex.len() == 40
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
            && !::siwe::is_checksum(hex)
        {
            return Err(SiweError::AddressNotChecksummed(address_line.to_string()));
        }

        let text = format!("{authority}{PREAMBLE}\n{rest}");
        let inner = ::siwe::Message::from_str(&text).map_err(|e| SiweError::Malformed(e.to_string()))?;
        if !inner.nonce.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SiweError::Malformed("nonce must be alphanumeric".into()));
        }
        if let Some(statement) = &inner.statement
            && !statement.bytes().all(|b| (0x20..0x7f).contains(&b))
        {
            return Err(SiweError::Malformed("statement must be printable ASCII".into()));
        }
        Ok(Self { raw: raw.to_string(), scheme: scheme.map(str::to_string), inner })
    }

    /// The text exactly as signed.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The optional scheme written before the domain.
    pub fn scheme(&self) -> Option<&str> {
        self.scheme.as_deref()
    }

    /// The domain (RFC 3986 authority) the message is bound to.
    pub fn domain(&self) -> String {
        self.inner.domain.to_string()
    }

    /// The signing wallet.
    pub fn address(&self) -> Address {
        Address::from(self.inner.address)
    }

    /// The statement line, if any.
    pub fn statement(&self) -> Option<&str> {
        self.inner.statement.as_deref()
    }

    /// The URI the sign-in is for.
    pub fn uri(&self) -> &str {
        self.inner.uri.as_str()
    }

    /// EIP-155 chain id.
    pub fn chain_id(&self) -> u64 {
        self.inner.chain_id
    }

    /// The nonce.
    pub fn nonce(&self) -> &str {
        &self.inner.nonce
    }

    /// `Issued At`.
    pub fn issued_at(&self) -> OffsetDateTime {
        *self.inner.issued_at.as_ref()
    }

    /// `Expiration Time`, if any.
    pub fn expiration_time(&self) -> Option<OffsetDateTime> {
        self.inner.expiration_time.as_ref().map(|t| *t.as_ref())
    }

    /// `Not Before`, if any.
    pub fn not_before(&self) -> Option<OffsetDateTime> {
        self.inner.not_before.as_ref().map(|t| *t.as_ref())
    }

    /// `Request ID`, if any.
    pub fn request_id(&self) -> Option<&str> {
        self.inner.request_id.as_deref()
    }

    /// The `Resources` URIs in order.
    pub fn resources(&self) -> impl Iterator<Item = &str> {
        self.inner.resources.iter().map(|r| r.as_str())
    }

    /// EIP-191 personal-message hash of the exact text: what an EOA signs and what ERC-1271
    /// `isValidSignature` is asked about.
    pub fn eip191_hash(&self) -> B256 {
        eip191_hash_message(self.raw.as_bytes())
    }

    /// Checks an EOA signature (65 bytes, `v` in 0/1 or 27/28) against the message's address.
    pub fn verify_signature(&self, signature: &[u8]) -> Result<(), SiweError> {
        let expected = self.address();
        let recovered = recover(&self.eip191_hash(), signature)?;
        if recovered == Some(expected) { Ok(()) } else { Err(SiweError::SignatureInvalid { expected, recovered }) }
    }

    /// Checks domain binding, scheme, URI origin, chain id, nonce and the time window.
    /// The signature is checked separately ([`Self::verify_signature`]) because contract
    /// wallets need a chain call.
    pub fn check(&self, opts: &VerifyOpts<'_>) -> Result<(), SiweError> {
        if let Some(expected) = opts.domain {
            let got = self.domain();
            if !got.eq_ignore_ascii_case(expected) {
                return Err(SiweError::DomainMismatch { expected: expected.into(), got });
            }
        }
        if let (Some(expected), Some(got)) = (opts.scheme, self.scheme())
            && !got.eq_ignore_ascii_case(expected)
        {
            return Err(SiweError::SchemeMismatch { expected: expected.into(), got: got.into() });
        }
        if let Some(origin) = opts.uri_origin {
            let uri = self.uri();
            let on_origin = uri.len() >= origin.len()
                && uri[..origin.len()].eq_ignore_ascii_case(origin)
                && matches!(uri.as_bytes().get(origin.len()), None | Some(b'/' | b'?' | b'#'));
            if !on_origin {
                return Err(SiweError::UriMismatch { expected: origin.into(), got: uri.into() });
            }
        }
        if let Some(ids) = opts.chain_ids
            && !ids.contains(&self.chain_id())
        {
            return Err(SiweError::ChainNotAllowed(self.chain_id()));
        }
        if let Some(nonce) = opts.nonce
            && nonce != self.nonce()
        {
            return Err(SiweError::NonceMismatch);
        }
        if let Some(exp) = self.expiration_time()
            && opts.now - opts.skew >= exp
        {
            return Err(SiweError::Expired(exp));
        }
        if let Some(nbf) = self.not_before()
            && opts.now + opts.skew < nbf
        {
            return Err(SiweError::NotYetValid(nbf));
        }
        if opts.reject_future_issued_at && self.issued_at() > opts.now + opts.skew {
            return Err(SiweError::IssuedInFuture(self.issued_at()));
        }
        Ok(())
    }
}

/// Recovers the address behind an EIP-191 prehash. `Ok(None)` when the signature is well formed
/// but recovers to no key.
fn recover(prehash: &B256, signature: &[u8]) -> Result<Option<Address>, SiweError> {
    if signature.len() != 65 {
        return Err(SiweError::SignatureMalformed(format!("expected 65 bytes, got {}", signature.len())));
    }
    let sig = Signature::from_raw(signature).map_err(|e| SiweError::SignatureMalformed(e.to_string()))?;
    Ok(sig.recover_address_from_prehash(prehash).ok())
}

/// Splits an optional RFC 3986 `scheme://` off the authority.
fn split_scheme(authority: &str) -> Result<(Option<&str>, &str), SiweError> {
    let Some((scheme, rest)) = authority.split_once("://") else { return Ok((None, authority)) };
    let mut bytes = scheme.bytes();
    let valid = bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !valid {
        return Err(SiweError::Malformed(format!("invalid scheme {scheme:?}")));
    }
    Ok((Some(scheme), rest))
}

/// The fields of a message, for building one (clients) and for the object-form test vectors.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    /// Optional scheme before the domain.
    pub scheme: Option<String>,
    /// RFC 3986 authority.
    pub domain: String,
    /// EIP-55 address.
    pub address: String,
    /// Optional statement.
    pub statement: Option<String>,
    /// URI.
    pub uri: String,
    /// Version, `1`.
    pub version: String,
    /// Chain id.
    pub chain_id: u64,
    /// Nonce.
    pub nonce: String,
    /// RFC 3339 issued-at.
    pub issued_at: String,
    /// RFC 3339 expiration.
    pub expiration_time: Option<String>,
    /// RFC 3339 not-before.
    pub not_before: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
    /// Resources.
    pub resources: Vec<String>,
}

impl Fields {
    /// Renders the EIP-4361 text of these fields, unchecked.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if let Some(scheme) = &self.scheme {
            out.push_str(scheme);
            out.push_str("://");
        }
        out.push_str(&self.domain);
        out.push_str(PREAMBLE);
        out.push('\n');
        out.push_str(&self.address);
        out.push_str("\n\n");
        if let Some(statement) = &self.statement {
            out.push_str(statement);
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&format!(
            "URI: {}\nVersion: {}\nChain ID: {}\nNonce: {}\nIssued At: {}",
            self.uri, self.version, self.chain_id, self.nonce, self.issued_at
        ));
        if let Some(exp) = &self.expiration_time {
            out.push_str(&format!("\nExpiration Time: {exp}"));
        }
        if let Some(nbf) = &self.not_before {
            out.push_str(&format!("\nNot Before: {nbf}"));
        }
        if let Some(rid) = &self.request_id {
            out.push_str(&format!("\nRequest ID: {rid}"));
        }
        if !self.resources.is_empty() {
            out.push_str("\nResources:");
            for r in &self.resources {
                out.push_str("\n- ");
                out.push_str(r);
            }
        }
        out
    }

    /// Renders and parses, so invalid fields are refused exactly as invalid text is.
    pub fn build(&self) -> Result<SiweMessage, SiweError> {
        SiweMessage::parse(&self.to_text())
    }
}

/// Formats a time as RFC 3339 with millisecond precision in UTC, as wallets write it.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let ms = t.millisecond();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        ms
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &str = "example.com wants you to sign in with your Ethereum account:\n0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2\n\nHello\n\nURI: https://example.com/login\nVersion: 1\nChain ID: 1\nNonce: 32891756x\nIssued At: 2021-09-30T16:25:24Z";

    #[test]
    fn parses_and_keeps_raw_text() {
        let m = SiweMessage::parse(MSG).expect("parses");
        assert_eq!(m.raw(), MSG);
        assert_eq!(m.domain(), "example.com");
        assert_eq!(m.chain_id(), 1);
        assert_eq!(m.scheme(), None);
    }

    #[test]
    fn optional_scheme_is_split_off() {
        let m = SiweMessage::parse(&format!("https://{MSG}")).expect("parses");
        assert_eq!(m.scheme(), Some("https"));
        assert_eq!(m.domain(), "example.com");
    }

    #[test]
    fn lowercase_address_has_its_own_error() {
        let lower =
            MSG.replace("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2");
        let err = SiweMessage::parse(&lower).expect_err("must fail");
        assert_eq!(err.code(), "siwe_address_not_checksummed");
    }

    #[test]
    fn uri_must_be_on_origin_not_a_prefix_lookalike() {
        let m = SiweMessage::parse(MSG).expect("parses");
        let now = OffsetDateTime::now_utc();
        let ok = VerifyOpts { uri_origin: Some("https://example.com"), ..VerifyOpts::at(now) };
        assert!(m.check(&ok).is_ok());
        let evil = MSG.replace("https://example.com/login", "https://example.com.evil.org/login");
        let m = SiweMessage::parse(&evil).expect("parses");
        assert_eq!(m.check(&ok).expect_err("refused").code(), "siwe_uri_mismatch");
    }

    #[test]
    fn format_time_round_trips() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("valid");
        assert_eq!(format_time(t), "2023-11-14T22:13:20.000Z");
    }
}
