//! The HTTP API: search (`/v1/search/*`), token uploads, health and metrics.

mod search;

use std::{ops::Deref, sync::Arc};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, State},
    http::StatusCode,
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
        .route("/v1/search/users", get(search::users))
        .route("/v1/search/tokens", post(search::tokens).layer(DefaultBodyLimit::max(256 * 1024)))
        .fallback(|| async { ApiError::not_found("not_found", "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this endpoint")
        })
        .layer(DefaultBodyLimit::max(16 * 1024))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
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
