//! The gateway's PostgreSQL store: links in progress, profiles and attestations
//! (`migrations/`, forward-only, applied at start).
//!
//! Every change to a profile takes one transaction-scoped advisory lock and stamps the row with
//! an `updated_at` (Unix ms) above every earlier one. Changes therefore commit in stamp order,
//! and a reader that has seen every row up to a stamp has seen every change up to it: the feed
//! (`updated_after`) misses nothing and returns nothing twice.

use sqlx::{PgPool, Postgres, Row, Transaction, postgres::PgPoolOptions};

/// Advisory lock key that serialises profile changes ("dchatgw" in ASCII).
const PROFILE_LOCK: i64 = 0x0064_6368_6174_6777;

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

/// A link being started.
#[derive(Debug, Clone)]
pub struct NewLink {
    /// SHA-256 (hex) of the state parameter.
    pub state_hash: String,
    /// EIP-55 wallet address.
    pub wallet: String,
    /// The id_token nonce.
    pub nonce: String,
    /// PKCE verifier.
    pub code_verifier: Option<String>,
    /// SHA-256 (hex) of the browser-binding cookie.
    pub browser_hash: Option<String>,
    /// When the wallet session ends.
    pub session_expires_at: i64,
    /// Now, Unix seconds.
    pub now: i64,
    /// When this link stops being usable.
    pub expires_at: i64,
}

/// A started link, taken back by the callback.
#[derive(Debug, Clone)]
pub struct LinkState {
    /// EIP-55 wallet address.
    pub wallet: String,
    /// The id_token nonce.
    pub nonce: String,
    /// PKCE verifier.
    pub code_verifier: Option<String>,
    /// SHA-256 (hex) of the browser-binding cookie.
    pub browser_hash: Option<String>,
    /// When the wallet session ends.
    pub session_expires_at: i64,
    /// When this link stops being usable.
    pub expires_at: i64,
}

/// A profile to store with its new attestation.
#[derive(Debug, Clone)]
pub struct NewProfile {
    /// EIP-55 wallet address.
    pub wallet: String,
    /// keccak256 of the subject, 0x hex.
    pub subject_hash: String,
    /// Display name.
    pub name: String,
    /// Picture URL.
    pub picture: Option<String>,
    /// Verified email domain.
    pub email_domain: Option<String>,
    /// EIP-712 digest of the attestation, 0x hex.
    pub digest: String,
    /// Attestation issue time.
    pub issued_at: i64,
    /// Attestation expiry.
    pub expiry: i64,
    /// The signed attestation (JSON text).
    pub body: String,
}

/// A profile row, with its current attestation when linked.
#[derive(Debug, Clone)]
pub struct ProfileRow {
    /// EIP-55 wallet address.
    pub wallet: String,
    /// Linked, or a tombstone of an unlink.
    pub linked: bool,
    /// Display name.
    pub name: Option<String>,
    /// Picture URL.
    pub picture: Option<String>,
    /// Verified email domain.
    pub email_domain: Option<String>,
    /// When the current link was made, Unix seconds.
    pub linked_at: Option<i64>,
    /// Feed stamp, Unix ms.
    pub updated_at: i64,
    /// The signed attestation (JSON text).
    pub attestation: Option<String>,
}

/// An attestation's status.
#[derive(Debug, Clone)]
pub struct AttestationRow {
    /// EIP-712 digest.
    pub digest: String,
    /// Wallet it was issued to.
    pub wallet: String,
    /// Issue time.
    pub issued_at: i64,
    /// Expiry.
    pub expiry: i64,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
    /// Why: `unlinked`, `superseded` or `moved`.
    pub revoked_reason: Option<String>,
    /// The signed attestation while it is current.
    pub body: Option<String>,
}

const PROFILE_COLUMNS: &str =
    "p.wallet, p.linked, p.name, p.picture, p.email_domain, p.linked_at, p.updated_at, a.body";

