//! Reading profiles: one wallet's, the change feed the indexer follows, and an attestation's
//! revocation status.

use std::str::FromStr;

use alloy::primitives::{Address, B256};
use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use crate::{error::ApiError, store::ProfileRow};

/// Default and largest feed page.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

/// A wallet's profile as the API shows it.
#[derive(Debug, Serialize)]
pub(super) struct ProfileView {
    /// EIP-55 wallet address.
    address: String,
    /// `false` for the tombstone of an unlink (feed only).
    linked: bool,
    /// Feed stamp, Unix ms.
    updated_at: i64,
    /// The profile; `null` once unlinked.
    profile: Option<Profile>,
    /// The current attestation; `null` once unlinked.
    attestation: Option<Value>,
}

#[derive(Debug, Serialize)]
struct Profile {
    name: Option<String>,
    picture: Option<String>,
    email_domain: Option<String>,
    linked_at: Option<i64>,
}

impl ProfileView {
    pub(super) fn from_row(row: ProfileRow) -> Result<Self, ApiError> {
        let attestation = row
            .attestation
            .as_deref()
            .filter(|_| row.linked)
            .map(serde_json::from_str)
            .transpose()
            .map_err(ApiError::internal)?;
        Ok(Self {
            address: row.wallet,
            linked: row.linked,
            updated_at: row.updated_at,
            profile: row.linked.then_some(Profile {
                name: row.name,
                picture: row.picture,
                email_domain: row.email_domain,
                linked_at: row.linked_at,
            }),
            attestation,
        })
    }
}

/// `GET /v1/profiles/{address}`: a linked wallet's profile and attestation; 404 when the
/// wallet never linked or has unlinked.
pub(super) async fn profile(
    State(s): State<AppState>,
    Path(address): Path<String>,
) -> Result<Json<ProfileView>, ApiError> {
    let wallet = Address::from_str(&address)
        .map_err(|_| ApiError::bad_request("address_invalid", "the address is not a 20-byte hex address"))?;
    match s.store.profile(&wallet.to_checksum(None)).await? {
        Some(row) if row.linked => Ok(Json(ProfileView::from_row(row)?)),
        _ => Err(ApiError::not_found("profile_not_found", "this wallet has no linked profile")),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct FeedQuery {
    updated_after: Option<String>,
    limit: Option<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct Feed {
    /// Changes, oldest first: linked profiles and unlink tombstones.
    profiles: Vec<ProfileView>,
    /// `updated_after` for the next page (the last change's stamp, or the one asked for).
    next_updated_after: i64,
    /// Whether the page was full (more may follow at once).
    has_more: bool,
}

/// `GET /v1/profiles?updated_after=<unix ms>&limit=<n>`: profile changes after a stamp.
pub(super) async fn feed(
    State(s): State<AppState>,
    query: Result<Query<FeedQuery>, QueryRejection>,
) -> Result<Json<Feed>, ApiError> {
    let Ok(Query(q)) = query else {
        return Err(ApiError::bad_request("query_invalid", "the query does not parse"));
    };
    let updated_after = match q.updated_after.as_deref() {
        None | Some("") => 0,
        Some(v) => v.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
            ApiError::bad_request("query_invalid", "updated_after must be a Unix time in milliseconds")
        })?,
    };
    let limit = match q.limit.as_deref() {
        None | Some("") => DEFAULT_LIMIT,
        Some(v) => v.parse::<i64>().ok().filter(|v| (1..=MAX_LIMIT).contains(v)).ok_or_else(|| {
            ApiError::bad_request("query_invalid", format!("limit must be between 1 and {MAX_LIMIT}"))
        })?,
    };
    let rows = s.store.feed(updated_after, limit).await?;
    let has_more = i64::try_from(rows.len()).unwrap_or(i64::MAX) == limit;
    let next_updated_after = rows.last().map_or(updated_after, |r| r.updated_at);
    let profiles = rows.into_iter().map(ProfileView::from_row).collect::<Result<_, _>>()?;
    Ok(Json(Feed { profiles, next_updated_after, has_more }))
}

/// `GET /v1/attestations/{digest}`: whether an attestation is current or revoked.
pub(super) async fn attestation(
    State(s): State<AppState>,
    Path(digest): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let digest = B256::from_str(&digest)
        .map_err(|_| ApiError::bad_request("digest_invalid", "the digest is not 32 bytes of 0x hex"))?;
    let row = s
        .store
        .attestation(&digest.to_string())
        .await?
        .ok_or_else(|| ApiError::not_found("attestation_not_found", "this gateway issued no such attestation"))?;
    let attestation: Option<Value> =
        row.body.as_deref().map(serde_json::from_str).transpose().map_err(ApiError::internal)?;
    Ok(Json(serde_json::json!({
        "digest": row.digest,
        "wallet": row.wallet,
        "issued_at": row.issued_at,
        "expiry": row.expiry,
        "revoked": row.revoked_at.is_some(),
        "revoked_at": row.revoked_at,
        "revoked_reason": row.revoked_reason,
        "attestation": attestation,
    })))
}
