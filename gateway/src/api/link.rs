//! Linking a LinkedIn account to a wallet: `start` (wallet session) gives the provider URL,
//! the provider sends the browser back to `callback`, `unlink` (wallet session) undoes it.

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use rsa::sha2::{Digest, Sha256};
use serde::Deserialize;
use serde_json::json;

use super::{AppState, profiles::ProfileView};
use crate::{
    attest::Subject,
    error::ApiError,
    now, now_ms,
    oidc::{self, id_token::constant_time_eq},
    session::Session,
    store::{NewLink, NewProfile},
};

/// Cookie that binds a link to the browser that started it.
const BINDING_COOKIE: &str = "dchat_gw_link";
/// Longest display name kept, characters.
const MAX_NAME_CHARS: usize = 200;
/// Longest picture URL kept, bytes.
const MAX_PICTURE_BYTES: usize = 2048;

/// `POST /v1/link/linkedin/start`: a new link for the session's wallet.
pub(super) async fn start(
    State(s): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let now = now();
    let state = random_token();
    let nonce = random_token();
    let verifier = s.oidc.pkce().then(oidc::pkce_verifier);
    // One binding value per browser, reused across links so that several can be open at once.
    let binding = s.config.link.bind_browser.then(|| cookie(&headers, BINDING_COOKIE).unwrap_or_else(random_token));
    let authorization_url = s.oidc.authorization_url(&state, &nonce, verifier.as_deref()).await?;
    let expires_at = now + s.config.link.ttl_secs;
    let link = NewLink {
        state_hash: sha256_hex(&state),
        wallet: session.wallet.to_checksum(None),
        nonce,
        code_verifier: verifier,
        browser_hash: binding.as_deref().map(sha256_hex),
        session_expires_at: session.claims.exp,
        now,
        expires_at,
    };
    if !s.store.start_link(&link, s.config.link.max_pending).await? {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_pending_links",
            format!(
                "this wallet already has {} links in progress; finish one or wait for it to expire",
                s.config.link.max_pending
            ),
        ));
    }
    tracing::info!(target: "gateway::link", wallet = %link.wallet, "link started");
    let mut resp = Json(json!({"authorization_url": authorization_url, "expires_at": expires_at})).into_response();
    if let Some(binding) = binding {
        let secure = if s.secure_cookies { "; Secure" } else { "" };
        let value = format!(
            "{BINDING_COOKIE}={binding}; Path=/v1/link/linkedin; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            s.config.link.ttl_secs
        );
        resp.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&value).map_err(ApiError::internal)?);
    }
    Ok(resp)
}

/// The provider's redirect back (OAuth 2.0 authorization response, RFC 9207 `iss`).
#[derive(Debug, Deserialize)]
pub(super) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    iss: Option<String>,
}

/// `GET /v1/link/linkedin/callback`: finishes a link. Answers JSON, or redirects to
/// `link.return_url` when one is configured.
pub(super) async fn callback(
    State(s): State<AppState>,
    query: Result<Query<CallbackQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let result = match query {
        Ok(Query(q)) => complete(&s, q, &headers).await,
        Err(_) => Err(ApiError::bad_request("callback_invalid", "the callback query does not parse")),
    };
    match (&s.config.link.return_url, result) {
        (None, Ok(view)) => Json(view).into_response(),
        (None, Err(e)) => e.into_response(),
        (Some(to), result) => {
            let (key, value) = match &result {
                Ok(_) => ("linkedin", "linked"),
                Err(e) => ("linkedin_error", e.code),
            };
            match url::Url::parse(to) {
                Ok(mut url) => {
                    url.query_pairs_mut().append_pair(key, value);
                    Redirect::to(url.as_str()).into_response()
                }
                Err(e) => ApiError::internal(e).into_response(),
            }
        }
    }
}

