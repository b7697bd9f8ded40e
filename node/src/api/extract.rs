//! Request extractors whose rejections are [`ApiError`]s, so every failure a client sees has the
//! same JSON shape: authenticated callers, JSON bodies, path ids and query strings.

use std::net::SocketAddr;

use axum::{
    extract::{
        ConnectInfo, FromRequest, FromRequestParts, OptionalFromRequestParts, Request, rejection::JsonRejection,
    },
    http::{StatusCode, header, request::Parts},
};
use dchat_protocol::{Address, RoomId, token::Claims};
use serde::de::DeserializeOwned;

use super::{AppState, error::ApiError};

/// A caller who presented a valid access token.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The signed-in wallet.
    pub address: Address,
    /// The token's claims.
    pub claims: Claims,
}

/// Reads the bearer token from `Authorization`, or from a `bearer.<token>` entry of
/// `Sec-WebSocket-Protocol` (browsers cannot set headers on WebSocket requests).
pub(crate) fn bearer_token(parts: &Parts) -> Option<String> {
    if let Some(v) = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = v.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string());
    }
    let protocols = parts.headers.get(header::SEC_WEBSOCKET_PROTOCOL)?.to_str().ok()?;
    protocols.split(',').map(str::trim).find_map(|p| p.strip_prefix("bearer.")).map(str::to_string)
}

impl Caller {
    fn from_token(state: &AppState, token: &str) -> Result<Self, ApiError> {
        let claims = state.tokens.verify(token, state.now())?;
        let address: Address = claims
            .sub
            .parse()
            .map_err(|_| ApiError::unauthorized("token_malformed", "token subject is not an address"))?;
        Ok(Self { address, claims })
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts).ok_or_else(|| {
            ApiError::unauthorized("unauthorized", "sign in first: send Authorization: Bearer <token>")
        })?;
        Self::from_token(state, &token)
    }
}

impl OptionalFromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Option<Self>, Self::Rejection> {
        match bearer_token(parts) {
            None => Ok(None),
            Some(token) => Self::from_token(state, &token).map(Some),
        }
    }
}

/// A JSON body; bad JSON is a 400 `invalid_json`, a wrong content type 415, an oversized body 413.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    match r {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ),
        JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => payload_too_large(),
        other => ApiError::bad_request("invalid_json", other.body_text()),
    }
}

/// 413 for a request body over the route's limit.
pub(crate) fn payload_too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "request body is over this endpoint's size limit")
}

/// Parses a room id path segment.
pub(crate) fn room_id(raw: &str) -> Result<RoomId, ApiError> {
    raw.parse().map_err(|_| ApiError::bad_request("invalid_room_id", format!("{raw:?} is not a room id (0x + 64 hex)")))
}

/// Query string, with a 400 `invalid_query` on failure.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

/// The client's IP as seen on the socket.
pub(crate) fn client_ip(parts: &Parts) -> Option<std::net::IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}
