//! The chain follower: reads the events of dchat's contracts (MessageAnchor, Payments,
//! NodeRegistry) block by block into PostgreSQL, `confirmations` blocks behind the head.
//!
//! Reorgs: every block read within the last `reorg_window` blocks is kept as (number, hash,
//! parent hash). Before a block is read its parent hash is compared with the stored hash of the
//! block below; when caught up, the stored tip is compared with the chain's block at that
//! height. A mismatch rolls back the stored tip — its block row and every event it wrote, in
//! one transaction with the cursor — and the comparison repeats one block lower until the
//! stored chain joins the canonical one; then the canonical blocks are read forward again.
//! Behind the window (catching up), logs are read in ranges of up to `max_range` blocks and only
//! the range's last block is kept.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256, Log as PrimitiveLog},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::{Filter, Log},
    sol,
    sol_types::SolEvent,
};
use eyre::{WrapErr, eyre};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{Postgres, Transaction};
use tokio_util::sync::CancellationToken;

use crate::{config::ChainConfig, now_ms, store::Store};

sol! {
    /// MessageAnchor.
    event Anchored(address indexed anchorer, bytes32 indexed root, uint64 count);

    /// Payments.
    event Tipped(
        address indexed from, address indexed to, address token, uint256 amount, uint256 fee,
        bytes32 indexed messageHash
    );
    event RoomRegistered(bytes32 indexed room, address indexed owner);
    event RoomOwnershipTransferred(bytes32 indexed room, address indexed previousOwner, address indexed newOwner);
    event RoomPriceSet(bytes32 indexed room, address indexed token, uint256 pricePerPeriod, uint64 periodSeconds);
    event Subscribed(
        bytes32 indexed room, address indexed subscriber, address indexed token, uint32 periods, uint256 amount,
        uint256 fee, uint64 expiry
    );
    event PostageSent(
        uint256 indexed id, address indexed sender, address indexed recipient, address token, uint256 amount,
        uint64 deadline, bytes32 messageHash
    );
    event PostageClaimed(uint256 indexed id, address indexed recipient, uint256 amount, uint256 fee);
    event PostageRefunded(uint256 indexed id, address indexed sender, uint256 amount);

    /// NodeRegistry.
    event Registered(address indexed operator, bytes peerId, string[] multiaddrs, string url, uint256 stake);
    event Updated(address indexed operator, bytes peerId, string[] multiaddrs, string url);
    event Deregistered(address indexed operator, uint256 stake, uint64 releaseAt);
}

/// The contracts followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contracts {
    /// Chain id the addresses belong to.
    pub chain_id: u64,
    /// `MessageAnchor`, if followed.
    pub message_anchor: Option<Address>,
    /// `Payments`, if followed.
    pub payments: Option<Address>,
    /// `NodeRegistry`, if followed.
    pub node_registry: Option<Address>,
    /// First block to read.
    pub start_block: u64,
}

impl Contracts {
    fn addresses(&self) -> Vec<Address> {
        [self.message_anchor, self.payments, self.node_registry].into_iter().flatten().collect()
    }
}

/// One entry of a deployments file (`dchat-deploy`'s output: chain id → this).
#[derive(Debug, Deserialize)]
struct Deployment {
    node_registry: Address,
    message_anchor: Address,
    payments: Address,
    #[serde(default)]
    block: u64,
}

/// Resolves the addresses to follow on `chain_id`: explicit settings over the deployments
/// file's entry for that chain.
pub fn resolve(config: &ChainConfig, chain_id: u64) -> eyre::Result<Contracts> {
    let mut c = Contracts {
        chain_id,
        message_anchor: config.message_anchor,
        payments: config.payments,
        node_registry: config.node_registry,
        start_block: config.start_block.unwrap_or(0),
    };
    if let Some(path) = &config.deployments {
        let d = deployment(path, chain_id)?;
        c.message_anchor = c.message_anchor.or(Some(d.message_anchor));
        c.payments = c.payments.or(Some(d.payments));
        c.node_registry = c.node_registry.or(Some(d.node_registry));
        if config.start_block.is_none() {
            c.start_block = d.block.saturating_sub(1);
        }
    }
    if c.addresses().is_empty() {
        return Err(eyre!("[chain] names no contract to follow"));
    }
    Ok(c)
}

