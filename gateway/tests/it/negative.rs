//! Links that must fail: each with its own stable code, and nothing stored.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Browser, Env, param, with_param};

fn code(r: &(StatusCode, Value)) -> (StatusCode, Option<&str>) {
    (r.0, r.1["error"].as_str())
}

#[tokio::test]
async fn refuses_a_callback_with_a_wrong_state() {
    let env = Env::start().await;
    let wallet = env.wallet().await;
    let browser = Browser::new();
    let auth = browser.start(&env, &wallet).await;
    let callback = browser.authorize(&env, &auth, "alice").await;
    let forged = with_param(&callback, "state", "not-the-state-the-gateway-sent");
    assert_eq!(code(&browser.callback(&forged).await), (StatusCode::BAD_REQUEST, Some("state_invalid")));
    let missing = with_param(&callback, "state", "");
    assert_eq!(code(&browser.callback(&missing).await), (StatusCode::BAD_REQUEST, Some("callback_invalid")));
    env.assert_nothing_stored(&wallet.address).await;
}

#[tokio::test]
async fn refuses_a_replayed_callback_and_a_replayed_code() {
    let env = Env::start().await;
    let (alice, mallory) = (env.wallet().await, env.wallet().await);
    let browser = Browser::new();
    let callback = browser.authorize(&env, &browser.start(&env, &alice).await, "alice").await;
    assert_eq!(browser.callback(&callback).await.0, StatusCode::OK);
    let (_, before) = env.get("/v1/profiles").await;

    // The same callback URL again: its state was used up.
    assert_eq!(code(&browser.callback(&callback).await), (StatusCode::BAD_REQUEST, Some("state_invalid")));
    // The used code under a fresh link of another wallet: the provider refuses it.
    let fresh = browser.start(&env, &mallory).await;
    let replay = with_param(&with_param(&callback, "state", &param(&fresh, "state")), "iss", &env.provider.issuer());
    assert_eq!(code(&browser.callback(&replay).await), (StatusCode::BAD_REQUEST, Some("code_rejected")));
    assert_eq!(env.profile(&mallory.address).await.0, StatusCode::NOT_FOUND);
    assert_eq!(env.get("/v1/profiles").await.1, before, "nothing changed");
}

#[tokio::test]
async fn refuses_an_id_token_for_another_nonce() {
    let env = Env::start().await;
    let wallet = env.wallet().await;
    let browser = Browser::new();
    // The authorization request is changed on its way to the provider.
    let auth = with_param(&browser.start(&env, &wallet).await, "nonce", "attacker-chosen-nonce");
    let callback = browser.authorize(&env, &auth, "alice").await;
    assert_eq!(code(&browser.callback(&callback).await), (StatusCode::UNAUTHORIZED, Some("id_token_nonce_mismatch")));
    // And the provider itself putting another nonce in.
    env.provider.id_token_mode("wrong_nonce").await;
    let (status, body) = browser.link(&env, &wallet, "alice").await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("id_token_nonce_mismatch")));
    env.assert_nothing_stored(&wallet.address).await;
}

#[tokio::test]
async fn refuses_an_id_token_signed_by_an_unknown_key_and_rate_limits_key_fetches() {
    let env = Env::start().await;
    let wallet = env.wallet().await;
    let browser = Browser::new();
    env.provider.id_token_mode("unknown_key").await;
    let r = browser.link(&env, &wallet, "alice").await;
    assert_eq!(code(&r), (StatusCode::UNAUTHORIZED, Some("id_token_unknown_key")), "{}", r.1);
    let r = browser.link(&env, &wallet, "alice").await;
    assert_eq!(code(&r), (StatusCode::UNAUTHORIZED, Some("id_token_unknown_key")));
    assert_eq!(env.provider.stats().await["jwks"], 1, "unknown key ids do not make the gateway fetch keys each time");
    env.assert_nothing_stored(&wallet.address).await;
}

#[tokio::test]
async fn refuses_expired_foreign_and_misissued_id_tokens() {
    let env = Env::start().await;
    let wallet = env.wallet().await;
    let browser = Browser::new();
    for (mode, expected) in [
        ("expired", "id_token_expired"),
        ("wrong_audience", "id_token_wrong_audience"),
        ("wrong_issuer", "id_token_wrong_issuer"),
    ] {
        env.provider.id_token_mode(mode).await;
        let r = browser.link(&env, &wallet, "alice").await;
        assert_eq!(code(&r), (StatusCode::UNAUTHORIZED, Some(expected)), "{mode}: {}", r.1);
    }
    env.assert_nothing_stored(&wallet.address).await;
    env.provider.id_token_mode("normal").await;
    assert_eq!(browser.link(&env, &wallet, "alice").await.0, StatusCode::OK, "a good id_token still links");
}

