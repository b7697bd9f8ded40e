//! Tip notifications: the node follows the `Tipped` events of the chain's `Payments` contract and
//! turns each into a `tip` notification for the wallet tipped.
//!
//! Every node reads the chain itself, `confirmations` blocks behind the head, with `eth_getLogs`
//! over ranges of at most `max_range` blocks, and keeps the next block to read in its store. A
//! notification's id is derived from the event (chain id, contract, transaction hash, log index),
//! so every node gives a tip the same id: marking it read on one device marks it on the wallet's
//! other devices, whichever node they use. Reading a range twice (a restart between storing a
//! notification and moving the cursor) stores nothing twice. RPC failures are logged and retried
//! after growing pauses; the node keeps running.
//!
//! A reorg deeper than `confirmations` blocks is not undone: a tip it removes stays notified.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256, keccak256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::{Filter, Log},
    sol,
    sol_types::SolEvent,
};
use serde::{Deserialize, Serialize};

use crate::{api::AppState, store::Notification};

sol! {
    /// `Payments`' tip event (contracts/src/Payments.sol).
    event Tipped(
        address indexed from, address indexed to, address token, uint256 amount, uint256 fee,
        bytes32 indexed messageHash
    );
}

/// The name of this follower's cursor in the store.
const FOLLOWER: &str = "tips";
/// Longest pause between two attempts after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Longest one step (its RPC calls and store writes) may take before it counts as failed.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Tip notifications (`[social.tips]`). They run when `rpc_url` is set and a `Payments` address
/// is known for the RPC's chain: `payments`, or the entry for that chain in `deployments`, else
/// in `[dapp] deployments`, else in `[anchor] deployments`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TipsConfig {
    /// Follow tips when the chain and the contract are known (set `false` to never follow).
    pub enabled: bool,
    /// `Payments` address, over any deployments file.
    pub payments: Option<Address>,
    /// Deployments file (see `dchat-deploy`) naming `Payments` per chain id.
    pub deployments: Option<PathBuf>,
    /// First block to read when the store has no cursor yet. Unset: the deployment's block when
    /// the address comes from a deployments file, otherwise the first block not yet read at
    /// start (tips from then on).
    pub start_block: Option<u64>,
    /// Blocks a tip must be below the head before it is notified.
    pub confirmations: u64,
    /// Milliseconds between two polls once caught up.
    pub poll_interval_ms: u64,
    /// Most blocks one `eth_getLogs` request covers.
    pub max_range: u64,
}

impl Default for TipsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            payments: None,
            deployments: None,
            start_block: None,
            confirmations: 2,
            poll_interval_ms: 2000,
            max_range: 1000,
        }
    }
}

/// What a tip notification says beyond its actor (the tipper), as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TipView {
    /// Chain id.
    pub chain_id: u64,
    /// Token paid, EIP-55; the zero address for ETH.
    pub token: String,
    /// Amount paid, fee included, in the token's smallest unit (decimal).
    pub amount: String,
    /// Operator fee taken from it (decimal).
    pub fee: String,
    /// The message tipped for (0x hex, 32 bytes).
    pub message: String,
    /// Transaction hash.
    pub tx: String,
    /// Position of the event in its block.
    pub log_index: u64,
    /// Block number.
    pub block: u64,
}

/// The follower's counters, shown on `/metrics`.
#[derive(Debug, Default)]
pub struct TipMetrics {
    chain_id: AtomicU64,
    head: AtomicU64,
    next_block: AtomicU64,
    events: AtomicU64,
    notified: AtomicU64,
    errors: AtomicU64,
}

impl TipMetrics {
    /// Prometheus text lines.
    pub fn render(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "# HELP dchat_tips_chain_id Chain whose Payments tips are followed (0: not following).\n\
             # TYPE dchat_tips_chain_id gauge\n\
             dchat_tips_chain_id {}\n\
             # HELP dchat_tips_head_block The chain's head, as last seen by the tip follower.\n\
             # TYPE dchat_tips_head_block gauge\n\
             dchat_tips_head_block {}\n\
             # HELP dchat_tips_next_block Next block the tip follower reads.\n\
             # TYPE dchat_tips_next_block gauge\n\
             dchat_tips_next_block {}\n\
             # HELP dchat_tips_events_total Tipped events read.\n\
             # TYPE dchat_tips_events_total counter\n\
             dchat_tips_events_total {}\n\
             # HELP dchat_tips_notified_total Tip notifications stored.\n\
             # TYPE dchat_tips_notified_total counter\n\
             dchat_tips_notified_total {}\n\
             # HELP dchat_tips_errors_total Failed tip follower steps (RPC or store), retried.\n\
             # TYPE dchat_tips_errors_total counter\n\
             dchat_tips_errors_total {}\n",
            get(&self.chain_id),
            get(&self.head),
            get(&self.next_block),
            get(&self.events),
            get(&self.notified),
            get(&self.errors),
        )
    }
}

