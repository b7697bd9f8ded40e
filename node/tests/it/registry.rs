//! Bootstrapping from NodeRegistry on a real chain: a node registered on anvil is found and
//! dialled by a node that knows nothing but the deployments file.

use std::time::Duration;

use alloy::{
    network::{EthereumWallet, TransactionBuilder},
    providers::{Provider, ProviderBuilder},
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
    sol,
    sol_types::SolCall,
};
use dchat_node::deploy::{self, Options};

use crate::common::{Anvil, DEV_KEY, TestNode, repo};

sol! {
    interface Registry {
        function register(bytes peerId, string[] multiaddrs, string url) external payable;
    }
}

#[tokio::test]
async fn a_node_dials_the_peers_registered_on_chain() {
    let anvil = Anvil::start();
    let owner: PrivateKeySigner = DEV_KEY.parse().expect("key");
    let d = deploy::deploy(&anvil.url, owner.clone(), &Options { artifacts: repo().join("out"), ..Options::default() })
        .await
        .expect("deploy");
    let dir = tempfile::tempdir().expect("tempdir");
    let deployments = dir.path().join("deployments.json");
    deploy::record(&deployments, &d).expect("record");

    // Node A registers its peer id and TCP address.
    let a = TestNode::start().await;
    let peer = a.p2p().peer_id();
    let tcp: Vec<String> = a
        .p2p()
        .addresses()
        .await
        .iter()
        .map(ToString::to_string)
        .filter(|s| s.contains("/tcp/"))
        .map(|s| s.split("/p2p/").next().unwrap_or_default().to_string())
        .collect();
    assert!(!tcp.is_empty(), "node A listens on TCP");
    let call =
        Registry::registerCall { peerId: peer.to_bytes().into(), multiaddrs: tcp, url: a.node.url() }.abi_encode();
    let provider =
        ProviderBuilder::new().wallet(EthereumWallet::from(owner)).connect_http(anvil.url.parse().expect("url"));
    let tx = TransactionRequest::default().with_to(d.node_registry).with_input(call);
    let receipt = provider.send_transaction(tx).await.expect("send").get_receipt().await.expect("receipt");
    assert!(receipt.status(), "register reverted");

    // Node B has no bootstrap peers of its own, only the registry.
    let rpc = anvil.url.clone();
    let b = TestNode::with(move |c| {
        c.rpc_url = Some(rpc);
        c.p2p.bootstrap = Vec::new();
        c.p2p.registry = Some(deployments);
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !b.p2p().peers().await.contains(&peer) {
        assert!(tokio::time::Instant::now() < deadline, "node B never connected to the registered node");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
