//! The HTTP API: search (`/v1/search/*`), token uploads, health and metrics.

mod chain;
mod search;

use std::{ops::Deref, sync::Arc};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::json;
use tower_http::trace::TraceLayer;

use crate::{config::Config, error::ApiError, metrics::Metrics, session::Sessions, store::Store};

pub use search::{MessageHit, MessageResults, TokensStored, UserResult, UserResults};

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
    /// Callers (node tokens).
    pub sessions: Sessions,
    /// Follower metrics.
    pub metrics: Arc<Metrics>,
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
        .route("/metrics", get(metrics))
        .route("/v1/search/messages", get(search::messages))
        .route("/v1/chain/status", get(chain::status))
        .route("/v1/chain/anchors", get(chain::anchors))
        .route("/v1/chain/events", get(chain::events))
        .route("/v1/search/users", get(search::users))
        .route("/v1/search/tokens", post(search::tokens).layer(DefaultBodyLimit::max(256 * 1024)))
        .fallback(|| async { ApiError::not_found("not_found", "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this endpoint")
        })
        .layer(DefaultBodyLimit::max(16 * 1024))
        .layer(middleware::from_fn_with_state(state.clone(), cors))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// CORS for the configured origins (the dApp, which calls search with its node token as a
/// bearer, no cookies). Other origins get no CORS headers, so browsers keep their scripts out.
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
        if preflight {
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("authorization, content-type"));
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
    }
    resp
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the database answers.
async fn readyz(State(s): State<AppState>) -> Response {
    if s.store.ping().await {
        return Json(json!({"status": "ready", "lag_seq": s.metrics.lag()})).into_response();
    }
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "the database does not answer").into_response()
}

async fn metrics(State(s): State<AppState>) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render()).into_response()
}
