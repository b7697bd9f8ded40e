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
}

impl Default for AnchorConfig {
    fn default() -> Self {
        Self { deployments: PathBuf::from("deployments.json"), batch_size: 1000, interval_secs: 60 }
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
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = round(&state, &contract, target, cfg.batch_size) => r,
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
) -> eyre::Result<bool> {
    for (root, count) in state.store.pending_batches(target.chain_id, &target.contract).await? {
        settle(state, contract, root, count).await?;
    }
    let batch_size = batch_size.max(1);
    let ids = state.store.unanchored_local(batch_size).await?;
    let Some(tree) = Tree::new(&ids) else { return Ok(false) };
    let root = tree.root();
    state.store.create_batch(&root, &ids, state.now(), target.chain_id, &target.contract).await?;
    settle(state, contract, root, ids.len() as u64).await?;
    Ok(ids.len() as u32 == batch_size)
}

/// Puts a recorded batch on chain (unless it already is) and records the outcome.
async fn settle<P: Provider>(
    state: &AppState,
    contract: &IMessageAnchor::IMessageAnchorInstance<P>,
    root: B256,
    count: u64,
) -> eyre::Result<()> {
    let existing = contract.batchOf(root).call().await?;
    if !existing.is_zero() {
        state.store.mark_anchored(&root, existing.to::<u64>(), None, None).await?;
        return Ok(());
    }
    let receipt = contract.anchor(root, count).send().await?.get_receipt().await?;
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
