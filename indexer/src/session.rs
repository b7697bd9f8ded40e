//! Callers: the dchat node's access tokens (EdDSA JWTs), checked against the key set the node
//! publishes at `/.well-known/jwks.json`, so the indexer shares no secret with the node.

use std::{str::FromStr, time::Duration};

use axum::{extract::FromRequestParts, http::request::Parts};
use dchat_protocol::{
    Address,
    token::{Claims, Jwks, TokenError, TokenVerifier},
};

use dchat_keyset::KeyCache;

use crate::{api::AppState, config::NodeConfig, error::ApiError, now};

/// Checks node tokens.
#[derive(Debug)]
pub struct Sessions {
    jwks_url: String,
    issuer: Option<String>,
    keys: KeyCache<TokenVerifier>,
}

impl Sessions {
    /// Sessions of the node in `config`.
    pub fn new(config: &NodeConfig, http: reqwest::Client) -> Self {
        Self {
            jwks_url: format!("{}/.well-known/jwks.json", config.url.trim_end_matches('/')),
            issuer: config.issuer.clone(),
            keys: KeyCache::new(http, Duration::from_secs(config.jwks_min_refresh_secs), parse_jwks),
        }
    }

    /// Verifies a token at `now`; fetches the node's keys again (rate-limited) when the token
    /// names a key the indexer has not seen.
    pub async fn verify(&self, token: &str, now: i64) -> Result<Claims, ApiError> {
        let node_down = |e: dchat_keyset::FetchError| {
            tracing::warn!(target: "indexer::session", error = %e, "cannot read the node's keys");
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "node_unavailable",
                "the dchat node's keys cannot be read right now; try again later",
            )
        };
        let verifier = self.keys.get(&self.jwks_url).await.map_err(node_down)?;
        let claims = match verifier.verify(token, now) {
            Err(TokenError::UnknownKey) => match self.keys.refresh(&self.jwks_url).await.map_err(node_down)? {
                Some(fresh) => fresh.verify(token, now)?,
                None => return Err(TokenError::UnknownKey.into()),
            },
            other => other?,
        };
        if let Some(issuer) = &self.issuer
            && claims.iss.trim_end_matches('/') != issuer.trim_end_matches('/')
        {
            return Err(ApiError::unauthorized("token_wrong_issuer", "token was issued by another node"));
        }
        Ok(claims)
    }
}

fn parse_jwks(bytes: &[u8]) -> Result<TokenVerifier, String> {
    let jwks: Jwks = serde_json::from_slice(bytes).map_err(|e| format!("not a JWKS document: {e}"))?;
    Ok(TokenVerifier::from_jwks(&jwks))
}

/// A wallet signed in at the node: the bearer token of the request, verified.
#[derive(Debug, Clone)]
pub struct Session {
    /// The wallet.
    pub wallet: Address,
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let token = header
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "session_missing",
                    "sign in at the dchat node and send its access token as `Authorization: Bearer <token>`",
                )
            })?;
        let claims = state.sessions.verify(token, now()).await?;
        let wallet = Address::from_str(&claims.sub)
            .map_err(|_| ApiError::unauthorized("token_malformed", "token subject is not an address"))?;
        Ok(Self { wallet })
    }
}
