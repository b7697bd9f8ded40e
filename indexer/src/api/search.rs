//! Search: messages of public channels (ranked full text with highlights), messages of
//! encrypted rooms (keyed tokens, members only), users (fuzzy), and the upload of a message's
//! keyed tokens by its sender. Every answer is limited to rooms the caller may read; a room the
//! caller may not read answers exactly as a room that does not exist.

use axum::{
    Json,
    extract::{RawQuery, State, rejection::JsonRejection},
};
use dchat_protocol::{
    B256, RoomId,
    ids::{from_hex, to_hex},
    search::{MAX_TOKENS, TOKEN_LEN, TokenUpload},
};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::{error::ApiError, session::Session, store::Hit};

/// One message found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageHit {
    /// Message id, `0x` hex.
    pub id: String,
    /// Room.
    pub room: RoomId,
    /// Room name.
    pub room_name: String,
    /// Sender, EIP-55.
    pub sender: String,
    /// Sender's clock, ms.
    pub timestamp_ms: i64,
    /// The text (public channels only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Excerpt with matches between `<b>` and `</b>`; the rest is the raw text, not escaped
    /// (public channels only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highlight: Option<String>,
    /// Relevance (public channels only; higher is better).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<f32>,
}

/// `GET /v1/search/messages` reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageResults {
    /// Hits, best (or, for tokens, newest) first.
    pub results: Vec<MessageHit>,
    /// Pass as `cursor` for the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One user found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserResult {
    /// Wallet, EIP-55.
    pub address: String,
    /// Display name from the user's linked profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether the name comes from a verified (LinkedIn-linked) profile.
    pub verified: bool,
    /// Similarity, 0..1.
    pub score: f32,
}

/// `GET /v1/search/users` reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserResults {
    /// Best first.
    pub results: Vec<UserResult>,
}

/// `POST /v1/search/tokens` reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokensStored {
    /// Message id.
    pub message_id: String,
    /// Distinct tokens stored.
    pub stored: usize,
}

fn hit_view(h: Hit) -> MessageHit {
    MessageHit {
        id: to_hex(h.id),
        room: h.room,
        room_name: h.room_name,
        sender: h.sender.to_checksum(None),
        timestamp_ms: h.timestamp_ms,
        text: h.body,
        highlight: h.highlight,
        rank: h.rank,
    }
}

fn token(raw: &str) -> Result<Vec<u8>, ApiError> {
    from_hex(raw.trim())
        .ok()
        .filter(|t| t.len() == TOKEN_LEN)
        .ok_or_else(|| ApiError::bad_request("invalid_token", format!("a token is 0x + {} hex digits", TOKEN_LEN * 2)))
}

fn room_not_found() -> ApiError {
    ApiError::not_found("room_not_found", "no such room, or you are not a member of it")
}

#[derive(Debug, Default)]
struct MessageQuery {
    q: Option<String>,
    room: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    tokens: Vec<String>,
}

fn parse_query(raw: Option<&str>) -> Result<MessageQuery, ApiError> {
    let mut out = MessageQuery::default();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let v = v.into_owned();
        match k.as_ref() {
            "q" => out.q = Some(v),
            "room" => out.room = Some(v),
            "limit" => out.limit = Some(v),
            "cursor" => out.cursor = Some(v),
            "tokens" => out.tokens.push(v),
            other => return Err(ApiError::bad_request("invalid_query", format!("unknown parameter {other:?}"))),
        }
    }
    Ok(out)
}

