//! The HTTP API: linking (`/v1/link/linkedin/*`), profiles and attestations, health.

mod link;
mod profiles;

use std::{ops::Deref, sync::Arc};

use axum::{
    Json, Router,
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use serde_json::json;
use tower_http::trace::TraceLayer;

use crate::{attest::Attester, config::Config, error::ApiError, oidc::Oidc, session::Sessions, store::Store};

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState(pub Arc<Inner>);

/// What [`AppState`] holds.
#[derive(Debug)]
pub struct Inner {
    /// Configuration.
    pub config: Config,
    /// The store.
    pub store: Store,
    /// The OpenID Connect relying party.
    pub oidc: Oidc,
    /// Wallet sessions (node tokens).
    pub sessions: Sessions,
    /// Attestation signer.
    pub attester: Attester,
    /// Whether cookies get the `Secure` attribute (public URL on https).
    pub secure_cookies: bool,
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/info", get(info))
        .route("/v1/link/linkedin/start", post(link::start))
        .route("/v1/link/linkedin/callback", get(link::callback))
        .route("/v1/link/linkedin", delete(link::unlink))
        .route("/v1/profiles", get(profiles::feed))
        .route("/v1/profiles/{address}", get(profiles::profile))
        .route("/v1/attestations/{digest}", get(profiles::attestation))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), cors))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the database answers and the provider's endpoints are known (configured or
/// discovered).
async fn readyz(State(s): State<AppState>) -> Response {
    let database = s.store.ping().await;
    let provider = s.oidc.endpoints().await.is_ok();
    if database && provider {
        return Json(json!({"status": "ready"})).into_response();
    }
    let mut missing = vec![];
    if !database {
        missing.push("the database does not answer");
    }
    if !provider {
        missing.push("the identity provider's endpoints are not known (discovery failed)");
    }
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", missing.join("; ")).into_response()
}

/// What verifiers need: the signer address and the EIP-712 domain.
async fn info(State(s): State<AppState>) -> Json<serde_json::Value> {
    let d = s.attester.domain();
    Json(json!({
        "signer": s.attester.address().to_checksum(None),
        "domain": {
            "name": d.name,
            "version": d.version,
            "chainId": s.config.attestation.chain_id,
            "verifyingContract": d.verifying_contract.map(|a| a.to_checksum(None)),
        },
        "primaryType": dchat_protocol::attestation::PRIMARY_TYPE,
        "issuer": s.oidc.issuer(),
        "attestation_ttl_secs": s.config.attestation.ttl_secs,
    }))
}

async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this endpoint does not take that method")
}

/// CORS for the configured origins: the dApp calls `start` and `unlink` with its bearer token and
/// credentials (the browser-binding cookie). Other origins get no CORS headers, so browsers keep
/// their scripts out.
async fn cors(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .filter(|o| s.config.cors_origins.iter().any(|allowed| o.as_bytes() == allowed.as_bytes()))
        .cloned();
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut resp = if preflight { StatusCode::NO_CONTENT.into_response() } else { next.run(req).await };
    let h = resp.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("origin"));
    if let Some(origin) = origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        if preflight {
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, DELETE"));
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("authorization, content-type"));
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
    }
    resp
}