impl Store {
    /// Connects and applies the migrations.
    pub async fn connect(url: &str) -> eyre::Result<Self> {
        use eyre::WrapErr;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url)
            .await
            .wrap_err("connecting to PostgreSQL (database_url)")?;
        sqlx::migrate!("./migrations").run(&pool).await.wrap_err("applying the gateway's migrations")?;
        Ok(Self { pool })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Records a started link unless the wallet already has `max_pending` unexpired ones
    /// (then `false`). Expired links of the wallet are dropped first.
    pub async fn start_link(&self, link: &NewLink, max_pending: i64) -> sqlx::Result<bool> {
        let mut tx = self.pool.begin().await?;
        // Serialise starts of one wallet so the pending count holds.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))").bind(&link.wallet).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM link_states WHERE wallet = $1 AND expires_at <= $2")
            .bind(&link.wallet)
            .bind(link.now)
            .execute(&mut *tx)
            .await?;
        let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM link_states WHERE wallet = $1")
            .bind(&link.wallet)
            .fetch_one(&mut *tx)
            .await?;
        if pending >= max_pending {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO link_states (state_hash, wallet, nonce, code_verifier, browser_hash, session_expires_at, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&link.state_hash)
        .bind(&link.wallet)
        .bind(&link.nonce)
        .bind(&link.code_verifier)
        .bind(&link.browser_hash)
        .bind(link.session_expires_at)
        .bind(link.now)
        .bind(link.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Takes a started link (deleting it: a state works once).
    pub async fn take_link(&self, state_hash: &str) -> sqlx::Result<Option<LinkState>> {
        let row = sqlx::query(
            "DELETE FROM link_states WHERE state_hash = $1 \
             RETURNING wallet, nonce, code_verifier, browser_hash, session_expires_at, expires_at",
        )
        .bind(state_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(LinkState {
                wallet: r.try_get("wallet")?,
                nonce: r.try_get("nonce")?,
                code_verifier: r.try_get("code_verifier")?,
                browser_hash: r.try_get("browser_hash")?,
                session_expires_at: r.try_get("session_expires_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Drops expired links.
    pub async fn prune_links(&self, now: i64) -> sqlx::Result<u64> {
        Ok(sqlx::query("DELETE FROM link_states WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Stores a profile and its attestation. The wallet's earlier attestation is revoked
    /// (`superseded`); another wallet linked to the same subject is unlinked (`moved`). Returns
    /// the wallets that lost their link.
    pub async fn link(&self, p: &NewProfile, now: i64, now_ms: i64) -> sqlx::Result<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        let mut stamp = lock_and_stamp(&mut tx, now_ms).await?;
        let moved: Vec<String> =
            sqlx::query_scalar("SELECT wallet FROM profiles WHERE linked AND subject_hash = $1 AND wallet <> $2")
                .bind(&p.subject_hash)
                .bind(&p.wallet)
                .fetch_all(&mut *tx)
                .await?;
        for wallet in &moved {
            unlink_in(&mut tx, wallet, now, stamp, "moved").await?;
            stamp += 1;
        }
        revoke_in(&mut tx, &p.wallet, now, "superseded").await?;
        let id: i64 = sqlx::query_scalar(
            // The same statement signed again within the same second has the same digest: it is
            // the one just superseded above, current again.
            "INSERT INTO attestations (digest, wallet, issued_at, expiry, body) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (digest) DO UPDATE SET body = EXCLUDED.body, revoked_at = NULL, revoked_reason = NULL \
             RETURNING id",
        )
        .bind(&p.digest)
        .bind(&p.wallet)
        .bind(p.issued_at)
        .bind(p.expiry)
        .bind(&p.body)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO profiles (wallet, linked, subject_hash, name, picture, email_domain, attestation_id, \
             linked_at, updated_at) VALUES ($1, true, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (wallet) DO UPDATE SET linked = true, subject_hash = $2, name = $3, picture = $4, \
             email_domain = $5, attestation_id = $6, linked_at = $7, updated_at = $8",
        )
        .bind(&p.wallet)
        .bind(&p.subject_hash)
        .bind(&p.name)
        .bind(&p.picture)
        .bind(&p.email_domain)
        .bind(id)
        .bind(now)
        .bind(stamp)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// Unlinks a wallet: its profile becomes a tombstone, its attestation is revoked
    /// (`unlinked`) and its started links are dropped. `false` when it was not linked.
    pub async fn unlink(&self, wallet: &str, now: i64, now_ms: i64) -> sqlx::Result<bool> {
        let mut tx = self.pool.begin().await?;
        let stamp = lock_and_stamp(&mut tx, now_ms).await?;
        sqlx::query("DELETE FROM link_states WHERE wallet = $1").bind(wallet).execute(&mut *tx).await?;
        let unlinked = unlink_in(&mut tx, wallet, now, stamp, "unlinked").await?;
        tx.commit().await?;
        Ok(unlinked)
    }

    /// A wallet's profile row (linked or tombstone).
    pub async fn profile(&self, wallet: &str) -> sqlx::Result<Option<ProfileRow>> {
        let sql = format!(
            "SELECT {PROFILE_COLUMNS} FROM profiles p LEFT JOIN attestations a ON a.id = p.attestation_id \
             WHERE p.wallet = $1"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(wallet)
            .fetch_optional(&self.pool)
            .await?
            .map(profile_row)
            .transpose()
    }

    /// Profile changes after `updated_after` (Unix ms), oldest first, at most `limit`.
    pub async fn feed(&self, updated_after: i64, limit: i64) -> sqlx::Result<Vec<ProfileRow>> {
        let sql = format!(
            "SELECT {PROFILE_COLUMNS} FROM profiles p LEFT JOIN attestations a ON a.id = p.attestation_id \
             WHERE p.updated_at > $1 ORDER BY p.updated_at LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(updated_after).bind(limit).fetch_all(&self.pool).await?;
        rows.into_iter().map(profile_row).collect()
    }

    /// An attestation by digest.
    pub async fn attestation(&self, digest: &str) -> sqlx::Result<Option<AttestationRow>> {
        let row = sqlx::query(
            "SELECT digest, wallet, issued_at, expiry, revoked_at, revoked_reason, body FROM attestations \
             WHERE digest = $1",
        )
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(AttestationRow {
                digest: r.try_get("digest")?,
                wallet: r.try_get("wallet")?,
                issued_at: r.try_get("issued_at")?,
                expiry: r.try_get("expiry")?,
                revoked_at: r.try_get("revoked_at")?,
                revoked_reason: r.try_get("revoked_reason")?,
                body: r.try_get("body")?,
            })
        })
        .transpose()
    }
}

/// Takes the profile lock and returns the next feed stamp: now in ms, or one above the latest
/// stamp if the clock is behind it.
async fn lock_and_stamp(tx: &mut Transaction<'_, Postgres>, now_ms: i64) -> sqlx::Result<i64> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(PROFILE_LOCK).execute(&mut **tx).await?;
    sqlx::query_scalar("SELECT GREATEST($1, COALESCE(MAX(updated_at), 0) + 1) FROM profiles")
        .bind(now_ms)
        .fetch_one(&mut **tx)
        .await
}

async fn revoke_in(tx: &mut Transaction<'_, Postgres>, wallet: &str, now: i64, reason: &str) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "UPDATE attestations SET revoked_at = $2, revoked_reason = $3, body = NULL \
         WHERE wallet = $1 AND revoked_at IS NULL",
    )
    .bind(wallet)
    .bind(now)
    .bind(reason)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

async fn unlink_in(
    tx: &mut Transaction<'_, Postgres>,
    wallet: &str,
    now: i64,
    stamp: i64,
    reason: &str,
) -> sqlx::Result<bool> {
    revoke_in(tx, wallet, now, reason).await?;
    let changed = sqlx::query(
        "UPDATE profiles SET linked = false, subject_hash = NULL, name = NULL, picture = NULL, email_domain = NULL, \
         attestation_id = NULL, linked_at = NULL, updated_at = $2 WHERE wallet = $1 AND linked",
    )
    .bind(wallet)
    .bind(stamp)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(changed > 0)
}

fn profile_row(r: sqlx::postgres::PgRow) -> sqlx::Result<ProfileRow> {
    Ok(ProfileRow {
        wallet: r.try_get("wallet")?,
        linked: r.try_get("linked")?,
        name: r.try_get("name")?,
        picture: r.try_get("picture")?,
        email_domain: r.try_get("email_domain")?,
        linked_at: r.try_get("linked_at")?,
        updated_at: r.try_get("updated_at")?,
        attestation: r.try_get("body")?,
    })
}