/// `GET /v1/search/messages?q=&room=&limit=&cursor=&tokens=`
///
/// - `q`: words to find in public channels (web-search syntax: `"a phrase"`, `-not`, `or`),
///   ranked, with highlights; in one channel when `room` is given.
/// - `tokens` (with `room`, an encrypted room the caller belongs to): one parameter per query
///   word, each a comma-separated list of that word's tokens under the room's search keys (one
///   per key epoch the caller holds); a message matches when it carries a token of every word.
pub(super) async fn messages(
    State(s): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> Result<Json<MessageResults>, ApiError> {
    let q = parse_query(raw.as_deref())?;
    let max = s.config.search.max_limit;
    let limit = match q.limit.as_deref() {
        None | Some("") => 20.min(max),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::bad_request("invalid_limit", format!("limit must be between 1 and {max}")))?,
    };
    let offset = match q.cursor.as_deref() {
        None | Some("") => 0,
        Some(v) => v
            .parse::<u32>()
            .map_err(|_| ApiError::bad_request("invalid_cursor", "cursor is not one this API returned"))?,
    };
    let room =
        match q.room.as_deref() {
            None | Some("") => None,
            Some(r) => Some(r.parse::<RoomId>().map_err(|_| {
                ApiError::bad_request("invalid_room_id", format!("{r:?} is not a room id (0x + 64 hex)"))
            })?),
        };
    let room_row = match &room {
        Some(id) => Some(s.store.room(id).await?.ok_or_else(room_not_found)?),
        None => None,
    };
    let (limit, offset) = (i64::from(limit), i64::from(offset));
    let hits = if !q.tokens.is_empty() {
        let (Some(id), Some(row)) = (&room, &room_row) else {
            return Err(ApiError::bad_request("room_required", "token search needs the room (tokens are per room)"));
        };
        if !row.is_private() {
            return Err(ApiError::bad_request("room_is_public", "search a public channel with q, not tokens"));
        }
        if s.store.role(id, &session.wallet).await?.is_none() {
            return Err(room_not_found());
        }
        let mut groups = Vec::with_capacity(q.tokens.len());
        let mut total = 0;
        for group in &q.tokens {
            let alternatives =
                group.split(',').filter(|t| !t.trim().is_empty()).map(token).collect::<Result<Vec<_>, _>>()?;
            if alternatives.is_empty() {
                return Err(ApiError::bad_request("invalid_token", "an empty tokens parameter"));
            }
            total += alternatives.len();
            groups.push(alternatives);
        }
        if total > s.config.search.max_query_tokens {
            return Err(ApiError::bad_request(
                "too_many_tokens",
                format!("at most {} query tokens", s.config.search.max_query_tokens),
            ));
        }
        s.store.search_tokens(id, &groups, limit + 1, offset).await?
    } else {
        let text = q.q.as_deref().map(str::trim).unwrap_or_default();
        if text.is_empty() {
            return Err(ApiError::bad_request("query_missing", "give q (public channels) or tokens (encrypted rooms)"));
        }
        if text.chars().count() > 256 {
            return Err(ApiError::bad_request("query_too_long", "q is at most 256 characters"));
        }
        if let (Some(id), Some(row)) = (&room, &room_row)
            && row.is_private()
        {
            if s.store.role(id, &session.wallet).await?.is_none() {
                return Err(room_not_found());
            }
            return Err(ApiError::bad_request(
                "encrypted_room",
                "this room is end-to-end encrypted: search it with tokens computed from its search key",
            ));
        }
        s.store.search_public(text, room.as_ref(), limit + 1, offset).await?
    };
    let more = i64::try_from(hits.len()).unwrap_or(i64::MAX) > limit;
    let results: Vec<MessageHit> = hits.into_iter().take(limit as usize).map(hit_view).collect();
    let next_cursor = more.then(|| (offset + limit).to_string());
    Ok(Json(MessageResults { results, next_cursor }))
}

/// Query of `GET /v1/search/users`.
#[derive(Debug, Deserialize)]
pub(super) struct UsersQuery {
    /// Part of an address (`0x…`) or a name; at least two characters.
    pub(super) q: Option<String>,
    /// At most this many (default 20).
    pub(super) limit: Option<u32>,
}

/// `GET /v1/search/users?q=&limit=`: users by address or name, fuzzy (trigrams), among
/// members of public channels, people sharing a room with the caller, and linked profiles.
pub(super) async fn users(
    State(s): State<AppState>,
    session: Session,
    query: Result<axum::extract::Query<UsersQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<UserResults>, ApiError> {
    let axum::extract::Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let text = q.q.as_deref().map(str::trim).unwrap_or_default();
    if text.chars().count() < 2 || text.chars().count() > 128 {
        return Err(ApiError::bad_request("query_too_short", "q must be 2 to 128 characters"));
    }
    let max = s.config.search.max_limit;
    let limit = q.limit.unwrap_or(20).clamp(1, max);
    let hits = s.store.search_users(text, &session.wallet, i64::from(limit)).await?;
    let results = hits
        .into_iter()
        .map(|u| UserResult {
            address: u.address.to_checksum(None),
            name: u.name,
            verified: u.verified,
            score: u.score,
        })
        .collect();
    Ok(Json(UserResults { results }))
}

/// `POST /v1/search/tokens` with a [`TokenUpload`]: stores (replaces) the keyed tokens of a
/// message in an encrypted room. Only its sender, while a member of the room, may; a message
/// the indexer has not read yet is a 409 (try again shortly).
pub(super) async fn tokens(
    State(s): State<AppState>,
    session: Session,
    body: Result<Json<TokenUpload>, JsonRejection>,
) -> Result<Json<TokensStored>, ApiError> {
    let Json(upload) = body.map_err(|e| ApiError::bad_request("invalid_json", e.body_text()))?;
    let id: B256 = upload
        .message_id
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_message_id", "message_id is 0x + 64 hex digits"))?;
    if upload.tokens.len() > MAX_TOKENS {
        return Err(ApiError::bad_request("too_many_tokens", format!("at most {MAX_TOKENS} tokens per message")));
    }
    let mut tokens = upload.tokens.iter().map(|t| token(t)).collect::<Result<Vec<_>, _>>()?;
    tokens.sort_unstable();
    tokens.dedup();
    let Some((room, sender)) = s.store.message(&id).await? else {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "message_not_indexed",
            "the indexer has not read this message from the node yet; try again in a moment",
        ));
    };
    if sender != session.wallet {
        return Err(ApiError::forbidden("not_sender", "only the message's sender may attach its tokens"));
    }
    let Some(row) = s.store.room(&room).await? else { return Err(room_not_found()) };
    if !row.is_private() {
        return Err(ApiError::bad_request(
            "room_is_public",
            "public channel text is indexed as it is; no tokens needed",
        ));
    }
    if s.store.role(&room, &session.wallet).await?.is_none() {
        return Err(ApiError::forbidden("not_a_member", "you are no longer a member of this room"));
    }
    s.store.put_tokens(&id, &room, &tokens).await?;
    Ok(Json(TokensStored { message_id: to_hex(id), stored: tokens.len() }))
}
