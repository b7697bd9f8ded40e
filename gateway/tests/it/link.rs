//! The whole link against the real provider: link, read, verify, re-link, unlink.

use std::str::FromStr;

use alloy::primitives::Address;
use dchat_protocol::attestation::{SignedAttestation, subject_hash};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Browser, Env};

fn verify(attestation: &Value, signer: Address) -> dchat_protocol::attestation::ProfileAttestation {
    let signed: SignedAttestation = serde_json::from_value(attestation.clone()).expect("attestation JSON");
    signed.verify(signer, dchat_gateway::now(), 60).expect("attestation verifies")
}

#[tokio::test]
async fn links_linkedin_and_serves_a_verifiable_attestation_until_unlinked() {
    let env = Env::start().await;
    let wallet = env.wallet().await;
    let browser = Browser::new();

    let (status, linked) = browser.link(&env, &wallet, "alice").await;
    assert_eq!(status, StatusCode::OK, "{linked}");
    assert_eq!(linked["address"], wallet.address);
    assert_eq!(linked["profile"]["name"], "Alice Example");
    assert_eq!(linked["profile"]["picture"], "https://media.licdn.example/dms/image/alice.jpg");
    assert_eq!(linked["profile"]["email_domain"], "example.com");

    // Anyone can read it and check the signature against the gateway's published address.
    let (status, info) = env.get("/v1/info").await;
    assert_eq!(status, StatusCode::OK);
    let signer = Address::from_str(info["signer"].as_str().expect("signer")).expect("address");
    assert_eq!(signer, env.gateway.as_ref().expect("gateway").signer());
    let (status, profile) = env.profile(&wallet.address.to_lowercase()).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile, linked, "the callback shows what is stored");
    let attestation = &profile["attestation"];
    let m = verify(attestation, signer);
    assert_eq!(m.wallet.to_checksum(None), wallet.address);
    assert_eq!(m.subjectHash, subject_hash("alice"));
    assert_eq!(m.name, "Alice Example");
    assert_eq!(m.emailDomain, "example.com");
    assert_eq!(attestation["domain"], json!({"name": "dchat-gateway", "version": "1", "chainId": 1}));
    assert_eq!(attestation["signer"], info["signer"]);

    // Only the public part is kept: no email address, locale or raw subject.
    let text = profile.to_string();
    for private in ["alice@example.com", "locale", "\"alice\""] {
        assert!(!text.contains(private), "{private} leaked: {text}");
    }

    let (_, feed) = env.get("/v1/profiles?updated_after=0").await;
    assert_eq!(feed["profiles"].as_array().map(Vec::len), Some(1));
    assert_eq!(feed["profiles"][0]["address"], wallet.address);
    let stamp = feed["next_updated_after"].as_i64().expect("stamp");

    let digest = attestation["digest"].as_str().expect("digest").to_string();
    let (status, current) = env.get(&format!("/v1/attestations/{digest}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(current["revoked"], false);

    let (status, body) = env.unlink(Some(&wallet.token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = env.profile(&wallet.address).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "profile_not_found");
    let (_, revoked) = env.get(&format!("/v1/attestations/{digest}")).await;
    assert_eq!(revoked["revoked"], true);
    assert_eq!(revoked["revoked_reason"], "unlinked");
    assert_eq!(revoked["attestation"], Value::Null, "the revoked attestation's data is gone");
    let (_, feed) = env.get(&format!("/v1/profiles?updated_after={stamp}")).await;
    assert_eq!(
        feed["profiles"],
        json!([{"address": wallet.address, "linked": false, "updated_at": feed["next_updated_after"],
                "profile": null, "attestation": null}]),
        "the feed tells readers to drop the profile"
    );
    let (status, body) = env.unlink(Some(&wallet.token)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("profile_not_found")));
}

#[tokio::test]
async fn relinking_refreshes_the_profile_and_supersedes_the_attestation() {
    let env = Env::start().await;
    let wallet = env.wallet().await;
    let browser = Browser::new();
    let (status, first) = browser.link(&env, &wallet, "alice").await;
    assert_eq!(status, StatusCode::OK, "{first}");

    env.provider
        .account(json!({"sub": "alice", "name": "Alice Renamed", "email": "alice@corp.example",
                        "email_verified": true, "locale": {"country": "DE", "language": "de"}}))
        .await;
    let (status, second) = browser.link(&env, &wallet, "alice").await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["profile"]["name"], "Alice Renamed");
    assert_eq!(second["profile"]["email_domain"], "corp.example");
    assert_eq!(second["profile"]["picture"], Value::Null, "the picture is gone from the profile");
    assert!(second["updated_at"].as_i64() > first["updated_at"].as_i64());
    let signer = env.gateway.as_ref().expect("gateway").signer();
    assert_eq!(verify(&second["attestation"], signer).name, "Alice Renamed");

    let old = first["attestation"]["digest"].as_str().expect("digest");
    let (_, status) = env.get(&format!("/v1/attestations/{old}")).await;
    assert_eq!((status["revoked"].as_bool(), status["revoked_reason"].as_str()), (Some(true), Some("superseded")));
    let (_, feed) = env.get("/v1/profiles").await;
    assert_eq!(feed["profiles"].as_array().map(Vec::len), Some(1), "one row per wallet");
}