async fn complete(s: &AppState, q: CallbackQuery, headers: &HeaderMap) -> Result<ProfileView, ApiError> {
    let now = now();
    let state = q.state.filter(|v| !v.is_empty());
    if let Some(error) = q.error {
        // The user declined, or the provider refused the request: the link is over.
        if let Some(state) = &state {
            s.store.take_link(&sha256_hex(state)).await?;
        }
        let description: String = q.error_description.unwrap_or_default().chars().take(300).collect();
        let error: String = error.chars().take(100).collect();
        return Err(ApiError::bad_request(
            "provider_denied",
            format!("the provider did not authorize: {error} {description}"),
        ));
    }
    let state = state.ok_or_else(|| ApiError::bad_request("callback_invalid", "the callback has no state"))?;
    // Taking the link deletes it: a state (and so a callback URL) works once.
    let link =
        s.store.take_link(&sha256_hex(&state)).await?.ok_or_else(|| {
            ApiError::bad_request("state_invalid", "unknown or already used state; start the link again")
        })?;
    if link.expires_at <= now {
        return Err(ApiError::bad_request("state_expired", "this link expired; start it again"));
    }
    if let Some(expected) = &link.browser_hash {
        let matches = cookie(headers, BINDING_COOKIE)
            .is_some_and(|c| constant_time_eq(sha256_hex(&c).as_bytes(), expected.as_bytes()));
        if !matches {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "browser_mismatch",
                "this link was started in another browser; start it again from the dApp",
            ));
        }
    }
    if link.session_expires_at <= now {
        return Err(ApiError::unauthorized("session_expired", "the wallet session ended; sign in and start again"));
    }
    if let Some(iss) = &q.iss
        && iss != s.oidc.issuer()
    {
        return Err(ApiError::bad_request("issuer_mismatch", "the authorization response comes from another issuer"));
    }
    let code = q
        .code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("callback_invalid", "the callback has no code"))?;

    let verified = s.oidc.complete(&code, link.code_verifier.as_deref(), &link.nonce, now).await?;
    let info = &verified.info;
    let name = info.display_name().map(|n| n.chars().take(MAX_NAME_CHARS).collect::<String>()).ok_or_else(|| {
        ApiError::new(StatusCode::BAD_GATEWAY, "userinfo_invalid", "the provider's profile has no name")
    })?;
    let picture = info.picture.as_deref().filter(|p| {
        p.len() <= MAX_PICTURE_BYTES && url::Url::parse(p).is_ok_and(|u| matches!(u.scheme(), "https" | "http"))
    });
    let email_domain = info.verified_email_domain();
    let wallet = link.wallet.parse().map_err(ApiError::internal)?;
    let issued_at = u64::try_from(now).map_err(ApiError::internal)?;
    let (view, digest) = s
        .attester
        .sign(
            &Subject {
                wallet,
                subject: &verified.subject,
                name: &name,
                picture,
                email_domain: email_domain.as_deref(),
            },
            issued_at,
        )
        .map_err(ApiError::internal)?;
    let profile = NewProfile {
        wallet: link.wallet.clone(),
        subject_hash: view.signed.message.subject_hash.clone(),
        name,
        picture: picture.map(str::to_string),
        email_domain,
        digest: digest.to_string(),
        issued_at: now,
        expiry: i64::try_from(view.signed.message.expiry).map_err(ApiError::internal)?,
        body: serde_json::to_string(&view).map_err(ApiError::internal)?,
    };
    let moved = s.store.link(&profile, now, now_ms()).await?;
    tracing::info!(target: "gateway::link", wallet = %link.wallet, moved_from = ?moved, "linked");
    let row =
        s.store.profile(&link.wallet).await?.ok_or_else(|| ApiError::internal("profile vanished after linking"))?;
    ProfileView::from_row(row)
}

/// `DELETE /v1/link/linkedin`: unlinks the session's wallet and revokes its attestation.
pub(super) async fn unlink(State(s): State<AppState>, session: Session) -> Result<StatusCode, ApiError> {
    let wallet = session.wallet.to_checksum(None);
    if s.store.unlink(&wallet, now(), now_ms()).await? {
        tracing::info!(target: "gateway::link", %wallet, "unlinked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("profile_not_found", "this wallet has no linked profile"))
    }
}

/// 32 random bytes, base64url (43 characters).
fn random_token() -> String {
    B64.encode(rand::random::<[u8; 32]>())
}

fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// A cookie's value, when it looks like one of ours (43 base64url characters).
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 43 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_well_formed_binding_cookies() {
        let token = random_token();
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(&format!("a=b; {BINDING_COOKIE}={token}")).expect("h"));
        assert_eq!(cookie(&headers, BINDING_COOKIE), Some(token));
        headers.insert(header::COOKIE, HeaderValue::from_static("dchat_gw_link=short"));
        assert_eq!(cookie(&headers, BINDING_COOKIE), None);
        assert_eq!(cookie(&HeaderMap::new(), BINDING_COOKIE), None);
    }
}
