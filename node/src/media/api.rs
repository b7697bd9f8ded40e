//! The media routes: upload into a room, download (with ranges) for whoever may read a room
//! that references the file, delete a reference.

use axum::{
    Json,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use dchat_protocol::RoomId;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{
    MediaError,
    db::{self, MediaRef},
    unixfs::Cid,
};
use crate::api::{
    AppState,
    error::ApiError,
    extract::{ApiQuery, Caller, room_id},
    rooms::{readable, room_not_found},
};

/// `POST /v1/media` and `DELETE /v1/media/{cid}` query.
#[derive(Debug, Deserialize)]
pub struct RoomQuery {
    /// The room the file is uploaded to (or its reference removed from).
    pub room: String,
}

/// `POST /v1/media` reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Uploaded {
    /// CIDv0 of the bytes uploaded.
    pub cid: String,
    /// Their size.
    pub size: u64,
    /// Content type recorded for them.
    pub mime: String,
}

/// `DELETE /v1/media/{cid}` reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Deleted {
    /// The file.
    pub cid: String,
    /// The room its reference was removed from.
    pub room: RoomId,
    /// Whether that was the last reference, so the file was unpinned.
    pub unpinned: bool,
}

impl From<MediaError> for ApiError {
    fn from(e: MediaError) -> Self {
        match e {
            MediaError::TooLarge { limit } => too_large(limit),
            MediaError::Body(m) => ApiError::bad_request("invalid_body", format!("the upload broke off: {m}")),
            MediaError::Corrupt(why) => {
                tracing::error!(target: "node::media", %why, "refusing to serve media that does not match its CID");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "media_corrupt",
                    "the stored content does not match its CID; it is not served",
                )
            }
            MediaError::Ipfs(e) => {
                tracing::error!(target: "node::media", error = %e, "IPFS API call failed");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "ipfs_unavailable",
                    "the node's IPFS daemon failed; try again later",
                )
            }
            e @ MediaError::CidMismatch { .. } => ApiError::internal(e),
            MediaError::Io(e) => ApiError::internal(format!("media storage: {e}")),
        }
    }
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "media_too_large",
        format!("the file is over this room's limit of {limit} bytes"),
    )
}

fn quota_exceeded(what: &str, quota: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "quota_exceeded",
        format!("this upload would take {what} over its media quota of {quota} bytes; delete media first"),
    )
}

fn media_not_found() -> ApiError {
    ApiError::not_found("media_not_found", "no such media (or not yours to see)")
}

fn parse_cid(raw: &str) -> Result<Cid, ApiError> {
    raw.parse().map_err(|_| ApiError::bad_request("invalid_cid", format!("{raw:?} is not a CIDv0 (Qm…)")))
}

/// The upload's content type, lowercase and without parameters; `application/octet-stream`
/// when none is given.
fn content_type(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(v) = headers.get(header::CONTENT_TYPE) else { return Ok("application/octet-stream".into()) };
    let v = v.to_str().map_err(|_| unsupported_type("a non-ASCII type"))?;
    let mime = v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let valid = mime.split_once('/').is_some_and(|(a, b)| {
        let token =
            |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&c));
        token(a) && token(b)
    });
    if !valid {
        return Err(unsupported_type(&format!("{v:?}")));
    }
    Ok(mime)
}

fn unsupported_type(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "media_type_not_allowed",
        format!("this node does not accept uploads of {what}"),
    )
}

/// `POST /v1/media?room=<id>`: streams the body into the media store and references it from the
/// room. 201 with `{cid, size, mime}`; 200 when the caller had already put this file there.
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RoomQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let room_id = room_id(&q.room)?;
    let room = state.store.room(&room_id).await?.ok_or_else(room_not_found)?;
    if state.store.role(&room_id, &caller.address).await?.is_none() {
        return Err(ApiError::forbidden("not_a_member", "only members can upload media to a room"));
    }
    state.limit_address(&caller.address)?;
    let media = &state.media;
    let config = media.config();
    let mime = content_type(&headers)?;
    if !config.allows_type(&mime) {
        return Err(unsupported_type(&mime));
    }
    let limit = config.max_file_bytes_for(room.kind);
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    // Refuse what is known to be too big before reading a byte of it.
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large(limit));
    }
    check_quota(&state, &caller, &room_id, declared.unwrap_or(0)).await?;

    let staged = media.import(body.into_data_stream(), limit).await?;
    let r = MediaRef { cid: staged.cid, room: room_id, uploader: caller.address };
    media.backend().store(&staged).await?;
    let fresh = {
        let _pins = media.lock().await;
        if !db::has_ref(&state.store, &r).await? {
            check_quota(&state, &caller, &room_id, staged.size).await?;
        }
        media.backend().pin(&staged.cid, Some(&staged)).await?;
        db::insert(&state.store, &r, staged.size, &mime, state.now()).await?
    };
    let stored = db::media(&state.store, &staged.cid).await?.map_or(mime, |m| m.mime);
    tracing::info!(target: "node::media", cid = %staged.cid, size = staged.size, room = %room_id, by = %caller.address, "media uploaded");
    let status = if fresh { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(Uploaded { cid: staged.cid.to_string(), size: staged.size, mime: stored })))
}

