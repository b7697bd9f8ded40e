//! Room membership, roles, policy and key epochs, kept as the replay of each room's control
//! envelopes (see `dchat_protocol::control`). Every stored control envelope replays its room
//! inside the same write transaction, so the tables always match the envelopes, in whatever
//! order they arrived.

use std::collections::{BTreeMap, BTreeSet};

use dchat_protocol::{
    Address, B256, Body, Envelope, RoomId,
    control::{Control, Gate, Op, RoomState, Void},
};
use prost::Message as _;
use sqlx::{Any, Row};

use super::{Store, addr_bytes, to_i64};

/// A member with the box keys of their devices whose delegation is live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// Wallet.
    pub address: Address,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// X25519 public keys of the member's live devices.
    pub box_keys: Vec<[u8; 32]>,
}

/// An epoch key wrapped for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochKey {
    /// Epoch id (the `RotateKey` envelope's id).
    pub epoch: B256,
    /// Who rotated (the HPKE `aad`).
    pub sender: Address,
    /// The rotation's lamport clock.
    pub lamport: u64,
    /// HPKE encapsulated key.
    pub enc: Vec<u8>,
    /// HPKE ciphertext.
    pub ciphertext: Vec<u8>,
}

/// Control envelopes of a room, decoded (stored ones were checked on the way in).
async fn controls<'e, E>(db: E, room: &RoomId) -> Result<Vec<Control>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let rows = sqlx::query("SELECT envelope FROM messages WHERE room = $1 AND kind >= 16")
        .bind(room.as_bytes().as_slice())
        .fetch_all(db)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let raw: Vec<u8> = r.try_get("envelope")?;
        let Ok(env) = Envelope::decode(raw.as_slice()) else { continue };
        let Ok(body) = Body::decode(env.body.as_slice()) else { continue };
        let Ok(id) = B256::try_from(env.hash.as_slice()) else { continue };
        if let Ok(Some(c)) = Control::decode(id, &body) {
            out.push(c);
        }
    }
    Ok(out)
}

