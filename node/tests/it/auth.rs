//! Sign-In with Ethereum against a real node: every refusal has its own code.

use std::collections::BTreeSet;

use alloy::signers::{SignerSync, local::PrivateKeySigner};
use dchat_node::client::{ClientError, SignIn};
use dchat_protocol::{
    delegation::SIGN_PREFIX,
    siwe::{Fields, format_time},
    token::{Jwks, TokenVerifier},
};
use ed25519_dalek::SigningKey;
use time::{Duration, OffsetDateTime};

use crate::common::{TestNode, User};

/// Fields a well-behaved client would send to `node`, with a fresh nonce.
async fn fields(node: &TestNode, wallet: &PrivateKeySigner) -> Fields {
    let n = node.client().nonce().await.expect("nonce");
    let now = OffsetDateTime::now_utc();
    let device = SigningKey::from_bytes(&rand::random());
    Fields {
        domain: n.domain,
        address: wallet.address().to_checksum(None),
        statement: Some("Sign in to dchat".into()),
        uri: n.uri,
        version: "1".into(),
        chain_id: 1,
        nonce: n.nonce,
        issued_at: format_time(now),
        expiration_time: Some(format_time(now + Duration::hours(1))),
        resources: vec![format!("{SIGN_PREFIX}{}", hex::encode(device.verifying_key().as_bytes()))],
        ..Fields::default()
    }
}

fn sign(wallet: &PrivateKeySigner, text: &str) -> Vec<u8> {
    wallet.sign_message_sync(text.as_bytes()).expect("sign").as_bytes().to_vec()
}

/// Submits and returns the error code (panics on success).
async fn refused(node: &TestNode, text: String, sig: &[u8]) -> (u16, String) {
    match node.client().submit_siwe(text, sig).await {
        Ok(_) => panic!("sign-in should have been refused"),
        Err(ClientError::Api { status, code, .. }) => (status, code),
        Err(e) => panic!("transport error: {e}"),
    }
}

#[tokio::test]
async fn signs_in_and_token_verifies_against_jwks() {
    let node = TestNode::start().await;
    let user = User::sign_in(&node).await;
    let jwks: Jwks = reqwest::get(format!("{}/.well-known/jwks.json", node.node.url()))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(jwks.keys[0].alg, "EdDSA");
    let claims = TokenVerifier::from_jwks(&jwks)
        .verify(user.client.token().expect("token"), OffsetDateTime::now_utc().unix_timestamp())
        .expect("valid token");
    assert_eq!(claims.sub, user.address());
    assert_eq!(claims.dev, Some(format!("0x{}", hex::encode(user.device.verifying_key().as_bytes()))));
    // The session works for authenticated endpoints.
    assert!(user.client.rooms().await.expect("rooms").is_empty());
}