#[tokio::test]
async fn a_linkedin_account_moves_to_the_wallet_that_links_it_last() {
    let env = Env::start().await;
    let (a, b) = (env.wallet().await, env.wallet().await);
    let (status, first) = Browser::new().link(&env, &a, "alice").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, second) = Browser::new().link(&env, &b, "alice").await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(env.profile(&a.address).await.0, StatusCode::NOT_FOUND);
    assert_eq!(env.profile(&b.address).await.0, StatusCode::OK);
    let old = first["attestation"]["digest"].as_str().expect("digest");
    let (_, status) = env.get(&format!("/v1/attestations/{old}")).await;
    assert_eq!(status["revoked_reason"], "moved");
    let (_, feed) = env.get("/v1/profiles").await;
    let rows: Vec<(Value, Value)> = feed["profiles"]
        .as_array()
        .expect("profiles")
        .iter()
        .map(|p| (p["address"].clone(), p["linked"].clone()))
        .collect();
    assert_eq!(rows, [(json!(a.address), json!(false)), (json!(b.address), json!(true))]);
}

#[tokio::test]
async fn links_with_pkce_when_configured() {
    let env = Env::with(|c| c.linkedin.pkce = true).await;
    let wallet = env.wallet().await;
    let browser = Browser::new();
    let auth = browser.start(&env, &wallet).await;
    assert_eq!(crate::common::param(&auth, "code_challenge_method"), "S256");
    let callback = browser.authorize(&env, &auth, "alice").await;
    let (status, body) = browser.callback(&callback).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn follows_the_providers_key_rotation() {
    let env = Env::with(|c| c.linkedin.jwks_min_refresh_secs = 0).await;
    let wallet = env.wallet().await;
    let browser = Browser::new();
    let (status, body) = browser.link(&env, &wallet, "alice").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(env.provider.stats().await["jwks"], 1);

    env.provider.rotate().await;
    let (status, body) = browser.link(&env, &wallet, "alice").await;
    assert_eq!(status, StatusCode::OK, "an id_token signed with the new key is accepted: {body}");
    assert_eq!(env.provider.stats().await["jwks"], 2, "the unknown kid made the gateway fetch the keys once");
    let (status, body) = browser.link(&env, &wallet, "alice").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(env.provider.stats().await["jwks"], 2, "known keys are not fetched again");
}

#[tokio::test]
async fn reads_userinfo_leniently() {
    let env = Env::start().await;
    // String flags and a string locale, as some providers send them.
    env.provider
        .account(json!({"sub": "bob", "given_name": "Bob", "family_name": "Builder", "locale": "en_GB",
                        "email": "bob@Builders.Example", "email_verified": "true"}))
        .await;
    env.provider.account(json!({"sub": "carol", "name": "Carol", "email": "carol@example.org"})).await;
    let (bob, carol) = (env.wallet().await, env.wallet().await);
    let (status, body) = Browser::new().link(&env, &bob, "bob").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["profile"]["name"], "Bob Builder");
    assert_eq!(body["profile"]["email_domain"], "builders.example");
    let (status, body) = Browser::new().link(&env, &carol, "carol").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["profile"]["email_domain"], Value::Null, "an unverified email gives no domain");
    assert_eq!(body["attestation"]["message"]["emailDomain"], "");
}

