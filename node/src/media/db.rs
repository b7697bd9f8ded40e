//! Media bookkeeping in the node's database (migration `0004_media.sql`): each pinned file
//! (`media`) and the references that keep it pinned (`media_refs`: a room, an uploader, a
//! size). The same SQL runs on SQLite and PostgreSQL.

use dchat_protocol::{Address, RoomId};
use sqlx::Row;

use super::unixfs::Cid;
use crate::store::Store;

/// A pinned file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRow {
    /// Root CID.
    pub cid: Cid,
    /// Size, bytes.
    pub size: u64,
    /// MIME type given at the first upload.
    pub mime: String,
}

/// One reference: `uploader` put `cid` in `room`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRef {
    /// File.
    pub cid: Cid,
    /// Room.
    pub room: RoomId,
    /// Who uploaded it there.
    pub uploader: Address,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn decode_room(bytes: &[u8]) -> Result<RoomId, sqlx::Error> {
    RoomId::from_slice(bytes).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn decode_cid(s: &str) -> Result<Cid, sqlx::Error> {
    s.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// The file `cid`, when pinned.
pub async fn media(store: &Store, cid: &Cid) -> Result<Option<MediaRow>, sqlx::Error> {
    let row = sqlx::query("SELECT size, mime FROM media WHERE cid = $1")
        .bind(cid.to_string())
        .fetch_optional(store.pool())
        .await?;
    row.map(|r| {
        let size: i64 = r.try_get("size")?;
        Ok(MediaRow { cid: *cid, size: u64::try_from(size).unwrap_or_default(), mime: r.try_get("mime")? })
    })
    .transpose()
}

/// Rooms that reference `cid`.
pub async fn rooms_of(store: &Store, cid: &Cid) -> Result<Vec<RoomId>, sqlx::Error> {
    let rows: Vec<Vec<u8>> = sqlx::query_scalar("SELECT DISTINCT room FROM media_refs WHERE cid = $1")
        .bind(cid.to_string())
        .fetch_all(store.pool())
        .await?;
    rows.iter().map(|r| decode_room(r)).collect()
}

/// Who uploaded `cid` into `room`.
pub async fn uploaders(store: &Store, cid: &Cid, room: &RoomId) -> Result<Vec<Address>, sqlx::Error> {
    let rows: Vec<Vec<u8>> = sqlx::query_scalar("SELECT uploader FROM media_refs WHERE cid = $1 AND room = $2")
        .bind(cid.to_string())
        .bind(room.as_bytes().as_slice())
        .fetch_all(store.pool())
        .await?;
    Ok(rows.iter().map(|a| Address::from_slice(a)).collect())
}

/// Bytes referenced by an uploader's references.
pub async fn usage_of_uploader(store: &Store, uploader: &Address) -> Result<u64, sqlx::Error> {
    let used: i64 =
        sqlx::query_scalar("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM media_refs WHERE uploader = $1")
            .bind(uploader.as_slice())
            .fetch_one(store.pool())
            .await?;
    Ok(u64::try_from(used).unwrap_or_default())
}

/// Bytes referenced in a room.
pub async fn usage_of_room(store: &Store, room: &RoomId) -> Result<u64, sqlx::Error> {
    let used: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM media_refs WHERE room = $1")
        .bind(room.as_bytes().as_slice())
        .fetch_one(store.pool())
        .await?;
    Ok(u64::try_from(used).unwrap_or_default())
}

/// Whether this exact reference exists.
pub async fn has_ref(store: &Store, r: &MediaRef) -> Result<bool, sqlx::Error> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM media_refs WHERE cid = $1 AND room = $2 AND uploader = $3")
            .bind(r.cid.to_string())
            .bind(r.room.as_bytes().as_slice())
            .bind(r.uploader.as_slice())
            .fetch_optional(store.pool())
            .await?;
    Ok(found.is_some())
}

/// Records a pinned file (if new) and a reference to it, in one transaction. Returns whether the
/// reference is new.
pub async fn insert(store: &Store, r: &MediaRef, size: u64, mime: &str, now: i64) -> Result<bool, sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    sqlx::query("INSERT INTO media (cid, size, mime, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
        .bind(r.cid.to_string())
        .bind(to_i64(size))
        .bind(mime)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let added = sqlx::query(
        "INSERT INTO media_refs (cid, room, uploader, size, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING",
    )
    .bind(r.cid.to_string())
    .bind(r.room.as_bytes().as_slice())
    .bind(r.uploader.as_slice())
    .bind(to_i64(size))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(added.rows_affected() == 1)
}

/// Drops references of `cid` in `room` (only `uploader`'s when given). When no reference to the
/// file is left anywhere, drops the file's row too and returns `true`: it should be unpinned.
pub async fn remove(store: &Store, cid: &Cid, room: &RoomId, uploader: Option<&Address>) -> Result<bool, sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    match uploader {
        Some(u) => {
            sqlx::query("DELETE FROM media_refs WHERE cid = $1 AND room = $2 AND uploader = $3")
                .bind(cid.to_string())
                .bind(room.as_bytes().as_slice())
                .bind(u.as_slice())
                .execute(&mut *tx)
                .await?
        }
        None => {
            sqlx::query("DELETE FROM media_refs WHERE cid = $1 AND room = $2")
                .bind(cid.to_string())
                .bind(room.as_bytes().as_slice())
                .execute(&mut *tx)
                .await?
        }
    };
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM media_refs WHERE cid = $1")
        .bind(cid.to_string())
        .fetch_one(&mut *tx)
        .await?;
    if left == 0 {
        sqlx::query("DELETE FROM media WHERE cid = $1").bind(cid.to_string()).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(left == 0)
}

/// References made before `before` (Unix seconds), oldest first, at most `limit`.
pub async fn expired(store: &Store, before: i64, limit: u32) -> Result<Vec<MediaRef>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT cid, room, uploader FROM media_refs WHERE created_at < $1 ORDER BY created_at, cid LIMIT $2",
    )
    .bind(before)
    .bind(i64::from(limit))
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let cid: String = r.try_get("cid")?;
            let room: Vec<u8> = r.try_get("room")?;
            let uploader: Vec<u8> = r.try_get("uploader")?;
            Ok(MediaRef { cid: decode_cid(&cid)?, room: decode_room(&room)?, uploader: Address::from_slice(&uploader) })
        })
        .collect()
}

/// Every pinned file's CID.
pub async fn all_cids(store: &Store) -> Result<Vec<Cid>, sqlx::Error> {
    let rows: Vec<String> = sqlx::query_scalar("SELECT cid FROM media").fetch_all(store.pool()).await?;
    rows.iter().map(|c| decode_cid(c)).collect()
}