/// 413 `quota_exceeded` when `extra` more bytes would take the caller or the room over quota.
async fn check_quota(state: &AppState, caller: &Caller, room: &RoomId, extra: u64) -> Result<(), ApiError> {
    let config = state.media.config();
    if db::usage_of_uploader(&state.store, &caller.address).await?.saturating_add(extra) > config.user_quota_bytes {
        return Err(quota_exceeded("your uploads", config.user_quota_bytes));
    }
    if db::usage_of_room(&state.store, room).await?.saturating_add(extra) > config.room_quota_bytes {
        return Err(quota_exceeded("this room", config.room_quota_bytes));
    }
    Ok(())
}

/// A byte range to serve, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Range {
    /// The whole file.
    Full,
    /// `start..end`.
    Part(u64, u64),
    /// Cannot be served from a file of this size.
    Unsatisfiable,
}

/// Reads a `Range` header (RFC 9110 §14): one `bytes=` range, `a-b`, `a-` or `-n`. Another
/// unit is ignored (the whole file is sent), and so is a list of ranges; a malformed or
/// unsatisfiable `bytes` range is refused.
fn parse_range(value: Option<&HeaderValue>, size: u64) -> Range {
    let Some(v) = value.and_then(|v| v.to_str().ok()) else { return Range::Full };
    let Some(spec) = v.trim().strip_prefix("bytes=") else { return Range::Full };
    if spec.contains(',') {
        return Range::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return Range::Unsatisfiable };
    let num =
        |s: &str| (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())).then(|| s.parse::<u64>().ok()).flatten();
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => match num(n) {
            Some(n) if n > 0 && size > 0 => (size.saturating_sub(n), size),
            _ => return Range::Unsatisfiable,
        },
        (a, "") => match num(a) {
            Some(a) => (a, size),
            None => return Range::Unsatisfiable,
        },
        (a, b) => match (num(a), num(b)) {
            (Some(a), Some(b)) if a <= b => (a, b.saturating_add(1).min(size)),
            _ => return Range::Unsatisfiable,
        },
    };
    if start >= size { Range::Unsatisfiable } else { Range::Part(start, end) }
}

/// `GET /v1/media/{cid}`: the file, streamed and checked against its CID as it is read, with
/// `Range` support. Readable by whoever may read a room that references it; to anyone else it
/// does not exist (404), as for message proofs.
pub async fn download(
    State(state): State<AppState>,
    Path(cid): Path<String>,
    caller: Option<Caller>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let cid = parse_cid(&cid)?;
    let row = db::media(&state.store, &cid).await?.ok_or_else(media_not_found)?;
    let mut public = false;
    let mut allowed = false;
    for room in db::rooms_of(&state.store, &cid).await? {
        if let Ok((r, _)) = readable(&state, &room, caller.as_ref()).await {
            allowed = true;
            public |= !r.kind.is_private();
        }
    }
    if !allowed {
        return Err(media_not_found());
    }
    let etag = format!("\"{cid}\"");
    let mut out = HeaderMap::new();
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert(header::ETAG, HeaderValue::from_str(&etag).map_err(ApiError::internal)?);
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if public {
            "public, max-age=31536000, immutable"
        } else {
            "private, max-age=31536000, immutable"
        }),
    );
    // User content on the node's own origin: never sniffed, never run.
    out.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    out.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    let size = row.size;
    let (status, start, end) = match parse_range(headers.get(header::RANGE), size) {
        Range::Full => (StatusCode::OK, 0, size),
        Range::Part(start, end) => {
            let range = format!("bytes {start}-{}/{size}", end - 1);
            out.insert(header::CONTENT_RANGE, HeaderValue::from_str(&range).map_err(ApiError::internal)?);
            (StatusCode::PARTIAL_CONTENT, start, end)
        }
        Range::Unsatisfiable => {
            let range = format!("bytes */{size}");
            out.insert(header::CONTENT_RANGE, HeaderValue::from_str(&range).map_err(ApiError::internal)?);
            let err = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the range is malformed or outside the file's {size} bytes"),
            );
            return Ok((out, err).into_response());
        }
    };
    let content_type = HeaderValue::from_str(&row.mime).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    out.insert(header::CONTENT_TYPE, content_type);
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    // Read up to the first bytes before answering, so a missing or corrupt start of the file is
    // a clean error rather than a broken 200. Later failures cut the transfer short: the client
    // sees fewer bytes than Content-Length, never a byte that failed its check.
    let mut stream = Box::pin(state.media.read(cid, size, start, end));
    let first = match stream.next().await {
        Some(Err(e)) => return Err(e.into()),
        Some(Ok(first)) => Some(first),
        None => None,
    };
    let rest = stream.map(move |r| {
        r.map_err(|e| {
            tracing::error!(target: "node::media", %cid, error = %e, "stopped serving media mid-transfer");
            std::io::Error::other(e.to_string())
        })
    });
    let body = futures::stream::iter(first.map(Ok)).chain(rest);
    Ok((status, out, Body::from_stream(body)).into_response())
}