fn deployment(path: &Path, chain_id: u64) -> eyre::Result<Deployment> {
    let text =
        std::fs::read_to_string(path).wrap_err_with(|| format!("reading chain.deployments {}", path.display()))?;
    let mut all: std::collections::BTreeMap<String, Deployment> =
        serde_json::from_str(&text).wrap_err_with(|| format!("{} is not a deployments file", path.display()))?;
    all.remove(&chain_id.to_string()).ok_or_else(|| {
        eyre!("{} has no deployment for chain {chain_id} (the RPC's chain); deploy with dchat-deploy", path.display())
    })
}

/// A decoded event, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainEvent {
    /// Block number.
    pub block_number: u64,
    /// Position in the block.
    pub log_index: u64,
    /// Block hash.
    pub block_hash: B256,
    /// Transaction hash.
    pub tx_hash: B256,
    /// Emitting contract.
    pub contract: Address,
    /// Event name.
    pub event: &'static str,
    /// Room concerned, if any.
    pub room: Option<B256>,
    /// Message hash concerned, if any.
    pub message_hash: Option<B256>,
    /// Main account concerned (tipper, subscriber, operator, anchorer...), if any.
    pub account: Option<Address>,
    /// Every field, as JSON (amounts as decimal strings).
    pub data: Value,
    /// For `Anchored`: (anchorer, root, count).
    pub anchor: Option<(Address, B256, u64)>,
}

fn dec<T: std::fmt::Display>(v: T) -> Value {
    Value::String(v.to_string())
}

/// Decodes a log of a followed contract; `None` for events dchat does not index.
pub fn decode(log: &Log) -> Option<ChainEvent> {
    let inner: &PrimitiveLog = &log.inner;
    let topic0 = *inner.topics().first()?;
    let mut e = ChainEvent {
        block_number: log.block_number?,
        log_index: log.log_index?,
        block_hash: log.block_hash?,
        tx_hash: log.transaction_hash.unwrap_or_default(),
        contract: inner.address,
        event: "",
        room: None,
        message_hash: None,
        account: None,
        data: Value::Null,
        anchor: None,
    };
    macro_rules! ev {
        ($t:ty) => {
            <$t>::decode_raw_log(inner.topics(), &inner.data.data).ok()?
        };
    }
    match topic0 {
        Anchored::SIGNATURE_HASH => {
            let v = ev!(Anchored);
            e.event = "Anchored";
            e.account = Some(v.anchorer);
            e.data = json!({"anchorer": v.anchorer, "root": v.root, "count": v.count});
            e.anchor = Some((v.anchorer, v.root, v.count));
        }
        Tipped::SIGNATURE_HASH => {
            let v = ev!(Tipped);
            e.event = "Tipped";
            e.account = Some(v.from);
            e.message_hash = Some(v.messageHash);
            e.data = json!({"from": v.from, "to": v.to, "token": v.token, "amount": dec(v.amount), "fee": dec(v.fee),
                "message_hash": v.messageHash});
        }
        RoomRegistered::SIGNATURE_HASH => {
            let v = ev!(RoomRegistered);
            e.event = "RoomRegistered";
            e.room = Some(v.room);
            e.account = Some(v.owner);
            e.data = json!({"room": v.room, "owner": v.owner});
        }
        RoomOwnershipTransferred::SIGNATURE_HASH => {
            let v = ev!(RoomOwnershipTransferred);
            e.event = "RoomOwnershipTransferred";
            e.room = Some(v.room);
            e.account = Some(v.newOwner);
            e.data = json!({"room": v.room, "previous_owner": v.previousOwner, "new_owner": v.newOwner});
        }
        RoomPriceSet::SIGNATURE_HASH => {
            let v = ev!(RoomPriceSet);
            e.event = "RoomPriceSet";
            e.room = Some(v.room);
            e.data = json!({"room": v.room, "token": v.token, "price_per_period": dec(v.pricePerPeriod),
                "period_seconds": v.periodSeconds});
        }
        Subscribed::SIGNATURE_HASH => {
            let v = ev!(Subscribed);
            e.event = "Subscribed";
            e.room = Some(v.room);
            e.account = Some(v.subscriber);
            e.data = json!({"room": v.room, "subscriber": v.subscriber, "token": v.token, "periods": v.periods,
                "amount": dec(v.amount), "fee": dec(v.fee), "expiry": v.expiry});
        }
        PostageSent::SIGNATURE_HASH => {
            let v = ev!(PostageSent);
            e.event = "PostageSent";
            e.account = Some(v.sender);
            e.message_hash = Some(v.messageHash);
            e.data = json!({"id": dec(v.id), "sender": v.sender, "recipient": v.recipient, "token": v.token,
                "amount": dec(v.amount), "deadline": v.deadline, "message_hash": v.messageHash});
        }
        PostageClaimed::SIGNATURE_HASH => {
            let v = ev!(PostageClaimed);
            e.event = "PostageClaimed";
            e.account = Some(v.recipient);
            e.data = json!({"id": dec(v.id), "recipient": v.recipient, "amount": dec(v.amount), "fee": dec(v.fee)});
        }
        PostageRefunded::SIGNATURE_HASH => {
            let v = ev!(PostageRefunded);
            e.event = "PostageRefunded";
            e.account = Some(v.sender);
            e.data = json!({"id": dec(v.id), "sender": v.sender, "amount": dec(v.amount)});
        }
        Registered::SIGNATURE_HASH => {
            let v = ev!(Registered);
            e.event = "NodeRegistered";
            e.account = Some(v.operator);
            e.data = json!({"operator": v.operator, "peer_id": v.peerId, "multiaddrs": v.multiaddrs, "url": v.url,
                "stake": dec(v.stake)});
        }
        Updated::SIGNATURE_HASH => {
            let v = ev!(Updated);
            e.event = "NodeUpdated";
            e.account = Some(v.operator);
            e.data = json!({"operator": v.operator, "peer_id": v.peerId, "multiaddrs": v.multiaddrs, "url": v.url});
        }
        Deregistered::SIGNATURE_HASH => {
            let v = ev!(Deregistered);
            e.event = "NodeDeregistered";
            e.account = Some(v.operator);
            e.data = json!({"operator": v.operator, "stake": dec(v.stake), "release_at": v.releaseAt});
        }
        _ => return None,
    }
    Some(e)
}

