//! The indexer's PostgreSQL store (`migrations/`, forward-only, applied at start): rooms and
//! members mirrored from the node, every message of its log (text only for public channels),
//! keyed tokens of encrypted-room messages, users, and the follower's cursors.
//!
//! Messages are upserted by id (`ON CONFLICT DO NOTHING`) and the cursor moves in the same
//! transaction, so a page applied twice (a crash between the commit and the next read, or a
//! reconcile refetch) changes nothing: delivery is at least once, the result exactly once.

use std::collections::HashMap;

use dchat_protocol::{Address, B256, RoomId};
use sqlx::{PgPool, Postgres, Row, Transaction, postgres::PgPoolOptions};

use crate::source::LogRoom;

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

/// A message ready to store, decoded and checked from the log.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Message id.
    pub id: B256,
    /// Position in the node's log.
    pub seq: i64,
    /// Room.
    pub room: RoomId,
    /// Sending wallet.
    pub sender: Address,
    /// Kind number.
    pub kind: i32,
    /// Lamport clock.
    pub lamport: i64,
    /// Sender's clock, ms.
    pub timestamp_ms: i64,
    /// When the node stored it, ms.
    pub received_at: i64,
    /// The text to index: only for text messages of public channels.
    pub body: Option<String>,
}

/// A room mirrored from the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRow {
    /// `group`, `channel` or `direct`.
    pub kind: String,
    /// Name.
    pub name: String,
}

impl RoomRow {
    /// Whether only members may read it.
    pub fn is_private(&self) -> bool {
        self.kind != "channel"
    }
}

/// A message hit.
#[derive(Debug, Clone)]
pub struct Hit {
    /// Message id.
    pub id: B256,
    /// Room.
    pub room: RoomId,
    /// Room name.
    pub room_name: String,
    /// Sender.
    pub sender: Address,
    /// Sender's clock, ms.
    pub timestamp_ms: i64,
    /// The text (public channels only).
    pub body: Option<String>,
    /// Highlighted excerpt (public channels only).
    pub highlight: Option<String>,
    /// Rank (public full text only).
    pub rank: Option<f32>,
}

/// How many of the newest matches public full-text search ranks.
pub const RANKED_MATCHES: i64 = 1000;

/// Messages are walked in buckets of `1 << BUCKET_SHIFT` seqs (the `(seq >> 12)` key of the
/// `messages_window_tsv` index; the queries spell the shift out, as the index does).
const BUCKET_SHIFT: u32 = 12;

/// Seqs per bucket.
const BUCKET_SEQS: i64 = 1 << BUCKET_SHIFT;

/// At most this many buckets per query of the newest-first walk.
const MAX_WINDOW_BUCKETS: i64 = 256;

/// A public full-text match: a message of a public channel and its rank for the query.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// Message id (32 bytes).
    pub id: Vec<u8>,
    /// Position in the node's log.
    pub seq: i64,
    /// `ts_rank_cd` of the message for the query.
    pub rank: f32,
}

/// A user row found by [`Store::best_names`] or [`Store::best_addresses`].
#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    /// Wallet (20 bytes).
    pub address: Vec<u8>,
    /// Lowercase `0x` hex of the wallet.
    pub address_hex: String,
    /// Display name.
    pub name: Option<String>,
    /// Whether the name comes from a verified profile.
    pub verified: bool,
    /// Similarity of what matched, 0..1.
    pub score: f32,
}

/// A user hit.
#[derive(Debug, Clone)]
pub struct UserHit {
    /// Wallet.
    pub address: Address,
    /// Display name, when a profile gives one.
    pub name: Option<String>,
    /// Whether the name comes from a verified (LinkedIn-linked) profile.
    pub verified: bool,
    /// Similarity, 0..1.
    pub score: f32,
}

