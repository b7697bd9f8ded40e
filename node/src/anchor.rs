//! Anchoring: the node gathers the ids of messages its own clients posted into Merkle batches
//! and records each batch's root in the `MessageAnchor` contract, so anyone can check later
//! that a message existed by then. A batch is written to the store before its transaction is
//! sent; after a restart, pending batches are settled first, and a root already on chain is
//! recognised (`batchOf`) instead of anchored twice.

use std::{path::PathBuf, time::Duration};

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256},
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
    sol,
};
use dchat_protocol::merkle::Tree;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::api::AppState;

sol! {
    /// The parts of `MessageAnchor` the node calls.
    #[sol(rpc)]
    interface IMessageAnchor {
        function anchor(bytes32 root, uint64 count) external returns (uint256 batchId);
        function batchOf(bytes32 root) external view returns (uint256 batchId);
        function verify(uint256 batchId, bytes32 messageHash, bytes32[] proof) external view returns (bool);
        function canAnchor(address account) external view returns (bool);
    }
}

/// Anchoring settings (`[anchor]`); the key comes from `DCHAT_ANCHOR_KEY` only.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnchorConfig {
    /// Deployments file naming the `MessageAnchor` of the RPC's chain.
    pub deployments: PathBuf,
    /// Most messages in one batch.
    pub batch_size: u32,
    /// Seconds between anchoring rounds.
    pub interval_secs: u64,
    /// Seconds an anchoring transaction may wait unmined before it is sent again with the same
    /// nonce and 25% higher fees (up to 10 times).
    pub bump_after_secs: u64,
}

impl Default for AnchorConfig {
    fn default() -> Self {
        Self {
            deployments: PathBuf::from("deployments.json"),
            batch_size: 1000,
            interval_secs: 60,
            bump_after_secs: 60,
        }
    }
}

/// Where anchors go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Chain id.
    pub chain_id: u64,
    /// `MessageAnchor` address.
    pub contract: Address,
}

/// Runs anchoring rounds until shutdown. Failures (RPC down, out of gas) are logged and the
/// round is retried on the next tick; nothing is lost because batches live in the store.
pub async fn run(state: AppState, rpc_url: String, key: PrivateKeySigner, target: Target, shutdown: CancellationToken) {
    let Ok(url) = rpc_url.parse() else { return };
    let provider = ProviderBuilder::new().wallet(EthereumWallet::from(key)).connect_http(url);
    let contract = IMessageAnchor::new(target.contract, provider);
    let cfg = state.config.anchor.clone().unwrap_or_default();
    let mut tick = tokio::time::interval(Duration::from_secs(cfg.interval_secs.max(1)));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        // Full batches mean a backlog: keep going until it is drained.
        loop {
            // Shutdown does not wait for a receipt: the batch is in the store before its
            // transaction is sent, and the next start settles it.
            let bump_after = Duration::from_secs(cfg.bump_after_secs.max(1));
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = round(&state, &contract, target, cfg.batch_size, bump_after) => r,
            };
            match outcome {
                Ok(full) if full && !shutdown.is_cancelled() => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(target: "node::anchor", error = %e, "anchoring round failed; retrying next round");
                    break;
                }
            }
        }
    }
}

/// Settles pending batches, then anchors one new batch; `true` when that batch was full.
async fn round<P: Provider>(
    state: &AppState,
    contract: &IMessageAnchor::IMessageAnchorInstance<P>,
    target: Target,
    batch_size: u32,
    bump_after: Duration,
) -> eyre::Result<bool> {
    for (root, count) in state.store.pending_batches(target.chain_id, &target.contract).await? {
        settle(state, contract, root, count, bump_after).await?;
    }
    let batch_size = batch_size.max(1);
    let ids = state.store.unanchored_local(batch_size).await?;
    let Some(tree) = Tree::new(&ids) else { return Ok(false) };
    let root = tree.root();
    state.store.create_batch(&root, &ids, state.now(), target.chain_id, &target.contract).await?;
    settle(state, contract, root, ids.len() as u64, bump_after).await?;
    Ok(ids.len() as u32 == batch_size)
}