/// The chain follower's counters, shown on `/metrics` and `/v1/chain/status`.
#[derive(Debug, Default)]
pub struct ChainMetrics {
    /// Chain id followed (0 until connected).
    pub chain_id: AtomicU64,
    /// The chain's head, as last seen.
    pub head: AtomicI64,
    /// Highest block read (-1 before the first).
    pub indexed: AtomicI64,
    /// Confirmations the follower waits for.
    pub confirmations: AtomicU64,
    /// Reorgs detected since start.
    pub reorgs_total: AtomicU64,
    /// Blocks rolled back since start.
    pub rolled_back_total: AtomicU64,
    /// Events stored since start.
    pub events_total: AtomicU64,
    /// Failed RPC or database steps since start.
    pub errors_total: AtomicU64,
}

impl ChainMetrics {
    /// Blocks between the head and what is read.
    pub fn lag(&self) -> i64 {
        (self.head.load(Ordering::Relaxed) - self.indexed.load(Ordering::Relaxed)).max(0)
    }

    /// Prometheus text lines.
    pub fn render(&self) -> String {
        format!(
            "# HELP dchat_indexer_chain_head The chain's head block, as last seen.\n\
             # TYPE dchat_indexer_chain_head gauge\n\
             dchat_indexer_chain_head {}\n\
             # HELP dchat_indexer_chain_indexed_block Highest block whose events are stored.\n\
             # TYPE dchat_indexer_chain_indexed_block gauge\n\
             dchat_indexer_chain_indexed_block {}\n\
             # HELP dchat_indexer_chain_lag_blocks Blocks between the head and the highest stored block.\n\
             # TYPE dchat_indexer_chain_lag_blocks gauge\n\
             dchat_indexer_chain_lag_blocks {}\n\
             # HELP dchat_indexer_chain_reorgs_total Reorgs detected.\n\
             # TYPE dchat_indexer_chain_reorgs_total counter\n\
             dchat_indexer_chain_reorgs_total {}\n\
             # HELP dchat_indexer_chain_rolled_back_blocks_total Blocks rolled back by reorgs.\n\
             # TYPE dchat_indexer_chain_rolled_back_blocks_total counter\n\
             dchat_indexer_chain_rolled_back_blocks_total {}\n\
             # HELP dchat_indexer_chain_events_total Contract events stored.\n\
             # TYPE dchat_indexer_chain_events_total counter\n\
             dchat_indexer_chain_events_total {}\n\
             # HELP dchat_indexer_chain_errors_total Failed chain follower steps.\n\
             # TYPE dchat_indexer_chain_errors_total counter\n\
             dchat_indexer_chain_errors_total {}\n",
            self.head.load(Ordering::Relaxed),
            self.indexed.load(Ordering::Relaxed),
            self.lag(),
            self.reorgs_total.load(Ordering::Relaxed),
            self.rolled_back_total.load(Ordering::Relaxed),
            self.events_total.load(Ordering::Relaxed),
            self.errors_total.load(Ordering::Relaxed),
        )
    }
}

