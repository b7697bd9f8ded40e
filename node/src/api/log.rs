//! The ordered message log for indexers: every stored envelope in `seq` order (the order this
//! node stored them), the rooms with their members and roles, and a cheap summary to reconcile
//! against. Readers authenticate with an indexer key: `Authorization: Bearer <key>`, where the
//! SHA-256 (hex) of the key is listed in `[indexer] key_hashes` of the node's configuration.
//! With no key configured the log is closed.
//!
//! `seq` is assigned when a message is stored. Every message goes through the store's single
//! writer task, which commits in `seq` order, so a reader that has seen every row up to `seq`
//! has seen every message stored before it; the reconcile pass (per-room counts) covers the rest.

use axum::{
    Json,
    extract::{FromRequestParts, Path, State},
    http::request::Parts,
};
use dchat_protocol::{Address, RoomId, ids::to_hex};
use serde::{Deserialize, Serialize};
use sqlx::{Row, any::AnyRow};

use super::{
    AppState,
    error::ApiError,
    extract::{ApiQuery, bearer_token, room_id},
};

/// Largest page of the log or of the room list.
pub const MAX_LOG_PAGE: u32 = 1000;

/// One stored message, as the log shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogEntry {
    /// Position in this node's log (increasing, with gaps).
    pub seq: i64,
    /// Message id, `0x` hex.
    pub id: String,
    /// Room.
    pub room: RoomId,
    /// Sending wallet, EIP-55.
    pub sender: String,
    /// Kind number (`dchat_protocol::Kind`).
    pub kind: i32,
    /// Lamport clock.
    pub lamport: i64,
    /// Sender's clock, ms.
    pub timestamp_ms: i64,
    /// When this node stored it, Unix ms.
    pub received_at: i64,
    /// The envelope as received (protobuf), `0x` hex.
    pub envelope: String,
}

/// `GET /v1/log` reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogPage {
    /// Messages in `seq` order.
    pub entries: Vec<LogEntry>,
    /// The `after` to ask for next: the last `seq` returned, or the request's `after`.
    pub next: i64,
    /// Whether more entries follow.
    pub has_more: bool,
}

/// A member and their role.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogMember {
    /// Wallet, EIP-55.
    pub address: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
}

/// A room with what an indexer needs to enforce access.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogRoom {
    /// Id.
    pub id: RoomId,
    /// `group`, `channel` or `direct`.
    pub kind: String,
    /// Display name.
    pub name: String,
    /// Join policy.
    pub policy: String,
    /// Messages this node stores in the room.
    pub count: i64,
    /// Current members.
    pub members: Vec<LogMember>,
}

/// `GET /v1/log/rooms` reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogRooms {
    /// Rooms in id order.
    pub rooms: Vec<LogRoom>,
    /// The `after` to ask for next, when more rooms follow.
    pub next: Option<RoomId>,
}

/// `GET /v1/log/summary` reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogSummary {
    /// Highest `seq` stored (0 when empty).
    pub max_seq: i64,
    /// Messages stored.
    pub count: i64,
    /// Rooms stored.
    pub rooms: i64,
}

/// A reader holding a configured indexer key.
#[derive(Debug, Clone, Copy)]
pub struct IndexerKey;

/// SHA-256 of a key, lowercase hex: what `[indexer] key_hashes` lists.
pub fn key_hash(key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

impl FromRequestParts<AppState> for IndexerKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let hashes = &state.config.indexer.key_hashes;
        if hashes.is_empty() {
            return Err(ApiError::forbidden("log_disabled", "this node serves its log to no indexer"));
        }
        let key = bearer_token(parts).filter(|k| !k.is_empty()).ok_or_else(|| {
            ApiError::unauthorized("indexer_key_missing", "send the indexer key as Authorization: Bearer <key>")
        })?;
        let presented = key_hash(&key);
        if hashes.iter().any(|h| h.trim().eq_ignore_ascii_case(&presented)) {
            Ok(Self)
        } else {
            Err(ApiError::forbidden("indexer_key_invalid", "this indexer key is not configured on the node"))
        }
    }
}

/// Query of `GET /v1/log`.
#[derive(Debug, Deserialize)]
pub struct LogQuery {
    /// Entries with a greater `seq` (default 0: from the start).
    #[serde(default)]
    pub after: i64,
    /// At most this many (default 500, at most [`MAX_LOG_PAGE`]).
    pub limit: Option<u32>,
    /// Only this room's entries (to refetch one room).
    pub room: Option<String>,
}

/// Query of `GET /v1/log/rooms`.
#[derive(Debug, Deserialize)]
pub struct RoomsQuery {
    /// Rooms with a greater id.
    pub after: Option<String>,
    /// At most this many (default 100, at most [`MAX_LOG_PAGE`]).
    pub limit: Option<u32>,
}

fn page_limit(limit: Option<u32>, default: u32) -> Result<u32, ApiError> {
    match limit.unwrap_or(default) {
        0 => Err(ApiError::bad_request("invalid_limit", "limit must be at least 1")),
        n => Ok(n.min(MAX_LOG_PAGE)),
    }
}

fn bytes(row: &AnyRow, column: &str) -> Result<Vec<u8>, sqlx::Error> {
    row.try_get(column)
}

fn room_of(raw: &[u8]) -> Result<RoomId, ApiError> {
    RoomId::from_slice(raw).map_err(|e| ApiError::internal(format!("stored room id: {e}")))
}