#[tokio::test]
async fn rejects_each_bad_sign_in_with_its_own_code() {
    let node = TestNode::start().await;
    let other_node = TestNode::start().await;
    let wallet = PrivateKeySigner::random();
    let now = OffsetDateTime::now_utc();
    let mut codes = Vec::new();

    // Replayed nonce: the first use succeeds, the second is refused.
    let f = fields(&node, &wallet).await;
    let text = f.to_text();
    let sig = sign(&wallet, &text);
    node.client().submit_siwe(text.clone(), &sig).await.expect("first use");
    codes.push(("replayed nonce", refused(&node, text, &sig).await, (401, "siwe_nonce_used")));

    // A nonce issued by another node.
    let mut f = fields(&other_node, &wallet).await;
    let mine = fields(&node, &wallet).await;
    f.domain = mine.domain;
    f.uri = mine.uri;
    let text = f.to_text();
    codes.push((
        "foreign nonce",
        refused(&node, text.clone(), &sign(&wallet, &text)).await,
        (401, "siwe_nonce_unknown"),
    ));

    type Tweak = Box<dyn Fn(&mut Fields)>;
    let cases: Vec<(&str, Tweak, (u16, &str))> = vec![
        ("wrong domain", Box::new(|f| f.domain = "evil.example".into()), (401, "siwe_domain_mismatch")),
        ("wrong uri", Box::new(|f| f.uri = "https://evil.example/login".into()), (401, "siwe_uri_mismatch")),
        ("wrong scheme", Box::new(|f| f.scheme = Some("https".into())), (401, "siwe_scheme_mismatch")),
        ("wrong chain", Box::new(|f| f.chain_id = 5), (401, "siwe_chain_not_allowed")),
        (
            "expired",
            Box::new(move |f| {
                f.issued_at = format_time(now - Duration::hours(2));
                f.expiration_time = Some(format_time(now - Duration::hours(1)));
            }),
            (401, "siwe_expired"),
        ),
        (
            "not yet valid",
            Box::new(move |f| f.not_before = Some(format_time(now + Duration::hours(1)))),
            (401, "siwe_not_yet_valid"),
        ),
        (
            "issued in future",
            Box::new(move |f| f.issued_at = format_time(now + Duration::hours(1))),
            (401, "siwe_issued_in_future"),
        ),
        (
            "lowercase address",
            Box::new(|f| f.address = f.address.to_lowercase()),
            (400, "siwe_address_not_checksummed"),
        ),
        ("malformed", Box::new(|f| f.version = "2".into()), (400, "siwe_malformed")),
        ("no expiry on delegation", Box::new(|f| f.expiration_time = None), (400, "delegation_expiry_required")),
        (
            "delegation too long",
            Box::new(move |f| f.expiration_time = Some(format_time(now + Duration::days(400)))),
            (400, "delegation_too_long"),
        ),
        (
            "bad device key",
            Box::new(|f| f.resources = vec![format!("{SIGN_PREFIX}1234")]),
            (400, "delegation_invalid_key"),
        ),
    ];
    for (name, tweak, want) in cases {
        let mut f = fields(&node, &wallet).await;
        tweak(&mut f);
        let text = f.to_text();
        codes.push((name, refused(&node, text.clone(), &sign(&wallet, &text)).await, want));
    }

    // Signed by another key.
    let f = fields(&node, &wallet).await;
    let text = f.to_text();
    let impostor = PrivateKeySigner::random();
    codes.push((
        "other signer",
        refused(&node, text.clone(), &sign(&impostor, &text)).await,
        (401, "siwe_signature_invalid"),
    ));
    // Not a signature at all.
    codes.push(("short signature", refused(&node, text.clone(), &[1, 2, 3]).await, (400, "siwe_signature_malformed")));
    // The refusals above did not burn this nonce: the genuine signature still works.
    node.client().submit_siwe(text.clone(), &sign(&wallet, &text)).await.expect("nonce survives failed attempts");

    for (name, got, (status, code)) in &codes {
        assert_eq!((got.0, got.1.as_str()), (*status, *code), "{name}");
    }
    let distinct: BTreeSet<&str> = codes.iter().map(|(_, (_, c), _)| c.as_str()).collect();
    assert_eq!(distinct.len(), codes.len(), "every failure has its own code");
}

#[tokio::test]
async fn expired_nonce_is_refused() {
    let node = TestNode::with(|c| c.auth.nonce_ttl_secs = 1).await;
    let wallet = PrivateKeySigner::random();
    let f = fields(&node, &wallet).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let text = f.to_text();
    assert_eq!(refused(&node, text.clone(), &sign(&wallet, &text)).await, (401, "siwe_nonce_expired".into()));
}

#[tokio::test]
async fn optional_scheme_matching_the_node_is_accepted() {
    let node = TestNode::start().await;
    let wallet = PrivateKeySigner::random();
    let mut f = fields(&node, &wallet).await;
    f.scheme = Some("http".into());
    let text = f.to_text();
    let session = node.client().submit_siwe(text.clone(), &sign(&wallet, &text)).await.expect("accepted");
    assert_eq!(session.address, wallet.address().to_checksum(None));
}

#[tokio::test]
async fn device_key_of_one_wallet_cannot_be_claimed_by_another() {
    let node = TestNode::start().await;
    let device = SigningKey::from_bytes(&rand::random());
    for (i, wallet) in [PrivateKeySigner::random(), PrivateKeySigner::random()].iter().enumerate() {
        let mut client = node.client();
        let s = SignIn { wallet, device: Some(&device), box_key: None, ttl_secs: 600, chain_id: None };
        let r = client.sign_in(&s).await;
        if i == 0 {
            r.expect("first wallet delegates the key");
        } else {
            assert_eq!(r.expect_err("second wallet refused").code(), Some("device_key_taken"));
        }
    }
}

#[tokio::test]
async fn unauthenticated_and_bad_tokens_get_401() {
    let node = TestNode::start().await;
    let err = node.client().rooms().await.expect_err("no token");
    assert_eq!((err.status(), err.code()), (Some(401), Some("unauthorized")));
    let err = node.client().with_token("not.a.token").rooms().await.expect_err("garbage token");
    assert_eq!((err.status(), err.code()), (Some(401), Some("token_malformed")));
    // A token from another node's key.
    let other = TestNode::start().await;
    let user = User::sign_in(&other).await;
    let err = node.client().with_token(user.client.token().expect("token")).rooms().await.expect_err("foreign token");
    assert_eq!((err.status(), err.code()), (Some(401), Some("token_unknown_key")));
}