#[tokio::test]
async fn the_feed_pages_through_changes_in_order() {
    let env = Env::start().await;
    let mut addresses = vec![];
    for sub in ["u1", "u2", "u3"] {
        env.provider.account(json!({"sub": sub, "name": format!("User {sub}")})).await;
        let w = env.wallet().await;
        let (status, body) = Browser::new().link(&env, &w, sub).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        addresses.push(w.address);
    }
    let (_, page) = env.get("/v1/profiles?limit=2").await;
    assert_eq!(page["has_more"], true);
    let mut seen: Vec<Value> =
        page["profiles"].as_array().expect("profiles").iter().map(|p| p["address"].clone()).collect();
    let after = page["next_updated_after"].as_i64().expect("stamp");
    let (_, page) = env.get(&format!("/v1/profiles?limit=2&updated_after={after}")).await;
    assert_eq!(page["has_more"], false);
    seen.extend(page["profiles"].as_array().expect("profiles").iter().map(|p| p["address"].clone()));
    assert_eq!(seen, addresses.iter().map(|a| json!(a)).collect::<Vec<_>>());
    let after = page["next_updated_after"].as_i64().expect("stamp");
    let (_, page) = env.get(&format!("/v1/profiles?updated_after={after}")).await;
    assert_eq!((page["profiles"].clone(), page["next_updated_after"].as_i64()), (json!([]), Some(after)));

    for bad in ["limit=0", "limit=1001", "updated_after=-1", "updated_after=yesterday"] {
        let (status, body) = env.get(&format!("/v1/profiles?{bad}")).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("query_invalid")), "{bad}");
    }
}

#[tokio::test]
async fn health_readiness_and_json_errors() {
    let env = Env::start().await;
    assert_eq!(env.get("/healthz").await, (StatusCode::OK, json!({"status": "ok"})));
    assert_eq!(env.get("/readyz").await, (StatusCode::OK, json!({"status": "ready"})));
    let (status, body) = env.get("/v1/nope").await;
    assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({"error": "not_found", "message": "no such endpoint"})));
    let (status, body) = env.profile("0x1234").await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("address_invalid")));
    let (status, body) = env.get(&format!("/v1/attestations/0x{}", "00".repeat(32))).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("attestation_not_found")));
    let (status, body) = env.get("/v1/link/linkedin/start").await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")));
}

#[tokio::test]
async fn sends_the_browser_back_to_the_dapp_and_answers_its_cors_requests() {
    const DAPP: &str = "https://chat.example.org";
    let env = Env::with(|c| {
        c.link.return_url = Some(format!("{DAPP}/settings?tab=profile"));
        c.cors_origins = vec![DAPP.into()];
    })
    .await;
    let preflight = |origin: &'static str| {
        env.http
            .request(reqwest::Method::OPTIONS, format!("{}/v1/link/linkedin/start", env.url))
            .header(reqwest::header::ORIGIN, origin)
            .header(reqwest::header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(reqwest::header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization")
            .send()
    };
    let resp = preflight(DAPP).await.expect("preflight");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], DAPP);
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert!(h["access-control-allow-headers"].to_str().expect("ascii").contains("authorization"));
    let resp = preflight("https://evil.example").await.expect("preflight");
    assert!(resp.headers().get("access-control-allow-origin").is_none(), "other origins get no CORS grant");

    let wallet = env.wallet().await;
    let browser = Browser::new();
    let callback = browser.authorize(&env, &browser.start(&env, &wallet).await, "alice").await;
    let resp = browser.callback_raw(&callback).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], format!("{DAPP}/settings?tab=profile&linkedin=linked"));
    assert_eq!(env.profile(&wallet.address).await.0, StatusCode::OK);
    let resp = browser.callback_raw(&callback).await;
    assert_eq!(resp.headers()["location"], format!("{DAPP}/settings?tab=profile&linkedin_error=state_invalid"));
}
