//! The node's store: SQLite (WAL, `synchronous = FULL`) behind sqlx, with forward-only
//! migrations from `node/migrations`. A write is acknowledged only after its transaction
//! commits, so anything a client got a 2xx for survives a crash of the process.

use std::{path::Path, str::FromStr};

use dchat_protocol::{Address, B256, Delegation, RoomId, envelope::Verified, room::Creation, wire::Certificate};
use sqlx::{Any, Pool, Row, any::AnyRow, pool::PoolOptions};
use tokio::sync::{mpsc, oneshot};

mod cache;
mod rooms;
mod social;
pub use rooms::{EpochKey, MemberView};
pub use social::Notification;

/// Outcome of consuming a nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Issued here, unused, unexpired: now consumed.
    Consumed,
    /// This node never issued it.
    Unknown,
    /// Already used.
    Used,
    /// Past its TTL.
    Expired,
}

/// Room kinds the node stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomKind {
    /// Private: members only.
    Group,
    /// Public: anyone may read and join.
    Channel,
    /// Two wallets, private.
    Direct,
}

impl RoomKind {
    /// Lowercase name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Group => "group",
            Self::Channel => "channel",
            Self::Direct => "direct",
        }
    }

    /// Whether only members may read it (and messages are end-to-end encrypted).
    pub fn is_private(self) -> bool {
        self != Self::Channel
    }
}

impl From<dchat_protocol::room::RoomKind> for RoomKind {
    fn from(k: dchat_protocol::room::RoomKind) -> Self {
        match k {
            dchat_protocol::room::RoomKind::Channel => Self::Channel,
            dchat_protocol::room::RoomKind::Direct => Self::Direct,
            _ => Self::Group,
        }
    }
}

impl FromStr for RoomKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "group" => Ok(Self::Group),
            "channel" => Ok(Self::Channel),
            "direct" => Ok(Self::Direct),
            other => Err(format!("unknown room kind {other:?}")),
        }
    }
}

/// A stored room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// Id.
    pub id: RoomId,
    /// Kind.
    pub kind: RoomKind,
    /// Display name.
    pub name: String,
    /// Creator and owner.
    pub owner: Address,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Highest lamport clock stored.
    pub max_lamport: u64,
    /// Join policy: `invite_only` or `open`.
    pub policy: String,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Message id (keccak256 of the body).
    pub id: B256,
    /// The envelope as received, protobuf-encoded.
    pub envelope: Vec<u8>,
}

/// What storing a message does to its room, in the same transaction.
#[derive(Debug, Clone, Copy)]
pub enum Effect<'a> {
    /// Nothing beyond the message.
    None,
    /// Creates the room (members, roles and keys follow from replaying its control messages,
    /// which every control kind triggers).
    Create(&'a Creation),
}

/// A room's message count and the XOR of its message ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Room.
    pub room: RoomId,
    /// Messages stored.
    pub count: u64,
    /// XOR of their ids.
    pub fingerprint: [u8; 32],
}

/// Which slice of a room's history to read, in display order.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageQuery {
    /// Only messages after this one.
    pub after: Option<B256>,
    /// Only messages before this one.
    pub before: Option<B256>,
    /// At most this many.
    pub limit: u32,
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file in the data directory (the default).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// The node's database: the same queries on SQLite or PostgreSQL (written in the SQL both
/// accept, with `$n` parameters), each with its own migrations.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool<Any>,
    backend: Backend,
    writer: mpsc::Sender<WriteJob>,
    cache: std::sync::Arc<cache::Cache>,
}

fn addr_bytes(a: &Address) -> &[u8] {
    a.as_slice()
}

