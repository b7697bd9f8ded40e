//! The social layer's tables: social envelopes as received (contacts, blocks, notification
//! marks, mutes, settings, read marks), the highest read mark per wallet and room, and the
//! notifications derived from envelopes. Contact state is not stored: it is the replay of a
//! pair's envelopes whenever it is needed (see `dchat_protocol::social`).

use dchat_protocol::{
    Address, B256, Body, Envelope, Kind, RoomId,
    envelope::Verified,
    social::{Action, PairEvent},
};
use prost::Message as _;
use sqlx::{Row, any::AnyRow};

use super::{Store, addr_bytes, to_i64};

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The envelope that caused it (also the notification's id).
    pub id: B256,
    /// `mention`, `reply`, `invite`, `contact_request` or `contact_accepted`.
    pub kind: String,
    /// The room concerned, if any.
    pub room: Option<RoomId>,
    /// Who caused it.
    pub actor: Address,
    /// When, ms (the causing envelope's timestamp; for a tip, its block's).
    pub created_ms: u64,
    /// What caused it, as JSON, when the kind has more to say (a tip's amount and token).
    pub detail: Option<String>,
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or_default()
}

fn pair_event(r: &AnyRow) -> Result<Option<(Address, PairEvent)>, sqlx::Error> {
    let id: Vec<u8> = r.try_get("id")?;
    let author: Vec<u8> = r.try_get("author")?;
    let subject: Vec<u8> = r.try_get("subject")?;
    let kind: i32 = r.try_get("kind")?;
    let Some(action) = Kind::try_from(kind).ok().and_then(Action::of) else { return Ok(None) };
    if id.len() != 32 || author.len() != 20 || subject.len() != 20 {
        return Ok(None);
    }
    let event = PairEvent {
        id: B256::from_slice(&id),
        lamport: u64_of(r.try_get("lamport")?),
        timestamp_ms: u64_of(r.try_get("timestamp_ms")?),
        author: Address::from_slice(&author),
        action,
    };
    Ok(Some((Address::from_slice(&subject), event)))
}

const CONTACT_KINDS: &str = "kind >= 32 AND kind <= 37";

impl Store {
    /// Stores a social envelope (`subject`: the peer, the room or empty). `false` when it was
    /// already stored.
    pub async fn insert_social(
        &self,
        v: &Verified,
        envelope: &[u8],
        subject: &[u8],
        now_ms: i64,
    ) -> Result<bool, sqlx::Error> {
        let r = sqlx::query(
            "INSERT INTO social_events (id, author, kind, subject, lamport, timestamp_ms, envelope, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
        )
        .bind(v.id.as_slice())
        .bind(addr_bytes(&v.sender))
        .bind(v.body.kind)
        .bind(subject)
        .bind(to_i64(v.body.lamport)?)
        .bind(to_i64(v.body.timestamp_ms)?)
        .bind(envelope)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Contact envelopes between two wallets.
    pub async fn pair_events(&self, a: &Address, b: &Address) -> Result<Vec<PairEvent>, sqlx::Error> {
        let sql = format!(
            "SELECT id, author, subject, kind, lamport, timestamp_ms FROM social_events
             WHERE {CONTACT_KINDS} AND ((author = $1 AND subject = $2) OR (author = $2 AND subject = $1))"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(addr_bytes(a))
            .bind(addr_bytes(b))
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(pair_event).collect::<Result<Vec<_>, _>>()?.into_iter().flatten().map(|(_, e)| e).collect())
    }

    /// Contact envelopes `address` wrote or is named in, with the other wallet of each.
    pub async fn contact_events_of(&self, address: &Address) -> Result<Vec<(Address, PairEvent)>, sqlx::Error> {
        let sql = format!(
            "SELECT id, author, subject, kind, lamport, timestamp_ms FROM social_events
             WHERE {CONTACT_KINDS} AND (author = $1 OR subject = $1)"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(addr_bytes(address)).fetch_all(self.pool()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            if let Some((subject, e)) = pair_event(r)? {
                let other = if e.author == *address { subject } else { e.author };
                out.push((other, e));
            }
        }
        Ok(out)
    }