fn room_id(raw: &[u8]) -> Result<RoomId, sqlx::Error> {
    RoomId::from_slice(raw).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn b256(raw: &[u8]) -> Result<B256, sqlx::Error> {
    B256::try_from(raw).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn address(raw: &[u8]) -> Result<Address, sqlx::Error> {
    Address::try_from(raw).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// Whether user search matches `q` (lowercase) against addresses: `0x` and at least 2 hex
/// digits (an address prefix), or at least 4 hex digits. A shorter fragment such as `ada` is a
/// word, not a wallet: three hex digits occur somewhere in about 1% of all addresses (`0x` and
/// one digit begin 6% of them), and scoring those costs more than the whole name search, for
/// hits that rank below every name match.
pub fn is_address_fragment(q: &str) -> bool {
    let digits = |s: &str, at_least: usize| s.len() >= at_least && s.bytes().all(|b| b.is_ascii_hexdigit());
    match q.strip_prefix("0x") {
        Some(rest) => digits(rest, 2),
        None => digits(q, 4),
    }
}

/// Lowercase `0x` hex of an address, as searched.
pub fn address_hex(a: &Address) -> String {
    format!("{a:#x}")
}

impl Store {
    /// Connects and applies the migrations.
    pub async fn connect(url: &str) -> eyre::Result<Self> {
        use eyre::WrapErr;
        let pool = PgPoolOptions::new()
            // Plan each search for its own words: how common a word is decides between walking
            // the newest messages and reading the word's matches, which a generic plan for a
            // parameter cannot know.
            .after_connect(|conn, _| {
                Box::pin(async move {
                    use sqlx::Executor;
                    conn.execute("SET plan_cache_mode = force_custom_plan").await?;
                    Ok(())
                })
            })
            .max_connections(10)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url)
            .await
            .wrap_err("connecting to PostgreSQL (database_url)")?;
        sqlx::migrate!("./migrations").run(&pool).await.wrap_err("applying the indexer's migrations")?;
        Ok(Self { pool })
    }

    /// The pool (for tests and tools).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Where the follower of `source` stands (0 before the first page).
    pub async fn cursor(&self, source: &str) -> sqlx::Result<i64> {
        let seq =
            sqlx::query_scalar!("SELECT seq FROM cursors WHERE source = $1", source).fetch_optional(&self.pool).await?;
        Ok(seq.unwrap_or(0))
    }

    /// Which of `rooms` are mirrored already.
    pub async fn known_rooms(&self, rooms: &[RoomId]) -> sqlx::Result<Vec<RoomId>> {
        let ids: Vec<Vec<u8>> = rooms.iter().map(|r| r.as_bytes().to_vec()).collect();
        let rows =
            sqlx::query_scalar!("SELECT id FROM rooms WHERE id = ANY($1)", &ids[..]).fetch_all(&self.pool).await?;
        rows.iter().map(|r| room_id(r)).collect()
    }

    /// A mirrored room.
    pub async fn room(&self, id: &RoomId) -> sqlx::Result<Option<RoomRow>> {
        let row = sqlx::query!("SELECT kind, name FROM rooms WHERE id = $1", id.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| RoomRow { kind: r.kind, name: r.name }))
    }

    /// Stores a page of the log with the rooms it touched, and moves the cursor of `source` to
    /// `cursor` (never backwards), in one transaction. Returns how many messages were new.
    pub async fn apply(
        &self,
        source: Option<(&str, i64)>,
        messages: &[NewMessage],
        rooms: &[LogRoom],
        now_ms: i64,
    ) -> sqlx::Result<u64> {
        let mut tx = self.pool.begin().await?;
        for room in rooms {
            put_room(&mut tx, room, now_ms).await?;
        }
        let fresh = insert_messages(&mut tx, messages).await?;
        let mut senders: Vec<&Address> = messages.iter().map(|m| &m.sender).collect();
        senders.sort_unstable();
        senders.dedup();
        put_users(&mut tx, &senders, now_ms).await?;
        if let Some((source, seq)) = source {
            sqlx::query!(
                "INSERT INTO cursors (source, seq, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (source) DO UPDATE SET seq = GREATEST(cursors.seq, excluded.seq), updated_at = excluded.updated_at",
                source,
                seq,
                now_ms
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(fresh)
    }

    /// Messages stored per room.
    pub async fn room_counts(&self) -> sqlx::Result<HashMap<RoomId, i64>> {
        let rows =
            sqlx::query!(r#"SELECT room, count(*) AS "n!" FROM messages GROUP BY room"#).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok((room_id(&r.room)?, r.n))).collect()
    }

    /// Messages stored in all.
    pub async fn message_count(&self) -> sqlx::Result<i64> {
        sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM messages"#).fetch_one(&self.pool).await
    }

    /// A stored message's room and sender.
    pub async fn message(&self, id: &B256) -> sqlx::Result<Option<(RoomId, Address)>> {
        let row = sqlx::query!("SELECT room, sender FROM messages WHERE id = $1", id.as_slice())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((room_id(&r.room)?, address(&r.sender)?))).transpose()
    }

    /// A member's role.
    pub async fn role(&self, room: &RoomId, who: &Address) -> sqlx::Result<Option<String>> {
        sqlx::query_scalar!(
            "SELECT role FROM members WHERE room = $1 AND address = $2",
            room.as_bytes().as_slice(),
            who.as_slice()
        )
        .fetch_optional(&self.pool)
        .await
    }

    /// Replaces the keyed tokens of a message.
    pub async fn put_tokens(&self, id: &B256, room: &RoomId, tokens: &[Vec<u8>]) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query!("DELETE FROM message_tokens WHERE message_id = $1", id.as_slice()).execute(&mut *tx).await?;
        sqlx::query!(
            "INSERT INTO message_tokens (room, token, message_id) SELECT $1, t, $2 FROM UNNEST($3::bytea[]) AS t
             ON CONFLICT DO NOTHING",
            room.as_bytes().as_slice(),
            id.as_slice(),
            tokens
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Ranked full-text search over public channels (one channel when `room` is given): the
    /// newest [`RANKED_MATCHES`] matches are ranked (`ts_rank_cd`, ties newest first) and the
    /// page `offset..offset + limit` of that ranking is returned with highlights. A common word
    /// costs no more than a rare one: see [`Store::newest_public_matches`].
    pub async fn search_public(
        &self,
        q: &str,
        room: Option<&RoomId>,
        limit: i64,
        offset: i64,
    ) -> sqlx::Result<Vec<Hit>> {
        let mut ranked = self.newest_public_matches(q, room, RANKED_MATCHES).await?;
        ranked.sort_by(|a, b| b.rank.total_cmp(&a.rank).then(b.seq.cmp(&a.seq)));
        let page: Vec<Match> = ranked
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(0))
            .collect();
        if page.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&[u8]> = page.iter().map(|m| m.id.as_slice()).collect();
        let rows = sqlx::query!(
            r#"SELECT m.id, m.room, m.sender, m.timestamp_ms, m.body, r.name AS room_name,
                    ts_headline('simple', m.body, websearch_to_tsquery('simple', $1),
                        'StartSel=<b>, StopSel=</b>, MaxFragments=2, MaxWords=20, MinWords=5') AS highlight
             FROM messages m JOIN rooms r ON r.id = m.room
             WHERE m.id = ANY($2::bytea[])"#,
            q,
            &ids[..] as &[&[u8]]
        )
        .fetch_all(&self.pool)
        .await?;
        let mut by_id: HashMap<Vec<u8>, _> = rows.into_iter().map(|r| (r.id.clone(), r)).collect();
        page.iter()
            .filter_map(|m| by_id.remove(&m.id).map(|r| (m.rank, r)))
            .map(|(rank, r)| {
                Ok(Hit {
                    id: b256(&r.id)?,
                    room: room_id(&r.room)?,
                    room_name: r.room_name,
                    sender: address(&r.sender)?,
                    timestamp_ms: r.timestamp_ms,
                    body: r.body,
                    highlight: r.highlight,
                    rank: Some(rank),
                })
            })
            .collect()
    }

    /// The newest `want` messages of public channels (of `room` only, when given) matching
    /// `q` (`websearch_to_tsquery`, `simple`), newest first, each with its `ts_rank_cd`.
    ///
    /// Exactly what `… ORDER BY seq DESC LIMIT want` over every match returns, without reading
    /// every match: messages are walked newest first in windows of whole seq buckets
    /// (`seq >> 12`, the first key of the `messages_window_tsv` index), so each window's matches
    /// come from the index without touching the heap rows of older ones. The first window is
    /// the newest bucket; the next ones are sized from the matches per seq seen so far, to hold
    /// what is still missing with a margin. Once the older buckets are expected to hold no more
    /// than twice what is missing (a rare word), the rest is read in one query through the
    /// word's own index entries. Which windows are read only changes the cost, never the rows:
    /// every query takes the newest of its matches, below everything read before.
    pub async fn newest_public_matches(&self, q: &str, room: Option<&RoomId>, want: i64) -> sqlx::Result<Vec<Match>> {
        let room = room.map(|r| r.as_bytes().to_vec());
        let mut found: Vec<Match> = Vec::new();
        let Some(top) = sqlx::query_scalar!("SELECT max(seq) FROM messages").fetch_one(&self.pool).await? else {
            return Ok(found);
        };
        // Buckets above `next` have been read: `read` seqs, up to the newest message.
        let mut next = top >> BUCKET_SHIFT;
        let mut read = 0_i64;
        while next >= 0 {
            let need = want - i64::try_from(found.len()).unwrap_or(i64::MAX);
            if need <= 0 {
                break;
            }
            let per_seq = found.len() as f64 / read.max(1) as f64;
            let below = (next + 1) << BUCKET_SHIFT;
            if read > 0 && per_seq * below as f64 <= 2.0 * need as f64 {
                let rows = sqlx::query!(
                    r#"SELECT c.id AS "id!", c.seq AS "seq!",
                            ts_rank_cd(c.tsv, websearch_to_tsquery('simple', $1)) AS "rank!"
                     FROM (SELECT m.id, m.seq, m.tsv FROM messages m JOIN rooms r ON r.id = m.room
                           WHERE r.kind = 'channel' AND m.seq < $2
                             AND m.tsv @@ websearch_to_tsquery('simple', $1)
                             AND ($3::bytea IS NULL OR m.room = $3)
                           ORDER BY m.seq DESC LIMIT $4) c
                     ORDER BY c.seq DESC"#,
                    q,
                    below,
                    room.as_deref(),
                    need
                )
                .fetch_all(&self.pool)
                .await?;
                found.extend(rows.into_iter().map(|r| Match { id: r.id, seq: r.seq, rank: r.rank }));
                break;
            }
            let width = if read == 0 {
                // The newest bucket is still filling: when it holds less than half a bucket, the
                // first window takes the one below too, so the first estimate has a fair sample.
                if top - (next << BUCKET_SHIFT) < BUCKET_SEQS / 2 { 2 } else { 1 }
            } else {
                // Enough buckets for what is missing at the rate seen so far, with a margin;
                // growing at most 16-fold per step, so a low early estimate costs little.
                let estimate = (1.25 * need as f64 / per_seq / BUCKET_SEQS as f64).ceil() as i64;
                estimate.clamp(1, (16 * read / BUCKET_SEQS).clamp(1, MAX_WINDOW_BUCKETS))
            };
            let lowest = (next - width + 1).max(0);
            let buckets: Vec<i64> = (lowest..=next).rev().collect();
            let rows = sqlx::query!(
                r#"SELECT c.id AS "id!", c.seq AS "seq!",
                        ts_rank_cd(c.tsv, websearch_to_tsquery('simple', $1)) AS "rank!"
                 FROM (SELECT m.id, m.seq, m.tsv FROM messages m JOIN rooms r ON r.id = m.room
                       WHERE r.kind = 'channel' AND (m.seq >> 12) = ANY($2::int8[])
                         AND m.tsv @@ websearch_to_tsquery('simple', $1)
                         AND ($3::bytea IS NULL OR m.room = $3)
                       ORDER BY m.seq DESC LIMIT $4) c
                 ORDER BY c.seq DESC"#,
                q,
                &buckets[..],
                room.as_deref(),
                need
            )
            .fetch_all(&self.pool)
            .await?;
            found.extend(rows.into_iter().map(|r| Match { id: r.id, seq: r.seq, rank: r.rank }));
            read = top + 1 - (lowest << BUCKET_SHIFT);
            next = lowest - 1;
        }
        Ok(found)
    }

    /// Messages of one (encrypted) room carrying, for every group, at least one of its
    /// tokens; newest first.
    pub async fn search_tokens(
        &self,
        room: &RoomId,
        groups: &[Vec<Vec<u8>>],
        limit: i64,
        offset: i64,
    ) -> sqlx::Result<Vec<Hit>> {
        let mut sql = String::from(
            "SELECT m.id, m.room, m.sender, m.timestamp_ms, r.name AS room_name
             FROM messages m JOIN rooms r ON r.id = m.room WHERE m.room = $1",
        );
        for i in 0..groups.len() {
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM message_tokens t WHERE t.room = $1 AND t.message_id = m.id \
                 AND t.token = ANY(${}::bytea[]))",
                i + 4
            ));
        }
        sql.push_str(" ORDER BY m.seq DESC LIMIT $2 OFFSET $3");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(room.as_bytes().as_slice()).bind(limit).bind(offset);
        for g in groups {
            query = query.bind(g);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(Hit {
                    id: b256(&r.try_get::<Vec<u8>, _>("id")?)?,
                    room: room_id(&r.try_get::<Vec<u8>, _>("room")?)?,
                    room_name: r.try_get("room_name")?,
                    sender: address(&r.try_get::<Vec<u8>, _>("sender")?)?,
                    timestamp_ms: r.try_get("timestamp_ms")?,
                    body: None,
                    highlight: None,
                    rank: None,
                })
            })
            .collect()
    }

    /// Users whose address or name resembles `q`, among those `caller` may know of: members of
    /// public channels, people sharing a room with the caller, and users with a profile.
    ///
    /// A user matches by name (the lowercase name contains `q`, or its trigram similarity to
    /// `q` reaches `pg_trgm.similarity_threshold`) or by address (the lowercase hex address
    /// contains `q`, when `q` looks like part of an address: see [`is_address_fragment`]); the
    /// score is the similarity of what matched (the higher of the two when both did). Best
    /// first, ties by address. Each side keeps its own best `limit`: a user in
    /// the overall best `limit` is among the best `limit` of the side its score comes from, so
    /// the merge is exact. A name comes only from a profile, so a user found by name is always
    /// visible: see [`Store::best_names`] and [`Store::best_addresses`].
    pub async fn search_users(&self, q: &str, caller: &Address, limit: i64) -> sqlx::Result<Vec<UserHit>> {
        let q = q.trim().to_lowercase();
        let like = format!("%{}%", q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let mut best: HashMap<Vec<u8>, UserRow> = HashMap::new();
        let names = self.best_names(&q, &like, limit).await?;
        let addresses =
            if is_address_fragment(&q) { self.best_addresses(&q, &like, caller, limit).await? } else { Vec::new() };
        for row in names.into_iter().chain(addresses) {
            match best.get_mut(&row.address) {
                Some(seen) if seen.score >= row.score => {}
                Some(seen) => seen.score = row.score,
                None => {
                    best.insert(row.address.clone(), row);
                }
            }
        }
        let mut best: Vec<UserRow> = best.into_values().collect();
        best.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.address_hex.cmp(&b.address_hex)));
        best.into_iter()
            .take(usize::try_from(limit).unwrap_or(0))
            .map(|r| Ok(UserHit { address: address(&r.address)?, name: r.name, verified: r.verified, score: r.score }))
            .collect()
    }

    /// The best `limit` users matching by name, by name similarity (ties by address).
    ///
    /// Without scoring every match of a broad fragment (a first name can match thousands):
    /// the nearest `limit` substring matches by trigram distance (a KNN walk of the GiST index
    /// `users_name_gist`, which stops after `limit` rows) give the similarity of the
    /// `limit`-th; when there are fewer substring matches, the nearest `limit` similar names
    /// give it. Every name match at least that similar is then read in one index scan (the
    /// trigram threshold raised to it for that query only), and the best `limit` of those are
    /// exactly the best `limit` of all matches, ties included. When both walks end early they
    /// hold every match.
    pub async fn best_names(&self, q: &str, like: &str, limit: i64) -> sqlx::Result<Vec<UserRow>> {
        // The planner guesses few matches for a long fragment and would rather read and sort
        // them all through a bitmap; these reads are bounded only as index walks.
        let mut tx = self.pool.begin().await?;
        sqlx::query!("SELECT set_config('enable_bitmapscan', 'off', true)").fetch_one(&mut *tx).await?;
        let by_substring = sqlx::query_as!(
            UserRow,
            r#"SELECT u.address, u.address_hex, u.name, u.verified, similarity(lower(u.name), $1) AS "score!"
             FROM users u WHERE u.name IS NOT NULL AND lower(u.name) LIKE $2
             ORDER BY lower(u.name) <-> $1 LIMIT $3"#,
            q,
            like,
            limit
        )
        .fetch_all(&mut *tx)
        .await?;
        let full = |rows: &[UserRow]| i64::try_from(rows.len()).unwrap_or(i64::MAX) >= limit;
        let threshold = if full(&by_substring) {
            by_substring.iter().map(|r| r.score).fold(f32::INFINITY, f32::min)
        } else {
            let by_similarity = sqlx::query_as!(
                UserRow,
                r#"SELECT u.address, u.address_hex, u.name, u.verified, similarity(lower(u.name), $1) AS "score!"
                 FROM users u WHERE u.name IS NOT NULL AND lower(u.name) % $1
                 ORDER BY lower(u.name) <-> $1 LIMIT $2"#,
                q,
                limit
            )
            .fetch_all(&mut *tx)
            .await?;
            if !full(&by_similarity) {
                tx.commit().await?;
                let mut all = by_substring;
                all.extend(by_similarity);
                all.sort_by(|a, b| a.address.cmp(&b.address));
                all.dedup_by(|a, b| a.address == b.address);
                return Ok(all);
            }
            by_similarity.iter().map(|r| r.score).fold(f32::INFINITY, f32::min)
        };
        // Every match at least `threshold` similar (a hair lower, for the float's decimal
        // form), under the configured threshold for what a similar name is (pg_trgm's default,
        // 0.3, when this session has not loaded pg_trgm yet and nothing set it).
        let configured = sqlx::query!(
            r#"SELECT coalesce(current_setting('pg_trgm.similarity_threshold', true), '0.3')::float8 AS "configured!",
                    set_config('pg_trgm.similarity_threshold', $1, true) AS "set!""#,
            format!("{}", (f64::from(threshold) - 1e-6).max(0.0))
        )
        .fetch_one(&mut *tx)
        .await?
        .configured;
        let rows = sqlx::query_as!(
            UserRow,
            r#"SELECT u.address, u.address_hex, u.name, u.verified, similarity(lower(u.name), $1) AS "score!"
             FROM users u
             WHERE u.name IS NOT NULL AND lower(u.name) % $1
               AND (lower(u.name) LIKE $2 OR similarity(lower(u.name), $1) >= $3::float8)
             ORDER BY 5 DESC, u.address_hex LIMIT $4"#,
            q,
            like,
            configured,
            limit
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// The best `limit` users `caller` may know of whose address contains the fragment, by
    /// address similarity (ties by address). Visibility is checked best first, with scalar
    /// subqueries (one index lookup each, which the planner cannot turn into a hash of every
    /// member), until `limit` pass.
    pub async fn best_addresses(
        &self,
        q: &str,
        like: &str,
        caller: &Address,
        limit: i64,
    ) -> sqlx::Result<Vec<UserRow>> {
        sqlx::query_as!(
            UserRow,
            r#"SELECT a.address, a.address_hex, a.name, a.verified, a.score AS "score!"
             FROM (SELECT u.address, u.address_hex, u.name, u.verified, similarity(u.address_hex, $1) AS score
                   FROM users u WHERE u.address_hex LIKE $2
                   ORDER BY score DESC, u.address_hex OFFSET 0) a
             WHERE a.name IS NOT NULL
                OR a.address = $3
                OR (SELECT true FROM members m JOIN rooms r ON r.id = m.room
                    WHERE m.address = a.address AND r.kind = 'channel' LIMIT 1)
                OR (SELECT true FROM members x JOIN members y ON x.room = y.room
                    WHERE x.address = a.address AND y.address = $3 LIMIT 1)
             LIMIT $4"#,
            q,
            like,
            caller.as_slice(),
            limit
        )
        .fetch_all(&self.pool)
        .await
    }

    /// Sets (or, with `None`, clears) a user's profile name from the gateway feed, and moves
    /// the feed cursor, in one transaction.
    pub async fn put_profiles(
        &self,
        source: &str,
        profiles: &[(Address, Option<String>)],
        cursor: i64,
        now_ms: i64,
    ) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        for (who, name) in profiles {
            sqlx::query!(
                "INSERT INTO users (address, address_hex, name, verified, updated_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (address) DO UPDATE SET name = excluded.name, verified = excluded.verified,
                 updated_at = excluded.updated_at",
                who.as_slice(),
                address_hex(who),
                name.as_deref(),
                name.is_some(),
                now_ms
            )
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query!(
            "INSERT INTO cursors (source, seq, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (source) DO UPDATE SET seq = GREATEST(cursors.seq, excluded.seq), updated_at = excluded.updated_at",
            source,
            cursor,
            now_ms
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Mirrors one room (outside a log page, e.g. from reconcile).
    pub async fn put_room(&self, room: &LogRoom, now_ms: i64) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        put_room(&mut tx, room, now_ms).await?;
        tx.commit().await
    }
}

/// Inserts a page of messages in one statement (arrays unnested server-side); rows already
/// stored are left as they are. Returns how many were new.
pub async fn insert_messages(tx: &mut Transaction<'_, Postgres>, messages: &[NewMessage]) -> sqlx::Result<u64> {
    if messages.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&[u8]> = messages.iter().map(|m| m.id.as_slice()).collect();
    let seqs: Vec<i64> = messages.iter().map(|m| m.seq).collect();
    let rooms: Vec<&[u8]> = messages.iter().map(|m| m.room.as_bytes().as_slice()).collect();
    let senders: Vec<&[u8]> = messages.iter().map(|m| m.sender.as_slice()).collect();
    let kinds: Vec<i32> = messages.iter().map(|m| m.kind).collect();
    let lamports: Vec<i64> = messages.iter().map(|m| m.lamport).collect();
    let timestamps: Vec<i64> = messages.iter().map(|m| m.timestamp_ms).collect();
    let received: Vec<i64> = messages.iter().map(|m| m.received_at).collect();
    let bodies: Vec<Option<&str>> = messages.iter().map(|m| m.body.as_deref()).collect();
    let r = sqlx::query!(
        "INSERT INTO messages (id, seq, room, sender, kind, lamport, timestamp_ms, received_at, body)
         SELECT * FROM UNNEST($1::bytea[], $2::int8[], $3::bytea[], $4::bytea[], $5::int4[], $6::int8[], $7::int8[],
                              $8::int8[], $9::text[])
         ON CONFLICT (id) DO NOTHING",
        &ids[..] as &[&[u8]],
        &seqs[..],
        &rooms[..] as &[&[u8]],
        &senders[..] as &[&[u8]],
        &kinds[..],
        &lamports[..],
        &timestamps[..],
        &received[..],
        &bodies[..] as &[Option<&str>]
    )
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected())
}

async fn put_users(tx: &mut Transaction<'_, Postgres>, who: &[&Address], now_ms: i64) -> sqlx::Result<()> {
    if who.is_empty() {
        return Ok(());
    }
    let raw: Vec<&[u8]> = who.iter().map(|a| a.as_slice()).collect();
    let hex: Vec<String> = who.iter().map(|a| address_hex(a)).collect();
    sqlx::query!(
        "INSERT INTO users (address, address_hex, updated_at) SELECT a, h, $3 FROM UNNEST($1::bytea[], $2::text[]) AS u(a, h)
         ON CONFLICT (address) DO NOTHING",
        &raw[..] as &[&[u8]],
        &hex[..],
        now_ms
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn put_user(tx: &mut Transaction<'_, Postgres>, who: &Address, now_ms: i64) -> sqlx::Result<()> {
    put_users(tx, &[who], now_ms).await
}

/// Replaces a room's row and member set with what the node reports.
async fn put_room(tx: &mut Transaction<'_, Postgres>, room: &LogRoom, now_ms: i64) -> sqlx::Result<()> {
    let id = room.id.as_bytes().as_slice();
    sqlx::query!(
        "INSERT INTO rooms (id, kind, name, policy, node_count, synced_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, policy = excluded.policy,
         node_count = excluded.node_count, synced_at = excluded.synced_at",
        id,
        room.kind,
        room.name,
        room.policy,
        room.count,
        now_ms
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!("DELETE FROM members WHERE room = $1", id).execute(&mut **tx).await?;
    for m in &room.members {
        let Ok(who) = m.address.parse::<Address>() else {
            tracing::warn!(target: "indexer::store", address = %m.address, "node listed a member that is not an address");
            continue;
        };
        sqlx::query!(
            "INSERT INTO members (room, address, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            id,
            who.as_slice(),
            m.role
        )
        .execute(&mut **tx)
        .await?;
        put_user(tx, &who, now_ms).await?;
    }
    Ok(())
}
