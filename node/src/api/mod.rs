//! The HTTP and WebSocket API.

pub mod auth;
pub mod error;
pub mod extract;
pub mod info;
pub mod log;
pub mod messages;
pub mod rooms;
pub mod social;
pub mod ws;

use std::{net::IpAddr, sync::Arc};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use dchat_protocol::{
    Address, Kind,
    token::{TokenSigner, TokenVerifier},
};
use tokio_util::sync::CancellationToken;

use crate::{config::Config, hub::Hub, ratelimit::RateLimiter, store::Store};
pub use error::ApiError;

/// Shared state of every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// What [`AppState`] holds.
#[derive(Debug)]
pub struct Inner {
    /// Configuration.
    pub config: Config,
    /// SIWE domain this node binds sign-ins to.
    pub domain: String,
    /// Public origin, no trailing slash.
    pub public_url: String,
    /// Store.
    pub store: Store,
    /// Live fan-out.
    pub hub: Arc<Hub>,
    /// Token issuer.
    pub signer: TokenSigner,
    /// Token checker for this node's own tokens.
    pub tokens: TokenVerifier,
    /// Per-IP limits.
    pub ip_limits: RateLimiter<IpAddr>,
    /// Per-address limits on writes.
    pub address_limits: RateLimiter<Address>,
    /// Cancelled on shutdown.
    pub shutdown: CancellationToken,
    /// The network, when enabled.
    pub p2p: Option<crate::p2p::P2p>,
    /// Where messages are anchored, when anchoring is on.
    pub anchor: Option<crate::anchor::Target>,
    /// Media uploads and their store.
    pub media: crate::media::Media,
    /// Contacts, blocks, presence and typing.
    pub social: crate::social::Social,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl AppState {
    /// Builds the state.
    pub fn new(inner: Inner) -> Self {
        Self { inner: Arc::new(inner) }
    }

    /// Now, Unix seconds.
    pub fn now(&self) -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    /// Now, Unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or_default()
    }

    /// Sends a newly accepted envelope to peers on its room's shard, with its signer's
    /// certificate. Best effort: peers that miss it get it from history sync.
    pub async fn relay(&self, room: &dchat_protocol::RoomId, envelope: &dchat_protocol::Envelope) {
        let Some(p2p) = &self.p2p else { return };
        match crate::ingest::relay_of(self, envelope.clone()).await {
            Ok(relay) => {
                let topic = crate::p2p::shard_topic(room, self.config.p2p.shards);
                p2p.publish(topic, prost::Message::encode_to_vec(&relay)).await;
            }
            Err(e) => tracing::warn!(target: "node::p2p", error = %e, "could not relay"),
        }
    }

    /// Announces a device delegation to peers (a relay frame with a certificate and no
    /// envelope), on the shard of the wallet's address. Best effort.
    pub async fn announce(&self, d: &dchat_protocol::Delegation) {
        let Some(p2p) = &self.p2p else { return };
        let relay = dchat_protocol::wire::Relay {
            envelope: None,
            certificate: Some(dchat_protocol::wire::Certificate {
                message: d.message.clone(),
                signature: d.signature.clone(),
            }),
        };
        let shard = dchat_protocol::RoomId(alloy::primitives::keccak256(d.wallet).0);
        let topic = crate::p2p::shard_topic(&shard, self.config.p2p.shards);
        p2p.publish(topic, prost::Message::encode_to_vec(&relay)).await;
    }

    /// Takes a write token for `address`, or a 429.
    pub fn limit_address(&self, address: &Address) -> Result<(), ApiError> {
        self.address_limits.check(address).map_err(ApiError::rate_limited)
    }
}

/// `POST` of one room control kind (a signed envelope in the body).
fn control(kind: Kind) -> axum::routing::MethodRouter<AppState> {
    post(
        move |State(state): State<AppState>,
              axum::extract::Path(id): axum::extract::Path<String>,
              caller: extract::Caller,
              headers: axum::http::HeaderMap,
              body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>| async move {
            rooms::control(state, id, caller, headers, body, kind).await
        },
    )
}