fn to_i64(v: u64) -> Result<i64, sqlx::Error> {
    i64::try_from(v).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

impl Store {
    /// Opens the database and runs pending migrations: PostgreSQL at `database_url` when given,
    /// otherwise SQLite at `data_dir/dchat.db` (WAL, `synchronous = FULL`, foreign keys on).
    pub async fn open(data_dir: &Path, database_url: Option<&str>) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let (url, backend) = match database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                (url.to_string(), Backend::Postgres)
            }
            Some(_) => {
                // The URL may hold a password: do not repeat it.
                return Err(sqlx::Error::Configuration(
                    "database_url must start with postgres:// (leave it unset for SQLite)".into(),
                ));
            }
            None => {
                std::fs::create_dir_all(data_dir).map_err(sqlx::Error::Io)?;
                (format!("sqlite://{}?mode=rwc", data_dir.join("dchat.db").display()), Backend::Sqlite)
            }
        };
        let pool = PoolOptions::<Any>::new()
            .max_connections(8)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    if conn.backend_name() == "SQLite" {
                        sqlx::raw_sql(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                        )
                        .execute(&mut *conn)
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let migrated = match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await,
        };
        migrated.map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
        let (writer_tx, writer_rx) = mpsc::channel(4 * MAX_BATCH);
        let cache = std::sync::Arc::new(cache::Cache::default());
        tokio::spawn(writer(pool.clone(), backend, writer_rx, cache.clone()));
        Ok(Self { pool, backend, writer: writer_tx, cache })
    }

    /// A transaction that writes. SQLite takes the write lock up front (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads first would fail with "database is locked" when another
    /// writer commits in between, instead of waiting its turn.
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, Any>, sqlx::Error> {
        begin_write(&self.pool, self.backend).await
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for modules that keep their own tables (media).
    pub(crate) fn pool(&self) -> &Pool<Any> {
        &self.pool
    }

    /// Closes the pool, flushing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Records a nonce this node issued.
    pub async fn insert_nonce(&self, nonce: &str, now: i64, ttl: i64) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO nonces (nonce, issued_at, expires_at) VALUES ($1, $2, $3)")
            .bind(nonce)
            .bind(now)
            .bind(now + ttl)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Consumes a nonce atomically: exactly one caller ever gets [`NonceCheck::Consumed`].
    pub async fn consume_nonce(&self, nonce: &str, now: i64) -> Result<NonceCheck, sqlx::Error> {
        let done =
            sqlx::query("UPDATE nonces SET used_at = $1 WHERE nonce = $2 AND used_at IS NULL AND expires_at > $3")
                .bind(now)
                .bind(nonce)
                .bind(now)
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 1 {
            return Ok(NonceCheck::Consumed);
        }
        let row =
            sqlx::query("SELECT used_at FROM nonces WHERE nonce = $1").bind(nonce).fetch_optional(&self.pool).await?;
        Ok(match row {
            None => NonceCheck::Unknown,
            Some(r) if r.try_get::<Option<i64>, _>("used_at")?.is_some() => NonceCheck::Used,
            Some(_) => NonceCheck::Expired,
        })
    }

    /// Drops nonces expired for longer than `grace` seconds; returns how many.
    pub async fn prune_nonces(&self, now: i64, grace: i64) -> Result<u64, sqlx::Error> {
        let r = sqlx::query("DELETE FROM nonces WHERE expires_at < $1").bind(now - grace).execute(&self.pool).await?;
        Ok(r.rows_affected())
    }

    /// Whether this exact certificate (SIWE text and signature) is already stored as a delegation
    /// of `device_key` by `wallet`: it was checked then, so a peer relaying it again needs
    /// neither a second signature check nor a second write.
    pub async fn has_certificate(
        &self,
        device_key: &[u8],
        wallet: &Address,
        message: &str,
        signature: &[u8],
    ) -> Result<bool, sqlx::Error> {
        let Ok(key) = <[u8; 32]>::try_from(device_key) else { return Ok(false) };
        let rows = self.device_rows(&key).await?;
        Ok(rows.iter().any(|r| r.wallet == *wallet && r.message == message && r.signature == signature))
    }

    /// Every stored delegation of a device key, latest expiry first (from memory when cached).
    async fn device_rows(&self, device_key: &[u8; 32]) -> Result<cache::Delegations, sqlx::Error> {
        if let Some(d) = self.cache.delegations(device_key) {
            return Ok(d);
        }
        let ticket = self.cache.ticket();
        let rows = sqlx::query(
            "SELECT wallet, not_before, expires_at, message, signature, revoked_at FROM delegations
             WHERE device_key = $1 ORDER BY expires_at DESC",
        )
        .bind(device_key.as_slice())
        .fetch_all(&self.pool)
        .await?;
        let rows: cache::Delegations = std::sync::Arc::new(
            rows.iter()
                .map(|r| {
                    let wallet: Vec<u8> = r.try_get("wallet")?;
                    Ok(cache::DelegationRow {
                        wallet: Address::from_slice(&wallet),
                        not_before: r.try_get("not_before")?,
                        expires_at: r.try_get("expires_at")?,
                        message: r.try_get("message")?,
                        signature: r.try_get("signature")?,
                        revoked: r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?,
        );
        self.cache.put_delegations(ticket, device_key, &rows);
        Ok(rows)
    }

    /// Stores a delegation (idempotent). Returns `false` when the device key already belongs
    /// to another wallet: a key belongs to one wallet for good.
    pub async fn put_delegation(&self, d: &Delegation, now: i64) -> Result<bool, sqlx::Error> {
        let mut tx = self.write_tx().await?;
        // Claim the key, or find who holds it: one statement each, atomic on both databases.
        sqlx::query("INSERT INTO device_owners (device_key, wallet) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(d.device_key.as_slice())
            .bind(addr_bytes(&d.wallet))
            .execute(&mut *tx)
            .await?;
        let owner: Vec<u8> = sqlx::query_scalar("SELECT wallet FROM device_owners WHERE device_key = $1")
            .bind(d.device_key.as_slice())
            .fetch_one(&mut *tx)
            .await?;
        if owner != addr_bytes(&d.wallet) {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO delegations (device_key, wallet, box_key, not_before, expires_at, message, signature, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(d.device_key.as_slice())
        .bind(addr_bytes(&d.wallet))
        .bind(d.box_key.as_ref().map(|k| k.as_slice()))
        .bind(d.not_before)
        .bind(d.expires_at)
        .bind(&d.message)
        .bind(&d.signature)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let committed = tx.commit().await;
        self.cache.delegation_changed(&d.device_key);
        committed?;
        Ok(true)
    }

    /// The live delegations of a device key: (wallet, not-before, expiry), latest expiry first.
    pub async fn delegations(&self, device_key: &[u8; 32]) -> Result<Vec<(Address, i64, i64)>, sqlx::Error> {
        let rows = self.device_rows(device_key).await?;
        Ok(rows.iter().filter(|r| !r.revoked).map(|r| (r.wallet, r.not_before, r.expires_at)).collect())
    }

    /// A room by id.
    pub async fn room(&self, id: &RoomId) -> Result<Option<Room>, sqlx::Error> {
        if let Some(r) = self.cache.room(id) {
            return Ok(r);
        }
        let ticket = self.cache.ticket();
        let row = sqlx::query("SELECT id, kind, name, owner, created_at, max_lamport, policy FROM rooms WHERE id = $1")
            .bind(id.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await?;
        let room = row.map(|r| room_from_row(&r)).transpose()?;
        self.cache.put_room(ticket, id, &room);
        Ok(room)
    }

    /// A member's role, if a member.
    pub async fn role(&self, room: &RoomId, address: &Address) -> Result<Option<String>, sqlx::Error> {
        if let Some(r) = self.cache.role(room, address) {
            return Ok(r);
        }
        let ticket = self.cache.ticket();
        let role = sqlx::query_scalar("SELECT role FROM members WHERE room = $1 AND address = $2")
            .bind(room.as_bytes().as_slice())
            .bind(addr_bytes(address))
            .fetch_optional(&self.pool)
            .await?;
        self.cache.put_role(ticket, room, address, &role);
        Ok(role)
    }

    /// The rooms an address belongs to, with its role, oldest first.
    pub async fn rooms_of(&self, address: &Address) -> Result<Vec<(Room, String)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT r.id, r.kind, r.name, r.owner, r.created_at, r.max_lamport, r.policy, m.role
             FROM members m JOIN rooms r ON r.id = m.room WHERE m.address = $1 ORDER BY r.created_at, r.id",
        )
        .bind(addr_bytes(address))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((room_from_row(r)?, r.try_get("role")?))).collect()
    }

    /// Stores a verified envelope and applies its effect on the room, atomically. Returns
    /// `false` if the same message was already stored (idempotent re-post or re-delivery).
    ///
    /// Writes go through one writer task that commits whatever is queued together (group
    /// commit): one disk sync serves many messages, and the call returns only after the commit.
    pub async fn insert_message(
        &self,
        m: &Verified,
        envelope: &[u8],
        now_ms: i64,
        effect: Effect<'_>,
        local: bool,
    ) -> Result<bool, sqlx::Error> {
        let (reply, rx) = oneshot::channel();
        let job = WriteJob {
            message: m.clone(),
            envelope: envelope.to_vec(),
            now_ms,
            local,
            effect: match effect {
                Effect::None => OwnedEffect::None,
                Effect::Create(c) => OwnedEffect::Create(c.clone()),
            },
            reply,
        };
        self.writer.send(job).await.map_err(|_| sqlx::Error::PoolClosed)?;
        rx.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

/// One queued write.
#[derive(Debug)]
struct WriteJob {
    message: Verified,
    envelope: Vec<u8>,
    now_ms: i64,
    local: bool,
    effect: OwnedEffect,
    reply: oneshot::Sender<Result<bool, sqlx::Error>>,
}

#[derive(Debug, Clone)]
enum OwnedEffect {
    None,
    Create(Creation),
}

/// Most messages committed together.
const MAX_BATCH: usize = 256;

/// The writer task: takes what is queued (up to [`MAX_BATCH`]), applies it in one transaction,
/// commits once and answers every caller. If the batch fails as a whole, each message is
/// retried alone so one bad write does not fail the others.
async fn writer(
    pool: Pool<Any>,
    backend: Backend,
    mut rx: mpsc::Receiver<WriteJob>,
    cache: std::sync::Arc<cache::Cache>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let changed: Vec<RoomId> =
            batch.iter().filter(|j| j.message.kind.is_control()).map(|j| j.message.room).collect();
        let result = commit(&pool, backend, &batch).await;
        // Invalidate before anyone hears back, so a caller's next read sees its own write.
        let lamports: Vec<(RoomId, u64)> = match &result {
            Ok(_) => batch.iter().map(|j| (j.message.room, j.message.body.lamport)).collect(),
            Err(_) => Vec::new(),
        };
        cache.committed(&changed, &lamports);
        match result {
            Ok(results) => {
                for (job, fresh) in batch.into_iter().zip(results) {
                    let _ = job.reply.send(Ok(fresh));
                }
            }
            Err(e) if batch.len() == 1 => {
                let _ = batch.remove(0).reply.send(Err(e));
            }
            Err(_) => {
                for job in batch {
                    let one = commit(&pool, backend, std::slice::from_ref(&job)).await.map(|r| r[0]);
                    if job.message.kind.is_control() {
                        cache.committed(&[job.message.room], &[]);
                    } else if one.is_ok() {
                        cache.committed(&[], &[(job.message.room, job.message.body.lamport)]);
                    }
                    let _ = job.reply.send(one);
                }
            }
        }
    }
}

async fn commit(pool: &Pool<Any>, backend: Backend, jobs: &[WriteJob]) -> Result<Vec<bool>, sqlx::Error> {
    let mut tx = begin_write(pool, backend).await?;
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        let effect = match &job.effect {
            OwnedEffect::None => Effect::None,
            OwnedEffect::Create(c) => Effect::Create(c),
        };
        results.push(apply(&mut tx, backend, job, effect).await?);
    }
    tx.commit().await?;
    Ok(results)
}

async fn begin_write(pool: &Pool<Any>, backend: Backend) -> Result<sqlx::Transaction<'static, Any>, sqlx::Error> {
    match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
        Backend::Postgres => pool.begin().await,
    }
}

/// One message's statements inside a write transaction; `false` for a message already stored.
async fn apply(
    tx: &mut sqlx::Transaction<'static, Any>,
    backend: Backend,
    job: &WriteJob,
    effect: Effect<'_>,
) -> Result<bool, sqlx::Error> {
    let (m, envelope, now_ms) = (&job.message, job.envelope.as_slice(), job.now_ms);
    let room = m.room.as_bytes().as_slice();
    let created_at = to_i64(m.body.timestamp_ms / 1000)?;
    if let Effect::Create(c) = effect {
        let kind = RoomKind::from(c.kind);
        let policy = if kind == RoomKind::Channel { "open" } else { "invite_only" };
        sqlx::query(
            "INSERT INTO rooms (id, kind, name, owner, created_at, policy) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT DO NOTHING",
        )
        .bind(room)
        .bind(kind.as_str())
        .bind(&c.name)
        .bind(addr_bytes(&c.owner))
        .bind(created_at)
        .bind(policy)
        .execute(&mut **tx)
        .await?;
    }
    // Lock the room first (its fingerprint is read, changed and written below): PostgreSQL
    // takes the row lock before the message insert takes its foreign-key share lock, so two
    // writers queue instead of deadlocking; SQLite already holds the write lock.
    let select = match backend {
        Backend::Sqlite => "SELECT fingerprint FROM rooms WHERE id = $1",
        Backend::Postgres => "SELECT fingerprint FROM rooms WHERE id = $1 FOR UPDATE",
    };
    let fp: Vec<u8> = sqlx::query_scalar(select).bind(room).fetch_one(&mut **tx).await?;
    let lamport = to_i64(m.body.lamport)?;
    let r = sqlx::query(
        "INSERT INTO messages (id, room, sender, device_key, lamport, timestamp_ms, kind, envelope, received_at, local)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING",
    )
    .bind(m.id.as_slice())
    .bind(room)
    .bind(addr_bytes(&m.sender))
    .bind(m.device_key.as_slice())
    .bind(lamport)
    .bind(to_i64(m.body.timestamp_ms)?)
    .bind(m.body.kind)
    .bind(envelope)
    .bind(now_ms)
    .bind(i64::from(job.local))
    .execute(&mut **tx)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(false);
    }
    if m.kind.is_control() {
        rooms::replay(tx, &m.room, created_at).await?;
    }

    let mut fingerprint = [0u8; 32];
    for (i, b) in fingerprint.iter_mut().enumerate() {
        *b = fp.get(i).copied().unwrap_or(0) ^ m.id[i];
    }
    sqlx::query(
        "UPDATE rooms SET max_lamport = CASE WHEN max_lamport < $1 THEN $1 ELSE max_lamport END,
                msg_count = msg_count + 1, fingerprint = $2 WHERE id = $3",
    )
    .bind(lamport)
    .bind(fingerprint.as_slice())
    .bind(room)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

impl Store {
    /// The certificate of the device's delegation that covers the instant `at` (Unix seconds,
    /// with `skew` seconds of tolerance as when it was accepted), to send along with an envelope
    /// signed then.
    pub async fn certificate(&self, device_key: &[u8], at: i64, skew: i64) -> Result<Option<Certificate>, sqlx::Error> {
        let Ok(key) = <[u8; 32]>::try_from(device_key) else { return Ok(None) };
        let rows = self.device_rows(&key).await?;
        // Rows are latest expiry first: the first that covers `at` is the one to send.
        Ok(rows
            .iter()
            .find(|r| r.not_before <= at + skew && r.expires_at > at - skew)
            .map(|r| Certificate { message: r.message.clone(), signature: r.signature.clone() }))
    }

    /// Count and fingerprint of one room.
    pub async fn summary(&self, room: &RoomId) -> Result<Option<Summary>, sqlx::Error> {
        let row = sqlx::query("SELECT id, msg_count, fingerprint FROM rooms WHERE id = $1")
            .bind(room.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(summary_from_row).transpose()
    }

    /// Count and fingerprint of rooms in id order, after `after`, at most `limit`.
    pub async fn summaries(&self, after: Option<&RoomId>, limit: u32) -> Result<Vec<Summary>, sqlx::Error> {
        let rows = sqlx::query("SELECT id, msg_count, fingerprint FROM rooms WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after.map_or(&[][..], |r| r.as_bytes().as_slice()))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(summary_from_row).collect()
    }

    /// Message ids of a room in display order, from the start or after `after`, at most
    /// `limit`. `Ok(None)` when `after` names no message of this room.
    pub async fn ids(&self, room: &RoomId, after: Option<B256>, limit: u32) -> Result<Option<Vec<B256>>, sqlx::Error> {
        let rows = match after {
            None => {
                sqlx::query("SELECT id FROM messages WHERE room = $1 ORDER BY lamport, timestamp_ms, id LIMIT $2")
                    .bind(room.as_bytes().as_slice())
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
            Some(after) => {
                let Some((l, t, id)) = self.order_key(room, &after).await? else { return Ok(None) };
                sqlx::query(
                    "SELECT id FROM messages WHERE room = $1 AND (lamport, timestamp_ms, id) > ($2, $3, $4)
                     ORDER BY lamport, timestamp_ms, id LIMIT $5",
                )
                .bind(room.as_bytes().as_slice())
                .bind(l)
                .bind(t)
                .bind(id)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter()
            .map(|r| r.try_get::<Vec<u8>, _>("id").map(|id| B256::from_slice(id.as_slice())))
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// Stored envelopes by id (those this node has), with their signers' device keys.
    pub async fn envelopes(&self, ids: &[B256]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, sqlx::Error> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query("SELECT envelope, device_key FROM messages WHERE id = $1")
                .bind(id.as_slice())
                .fetch_optional(&self.pool)
                .await?;
            if let Some(r) = row {
                out.push((r.try_get("envelope")?, r.try_get("device_key")?));
            } else if let Some(social) = self.social_envelope(id).await? {
                out.push(social);
            }
        }
        Ok(out)
    }

    /// Which of `ids` are not stored, in the order given: one query per call.
    pub async fn missing(&self, ids: &[B256]) -> Result<Vec<B256>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let params: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!("SELECT id FROM messages WHERE id IN ({})", params.join(", "));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(id.as_slice());
        }
        let present: std::collections::HashSet<Vec<u8>> =
            query.fetch_all(&self.pool).await?.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
        Ok(ids.iter().filter(|id| !present.contains(id.as_slice())).copied().collect())
    }

    /// Whether a message is stored.
    pub async fn has_message(&self, id: &B256) -> Result<bool, sqlx::Error> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE id = $1")
            .bind(id.as_slice())
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// The ordering key of a message in a room, to resolve a cursor.
    async fn order_key(&self, room: &RoomId, id: &B256) -> Result<Option<(i64, i64, Vec<u8>)>, sqlx::Error> {
        let row = sqlx::query("SELECT lamport, timestamp_ms, id FROM messages WHERE room = $1 AND id = $2")
            .bind(room.as_bytes().as_slice())
            .bind(id.as_slice())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get("lamport")?, r.try_get("timestamp_ms")?, r.try_get("id")?))).transpose()
    }

    /// A page of history in display order, and whether more lies beyond it in the paging
    /// direction. `Ok(None)` when a cursor names no message of this room.
    pub async fn page(&self, room: &RoomId, q: PageQuery) -> Result<Option<(Vec<StoredMessage>, bool)>, sqlx::Error> {
        let mut lower = None;
        let mut upper = None;
        if let Some(after) = &q.after {
            let Some(k) = self.order_key(room, after).await? else { return Ok(None) };
            lower = Some(k);
        }
        if let Some(before) = &q.before {
            let Some(k) = self.order_key(room, before).await? else { return Ok(None) };
            upper = Some(k);
        }
        // Forward from `after`; otherwise backward from `before` (or from the newest).
        let forward = q.after.is_some();
        let mut sql = String::from("SELECT id, envelope FROM messages WHERE room = $1");
        let mut n = 1;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if lower.is_some() {
            sql.push_str(&format!(" AND (lamport, timestamp_ms, id) > ({}, {}, {})", next(), next(), next()));
        }
        if upper.is_some() {
            sql.push_str(&format!(" AND (lamport, timestamp_ms, id) < ({}, {}, {})", next(), next(), next()));
        }
        let order = if forward { "lamport, timestamp_ms, id" } else { "lamport DESC, timestamp_ms DESC, id DESC" };
        sql.push_str(&format!(" ORDER BY {order} LIMIT {}", next()));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(room.as_bytes().as_slice());
        for (l, t, id) in lower.into_iter().chain(upper) {
            query = query.bind(l).bind(t).bind(id);
        }
        let rows = query.bind(i64::from(q.limit) + 1).fetch_all(&self.pool).await?;
        let more = rows.len() > q.limit as usize;
        let mut out = rows
            .iter()
            .take(q.limit as usize)
            .map(|r| {
                let id: Vec<u8> = r.try_get("id")?;
                Ok(StoredMessage { id: B256::from_slice(&id), envelope: r.try_get("envelope")? })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        if !forward {
            out.reverse();
        }
        Ok(Some((out, more)))
    }
}

/// An anchoring batch as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorBatch {
    /// Merkle root.
    pub root: B256,
    /// Chain it is anchored on.
    pub chain_id: u64,
    /// `MessageAnchor` it is anchored in.
    pub contract: Address,
    /// Messages in it.
    pub count: u64,
    /// Account the root is anchored under, once anchored.
    pub anchorer: Option<Address>,
    /// Anchoring transaction, once anchored (unknown only when a restart found the root already
    /// on chain and its log could not be read).
    pub tx_hash: Option<B256>,
    /// Block of that transaction.
    pub block: Option<u64>,
    /// Every message id in the batch.
    pub members: Vec<B256>,
}

impl Store {
    /// Local messages (posted by this node's clients) not yet in a batch, oldest first.
    pub async fn unanchored_local(&self, limit: u32) -> Result<Vec<B256>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT m.id FROM messages m LEFT JOIN anchored a ON a.message_id = m.id
             WHERE m.local = 1 AND a.message_id IS NULL ORDER BY m.seq LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| r.try_get::<Vec<u8>, _>("id").map(|id| B256::from_slice(&id))).collect()
    }

    /// Records a batch and its members before it goes on chain (to `chain_id` / `contract`), so
    /// a restart resumes it.
    pub async fn create_batch(
        &self,
        root: &B256,
        ids: &[B256],
        now: i64,
        chain_id: u64,
        contract: &Address,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO anchor_batches (root, chain_id, contract, count, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING",
        )
        .bind(root.as_slice())
        .bind(to_i64(chain_id)?)
        .bind(contract.as_slice())
        .bind(i64::try_from(ids.len()).unwrap_or(i64::MAX))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for id in ids {
            sqlx::query("INSERT INTO anchored (message_id, root) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(id.as_slice())
                .bind(root.as_slice())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// Batches recorded for this chain and contract but not yet confirmed: (root, count).
    pub async fn pending_batches(&self, chain_id: u64, contract: &Address) -> Result<Vec<(B256, u64)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT root, count FROM anchor_batches
             WHERE anchorer IS NULL AND batch_id IS NULL AND chain_id = $1 AND contract = $2
             ORDER BY created_at",
        )
        .bind(to_i64(chain_id)?)
        .bind(contract.as_slice())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let root: Vec<u8> = r.try_get("root")?;
                let count: i64 = r.try_get("count")?;
                Ok((B256::from_slice(&root), u64::try_from(count).unwrap_or_default()))
            })
            .collect()
    }

    /// Marks a batch as anchored under `anchorer`.
    pub async fn mark_anchored(
        &self,
        root: &B256,
        anchorer: &Address,
        tx_hash: Option<B256>,
        block: Option<u64>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE anchor_batches SET anchorer = $1, tx_hash = $2, block = $3 WHERE root = $4")
            .bind(anchorer.as_slice())
            .bind(tx_hash.map(|h| h.to_vec()))
            .bind(block.map(to_i64).transpose()?)
            .bind(root.as_slice())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The batch holding a message, with all its members.
    pub async fn batch_of(&self, message_id: &B256) -> Result<Option<AnchorBatch>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT b.root, b.chain_id, b.contract, b.count, b.anchorer, b.tx_hash, b.block FROM anchored a
             JOIN anchor_batches b ON b.root = a.root WHERE a.message_id = $1",
        )
        .bind(message_id.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let root: Vec<u8> = r.try_get("root")?;
        let members = sqlx::query("SELECT message_id FROM anchored WHERE root = $1")
            .bind(root.as_slice())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|m| m.try_get::<Vec<u8>, _>("message_id").map(|id| B256::from_slice(&id)))
            .collect::<Result<Vec<_>, _>>()?;
        let count: i64 = r.try_get("count")?;
        let anchorer: Option<Vec<u8>> = r.try_get("anchorer")?;
        let tx_hash: Option<Vec<u8>> = r.try_get("tx_hash")?;
        let block: Option<i64> = r.try_get("block")?;
        let chain_id: i64 = r.try_get("chain_id")?;
        let contract: Vec<u8> = r.try_get("contract")?;
        Ok(Some(AnchorBatch {
            root: B256::from_slice(&root),
            chain_id: u64::try_from(chain_id).unwrap_or_default(),
            contract: Address::from_slice(&contract),
            count: u64::try_from(count).unwrap_or_default(),
            anchorer: anchorer.filter(|a| a.len() == 20).map(|a| Address::from_slice(&a)),
            tx_hash: tx_hash.filter(|h| h.len() == 32).map(|h| B256::from_slice(&h)),
            block: block.and_then(|b| u64::try_from(b).ok()),
            members,
        }))
    }

    /// The room of a stored message.
    pub async fn message_room(&self, id: &B256) -> Result<Option<RoomId>, sqlx::Error> {
        let room: Option<Vec<u8>> = sqlx::query_scalar("SELECT room FROM messages WHERE id = $1")
            .bind(id.as_slice())
            .fetch_optional(&self.pool)
            .await?;
        room.map(|r| RoomId::from_slice(&r).map_err(|e| sqlx::Error::Decode(Box::new(e)))).transpose()
    }
}

fn summary_from_row(r: &AnyRow) -> Result<Summary, sqlx::Error> {
    let id: Vec<u8> = r.try_get("id")?;
    let fp: Vec<u8> = r.try_get("fingerprint")?;
    let count: i64 = r.try_get("msg_count")?;
    Ok(Summary {
        room: RoomId::from_slice(&id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        count: u64::try_from(count).unwrap_or_default(),
        fingerprint: fp.try_into().unwrap_or([0; 32]),
    })
}

fn room_from_row(r: &AnyRow) -> Result<Room, sqlx::Error> {
    let id: Vec<u8> = r.try_get("id")?;
    let kind: String = r.try_get("kind")?;
    let owner: Vec<u8> = r.try_get("owner")?;
    let max_lamport: i64 = r.try_get("max_lamport")?;
    Ok(Room {
        id: RoomId::from_slice(&id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        kind: kind.parse().map_err(|e: String| sqlx::Error::Decode(e.into()))?,
        name: r.try_get("name")?,
        owner: Address::from_slice(&owner),
        created_at: r.try_get("created_at")?,
        max_lamport: u64::try_from(max_lamport).unwrap_or_default(),
        policy: r.try_get("policy")?,
    })
}