    /// Pairs (blocker, blocked) that ever had a block: the candidates to replay at start.
    pub async fn block_pairs(&self) -> Result<Vec<(Address, Address)>, sqlx::Error> {
        let rows = sqlx::query("SELECT DISTINCT author, subject FROM social_events WHERE kind = $1")
            .bind(Kind::Block as i32)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let a: Vec<u8> = r.try_get("author")?;
                let s: Vec<u8> = r.try_get("subject")?;
                Ok((Address::from_slice(&a), Address::from_slice(&s)))
            })
            .collect()
    }

    /// Authors of any envelope of `kind`.
    pub async fn social_authors(&self, kind: Kind) -> Result<Vec<Address>, sqlx::Error> {
        let rows = sqlx::query("SELECT DISTINCT author FROM social_events WHERE kind = $1")
            .bind(kind as i32)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| r.try_get::<Vec<u8>, _>("author").map(|a| Address::from_slice(&a))).collect()
    }

    /// An author's envelopes of one kind, decoded, in order `(lamport, timestamp, id)`.
    pub async fn social_bodies(&self, author: &Address, kind: Kind) -> Result<Vec<(B256, Body)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT envelope FROM social_events WHERE author = $1 AND kind = $2
             ORDER BY lamport, timestamp_ms, id",
        )
        .bind(addr_bytes(author))
        .bind(kind as i32)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let raw: Vec<u8> = r.try_get("envelope")?;
            let Ok(env) = Envelope::decode(raw.as_slice()) else { continue };
            let Ok(body) = Body::decode(env.body.as_slice()) else { continue };
            out.push((alloy::primitives::keccak256(&env.body), body));
        }
        Ok(out)
    }

    /// One past the highest social clock among the contact envelopes `address` wrote or is
    /// named in, and its own other social envelopes.
    pub async fn next_social_lamport(&self, address: &Address) -> Result<u64, sqlx::Error> {
        let max: Option<i64> =
            sqlx::query_scalar("SELECT MAX(lamport) FROM social_events WHERE author = $1 OR subject = $1")
                .bind(addr_bytes(address))
                .fetch_one(self.pool())
                .await?;
        Ok(max.map_or(1, |m| u64_of(m) + 1))
    }

    /// Wallets that share a room of at most `max_members` members with `address` (itself left
    /// out), at most `limit` of them.
    pub async fn room_peers(
        &self,
        address: &Address,
        max_members: u32,
        limit: u32,
    ) -> Result<Vec<Address>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT DISTINCT other.address AS address FROM members mine
             JOIN members other ON other.room = mine.room
             WHERE mine.address = $1 AND other.address <> $1
               AND (SELECT COUNT(*) FROM members m WHERE m.room = mine.room) <= $2
             LIMIT $3",
        )
        .bind(addr_bytes(address))
        .bind(i64::from(max_members))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| r.try_get::<Vec<u8>, _>("address").map(|a| Address::from_slice(&a))).collect()
    }

    /// Raises a wallet's read mark in a room (the highest wins).
    pub async fn raise_read_mark(&self, address: &Address, room: &RoomId, lamport: u64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO read_marks (address, room, lamport) VALUES ($1, $2, $3)
             ON CONFLICT (address, room) DO UPDATE SET lamport = CASE
                 WHEN read_marks.lamport < excluded.lamport THEN excluded.lamport ELSE read_marks.lamport END",
        )
        .bind(addr_bytes(address))
        .bind(room.as_bytes().as_slice())
        .bind(to_i64(lamport)?)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A wallet's read mark in a room (0 when none).
    pub async fn read_mark(&self, address: &Address, room: &RoomId) -> Result<u64, sqlx::Error> {
        let v: Option<i64> = sqlx::query_scalar("SELECT lamport FROM read_marks WHERE address = $1 AND room = $2")
            .bind(addr_bytes(address))
            .bind(room.as_bytes().as_slice())
            .fetch_optional(self.pool())
            .await?;
        Ok(v.map_or(0, u64_of))
    }

    /// Every read mark in a room.
    pub async fn read_marks(&self, room: &RoomId) -> Result<Vec<(Address, u64)>, sqlx::Error> {
        let rows = sqlx::query("SELECT address, lamport FROM read_marks WHERE room = $1 ORDER BY address")
            .bind(room.as_bytes().as_slice())
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let a: Vec<u8> = r.try_get("address")?;
                Ok((Address::from_slice(&a), u64_of(r.try_get("lamport")?)))
            })
            .collect()
    }

    /// Readable messages (text and media) of a room past a lamport clock, counted per sender.
    pub async fn unread_by_sender(&self, room: &RoomId, after: u64) -> Result<Vec<(Address, u64)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT sender, COUNT(*) AS n FROM messages WHERE room = $1 AND lamport > $2 AND kind IN ($3, $4)
             GROUP BY sender",
        )
        .bind(room.as_bytes().as_slice())
        .bind(to_i64(after)?)
        .bind(Kind::Text as i32)
        .bind(Kind::Media as i32)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let a: Vec<u8> = r.try_get("sender")?;
                Ok((Address::from_slice(&a), u64_of(r.try_get("n")?)))
            })
            .collect()
    }

    /// Whether `address` posted anything but room control in `room`.
    pub async fn posted_in(&self, room: &RoomId, address: &Address) -> Result<bool, sqlx::Error> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE room = $1 AND sender = $2 AND kind < 16")
            .bind(room.as_bytes().as_slice())
            .bind(addr_bytes(address))
            .fetch_one(self.pool())
            .await?;
        Ok(n > 0)
    }

    /// The sender of a stored message.
    pub async fn message_sender(&self, id: &[u8]) -> Result<Option<(RoomId, Address)>, sqlx::Error> {
        let row =
            sqlx::query("SELECT room, sender FROM messages WHERE id = $1").bind(id).fetch_optional(self.pool()).await?;
        let Some(r) = row else { return Ok(None) };
        let room: Vec<u8> = r.try_get("room")?;
        let sender: Vec<u8> = r.try_get("sender")?;
        Ok(RoomId::from_slice(&room).ok().map(|room| (room, Address::from_slice(&sender))))
    }

    /// Records a notification; `false` when it already was.
    pub async fn insert_notification(&self, address: &Address, n: &Notification) -> Result<bool, sqlx::Error> {
        let r = sqlx::query(
            "INSERT INTO notifications (address, id, kind, room, actor, created_ms, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(addr_bytes(address))
        .bind(n.id.as_slice())
        .bind(&n.kind)
        .bind(n.room.as_ref().map(|r| r.as_bytes().to_vec()))
        .bind(addr_bytes(&n.actor))
        .bind(to_i64(n.created_ms)?)
        .bind(n.detail.clone())
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// A wallet's notifications created after `after_ms`, newest first (by time, then id), at
    /// most `limit`; with `before`, only those after that position in this order.
    pub async fn notifications(
        &self,
        address: &Address,
        after_ms: u64,
        before: Option<(u64, B256)>,
        limit: u32,
    ) -> Result<Vec<Notification>, sqlx::Error> {
        let (before_ms, before_id) =
            before.map_or((i64::MAX, [0xff; 32]), |(ms, id)| (to_i64(ms).unwrap_or(i64::MAX), id.0));
        let rows = sqlx::query(
            "SELECT id, kind, room, actor, created_ms, detail FROM notifications WHERE address = $1 AND created_ms > $2
             AND (created_ms < $3 OR (created_ms = $3 AND id < $4))
             ORDER BY created_ms DESC, id DESC LIMIT $5",
        )
        .bind(addr_bytes(address))
        .bind(to_i64(after_ms.min(i64::MAX as u64))?)
        .bind(before_ms)
        .bind(before_id.as_slice())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(notification_from_row).collect()
    }

    /// One of a wallet's notifications, by id.
    pub async fn notification(&self, address: &Address, id: &B256) -> Result<Option<Notification>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT id, kind, room, actor, created_ms, detail FROM notifications WHERE address = $1 AND id = $2",
        )
        .bind(addr_bytes(address))
        .bind(id.as_slice())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(notification_from_row).transpose()
    }
}

