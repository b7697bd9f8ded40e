//! Sign-In with Ethereum: nonces, verification, access tokens, JWKS.

use axum::{Json, extract::State, http::StatusCode};
use dchat_protocol::{
    Delegation, SiweMessage, VerifyOpts,
    ids::{from_hex, to_hex},
    token::{AUDIENCE, Claims, Jwks},
};
use rand::{Rng, distributions::Alphanumeric};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::{AppState, error::ApiError, extract::ApiJson};
use crate::{chain, store::NonceCheck};

/// `GET /v1/auth/nonce` reply: everything a client needs to build its SIWE message.
#[derive(Debug, Serialize, Deserialize)]
pub struct NonceResponse {
    /// Single-use nonce.
    pub nonce: String,
    /// When it stops being accepted, Unix seconds.
    pub expires_at: i64,
    /// Domain the message must name.
    pub domain: String,
    /// Origin the message URI must be on.
    pub uri: String,
    /// Chain ids accepted.
    pub chain_ids: Vec<u64>,
}

/// Issues a nonce.
pub async fn nonce(State(state): State<AppState>) -> Result<Json<NonceResponse>, ApiError> {
    let nonce: String = rand::thread_rng().sample_iter(&Alphanumeric).take(20).map(char::from).collect();
    let now = state.now();
    let ttl = state.config.auth.nonce_ttl_secs;
    state.store.insert_nonce(&nonce, now, ttl).await?;
    Ok(Json(NonceResponse {
        nonce,
        expires_at: now + ttl,
        domain: state.domain.clone(),
        uri: state.public_url.clone(),
        chain_ids: state.config.chain_ids.clone(),
    }))
}

/// `POST /v1/auth/siwe` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct SiweRequest {
    /// The EIP-4361 text, exactly as signed.
    pub message: String,
    /// `0x` hex signature.
    pub signature: String,
}

/// `POST /v1/auth/siwe` reply.
#[derive(Debug, Serialize, Deserialize)]
pub struct SessionResponse {
    /// Access token (JWT, EdDSA).
    pub token: String,
    /// The wallet, EIP-55.
    pub address: String,
    /// Token expiry, Unix seconds.
    pub expires_at: i64,
    /// The device key delegated by this sign-in, if any.
    pub device_key: Option<String>,
}

/// Verifies a signed SIWE message and opens a session.
pub async fn siwe(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SiweRequest>,
) -> Result<Json<SessionResponse>, ApiError> {
    let msg = SiweMessage::parse(&req.message)?;
    let signature = from_hex(&req.signature).map_err(|_| {
        ApiError::bad_request("siwe_signature_malformed", "signature must be hex (65 bytes for a wallet key)")
    })?;
    let now = OffsetDateTime::now_utc();
    let auth = &state.config.auth;
    let scheme = state.public_url.split_once("://").map(|(s, _)| s);
    msg.check(&VerifyOpts {
        domain: Some(&state.domain),
        scheme,
        uri_origin: Some(&state.public_url),
        chain_ids: Some(&state.config.chain_ids),
        nonce: None,
        now,
        skew: Duration::seconds(auth.clock_skew_secs),
        reject_future_issued_at: true,
    })?;
    verify_signature(&state, &msg, &signature).await?;
    let delegation = Delegation::from_verified(&msg, &signature)?;
    if let Some(d) = &delegation
        && d.expires_at - d.not_before > auth.max_delegation_secs
    {
        return Err(ApiError::bad_request(
            "delegation_too_long",
            format!("a device delegation may last at most {} seconds", auth.max_delegation_secs),
        ));
    }

    let unix_now = now.unix_timestamp();
    if let Some(d) = &delegation
        && let Some((owner, _, _)) = state.store.delegations(&d.device_key).await?.first().copied()
        && owner != d.wallet
    {
        return Err(device_key_taken());
    }

    // The nonce is spent last, so a request refused above does not burn it.
    match state.store.consume_nonce(msg.nonce(), unix_now).await? {
        NonceCheck::Consumed => {}
        NonceCheck::Unknown => {
            return Err(ApiError::unauthorized("siwe_nonce_unknown", "this node did not issue that nonce"));
        }
        NonceCheck::Used => return Err(ApiError::unauthorized("siwe_nonce_used", "nonce already used; get a new one")),
        NonceCheck::Expired => {
            return Err(ApiError::unauthorized("siwe_nonce_expired", "nonce expired; get a new one"));
        }
    }
    if let Some(d) = &delegation
        && !state.store.put_delegation(d, unix_now).await?
    {
        return Err(device_key_taken());
    }
    // Other nodes learn the device (and its box key, which private rooms wrap their keys for)
    // before it sends anything.
    if let Some(d) = &delegation
        && d.box_key.is_some()
    {
        state.announce(d).await;
    }

    let mut exp = unix_now + auth.token_ttl_secs;
    if let Some(e) = msg.expiration_time() {
        exp = exp.min(e.unix_timestamp());
    }
    let address = msg.address().to_checksum(None);
    let device_key = delegation.as_ref().map(|d| to_hex(d.device_key));
    let claims = Claims {
        iss: state.public_url.clone(),
        sub: address.clone(),
        aud: AUDIENCE.into(),
        iat: unix_now,
        exp,
        jti: hex::encode(rand::random::<[u8; 16]>()),
        dev: device_key.clone(),
    };
    tracing::info!(target: "node::auth", %address, device = ?device_key, "signed in");
    Ok(Json(SessionResponse { token: state.signer.sign(&claims), address, expires_at: exp, device_key }))
}

fn device_key_taken() -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "device_key_taken", "that device key is delegated by another wallet")
}

/// EOA signature first; contract wallets (ERC-1271) when an RPC is configured.
async fn verify_signature(state: &AppState, msg: &SiweMessage, signature: &[u8]) -> Result<(), ApiError> {
    let eoa = msg.verify_signature(signature);
    let Err(err) = eoa else { return Ok(()) };
    let Some(rpc) = &state.config.rpc_url else { return Err(err.into()) };
    match chain::erc1271_valid(rpc, msg, signature).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(err.into()),
        Err(e) => {
            tracing::warn!(target: "node::auth", error = %e, "ERC-1271 check failed");
            Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "chain_unavailable",
                "could not reach the chain to check a contract wallet",
            ))
        }
    }
}

/// `GET /.well-known/jwks.json`.
pub async fn jwks(State(state): State<AppState>) -> Json<Jwks> {
    Json(state.signer.jwks())
}