fn address_of(raw: &[u8]) -> String {
    Address::try_from(raw).map(|a| a.to_checksum(None)).unwrap_or_default()
}

/// `GET /v1/log?after=&limit=&room=`: stored envelopes in `seq` order.
pub async fn log(
    State(state): State<AppState>,
    _key: IndexerKey,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> Result<Json<LogPage>, ApiError> {
    let limit = page_limit(q.limit, 500)?;
    if q.after < 0 {
        return Err(ApiError::bad_request("invalid_after", "after must not be negative"));
    }
    let room = q.room.as_deref().map(room_id).transpose()?;
    let columns = "seq, id, room, sender, kind, lamport, timestamp_ms, received_at, envelope";
    let rows = match &room {
        None => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {columns} FROM messages WHERE seq > $1 ORDER BY seq LIMIT $2"
            )))
            .bind(q.after)
            .bind(i64::from(limit) + 1)
            .fetch_all(state.store.pool())
            .await?
        }
        Some(room) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {columns} FROM messages WHERE room = $1 AND seq > $2 ORDER BY seq LIMIT $3"
            )))
            .bind(room.as_bytes().as_slice())
            .bind(q.after)
            .bind(i64::from(limit) + 1)
            .fetch_all(state.store.pool())
            .await?
        }
    };
    let has_more = rows.len() > limit as usize;
    let mut entries = Vec::with_capacity(rows.len().min(limit as usize));
    for r in rows.iter().take(limit as usize) {
        entries.push(LogEntry {
            seq: r.try_get("seq")?,
            id: to_hex(bytes(r, "id")?),
            room: room_of(&bytes(r, "room")?)?,
            sender: address_of(&bytes(r, "sender")?),
            kind: r.try_get::<i32, _>("kind").or_else(|_| r.try_get::<i64, _>("kind").map(|k| k as i32))?,
            lamport: r.try_get("lamport")?,
            timestamp_ms: r.try_get("timestamp_ms")?,
            received_at: r.try_get("received_at")?,
            envelope: to_hex(bytes(r, "envelope")?),
        });
    }
    let next = entries.last().map_or(q.after, |e| e.seq);
    Ok(Json(LogPage { entries, next, has_more }))
}

/// `GET /v1/log/summary`: highest `seq`, message and room counts.
pub async fn summary(State(state): State<AppState>, _key: IndexerKey) -> Result<Json<LogSummary>, ApiError> {
    let pool = state.store.pool();
    let max_seq: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM messages").fetch_one(pool).await?;
    let row = sqlx::query("SELECT CAST(COALESCE(SUM(msg_count), 0) AS BIGINT) AS count, COUNT(*) AS rooms FROM rooms")
        .fetch_one(pool)
        .await?;
    Ok(Json(LogSummary { max_seq, count: row.try_get("count")?, rooms: row.try_get("rooms")? }))
}

async fn log_room(state: &AppState, row: &AnyRow) -> Result<LogRoom, ApiError> {
    let id = room_of(&bytes(row, "id")?)?;
    let members = sqlx::query("SELECT address, role FROM members WHERE room = $1 ORDER BY address")
        .bind(id.as_bytes().as_slice())
        .fetch_all(state.store.pool())
        .await?
        .iter()
        .map(|m| Ok(LogMember { address: address_of(&bytes(m, "address")?), role: m.try_get("role")? }))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(LogRoom {
        id,
        kind: row.try_get("kind")?,
        name: row.try_get("name")?,
        policy: row.try_get("policy")?,
        count: row.try_get("msg_count")?,
        members,
    })
}

/// `GET /v1/log/rooms?after=&limit=`: rooms in id order with their members and roles.
pub async fn rooms(
    State(state): State<AppState>,
    _key: IndexerKey,
    ApiQuery(q): ApiQuery<RoomsQuery>,
) -> Result<Json<LogRooms>, ApiError> {
    let limit = page_limit(q.limit, 100)?;
    let after = q.after.as_deref().map(room_id).transpose()?;
    let rows = sqlx::query("SELECT id, kind, name, policy, msg_count FROM rooms WHERE id > $1 ORDER BY id LIMIT $2")
        .bind(after.as_ref().map_or(&[][..], |r| r.as_bytes().as_slice()))
        .bind(i64::from(limit) + 1)
        .fetch_all(state.store.pool())
        .await?;
    let more = rows.len() > limit as usize;
    let mut rooms = Vec::with_capacity(rows.len().min(limit as usize));
    for r in rows.iter().take(limit as usize) {
        rooms.push(log_room(&state, r).await?);
    }
    let next = if more { rooms.last().map(|r| r.id) } else { None };
    Ok(Json(LogRooms { rooms, next }))
}

/// `GET /v1/log/rooms/{id}`: one room with its members and roles.
pub async fn room(
    State(state): State<AppState>,
    _key: IndexerKey,
    Path(id): Path<String>,
) -> Result<Json<LogRoom>, ApiError> {
    let id = room_id(&id)?;
    let row = sqlx::query("SELECT id, kind, name, policy, msg_count FROM rooms WHERE id = $1")
        .bind(id.as_bytes().as_slice())
        .fetch_optional(state.store.pool())
        .await?
        .ok_or_else(|| ApiError::not_found("room_not_found", "no such room"))?;
    Ok(Json(log_room(&state, &row).await?))
}