/// Chain followers' cursors.
impl Store {
    /// The next block `follower` reads of `contract`'s events on `chain_id`, if it has started.
    pub async fn chain_cursor(
        &self,
        follower: &str,
        chain_id: u64,
        contract: &Address,
    ) -> Result<Option<u64>, sqlx::Error> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT next_block FROM chain_cursors WHERE follower = $1 AND chain_id = $2 AND contract = $3",
        )
        .bind(follower)
        .bind(to_i64(chain_id)?)
        .bind(addr_bytes(contract))
        .fetch_optional(self.pool())
        .await?;
        Ok(next.map(u64_of))
    }

    /// Sets the next block `follower` reads (every event below it is handled).
    pub async fn set_chain_cursor(
        &self,
        follower: &str,
        chain_id: u64,
        contract: &Address,
        next_block: u64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO chain_cursors (follower, chain_id, contract, next_block) VALUES ($1, $2, $3, $4)
             ON CONFLICT (follower, chain_id, contract) DO UPDATE SET next_block = excluded.next_block",
        )
        .bind(follower)
        .bind(to_i64(chain_id)?)
        .bind(addr_bytes(contract))
        .bind(to_i64(next_block)?)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

/// History sync of social envelopes: the set's count and XOR fingerprint, its ids in order, and
/// which of some ids are missing.
impl Store {
    /// Count and XOR of the ids of every stored social envelope.
    pub async fn social_summary(&self) -> Result<(u64, [u8; 32]), sqlx::Error> {
        let rows = sqlx::query("SELECT id FROM social_events").fetch_all(self.pool()).await?;
        let mut fingerprint = [0u8; 32];
        for r in &rows {
            let id: Vec<u8> = r.try_get("id")?;
            for (f, b) in fingerprint.iter_mut().zip(id) {
                *f ^= b;
            }
        }
        Ok((rows.len() as u64, fingerprint))
    }

