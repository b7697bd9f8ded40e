//! Anchoring: the node gathers the ids of messages its own clients posted into Merkle batches
//! and records each batch's root in the `MessageAnchor` contract under its anchor key's address,
//! so anyone can check later that a message existed by then (`verify(anchorer, root, id,
//! proof)`). A batch is written to the store before its transaction is sent; after a restart,
//! pending batches are settled first, and a root this key already anchored is recognised
//! (`anchorOf`) instead of anchored twice, its transaction found from the `Anchored` log.

use std::{path::PathBuf, time::Duration};

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256},
    providers::{Provider, ProviderBuilder},
    rpc::types::Filter,
    signers::local::PrivateKeySigner,
    sol,
    sol_types::SolEvent,
};
use dchat_protocol::merkle::Tree;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::api::AppState;

sol! {
    /// The parts of `MessageAnchor` the node calls.
    #[sol(rpc)]
    interface IMessageAnchor {
        /// What is recorded for an anchored root (all zero when not anchored).
        struct Anchor { uint64 count; uint64 timestamp; uint64 blockNumber; }
        /// `anchorer` anchored `root`.
        event Anchored(address indexed anchorer, bytes32 indexed root, uint64 count);
        function anchor(bytes32 root, uint64 count) external;
        function anchorOf(address anchorer, bytes32 root) external view returns (Anchor memory record);
        function verify(address anchorer, bytes32 root, bytes32 messageHash, bytes32[] proof) external view returns (bool);
        function verifyFromActiveNode(address anchorer, bytes32 root, bytes32 messageHash, bytes32[] proof) external view returns (bool);
        function registry() external view returns (address);
    }

    /// The part of `NodeRegistry` the start-up check reads.
    #[sol(rpc)]
    interface INodeRegistryActive {
        function isActive(address operator) external view returns (bool);
    }
}

/// Checks at start-up that `contract` is a `MessageAnchor` with this interface, and whether
/// `anchorer` is an active node in its registry (readers who trust only active nodes ignore the
/// anchors of other accounts, which the contract accepts all the same). Returns the registry
/// and that answer.
pub async fn check_target<P: Provider>(
    provider: &P,
    contract: Address,
    anchorer: Address,
) -> eyre::Result<(Address, bool)> {
    use eyre::WrapErr;
    let anchors = IMessageAnchor::new(contract, provider);
    anchors.anchorOf(anchorer, B256::ZERO).call().await.wrap_err_with(|| {
        format!("MessageAnchor {contract} does not answer anchorOf; deploy the current contracts with dchat-deploy")
    })?;
    let registry = anchors.registry().call().await.wrap_err("asking MessageAnchor for its NodeRegistry")?;
    let active = INodeRegistryActive::new(registry, provider)
        .isActive(anchorer)
        .call()
        .await
        .wrap_err("asking NodeRegistry whether the anchor key runs an active node")?;
    Ok((registry, active))
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

/// Where anchors go, and from whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Chain id.
    pub chain_id: u64,
    /// `MessageAnchor` address.
    pub contract: Address,
    /// The anchor key's address: anchors are recorded on chain under it.
    pub anchorer: Address,
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
        settle(state, contract, target.anchorer, root, count, bump_after).await?;
    }
    let batch_size = batch_size.max(1);
    let ids = state.store.unanchored_local(batch_size).await?;
    let Some(tree) = Tree::new(&ids) else { return Ok(false) };
    let root = tree.root();
    state.store.create_batch(&root, &ids, state.now(), target.chain_id, &target.contract).await?;
    settle(state, contract, target.anchorer, root, ids.len() as u64, bump_after).await?;
    Ok(ids.len() as u32 == batch_size)
}