/// Recomputes a room's members, roles, policy and epochs from its control envelopes.
pub(super) async fn replay(
    tx: &mut sqlx::Transaction<'static, Any>,
    room: &RoomId,
    joined_at: i64,
) -> Result<(), sqlx::Error> {
    let all = controls(&mut **tx, room).await?;
    let rotations: BTreeMap<B256, Control> =
        all.iter().filter(|c| matches!(c.op, Op::RotateKey(_))).map(|c| (c.id, c.clone())).collect();
    let state = RoomState::replay(all);
    let id = room.as_bytes().as_slice();

    let existing: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT address FROM members WHERE room = $1").bind(id).fetch_all(&mut **tx).await?;
    for gone in existing.iter().filter(|a| !state.members.keys().any(|m| m.as_slice() == a.as_slice())) {
        sqlx::query("DELETE FROM members WHERE room = $1 AND address = $2")
            .bind(id)
            .bind(gone)
            .execute(&mut **tx)
            .await?;
    }
    for (address, role) in &state.members {
        sqlx::query(
            "INSERT INTO members (room, address, role, joined_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (room, address) DO UPDATE SET role = excluded.role",
        )
        .bind(id)
        .bind(addr_bytes(address))
        .bind(role.as_str())
        .bind(joined_at)
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query("DELETE FROM former_members WHERE room = $1").bind(id).execute(&mut **tx).await?;
    for (address, (lamport, left)) in &state.former {
        sqlx::query("INSERT INTO former_members (room, address, left_lamport, left_id) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(addr_bytes(address))
            .bind(to_i64(*lamport)?)
            .bind(left.as_slice())
            .execute(&mut **tx)
            .await?;
    }
    if let (Some(policy), Some(created)) = (state.policy, &state.created) {
        // Direct rooms have no owner; their row keeps the first creator in the room's order.
        let owner = state.owner().unwrap_or(created.owner);
        sqlx::query("UPDATE rooms SET policy = $1, owner = $2, gate = $3 WHERE id = $4")
            .bind(policy.as_str())
            .bind(addr_bytes(&owner))
            .bind(state.gate.as_ref().map(prost::Message::encode_to_vec))
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }

    // Epochs: add rotations that took effect, drop any that no longer do.
    let stored: BTreeSet<Vec<u8>> = sqlx::query_scalar("SELECT epoch FROM epochs WHERE room = $1")
        .bind(id)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect();
    let effective: BTreeSet<Vec<u8>> = state.epochs.iter().map(|e| e.to_vec()).collect();
    for gone in stored.difference(&effective) {
        sqlx::query("DELETE FROM epoch_keys WHERE epoch = $1").bind(gone).execute(&mut **tx).await?;
        sqlx::query("DELETE FROM epochs WHERE epoch = $1").bind(gone).execute(&mut **tx).await?;
    }
    for new in effective.difference(&stored) {
        let Some(c) = B256::try_from(new.as_slice()).ok().and_then(|e| rotations.get(&e)) else { continue };
        let Op::RotateKey(wraps) = &c.op else { continue };
        sqlx::query("INSERT INTO epochs (epoch, room, sender, lamport) VALUES ($1, $2, $3, $4)")
            .bind(new)
            .bind(id)
            .bind(addr_bytes(&c.author))
            .bind(to_i64(c.lamport)?)
            .execute(&mut **tx)
            .await?;
        for w in wraps {
            sqlx::query(
                "INSERT INTO epoch_keys (epoch, box_key, enc, ciphertext) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
            )
            .bind(new)
            .bind(&w.box_key)
            .bind(&w.enc)
            .bind(&w.ciphertext)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

impl Store {
    /// A room's state, replayed from its stored control envelopes.
    pub async fn room_state(&self, room: &RoomId) -> Result<RoomState, sqlx::Error> {
        Ok(RoomState::replay(controls(&self.pool, room).await?))
    }

    /// Whether `control` would take effect at its place among the room's stored controls.
    pub async fn check_control(&self, room: &RoomId, control: &Control) -> Result<Result<(), Void>, sqlx::Error> {
        let mut all = controls(&self.pool, room).await?;
        all.push(control.clone());
        Ok(RoomState::replay_checked(all, control.id).1)
    }

    /// Where `address` left `room`, if they are a former member.
    pub async fn departure(&self, room: &RoomId, address: &Address) -> Result<Option<(u64, B256)>, sqlx::Error> {
        let row = sqlx::query("SELECT left_lamport, left_id FROM former_members WHERE room = $1 AND address = $2")
            .bind(room.as_bytes().as_slice())
            .bind(addr_bytes(address))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let lamport: i64 = r.try_get("left_lamport")?;
            let id: Vec<u8> = r.try_get("left_id")?;
            Ok((u64::try_from(lamport).unwrap_or_default(), B256::try_from(id.as_slice()).unwrap_or_default()))
        })
        .transpose()
    }

    /// Members with their roles and the box keys of their devices live at `now`.
    pub async fn members(&self, room: &RoomId, now: i64) -> Result<Vec<MemberView>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT m.address, m.role, d.box_key FROM members m
             LEFT JOIN delegations d ON d.wallet = m.address AND d.box_key IS NOT NULL
                  AND d.expires_at > $2 AND d.revoked_at IS NULL
             WHERE m.room = $1 ORDER BY m.address",
        )
        .bind(room.as_bytes().as_slice())
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<MemberView> = Vec::new();
        for r in rows {
            let address: Vec<u8> = r.try_get("address")?;
            let address = Address::from_slice(&address);
            let box_key: Option<Vec<u8>> = r.try_get("box_key")?;
            if out.last().is_none_or(|m| m.address != address) {
                out.push(MemberView { address, role: r.try_get("role")?, box_keys: Vec::new() });
            }
            if let (Some(m), Some(k)) = (out.last_mut(), box_key.and_then(|k| <[u8; 32]>::try_from(k).ok()))
                && !m.box_keys.contains(&k)
            {
                m.box_keys.push(k);
            }
        }
        Ok(out)
    }

    /// The current epoch of a room and the box keys its key was wrapped for.
    pub async fn current_epoch(&self, room: &RoomId) -> Result<Option<(B256, u64, Vec<[u8; 32]>)>, sqlx::Error> {
        let row =
            sqlx::query("SELECT epoch, lamport FROM epochs WHERE room = $1 ORDER BY lamport DESC, epoch DESC LIMIT 1")
                .bind(room.as_bytes().as_slice())
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else { return Ok(None) };
        let epoch: Vec<u8> = row.try_get("epoch")?;
        let lamport: i64 = row.try_get("lamport")?;
        let keys: Vec<Vec<u8>> = sqlx::query_scalar("SELECT box_key FROM epoch_keys WHERE epoch = $1")
            .bind(&epoch)
            .fetch_all(&self.pool)
            .await?;
        Ok(Some((
            B256::try_from(epoch.as_slice()).unwrap_or_default(),
            u64::try_from(lamport).unwrap_or_default(),
            keys.into_iter().filter_map(|k| <[u8; 32]>::try_from(k).ok()).collect(),
        )))
    }

    /// Whether `epoch` is an effective epoch of `room`.
    pub async fn has_epoch(&self, room: &RoomId, epoch: &B256) -> Result<bool, sqlx::Error> {
        if self.cache.has_epoch(room, epoch) {
            return Ok(true);
        }
        let ticket = self.cache.ticket();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM epochs WHERE room = $1 AND epoch = $2")
            .bind(room.as_bytes().as_slice())
            .bind(epoch.as_slice())
            .fetch_one(&self.pool)
            .await?;
        if n > 0 {
            self.cache.put_epoch(ticket, room, epoch);
        }
        Ok(n > 0)
    }

    /// Every epoch key of `room` wrapped for `box_key`, oldest first.
    pub async fn epoch_keys(&self, room: &RoomId, box_key: &[u8; 32]) -> Result<Vec<EpochKey>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT e.epoch, e.sender, e.lamport, k.enc, k.ciphertext FROM epoch_keys k
             JOIN epochs e ON e.epoch = k.epoch WHERE e.room = $1 AND k.box_key = $2 ORDER BY e.lamport, e.epoch",
        )
        .bind(room.as_bytes().as_slice())
        .bind(box_key.as_slice())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let epoch: Vec<u8> = r.try_get("epoch")?;
                let sender: Vec<u8> = r.try_get("sender")?;
                let lamport: i64 = r.try_get("lamport")?;
                Ok(EpochKey {
                    epoch: B256::try_from(epoch.as_slice()).unwrap_or_default(),
                    sender: Address::from_slice(&sender),
                    lamport: u64::try_from(lamport).unwrap_or_default(),
                    enc: r.try_get("enc")?,
                    ciphertext: r.try_get("ciphertext")?,
                })
            })
            .collect()
    }

    /// Public channels, newest first, with their member counts.
    pub async fn channels(&self, limit: u32) -> Result<Vec<(super::Room, i64)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT r.id, r.kind, r.name, r.owner, r.created_at, r.max_lamport, r.policy,
                    (SELECT COUNT(*) FROM members m WHERE m.room = r.id) AS members
             FROM rooms r WHERE r.kind = 'channel' ORDER BY r.created_at DESC, r.id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((super::room_from_row(r)?, r.try_get("members")?))).collect()
    }

    /// The box keys of a wallet's live devices.
    pub async fn delegations_of(&self, wallet: &Address) -> Result<Vec<[u8; 32]>, sqlx::Error> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let keys: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT DISTINCT box_key FROM delegations WHERE wallet = $1 AND box_key IS NOT NULL AND expires_at > $2",
        )
        .bind(addr_bytes(wallet))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        Ok(keys.into_iter().filter_map(|k| k.try_into().ok()).collect())
    }

    /// The gate of a token-gated or paid room.
    pub async fn gate(&self, room: &RoomId) -> Result<Option<Gate>, sqlx::Error> {
        let raw: Option<Option<Vec<u8>>> = sqlx::query_scalar("SELECT gate FROM rooms WHERE id = $1")
            .bind(room.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await?;
        Ok(raw.flatten().and_then(|b| Gate::decode(b.as_slice()).ok()))
    }

    /// Until when this node's last on-chain check of `address` against the room's gate holds.
    pub async fn gate_pass(&self, room: &RoomId, address: &Address) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar("SELECT valid_until FROM gate_passes WHERE room = $1 AND address = $2")
            .bind(room.as_bytes().as_slice())
            .bind(addr_bytes(address))
            .fetch_optional(&self.pool)
            .await
    }

    /// Records a passed gate check.
    pub async fn set_gate_pass(
        &self,
        room: &RoomId,
        address: &Address,
        valid_until: i64,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO gate_passes (room, address, valid_until, checked_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (room, address) DO UPDATE SET valid_until = excluded.valid_until, checked_at = excluded.checked_at",
        )
        .bind(room.as_bytes().as_slice())
        .bind(addr_bytes(address))
        .bind(valid_until)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A node-level fact.
    pub async fn meta(&self, key: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT value FROM node_meta WHERE key = $1").bind(key).fetch_optional(&self.pool).await
    }

    /// Records a node-level fact.
    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO node_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