    /// Social envelope ids in id order, after `after`, at most `limit`.
    pub async fn social_ids(&self, after: Option<B256>, limit: u32) -> Result<Vec<B256>, sqlx::Error> {
        let rows = sqlx::query("SELECT id FROM social_events WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after.map_or(Vec::new(), |a| a.to_vec()))
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| r.try_get::<Vec<u8>, _>("id").map(|id| B256::from_slice(&id))).collect()
    }

    /// Which of `ids` are not stored as social envelopes, in the order given.
    pub async fn missing_social(&self, ids: &[B256]) -> Result<Vec<B256>, sqlx::Error> {
        let mut out = Vec::new();
        for id in ids {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM social_events WHERE id = $1")
                .bind(id.as_slice())
                .fetch_one(self.pool())
                .await?;
            if n == 0 {
                out.push(*id);
            }
        }
        Ok(out)
    }

    /// A stored social envelope by id, with its signer's device key.
    pub async fn social_envelope(&self, id: &B256) -> Result<Option<(Vec<u8>, Vec<u8>)>, sqlx::Error> {
        let row = sqlx::query("SELECT envelope FROM social_events WHERE id = $1")
            .bind(id.as_slice())
            .fetch_optional(self.pool())
            .await?;
        let Some(r) = row else { return Ok(None) };
        let raw: Vec<u8> = r.try_get("envelope")?;
        let signer = Envelope::decode(raw.as_slice()).map(|e| e.signer).unwrap_or_default();
        Ok(Some((raw, signer)))
    }
}

fn notification_from_row(r: &sqlx::any::AnyRow) -> Result<Notification, sqlx::Error> {
    let id: Vec<u8> = r.try_get("id")?;
    let room: Option<Vec<u8>> = r.try_get("room")?;
    let actor: Vec<u8> = r.try_get("actor")?;
    Ok(Notification {
        id: B256::from_slice(&id),
        kind: r.try_get("kind")?,
        room: room.and_then(|r| RoomId::from_slice(&r).ok()),
        actor: Address::from_slice(&actor),
        created_ms: u64_of(r.try_get("created_ms")?),
        detail: r.try_get("detail")?,
    })
}
