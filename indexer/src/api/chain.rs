//! Chain data: the follower's status, anchored batches and contract events. What the chain
//! holds is public, so these routes need no sign-in.

use std::sync::atomic::Ordering;

use axum::{
    Json,
    extract::{Query, State},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use crate::{
    chain::{AnchorRow, EventFilter, EventRow},
    error::ApiError,
};

/// Events the follower stores (the `event` filter must be one of these).
pub(super) const EVENTS: &[&str] = &[
    "Anchored",
    "Tipped",
    "RoomRegistered",
    "RoomOwnershipTransferred",
    "RoomPriceSet",
    "Subscribed",
    "PostageSent",
    "PostageClaimed",
    "PostageRefunded",
    "NodeRegistered",
    "NodeUpdated",
    "NodeDeregistered",
];

fn limit_of(limit: Option<u32>, max: u32) -> Result<i64, ApiError> {
    match limit {
        None => Ok(i64::from(max.min(100))),
        Some(0) => Err(ApiError::bad_request("invalid_limit", "limit must be at least 1")),
        Some(n) => Ok(i64::from(n.min(max))),
    }
}

fn bytes_of(
    what: &'static str,
    code: &'static str,
    value: &Option<String>,
    len: usize,
) -> Result<Option<Vec<u8>>, ApiError> {
    let Some(v) = value else { return Ok(None) };
    let raw = v.strip_prefix("0x").unwrap_or(v);
    match hex::decode(raw) {
        Ok(b) if b.len() == len => Ok(Some(b)),
        _ => Err(ApiError::bad_request(code, format!("{what} must be 0x and {} hex digits", len * 2))),
    }
}

fn configured(s: &AppState) -> Result<(), ApiError> {
    if s.config.chain.is_none() {
        return Err(ApiError::not_found("chain_not_followed", "this indexer follows no chain ([chain] is not set)"));
    }
    Ok(())
}

/// `GET /v1/chain/status`.
pub(super) async fn status(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    configured(&s)?;
    let m = &s.metrics.chain;
    Ok(Json(json!({
        "chain_id": m.chain_id.load(Ordering::Relaxed),
        "head": m.head.load(Ordering::Relaxed),
        "indexed_block": m.indexed.load(Ordering::Relaxed),
        "confirmations": m.confirmations.load(Ordering::Relaxed),
        "lag_blocks": m.lag(),
        "reorgs": m.reorgs_total.load(Ordering::Relaxed),
        "rolled_back_blocks": m.rolled_back_total.load(Ordering::Relaxed),
    })))
}

/// Query of `GET /v1/chain/anchors`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AnchorsQuery {
    /// Only the anchors of this account.
    anchorer: Option<String>,
    /// Only the anchors of this root.
    root: Option<String>,
    /// `<block>-<log index>` of the last anchor seen.
    after: Option<String>,
    /// Page size.
    limit: Option<u32>,
}

/// `<block>-<log index>` cursor; before the first when absent.
fn position_of(after: &Option<String>) -> Result<(i64, i64), ApiError> {
    match after {
        None => Ok((-1, -1)),
        Some(a) => a
            .split_once('-')
            .and_then(|(b, l)| Some((b.parse::<i64>().ok()?, l.parse::<i64>().ok()?)))
            .ok_or_else(|| ApiError::bad_request("invalid_cursor", "after must be <block>-<log index>")),
    }
}

/// `GET /v1/chain/anchors?anchorer=&root=&after=<block>-<index>&limit=`: anchored batches in
/// chain order, each `(anchorer, root)` with its count, contract, block, log index and
/// transaction.
pub(super) async fn anchors(
    State(s): State<AppState>,
    query: Result<Query<AnchorsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    configured(&s)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let anchorer = bytes_of("anchorer", "invalid_address", &q.anchorer, 20)?;
    let root = bytes_of("root", "invalid_root", &q.root, 32)?;
    let after = position_of(&q.after)?;
    let limit = limit_of(q.limit, s.config.search.max_limit)?;
    let rows: Vec<AnchorRow> = s.store.anchors(anchorer.as_deref(), root.as_deref(), after, limit).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| format!("{}-{}", r.block_number, r.log_index)))
        .flatten();
    Ok(Json(json!({"anchors": rows, "next": next})))
}

/// Query of `GET /v1/chain/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventsQuery {
    event: Option<String>,
    room: Option<String>,
    message_hash: Option<String>,
    account: Option<String>,
    /// `<block>-<log index>` of the last event seen.
    after: Option<String>,
    limit: Option<u32>,
}

/// `GET /v1/chain/events?event=&room=&message_hash=&account=&after=&limit=`: events in chain
/// order.
pub(super) async fn events(
    State(s): State<AppState>,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    configured(&s)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    if let Some(e) = &q.event
        && !EVENTS.contains(&e.as_str())
    {
        return Err(ApiError::bad_request("unknown_event", format!("event must be one of {}", EVENTS.join(", "))));
    }
    let after = position_of(&q.after)?;
    let filter = EventFilter {
        event: q.event.clone(),
        room: bytes_of("room", "invalid_room_id", &q.room, 32)?,
        message_hash: bytes_of("message_hash", "invalid_message_hash", &q.message_hash, 32)?,
        account: bytes_of("account", "invalid_address", &q.account, 20)?,
    };
    let limit = limit_of(q.limit, s.config.search.max_limit)?;
    let rows: Vec<EventRow> = s.store.chain_events(&filter, after, limit).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| format!("{}-{}", r.block_number, r.log_index)))
        .flatten();
    Ok(Json(json!({"events": rows, "next": next})))
}