/// `DELETE /v1/media/{cid}?room=<id>`: removes the file's reference from the room — the
/// caller's own upload, or (room owners and admins) every upload of it there — and unpins the
/// file once no room references it.
pub async fn delete(
    State(state): State<AppState>,
    Path(cid): Path<String>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RoomQuery>,
) -> Result<Json<Deleted>, ApiError> {
    let cid = parse_cid(&cid)?;
    let room = room_id(&q.room)?;
    let (_, role) = readable(&state, &room, Some(&caller)).await?;
    let Some(role) = role else {
        return Err(ApiError::forbidden("not_a_member", "you are not a member of this room"));
    };
    state.limit_address(&caller.address)?;
    let media = &state.media;
    let _pins = media.lock().await;
    let uploaders = db::uploaders(&state.store, &cid, &room).await?;
    if uploaders.is_empty() {
        return Err(media_not_found());
    }
    let moderator = matches!(role.as_str(), "owner" | "admin");
    let only = if moderator {
        None
    } else if uploaders.contains(&caller.address) {
        Some(&caller.address)
    } else {
        return Err(ApiError::forbidden("not_uploader", "only the uploader or a room admin can delete this media"));
    };
    let last = db::remove(&state.store, &cid, &room, only).await?;
    if last {
        media.backend().unpin(&cid).await?;
    }
    tracing::info!(target: "node::media", %cid, %room, by = %caller.address, unpinned = last, "media reference removed");
    Ok(Json(Deleted { cid: cid.to_string(), room, unpinned: last }))
}

/// Unpins media whose references are older than `media.retention_secs`, every
/// `media.retention_interval_secs`, until shutdown.
pub async fn retention(state: AppState) {
    let config = state.media.config().clone();
    let Some(keep) = config.retention_secs else { return };
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(config.retention_interval_secs.max(1)));
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {
                let before = state.now().saturating_sub(i64::try_from(keep).unwrap_or(i64::MAX));
                match expire(&state, before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(target: "node::media", unpinned = n, "retention: expired media unpinned"),
                    Err(e) => tracing::warn!(target: "node::media", code = e.code, message = %e.message, "retention sweep failed"),
                }
            }
        }
    }
}

/// Drops every reference made before `before`; returns how many files were unpinned.
pub async fn expire(state: &AppState, before: i64) -> Result<usize, ApiError> {
    let mut unpinned = 0;
    loop {
        let batch = db::expired(&state.store, before, 100).await?;
        if batch.is_empty() {
            return Ok(unpinned);
        }
        for r in batch {
            let _pins = state.media.lock().await;
            if db::remove(&state.store, &r.cid, &r.room, Some(&r.uploader)).await? {
                state.media.backend().unpin(&r.cid).await?;
                unpinned += 1;
            }
        }
    }
}

/// Unpins files the embedded store holds without a database row (an upload interrupted between
/// pinning and recording it). Run at start.
pub async fn sweep_orphans(state: &AppState) -> Result<usize, ApiError> {
    let Some(store) = state.media.embedded() else { return Ok(0) };
    let known: std::collections::HashSet<Cid> = db::all_cids(&state.store).await?.into_iter().collect();
    let _pins = state.media.lock().await;
    let mut removed = 0;
    for cid in store.pins().map_err(MediaError::Io)? {
        if !known.contains(&cid) {
            state.media.backend().unpin(&cid).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str, size: u64) -> Range {
        parse_range(Some(&HeaderValue::from_str(v).expect("header")), size)
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Range::Full);
        assert_eq!(range("bytes=0-0", 10), Range::Part(0, 1));
        assert_eq!(range("bytes=2-5", 10), Range::Part(2, 6));
        assert_eq!(range("bytes=2-", 10), Range::Part(2, 10));
        assert_eq!(range("bytes=5-100", 10), Range::Part(5, 10));
        assert_eq!(range("bytes=-3", 10), Range::Part(7, 10));
        assert_eq!(range("bytes=-30", 10), Range::Part(0, 10));
        assert_eq!(range("bytes=10-", 10), Range::Unsatisfiable);
        assert_eq!(range("bytes=5-2", 10), Range::Unsatisfiable);
        assert_eq!(range("bytes=-0", 10), Range::Unsatisfiable);
        assert_eq!(range("bytes=x-1", 10), Range::Unsatisfiable);
        assert_eq!(range("bytes=0-", 0), Range::Unsatisfiable);
        assert_eq!(range("bytes=0-1,4-5", 10), Range::Full, "lists of ranges are not served");
        assert_eq!(range("items=0-1", 10), Range::Full, "other units are ignored");
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert_eq!(content_type(&h).expect("default"), "application/octet-stream");
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("Image/PNG; charset=binary"));
        assert_eq!(content_type(&h).expect("png"), "image/png");
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image"));
        assert!(content_type(&h).is_err());
        let c = crate::config::MediaConfig::default();
        assert!(c.allows_type("image/png") && c.allows_type("application/octet-stream"));
        assert!(!c.allows_type("text/html") && !c.allows_type("application/javascript"));
    }
}
