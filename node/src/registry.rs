//! Bootstrapping from `NodeRegistry`: with `[p2p] registry = "<deployments file>"` and an
//! `rpc_url`, a starting node reads the registered operators' multiaddrs from the contract of the
//! RPC's chain and dials them besides its configured bootstrap peers.

use std::path::Path;

use alloy::{
    primitives::U256,
    providers::{Provider, ProviderBuilder},
    sol,
};
use eyre::WrapErr;

sol! {
    /// The part of `NodeRegistry` a starting node reads.
    #[sol(rpc)]
    interface INodeRegistry {
        struct Node { bytes peerId; string[] multiaddrs; string url; uint96 stake; uint64 registeredAt; uint64 updatedAt; }
        struct NodeInfo { address operator; Node node; }
        function nodes(uint256 offset, uint256 limit) external view returns (NodeInfo[] memory page);
    }
}

/// Most registered nodes read at start.
const MAX_NODES: u64 = 256;

/// Multiaddrs of the registered nodes, each ending in `/p2p/<peer id>`, without `own` peer id's.
pub async fn bootstrap_peers(rpc_url: &str, deployments: &Path, own: &libp2p::PeerId) -> eyre::Result<Vec<String>> {
    let provider = ProviderBuilder::new().connect_http(rpc_url.parse().wrap_err("rpc_url is not a URL")?);
    let chain_id = provider.get_chain_id().await.wrap_err("eth_chainId")?;
    let all = crate::deploy::read(deployments)?;
    let d = all.get(&chain_id).ok_or_else(|| {
        eyre::eyre!("{} has no deployment for chain {chain_id} (the rpc_url's chain)", deployments.display())
    })?;
    let registry = INodeRegistry::new(d.node_registry, &provider);
    let page = registry.nodes(U256::ZERO, U256::from(MAX_NODES)).call().await.wrap_err("NodeRegistry.nodes")?;
    let mut out = Vec::new();
    for info in page {
        let Ok(peer) = libp2p::PeerId::from_bytes(&info.node.peerId) else { continue };
        if peer == *own {
            continue;
        }
        for addr in &info.node.multiaddrs {
            let full = if addr.contains("/p2p/") { addr.clone() } else { format!("{addr}/p2p/{peer}") };
            if full.parse::<libp2p::Multiaddr>().is_ok() {
                out.push(full);
            }
        }
    }
    Ok(out)
}