/// A stored block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BlockRow {
    number: u64,
    hash: B256,
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Read blocks up to this number.
    Read(u64),
    /// Rolled back this block (a reorg).
    RolledBack(u64),
    /// Nothing new.
    Idle,
}

/// The chain follower.
#[derive(Debug)]
pub struct ChainFollower {
    provider: DynProvider,
    store: Store,
    config: ChainConfig,
    contracts: Contracts,
    metrics: Arc<ChainMetrics>,
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn u64_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl ChainFollower {
    /// Connects to the RPC, resolves the contracts for its chain and checks the database
    /// follows the same chain.
    pub async fn connect(config: ChainConfig, store: Store, metrics: Arc<ChainMetrics>) -> eyre::Result<Self> {
        let url = config.rpc_url.parse().wrap_err("chain.rpc_url is not a URL")?;
        let provider = ProviderBuilder::new().connect_http(url).erased();
        let chain_id = provider.get_chain_id().await.wrap_err("asking the chain id (is chain.rpc_url up?)")?;
        let contracts = resolve(&config, chain_id)?;
        let stored =
            sqlx::query_scalar!("SELECT chain_id FROM chain_cursor WHERE id = 1").fetch_optional(store.pool()).await?;
        if let Some(stored) = stored.filter(|s| *s != i64_of(chain_id)) {
            return Err(eyre!(
                "the database holds events of chain {stored}, but chain.rpc_url serves chain {chain_id}: use another \
                 database"
            ));
        }
        metrics.chain_id.store(chain_id, Ordering::Relaxed);
        metrics.confirmations.store(config.confirmations, Ordering::Relaxed);
        let follower = Self { provider, store, config, contracts, metrics };
        let next = follower.next_block().await?;
        follower.metrics.indexed.store(i64_of(next) - 1, Ordering::Relaxed);
        Ok(follower)
    }

    /// The contracts followed.
    pub fn contracts(&self) -> &Contracts {
        &self.contracts
    }

    async fn next_block(&self) -> sqlx::Result<u64> {
        let next = sqlx::query_scalar!("SELECT next_block FROM chain_cursor WHERE id = 1")
            .fetch_optional(self.store.pool())
            .await?;
        Ok(next.map(u64_of).unwrap_or(self.contracts.start_block))
    }

    async fn stored_block(&self, number: u64) -> sqlx::Result<Option<BlockRow>> {
        let hash = sqlx::query_scalar!("SELECT hash FROM chain_blocks WHERE number = $1", i64_of(number))
            .fetch_optional(self.store.pool())
            .await?;
        Ok(hash.filter(|h| h.len() == 32).map(|h| BlockRow { number, hash: B256::from_slice(&h) }))
    }

    async fn header(&self, number: u64) -> eyre::Result<Option<(B256, B256, u64)>> {
        let block = self.provider.get_block_by_number(BlockNumberOrTag::Number(number)).await?;
        Ok(block.map(|b| (b.header.hash, b.header.parent_hash, b.header.timestamp)))
    }

    async fn logs(&self, filter: Filter) -> eyre::Result<Vec<ChainEvent>> {
        let logs = self.provider.get_logs(&filter.address(self.contracts.addresses())).await?;
        Ok(logs.iter().filter(|l| !l.removed).filter_map(decode).collect())
    }

    /// One step: roll back one orphaned block, or read the next block (or range of blocks).
    pub async fn step(&self) -> eyre::Result<Step> {
        let head = self.provider.get_block_number().await?;
        self.metrics.head.store(i64_of(head), Ordering::Relaxed);
        let next = self.next_block().await?;
        let below = match next.checked_sub(1) {
            Some(n) => self.stored_block(n).await?,
            None => None,
        };
        let target = head.saturating_sub(self.config.confirmations);
        if next > target {
            // Caught up: is the stored tip still canonical?
            if let Some(tip) = below {
                let canonical = self.header(tip.number).await?.map(|h| h.0);
                if canonical != Some(tip.hash) {
                    self.roll_back(tip.number).await?;
                    return Ok(Step::RolledBack(tip.number));
                }
            }
            return Ok(Step::Idle);
        }
        let window_start = target.saturating_sub(self.config.reorg_window);
        if next + 1 < window_start {
            // Behind the window: a range of final blocks; keep only the last one's header.
            let to = (next + self.config.max_range - 1).min(window_start - 1);
            let (hash, parent, timestamp) = self.header(to).await?.ok_or_else(|| eyre!("block {to} not found"))?;
            let events = self.logs(Filter::new().from_block(next).to_block(to)).await?;
            self.commit(next, to, (hash, parent, timestamp), &events).await?;
            return Ok(Step::Read(to));
        }
        let Some((hash, parent, timestamp)) = self.header(next).await? else { return Ok(Step::Idle) };
        if let Some(below) = below
            && below.hash != parent
        {
            self.roll_back(below.number).await?;
            return Ok(Step::RolledBack(below.number));
        }
        let events = self.logs(Filter::new().at_block_hash(hash)).await?;
        self.commit(next, next, (hash, parent, timestamp), &events).await?;
        Ok(Step::Read(next))
    }

    /// Stores the events of blocks `from..=to`, the header of `to` and the cursor, in one
    /// transaction; prunes block rows older than the window.
    async fn commit(&self, from: u64, to: u64, header: (B256, B256, u64), events: &[ChainEvent]) -> eyre::Result<()> {
        // The cursor moves in this transaction, so nothing at or above `from` is stored yet.
        let mut tx = self.store.pool().begin().await?;
        for e in events {
            insert_event(&mut tx, e).await?;
        }
        sqlx::query!(
            "INSERT INTO chain_blocks (number, hash, parent_hash, timestamp) VALUES ($1, $2, $3, $4)",
            i64_of(to),
            header.0.as_slice(),
            header.1.as_slice(),
            i64_of(header.2)
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!("DELETE FROM chain_blocks WHERE number < $1", i64_of(to.saturating_sub(self.config.reorg_window)))
            .execute(&mut *tx)
            .await?;
        set_cursor(&mut tx, self.contracts.chain_id, to + 1, false).await?;
        tx.commit().await?;
        self.metrics.indexed.store(i64_of(to), Ordering::Relaxed);
        self.metrics.events_total.fetch_add(events.len() as u64, Ordering::Relaxed);
        if !events.is_empty() {
            tracing::debug!(target: "indexer::chain", from, to, events = events.len(), "stored blocks");
        }
        Ok(())
    }

    /// Removes block `number` and everything at or above it; the cursor moves back to it.
    async fn roll_back(&self, number: u64) -> eyre::Result<()> {
        let mut tx = self.store.pool().begin().await?;
        let removed = delete_from(&mut tx, number).await?;
        set_cursor(&mut tx, self.contracts.chain_id, number, true).await?;
        tx.commit().await?;
        self.metrics.rolled_back_total.fetch_add(1, Ordering::Relaxed);
        self.metrics.indexed.store(i64_of(number) - 1, Ordering::Relaxed);
        tracing::warn!(target: "indexer::chain", block = number, events = removed, "reorg: rolled back an orphaned block");
        Ok(())
    }

    /// Follows until `shutdown`; errors are logged and retried with backoff.
    pub async fn run(self, shutdown: CancellationToken) {
        let poll = Duration::from_millis(self.config.poll_ms);
        let mut backoff = poll;
        let mut rolling = false;
        loop {
            let pause = match self.step().await {
                Ok(Step::Read(_)) => {
                    rolling = false;
                    backoff = poll;
                    Duration::ZERO
                }
                Ok(Step::RolledBack(_)) => {
                    if !rolling {
                        self.metrics.reorgs_total.fetch_add(1, Ordering::Relaxed);
                    }
                    rolling = true;
                    Duration::ZERO
                }
                Ok(Step::Idle) => {
                    rolling = false;
                    backoff = poll;
                    poll
                }
                Err(e) => {
                    self.metrics.errors_total.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(target: "indexer::chain", error = %e, "chain follower step failed; retrying");
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    backoff
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

async fn delete_from(tx: &mut Transaction<'_, Postgres>, number: u64) -> sqlx::Result<u64> {
    let n = i64_of(number);
    let events = sqlx::query!("DELETE FROM chain_events WHERE block_number >= $1", n).execute(&mut **tx).await?;
    sqlx::query!("DELETE FROM anchors WHERE block_number >= $1", n).execute(&mut **tx).await?;
    sqlx::query!("DELETE FROM chain_blocks WHERE number >= $1", n).execute(&mut **tx).await?;
    Ok(events.rows_affected())
}

async fn set_cursor(tx: &mut Transaction<'_, Postgres>, chain_id: u64, next: u64, reorg: bool) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO chain_cursor (id, chain_id, next_block, reorgs, updated_at) VALUES (1, $1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET next_block = excluded.next_block,
             reorgs = chain_cursor.reorgs + excluded.reorgs, updated_at = excluded.updated_at",
        i64_of(chain_id),
        i64_of(next),
        i64::from(reorg),
        now_ms()
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_event(tx: &mut Transaction<'_, Postgres>, e: &ChainEvent) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO chain_events
             (block_number, log_index, block_hash, tx_hash, contract, event, room, message_hash, account, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
        i64_of(e.block_number),
        i64_of(e.log_index),
        e.block_hash.as_slice(),
        e.tx_hash.as_slice(),
        e.contract.as_slice(),
        e.event,
        e.room.as_ref().map(|r| r.as_slice()),
        e.message_hash.as_ref().map(|m| m.as_slice()),
        e.account.as_ref().map(|a| a.as_slice()),
        e.data
    )
    .execute(&mut **tx)
    .await?;
    if let Some((anchorer, root, count)) = e.anchor {
        sqlx::query!(
            "INSERT INTO anchors (block_number, log_index, contract, anchorer, root, count, tx_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            i64_of(e.block_number),
            i64_of(e.log_index),
            e.contract.as_slice(),
            anchorer.as_slice(),
            root.as_slice(),
            i64_of(count),
            e.tx_hash.as_slice()
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// A stored anchored batch: `anchorer` anchored `root` in `contract`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AnchorRow {
    /// Account the root is anchored under, `0x` hex.
    pub anchorer: String,
    /// Merkle root, `0x` hex.
    pub root: String,
    /// Messages in the batch, as the anchorer declared.
    pub count: i64,
    /// `MessageAnchor` address, `0x` hex.
    pub contract: String,
    /// Block number.
    pub block_number: i64,
    /// Position of the `Anchored` log in the block.
    pub log_index: i64,
    /// Transaction hash, `0x` hex.
    pub tx_hash: String,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EventRow {
    /// Block number.
    pub block_number: i64,
    /// Position in the block.
    pub log_index: i64,
    /// Transaction hash, `0x` hex.
    pub tx_hash: String,
    /// Emitting contract, `0x` hex.
    pub contract: String,
    /// Event name.
    pub event: String,
    /// Every field.
    pub data: Value,
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

impl Store {
    /// Anchored batches in chain order after position `after` (block number, log index), at
    /// most `limit`, optionally only those of one anchorer and/or one root.
    pub async fn anchors(
        &self,
        anchorer: Option<&[u8]>,
        root: Option<&[u8]>,
        after: (i64, i64),
        limit: i64,
    ) -> sqlx::Result<Vec<AnchorRow>> {
        let rows = sqlx::query!(
            "SELECT anchorer, root, count, contract, block_number, log_index, tx_hash FROM anchors
             WHERE (block_number, log_index) > ($1, $2)
               AND ($3::bytea IS NULL OR anchorer = $3)
               AND ($4::bytea IS NULL OR root = $4)
             ORDER BY block_number, log_index LIMIT $5",
            after.0,
            after.1,
            anchorer,
            root,
            limit
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| AnchorRow {
                anchorer: hex0x(&r.anchorer),
                root: hex0x(&r.root),
                count: r.count,
                contract: hex0x(&r.contract),
                block_number: r.block_number,
                log_index: r.log_index,
                tx_hash: hex0x(&r.tx_hash),
            })
            .collect())
    }

    /// Events in chain order after position `after` (block number, log index), filtered.
    pub async fn chain_events(
        &self,
        filter: &EventFilter,
        after: (i64, i64),
        limit: i64,
    ) -> sqlx::Result<Vec<EventRow>> {
        let rows = sqlx::query!(
            "SELECT block_number, log_index, tx_hash, contract, event, data FROM chain_events
             WHERE (block_number, log_index) > ($1, $2)
               AND ($3::text IS NULL OR event = $3)
               AND ($4::bytea IS NULL OR room = $4)
               AND ($5::bytea IS NULL OR message_hash = $5)
               AND ($6::bytea IS NULL OR account = $6)
             ORDER BY block_number, log_index LIMIT $7",
            after.0,
            after.1,
            filter.event.as_deref(),
            filter.room.as_deref(),
            filter.message_hash.as_deref(),
            filter.account.as_deref(),
            limit
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| EventRow {
                block_number: r.block_number,
                log_index: r.log_index,
                tx_hash: hex0x(&r.tx_hash),
                contract: hex0x(&r.contract),
                event: r.event,
                data: r.data,
            })
            .collect())
    }
}

/// Filters of [`Store::chain_events`].
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Event name.
    pub event: Option<String>,
    /// Room id bytes.
    pub room: Option<Vec<u8>>,
    /// Message hash bytes.
    pub message_hash: Option<Vec<u8>>,
    /// Account bytes.
    pub account: Option<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `name(type,...)` of every event of a contract's forge artifact.
    fn artifact_events(name: &str) -> Vec<String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../out/{name}.sol/{name}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; build the contracts first (scripts/forge-test)", path.display()));
        let json: Value = serde_json::from_str(&text).expect("artifact json");
        json["abi"]
            .as_array()
            .expect("abi")
            .iter()
            .filter(|e| e["type"] == "event")
            .map(|e| {
                let types: Vec<&str> =
                    e["inputs"].as_array().expect("inputs").iter().map(|i| i["type"].as_str().expect("type")).collect();
                format!("{}({})", e["name"].as_str().expect("name"), types.join(","))
            })
            .collect()
    }

    /// Every event the follower decodes is declared, with the same types, by its contract.
    #[test]
    fn decoded_events_match_the_contracts() {
        let anchor = artifact_events("MessageAnchor");
        assert!(anchor.contains(&Anchored::SIGNATURE.to_string()), "{anchor:?}");
        let payments = artifact_events("Payments");
        for sig in [
            Tipped::SIGNATURE,
            RoomRegistered::SIGNATURE,
            RoomOwnershipTransferred::SIGNATURE,
            RoomPriceSet::SIGNATURE,
            Subscribed::SIGNATURE,
            PostageSent::SIGNATURE,
            PostageClaimed::SIGNATURE,
            PostageRefunded::SIGNATURE,
        ] {
            assert!(payments.contains(&sig.to_string()), "{sig} not in Payments: {payments:?}");
        }
        let registry = artifact_events("NodeRegistry");
        for sig in [Registered::SIGNATURE, Updated::SIGNATURE, Deregistered::SIGNATURE] {
            assert!(registry.contains(&sig.to_string()), "{sig} not in NodeRegistry: {registry:?}");
        }
    }

    #[test]
    fn a_deployments_file_gives_the_addresses_of_the_rpcs_chain() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("deployments.json");
        let a = "0x00000000000000000000000000000000000000aa";
        let text = format!(
            r#"{{"31337": {{"chain_id": 31337, "node_registry": "{a}", "message_anchor": "{a}", "payments": "{a}", "block": 7}}}}"#
        );
        std::fs::write(&path, text).expect("write");
        let config = ChainConfig { deployments: Some(path.clone()), ..ChainConfig::default() };
        let c = resolve(&config, 31337).expect("resolves");
        assert_eq!(c.start_block, 6);
        assert_eq!(c.message_anchor, Some(a.parse().expect("addr")));
        let err = resolve(&config, 1).expect_err("no entry for chain 1").to_string();
        assert!(err.contains("no deployment for chain 1"), "{err}");
        let explicit = ChainConfig { payments: Some(Address::ZERO), start_block: Some(3), ..ChainConfig::default() };
        let c = resolve(&explicit, 5).expect("explicit");
        assert_eq!((c.start_block, c.message_anchor, c.payments), (3, None, Some(Address::ZERO)));
    }
}