/// Puts a recorded batch on chain (unless it already is) and records the outcome.
async fn settle<P: Provider>(
    state: &AppState,
    contract: &IMessageAnchor::IMessageAnchorInstance<P>,
    root: B256,
    count: u64,
    bump_after: Duration,
) -> eyre::Result<()> {
    let existing = contract.batchOf(root).call().await?;
    if !existing.is_zero() {
        state.store.mark_anchored(&root, existing.to::<u64>(), None, None).await?;
        return Ok(());
    }
    let receipt = send_with_bumps(contract, root, count, bump_after).await?;
    if !receipt.status() {
        eyre::bail!("anchor transaction {} reverted", receipt.transaction_hash);
    }
    let batch_id = contract.batchOf(root).call().await?;
    state
        .store
        .mark_anchored(&root, batch_id.to::<u64>(), Some(receipt.transaction_hash), receipt.block_number)
        .await?;
    tracing::info!(target: "node::anchor", %root, count, batch = %batch_id, tx = %receipt.transaction_hash, "anchored");
    Ok(())
}

/// Most fee bumps for one anchoring transaction.
const MAX_BUMPS: u32 = 10;

/// Sends `anchor(root, count)` and waits for it to be mined; while it is not, after each
/// `bump_after` it is sent again with the same nonce and fees raised by 25% (a replacement the
/// pool accepts), so a transaction stuck under a rising base fee still lands. Whichever of the
/// versions is mined gives the receipt.
async fn send_with_bumps<P: Provider>(
    contract: &IMessageAnchor::IMessageAnchorInstance<P>,
    root: B256,
    count: u64,
    bump_after: Duration,
) -> eyre::Result<alloy::rpc::types::TransactionReceipt> {
    use alloy::consensus::Transaction as _;
    let provider = contract.provider();
    let mut request = contract.anchor(root, count).into_transaction_request();
    let first = *provider.send_transaction(request.clone()).await?.tx_hash();
    let mut hashes = vec![first];
    let sent = provider
        .get_transaction_by_hash(first)
        .await?
        .ok_or_else(|| eyre::eyre!("the node does not know the transaction it just sent"))?;
    request.nonce = Some(sent.nonce());
    request.gas = Some(sent.gas_limit());
    let mut max_fee = sent.max_fee_per_gas();
    let mut priority = sent.max_priority_fee_per_gas().unwrap_or_default();
    let mut bumps = 0;
    loop {
        let deadline = tokio::time::Instant::now() + bump_after;
        while tokio::time::Instant::now() < deadline {
            for hash in &hashes {
                if let Some(receipt) = provider.get_transaction_receipt(*hash).await? {
                    return Ok(receipt);
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        if bumps == MAX_BUMPS {
            eyre::bail!("anchor transaction {first} not mined after {MAX_BUMPS} fee bumps");
        }
        bumps += 1;
        max_fee = max_fee + max_fee / 4 + 1;
        priority = priority + priority / 4 + 1;
        request.max_fee_per_gas = Some(max_fee);
        request.max_priority_fee_per_gas = Some(priority);
        match provider.send_transaction(request.clone()).await {
            Ok(pending) => {
                tracing::info!(target: "node::anchor", %root, bump = bumps, max_fee, tx = %pending.tx_hash(), "fee bumped");
                hashes.push(*pending.tx_hash());
            }
            // "nonce too low": a version was mined in between; its receipt turns up above.
            Err(e) => tracing::debug!(target: "node::anchor", error = %e, "replacement not accepted"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::IMessageAnchor;
    use crate::chain::artifacts::assert_has;

    #[test]
    fn interface_matches_the_contract() {
        assert_has::<IMessageAnchor::anchorCall>("MessageAnchor", "MessageAnchor");
        assert_has::<IMessageAnchor::batchOfCall>("MessageAnchor", "MessageAnchor");
        assert_has::<IMessageAnchor::verifyCall>("MessageAnchor", "MessageAnchor");
        assert_has::<IMessageAnchor::canAnchorCall>("MessageAnchor", "MessageAnchor");
    }
}