/// A tip notification's id: the same on every node for the same event.
/// `keccak256("dchat/tip/v1" || chain id (8 bytes, big-endian) || contract (20) || tx hash (32)
/// || log index (8 bytes, big-endian))`.
pub fn tip_id(chain_id: u64, contract: &Address, tx: &B256, log_index: u64) -> B256 {
    let mut buf = Vec::with_capacity(12 + 8 + 20 + 32 + 8);
    buf.extend_from_slice(b"dchat/tip/v1");
    buf.extend_from_slice(&chain_id.to_be_bytes());
    buf.extend_from_slice(contract.as_slice());
    buf.extend_from_slice(tx.as_slice());
    buf.extend_from_slice(&log_index.to_be_bytes());
    keccak256(&buf)
}

/// What is followed, and from where.
#[derive(Debug, Clone, Copy)]
struct Target {
    chain_id: u64,
    contract: Address,
    next: u64,
}

/// Follows tips until shutdown; returns at once when tips are off or cannot be located.
pub async fn run(state: AppState) {
    let cfg = state.config.social.tips.clone();
    let Some(rpc) = state.config.rpc_url.clone().filter(|_| cfg.enabled) else { return };
    let Ok(url) = rpc.parse() else { return };
    let provider = ProviderBuilder::new().connect_http(url).erased();
    let metrics = &state.social.tips;
    let poll = Duration::from_millis(cfg.poll_interval_ms.max(10));
    let mut failures = 0u32;
    let mut target = loop {
        let located = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            r = tokio::time::timeout(STEP_TIMEOUT, locate(&state, &provider, &cfg)) => r,
        };
        match located.unwrap_or_else(|_| Err(eyre::eyre!("no answer within {STEP_TIMEOUT:?}"))) {
            Ok(Some(t)) => break t,
            Ok(None) => return,
            Err(e) => {
                metrics.errors.fetch_add(1, Ordering::Relaxed);
                failures += 1;
                let wait = backoff(poll, failures);
                tracing::warn!(target: "node::tips", error = %e, retry_in_ms = wait.as_millis() as u64, "cannot start following tips");
                if !pause(&state, wait).await {
                    return;
                }
            }
        }
    };
    metrics.chain_id.store(target.chain_id, Ordering::Relaxed);
    metrics.next_block.store(target.next, Ordering::Relaxed);
    tracing::info!(target: "node::tips", chain_id = target.chain_id, payments = %target.contract, from_block = target.next, "following tips");
    failures = 0;
    loop {
        // A hung RPC neither stalls shutdown nor the follower for good.
        let stepped = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            r = tokio::time::timeout(STEP_TIMEOUT, step(&state, &provider, &cfg, &mut target)) => r,
        };
        let wait = match stepped.unwrap_or_else(|_| Err(eyre::eyre!("no answer within {STEP_TIMEOUT:?}"))) {
            Ok(true) => {
                failures = 0;
                poll
            }
            // More blocks wait: read on at once.
            Ok(false) => {
                failures = 0;
                Duration::ZERO
            }
            Err(e) => {
                metrics.errors.fetch_add(1, Ordering::Relaxed);
                failures += 1;
                let wait = backoff(poll, failures);
                tracing::warn!(target: "node::tips", error = %e, retry_in_ms = wait.as_millis() as u64, "reading tips failed");
                wait
            }
        };
        if !pause(&state, wait).await {
            return;
        }
    }
}

/// The pause after `failures` failures in a row: doubling from `base`, at most a minute.
fn backoff(base: Duration, failures: u32) -> Duration {
    base.saturating_mul(1 << failures.min(16)).min(MAX_BACKOFF)
}