/// Puts a recorded batch on chain under `anchorer` (unless it already is) and records the outcome.
async fn settle<P: Provider>(
    state: &AppState,
    contract: &IMessageAnchor::IMessageAnchorInstance<P>,
    anchorer: Address,
    root: B256,
    count: u64,
    bump_after: Duration,
) -> eyre::Result<()> {
    let existing = contract.anchorOf(anchorer, root).call().await?;
    if existing.count != 0 {
        // Sent before a restart (or by another process with this key) and mined since.
        let block = existing.blockNumber;
        let tx = match anchoring_tx(contract, anchorer, root, block).await {
            Ok(tx) => tx,
            Err(e) => {
                tracing::debug!(target: "node::anchor", %root, error = %e, "could not find the anchoring transaction");
                None
            }
        };
        state.store.mark_anchored(&root, &anchorer, tx, Some(block)).await?;
        tracing::info!(target: "node::anchor", %root, block, "found already anchored");
        return Ok(());
    }
    let receipt = send_with_bumps(contract, root, count, bump_after).await?;
    if !receipt.status() {
        eyre::bail!("anchor transaction {} reverted", receipt.transaction_hash);
    }
    state.store.mark_anchored(&root, &anchorer, Some(receipt.transaction_hash), receipt.block_number).await?;
    tracing::info!(target: "node::anchor", %root, count, tx = %receipt.transaction_hash, "anchored");
    Ok(())
}

/// The transaction that anchored `root` under `anchorer`, from its `Anchored` log in `block`
/// (the block `anchorOf` records).
async fn anchoring_tx<P: Provider>(
    contract: &IMessageAnchor::IMessageAnchorInstance<P>,
    anchorer: Address,
    root: B256,
    block: u64,
) -> eyre::Result<Option<B256>> {
    let filter = Filter::new()
        .address(*contract.address())
        .event_signature(IMessageAnchor::Anchored::SIGNATURE_HASH)
        .topic1(anchorer.into_word())
        .topic2(root)
        .from_block(block)
        .to_block(block);
    let logs = contract.provider().get_logs(&filter).await?;
    Ok(logs.iter().find(|l| !l.removed).and_then(|l| l.transaction_hash))
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
    use super::{IMessageAnchor, INodeRegistryActive};
    use crate::chain::artifacts::assert_has;

    #[test]
    fn interface_matches_the_contract() {
        assert_has::<IMessageAnchor::anchorCall>("MessageAnchor", "MessageAnchor");
        assert_has::<IMessageAnchor::anchorOfCall>("MessageAnchor", "MessageAnchor");
        assert_has::<IMessageAnchor::verifyCall>("MessageAnchor", "MessageAnchor");
        assert_has::<IMessageAnchor::verifyFromActiveNodeCall>("MessageAnchor", "MessageAnchor");
        assert_has::<IMessageAnchor::registryCall>("MessageAnchor", "MessageAnchor");
        assert_has::<INodeRegistryActive::isActiveCall>("NodeRegistry", "NodeRegistry");
    }

    /// The `Anchored` event the node looks up after a restart is the contract's.
    #[test]
    fn anchored_event_matches_the_contract() {
        use alloy::sol_types::SolEvent;
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../out/MessageAnchor.sol/MessageAnchor.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; build the contracts first (scripts/forge-test)", path.display()));
        let json: serde_json::Value = serde_json::from_str(&text).expect("artifact json");
        let events: Vec<String> = json["abi"]
            .as_array()
            .expect("abi")
            .iter()
            .filter(|e| e["type"] == "event")
            .map(|e| {
                let inputs = e["inputs"].as_array().expect("inputs");
                let types: Vec<&str> = inputs.iter().map(|i| i["type"].as_str().expect("type")).collect();
                let indexed: Vec<bool> = inputs.iter().map(|i| i["indexed"] == true).collect();
                format!("{}({}) {indexed:?}", e["name"].as_str().expect("name"), types.join(","))
            })
            .collect();
        let want = format!("{} {:?}", IMessageAnchor::Anchored::SIGNATURE, [true, true, false]);
        assert!(events.contains(&want), "{want} not in {events:?}");
    }
}
