//! The one error type every handler returns: a status, a stable snake_case code and a message,
//! as JSON `{"error": "<code>", "message": "<text>"}` (the node's shape). Internal errors are
//! logged and shown to clients as a plain 500.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use dchat_protocol::token::TokenError;
use serde::Serialize;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable snake_case code.
    pub code: &'static str,
    /// Human message.
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401 with a code.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 403 with a code.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// 404 with a code.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 500: logs the cause, tells the client nothing of it.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(target: "indexer::api", error = %err, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(Body { error: self.code, message: &self.message })).into_response()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(e)
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        Self::unauthorized(e.code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn error_json_shape_is_stable() {
        let resp = ApiError::bad_request("invalid_token", "not hex").into_response();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let bytes = axum::body::to_bytes(resp.into_body(), 1024).await.expect("body");
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(v, serde_json::json!({"error": "invalid_token", "message": "not hex"}));
    }

    #[tokio::test]
    async fn internal_errors_say_nothing_of_the_cause() {
        let resp = ApiError::internal("password=hunter2 in a connection string").into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = axum::body::to_bytes(resp.into_body(), 1024).await.expect("body");
        assert_eq!(&bytes[..], br#"{"error":"internal","message":"internal error"}"#);
    }
}