/// The router with every route.
pub fn router(state: AppState) -> Router {
    let bounds = state.config.limits.envelope;
    // Hex doubles the envelope; leave room for the JSON around it.
    let message_body_limit = bounds.max_envelope_bytes * 2 + 8 * 1024;
    let v1 = Router::new()
        .route("/info", get(info::info))
        .route("/auth/nonce", get(auth::nonce))
        .route("/auth/siwe", post(auth::siwe))
        .route("/rooms", post(rooms::create).get(rooms::list))
        .route("/rooms/{id}", get(rooms::get))
        .route("/rooms/{id}/join", post(rooms::join))
        .route("/rooms/{id}/invites", control(Kind::Invite))
        .route("/rooms/{id}/leave", control(Kind::Leave))
        .route("/rooms/{id}/removals", control(Kind::Remove))
        .route("/rooms/{id}/roles", control(Kind::SetRole))
        .route("/rooms/{id}/policy", control(Kind::SetPolicy))
        .route(
            "/rooms/{id}/keys",
            control(Kind::RotateKey).get(rooms::keys).layer(DefaultBodyLimit::max(message_body_limit)),
        )
        .route("/rooms/{id}/members", get(rooms::members))
        .route("/channels", get(rooms::channels))
        .route(
            "/rooms/{id}/messages",
            post(messages::post).get(messages::list).layer(DefaultBodyLimit::max(message_body_limit)),
        )
        .route("/contacts", get(social::contacts).post(social::contact))
        .route("/requests", get(social::requests))
        .route("/unread", get(social::unread))
        .route("/rooms/{id}/read", post(social::read))
        .route("/rooms/{id}/receipts", get(social::receipts))
        .route("/rooms/{id}/typing", get(social::typing))
        .route("/notifications", get(social::notifications))
        .route("/notifications/read", post(social::mark_notifications))
        .route("/mutes", get(social::mutes).post(social::mute))
        .route("/settings", get(social::settings).post(social::set_settings))
        .route("/presence", get(social::presence).post(social::set_presence))
        .route("/ws", get(ws::upgrade))
        .route("/messages/{id}/proof", get(messages::proof))
        .route("/log", get(log::log))
        .route("/log/summary", get(log::summary))
        .route("/log/rooms", get(log::rooms))
        .route("/log/rooms/{id}", get(log::room))
        .route("/media", post(crate::media::api::upload).layer(DefaultBodyLimit::disable()))
        .route("/media/{cid}", get(crate::media::api::download).delete(crate::media::api::delete))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .layer(middleware::from_fn_with_state(state.clone(), limit_ip));
    let api_not_found = || async { ApiError::not_found("not_found", "no such endpoint") };
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/.well-known/jwks.json", get(auth::jwks))
        .nest("/v1", v1.fallback(api_not_found));
    // The dApp is a single-page app: unknown paths outside the API get its index.html.
    let router = match &state.config.dapp_dir {
        Some(dir) => {
            let index = dir.join("index.html");
            // A missing file (a stale /assets/... bundle) is a 404; any other path is a client-side
            // route and gets the app.
            let spa = tower::service_fn(move |req: Request| {
                let index = index.clone();
                async move {
                    let path = req.uri().path();
                    let is_file = path.rsplit('/').next().is_some_and(|last| last.contains('.'));
                    if is_file || path.starts_with("/assets/") {
                        return Ok::<_, std::convert::Infallible>(
                            ApiError::not_found("not_found", "no such file").into_response(),
                        );
                    }
                    match tower::ServiceExt::oneshot(tower_http::services::ServeFile::new(index), req).await {
                        Ok(r) => Ok(r.into_response()),
                        Err(e) => Ok(ApiError::internal(format!("serving the dApp: {e}")).into_response()),
                    }
                }
            });
            router.fallback_service(tower_http::services::ServeDir::new(dir).fallback(spa))
        }
        None => router.fallback(api_not_found),
    };
    router
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this endpoint")
        })
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.store.ping().await && !state.shutdown.is_cancelled() {
        Json(serde_json::json!({"status": "ready"})).into_response()
    } else {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "store unavailable or shutting down")
            .into_response()
    }
}

/// Prometheus text exposition of the node's counters.
async fn metrics(State(state): State<AppState>) -> Response {
    let peers = match &state.p2p {
        Some(p2p) => p2p.peers().await.len(),
        None => 0,
    };
    let body = format!(
        "# HELP dchat_ws_connections Open WebSocket connections.\n\
         # TYPE dchat_ws_connections gauge\n\
         dchat_ws_connections {}\n\
         # HELP dchat_ws_dropped_slow_total WebSocket clients closed for not reading fast enough.\n\
         # TYPE dchat_ws_dropped_slow_total counter\n\
         dchat_ws_dropped_slow_total {}\n\
         # HELP dchat_p2p_peers Connected network peers.\n\
         # TYPE dchat_p2p_peers gauge\n\
         dchat_p2p_peers {peers}\n\
         # HELP dchat_presence_entries Wallet presences held in memory (capped).\n\
         # TYPE dchat_presence_entries gauge\n\
         dchat_presence_entries {}\n\
         # HELP dchat_typing_entries Typing indicators held in memory (capped).\n\
         # TYPE dchat_typing_entries gauge\n\
         dchat_typing_entries {}\n{}",
        state.hub.connections(),
        state.hub.dropped_slow(),
        state.social.presence_entries(),
        state.social.typing_entries(),
        state.social.tips.render(),
    );
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Per-IP token bucket on every `/v1` request.
async fn limit_ip(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    if let Some(ip) = extract::client_ip(&parts)
        && let Err(wait) = state.ip_limits.check(&ip)
    {
        return ApiError::rate_limited(wait).into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}
