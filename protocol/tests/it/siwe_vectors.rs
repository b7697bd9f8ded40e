//! Every case of the official EIP-4361 test vectors (`protocol/testdata/siwe`).

use std::{collections::BTreeMap, path::PathBuf};

use dchat_protocol::siwe::{Fields, SiweMessage, VerifyOpts};
use serde_json::Value;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

fn load(name: &str) -> BTreeMap<String, Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/siwe").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("vector file is JSON")
}

fn opt_str(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Reads the object form of a message; `None` when a field has the wrong JSON type.
fn fields(v: &Value) -> Option<Fields> {
    let resources = match v.get("resources") {
        None => vec![],
        Some(r) => r.as_array()?.iter().map(|x| x.as_str().map(str::to_string)).collect::<Option<_>>()?,
    };
    Some(Fields {
        scheme: opt_str(v, "scheme"),
        domain: opt_str(v, "domain").unwrap_or_default(),
        address: opt_str(v, "address").unwrap_or_default(),
        statement: opt_str(v, "statement"),
        uri: opt_str(v, "uri").unwrap_or_default(),
        version: opt_str(v, "version").unwrap_or_default(),
        chain_id: match v.get("chainId") {
            None => return None,
            Some(c) => c.as_u64()?,
        },
        nonce: opt_str(v, "nonce").unwrap_or_default(),
        issued_at: opt_str(v, "issuedAt").unwrap_or_default(),
        expiration_time: opt_str(v, "expirationTime"),
        not_before: opt_str(v, "notBefore"),
        request_id: opt_str(v, "requestId"),
        resources,
    })
}

#[test]
fn parsing_positive_vectors_all_parse_to_their_fields() {
    let cases = load("parsing_positive.json");
    assert_eq!(cases.len(), 19);
    for (name, case) in &cases {
        let text = case["message"].as_str().expect("message");
        let m = SiweMessage::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let f = &case["fields"];
        assert_eq!(m.domain(), f["domain"].as_str().expect("domain"), "{name}: domain");
        assert_eq!(m.address().to_checksum(None), f["address"].as_str().expect("address"), "{name}: address");
        assert_eq!(m.statement(), f.get("statement").and_then(Value::as_str), "{name}: statement");
        assert_eq!(m.uri(), f["uri"].as_str().expect("uri"), "{name}: uri");
        assert_eq!(m.chain_id(), f["chainId"].as_u64().expect("chainId"), "{name}: chain id");
        assert_eq!(m.nonce(), f["nonce"].as_str().expect("nonce"), "{name}: nonce");
        assert_eq!(m.scheme(), f.get("scheme").and_then(Value::as_str), "{name}: scheme");
        assert_eq!(m.request_id(), f.get("requestId").and_then(Value::as_str), "{name}: request id");
        let time = |key: &str| {
            f.get(key).and_then(Value::as_str).map(|s| OffsetDateTime::parse(s, &Rfc3339).expect("vector time"))
        };
        assert_eq!(Some(m.issued_at()), time("issuedAt"), "{name}: issued at");
        assert_eq!(m.expiration_time(), time("expirationTime"), "{name}: expiration");
        assert_eq!(m.not_before(), time("notBefore"), "{name}: not before");
        let want: Vec<&str> = f
            .get("resources")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert_eq!(m.resources().collect::<Vec<_>>(), want, "{name}: resources");
        // The text is kept exactly as signed.
        assert_eq!(m.raw(), text, "{name}: raw text");
    }
}

#[test]
fn parsing_negative_vectors_are_all_refused() {
    let cases = load("parsing_negative.json");
    assert_eq!(cases.len(), 29);
    for (name, case) in &cases {
        let text = case.as_str().expect("message string");
        assert!(SiweMessage::parse(text).is_err(), "{name}: must be refused");
    }
}

#[test]
fn parsing_negative_objects_are_all_refused() {
    let cases = load("parsing_negative_objects.json");
    assert_eq!(cases.len(), 18);
    for (name, case) in &cases {
        let built = fields(case).map(|f| f.build());
        assert!(!matches!(built, Some(Ok(_))), "{name}: must be refused");
    }
}

/// Verifies an object-form vector the way a relying party would.
fn verify_case(case: &Value) -> Result<(), String> {
    let f = fields(case).ok_or("fields of the wrong type")?;
    let m = f.build().map_err(|e| e.to_string())?;
    let sig_hex = case["signature"].as_str().ok_or("no signature")?;
    let sig = hex::decode(sig_hex.trim_start_matches("0x")).map_err(|e| e.to_string())?;
    m.verify_signature(&sig).map_err(|e| e.to_string())?;
    let now = match case.get("time").and_then(Value::as_str) {
        Some(t) => OffsetDateTime::parse(t, &Rfc3339).map_err(|e| e.to_string())?,
        None => OffsetDateTime::now_utc(),
    };
    let domain = case.get("domainBinding").and_then(Value::as_str);
    let nonce = case.get("matchNonce").and_then(Value::as_str);
    m.check(&VerifyOpts { domain, nonce, ..VerifyOpts::at(now) }).map_err(|e| e.to_string())
}

#[test]
fn verification_positive_vectors_all_verify() {
    let cases = load("verification_positive.json");
    assert_eq!(cases.len(), 4);
    for (name, case) in &cases {
        verify_case(case).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn verification_negative_vectors_are_all_refused() {
    let cases = load("verification_negative.json");
    assert_eq!(cases.len(), 10);
    for (name, case) in &cases {
        assert!(verify_case(case).is_err(), "{name}: must be refused");
    }
}