#[tokio::test]
async fn refuses_links_without_a_valid_wallet_session() {
    let env = Env::start().await;
    let browser = Browser::new();
    assert_eq!(code(&browser.start_raw(&env, None).await), (StatusCode::UNAUTHORIZED, Some("session_missing")));
    assert_eq!(code(&browser.start_raw(&env, Some("junk")).await), (StatusCode::UNAUTHORIZED, Some("token_malformed")));
    // A token of another node (another key) is not a session here.
    let other = dchat_protocol::token::TokenSigner::new(ed25519_key());
    let claims = dchat_protocol::token::Claims {
        iss: "http://localhost:1".into(),
        sub: "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2".into(),
        aud: dchat_protocol::token::AUDIENCE.into(),
        iat: dchat_gateway::now(),
        exp: dchat_gateway::now() + 600,
        jti: "x".into(),
        dev: None,
    };
    let foreign = other.sign(&claims);
    assert_eq!(
        code(&browser.start_raw(&env, Some(&foreign)).await),
        (StatusCode::UNAUTHORIZED, Some("token_unknown_key"))
    );
    assert_eq!(code(&env.unlink(None).await), (StatusCode::UNAUTHORIZED, Some("session_missing")));
    let (_, feed) = env.get("/v1/profiles").await;
    assert_eq!(feed["profiles"], serde_json::json!([]));
}

fn ed25519_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&rand::random())
}

#[tokio::test]
async fn refuses_a_callback_after_the_wallet_session_ended() {
    let env = Env::start().await;
    let wallet = env.wallet_for(2).await;
    let browser = Browser::new();
    let callback = browser.authorize(&env, &browser.start(&env, &wallet).await, "alice").await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(code(&browser.callback(&callback).await), (StatusCode::UNAUTHORIZED, Some("session_expired")));
    env.assert_nothing_stored(&wallet.address).await;
}

#[tokio::test]
async fn refuses_a_callback_from_another_browser() {
    let env = Env::start().await;
    let wallet = env.wallet().await;
    let attacker = Browser::new();
    // The attacker starts a link for their wallet and gets the victim to finish it.
    let auth = attacker.start(&env, &wallet).await;
    let victim = Browser::new();
    let callback = victim.authorize(&env, &auth, "alice").await;
    assert_eq!(code(&victim.callback(&callback).await), (StatusCode::FORBIDDEN, Some("browser_mismatch")));
    env.assert_nothing_stored(&wallet.address).await;
}

#[tokio::test]
async fn reports_a_denied_authorization() {
    let env = Env::start().await;
    let wallet = env.wallet().await;
    let browser = Browser::new();
    // No such account at the provider: it answers access_denied.
    let r = browser.link(&env, &wallet, "nobody").await;
    assert_eq!(code(&r), (StatusCode::BAD_REQUEST, Some("provider_denied")), "{}", r.1);
    env.assert_nothing_stored(&wallet.address).await;
}

#[tokio::test]
async fn reports_the_provider_down() {
    let mut env = Env::start().await;
    let wallet = env.wallet().await;
    let browser = Browser::new();
    let callback = browser.authorize(&env, &browser.start(&env, &wallet).await, "alice").await;
    env.provider.kill();
    assert_eq!(code(&browser.callback(&callback).await), (StatusCode::BAD_GATEWAY, Some("provider_unavailable")));
    env.assert_nothing_stored(&wallet.address).await;
}

#[tokio::test]
async fn limits_links_in_progress_per_wallet() {
    let env = Env::with(|c| c.link.max_pending = 2).await;
    let wallet = env.wallet().await;
    let browser = Browser::new();
    browser.start(&env, &wallet).await;
    browser.start(&env, &wallet).await;
    let r = browser.start_raw(&env, Some(&wallet.token)).await;
    assert_eq!(code(&r), (StatusCode::TOO_MANY_REQUESTS, Some("too_many_pending_links")));
}