/// Sleeps `d` unless the node stops first; `false` when it stops.
async fn pause(state: &AppState, d: Duration) -> bool {
    if state.shutdown.is_cancelled() {
        return false;
    }
    if d.is_zero() {
        return true;
    }
    tokio::select! {
        _ = state.shutdown.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

/// Finds the chain, the `Payments` address and where to start; `None` (logged) when tips cannot
/// be followed on this chain.
async fn locate(state: &AppState, provider: &DynProvider, cfg: &TipsConfig) -> eyre::Result<Option<Target>> {
    let chain_id = provider.get_chain_id().await?;
    let mut found = cfg.payments.map(|a| (a, None));
    if found.is_none() {
        let files = [
            cfg.deployments.clone(),
            state.config.dapp.deployments.clone(),
            state.config.anchor.as_ref().map(|a| a.deployments.clone()),
        ];
        for path in files.into_iter().flatten() {
            match crate::deploy::read(&path) {
                Ok(all) => {
                    if let Some(d) = all.get(&chain_id) {
                        found = Some((d.payments, Some(d.block)));
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(target: "node::tips", file = %path.display(), error = %e, "skipping a deployments file")
                }
            }
        }
    }
    let Some((contract, deployed_at)) = found else {
        tracing::info!(target: "node::tips", chain_id, "tip notifications off: no Payments address for this chain (set [social.tips] payments or a deployments file)");
        return Ok(None);
    };
    let next = match state.store.chain_cursor(FOLLOWER, chain_id, &contract).await? {
        Some(next) => next,
        None => {
            let next = match cfg.start_block.or(deployed_at) {
                Some(b) => b,
                None => provider.get_block_number().await?.saturating_sub(cfg.confirmations) + 1,
            };
            // Kept at once, so a restart resumes here instead of at a later head.
            state.store.set_chain_cursor(FOLLOWER, chain_id, &contract, next).await?;
            next
        }
    };
    Ok(Some(Target { chain_id, contract, next }))
}

/// Reads one range of confirmed blocks and notifies its tips, then moves the cursor past it;
/// `true` when caught up with the confirmed head.
async fn step(state: &AppState, provider: &DynProvider, cfg: &TipsConfig, target: &mut Target) -> eyre::Result<bool> {
    let metrics = &state.social.tips;
    // The store holds the cursor: an operator may rewind it to read blocks again.
    if let Some(next) = state.store.chain_cursor(FOLLOWER, target.chain_id, &target.contract).await? {
        target.next = next;
    }
    let head = provider.get_block_number().await?;
    metrics.head.store(head, Ordering::Relaxed);
    let Some(confirmed) = head.checked_sub(cfg.confirmations) else { return Ok(true) };
    if target.next > confirmed {
        return Ok(true);
    }
    let to = confirmed.min(target.next.saturating_add(cfg.max_range.max(1) - 1));
    let filter = Filter::new()
        .address(target.contract)
        .event_signature(Tipped::SIGNATURE_HASH)
        .from_block(target.next)
        .to_block(to);
    let logs = provider.get_logs(&filter).await?;
    let mut block_times = HashMap::new();
    for log in &logs {
        if log.removed {
            continue;
        }
        handle(state, provider, target, log, &mut block_times).await?;
    }
    state.store.set_chain_cursor(FOLLOWER, target.chain_id, &target.contract, to + 1).await?;
    target.next = to + 1;
    metrics.next_block.store(target.next, Ordering::Relaxed);
    tracing::debug!(target: "node::tips", to, tips = logs.len(), "read tips");
    Ok(to == confirmed)
}

/// Turns one `Tipped` log into a notification for the wallet tipped (none for a self-tip or a
/// tipper the wallet blocks).
async fn handle(
    state: &AppState,
    provider: &DynProvider,
    target: &Target,
    log: &Log,
    block_times: &mut HashMap<u64, u64>,
) -> eyre::Result<()> {
    let inner = &log.inner;
    let Ok(ev) = Tipped::decode_raw_log(inner.topics(), &inner.data.data) else {
        tracing::warn!(target: "node::tips", tx = ?log.transaction_hash, "a Tipped log that does not decode");
        return Ok(());
    };
    let (Some(tx), Some(log_index), Some(block)) = (log.transaction_hash, log.log_index, log.block_number) else {
        eyre::bail!("the RPC returned a log without its transaction, index or block");
    };
    state.social.tips.events.fetch_add(1, Ordering::Relaxed);
    if ev.from == ev.to || state.social.blocks(&ev.to, &ev.from) {
        return Ok(());
    }
    let seconds = match (log.block_timestamp, block_times.get(&block)) {
        (Some(t), _) | (None, Some(&t)) => t,
        (None, None) => {
            let b = provider
                .get_block_by_number(BlockNumberOrTag::Number(block))
                .await?
                .ok_or_else(|| eyre::eyre!("block {block} not found"))?;
            b.header.timestamp
        }
    };
    block_times.insert(block, seconds);
    let view = TipView {
        chain_id: target.chain_id,
        token: ev.token.to_checksum(None),
        amount: ev.amount.to_string(),
        fee: ev.fee.to_string(),
        message: ev.messageHash.to_string(),
        tx: tx.to_string(),
        log_index,
        block,
    };
    let n = Notification {
        id: tip_id(target.chain_id, &target.contract, &tx, log_index),
        kind: "tip".into(),
        room: crate::social::tip_room(&state.store, &ev.to, &ev.messageHash).await?,
        actor: ev.from,
        created_ms: seconds.saturating_mul(1000),
        detail: Some(serde_json::to_string(&view)?),
    };
    if crate::social::notify(state, &ev.to, &n).await.map_err(|e| eyre::eyre!("{}: {}", e.code, e.message))? {
        state.social.tips.notified.fetch_add(1, Ordering::Relaxed);
        tracing::info!(target: "node::tips", to = %ev.to, from = %ev.from, amount = %ev.amount, %tx, "tip notified");
    }
    Ok(())
}

/// A tip's details from a stored notification.
pub fn view_of(detail: Option<&str>) -> Option<TipView> {
    serde_json::from_str(detail?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tip_ids_follow_the_event_only() {
        let (c, tx) = (Address::repeat_byte(1), B256::repeat_byte(2));
        let id = tip_id(31337, &c, &tx, 3);
        assert_eq!(id, tip_id(31337, &c, &tx, 3));
        assert_ne!(id, tip_id(31337, &c, &tx, 4));
        assert_ne!(id, tip_id(1, &c, &tx, 3));
        assert_ne!(id, tip_id(31337, &Address::repeat_byte(9), &tx, 3));
    }

    #[test]
    fn config_reads_from_the_social_table() {
        let c: crate::config::Config = toml::from_str(
            "rpc_url = \"http://127.0.0.1:8545\"\n[social.tips]\npayments = \"0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0\"\nconfirmations = 5\n",
        )
        .expect("parses");
        assert_eq!(c.social.tips.confirmations, 5);
        assert_eq!(
            c.social.tips.payments.map(|a| a.to_checksum(None)).as_deref(),
            Some("0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0")
        );
        assert!(c.social.tips.enabled && c.social.tips.max_range == 1000);
        assert!(
            toml::from_str::<crate::config::Config>("[social.tips]\nconfirmation = 1").is_err(),
            "typos are refused"
        );
    }

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let base = Duration::from_millis(500);
        assert_eq!(backoff(base, 1), Duration::from_secs(1));
        assert_eq!(backoff(base, 3), Duration::from_secs(4));
        assert_eq!(backoff(base, 40), MAX_BACKOFF);
    }

    #[test]
    fn event_matches_the_contract() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../out/Payments.sol/Payments.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; build the contracts first (scripts/forge-test)", path.display()));
        let json: serde_json::Value = serde_json::from_str(&text).expect("artifact json");
        let events = json["abi"].as_array().expect("abi");
        let tipped = events.iter().find(|e| e["type"] == "event" && e["name"] == "Tipped").expect("Tipped");
        let sig = format!(
            "Tipped({})",
            tipped["inputs"]
                .as_array()
                .expect("inputs")
                .iter()
                .map(|i| i["type"].as_str().expect("type"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(sig, Tipped::SIGNATURE);
        let indexed: Vec<bool> =
            tipped["inputs"].as_array().expect("inputs").iter().map(|i| i["indexed"] == true).collect();
        assert_eq!(indexed, [true, true, false, false, false, true]);
    }
}
