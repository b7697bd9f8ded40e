//! Anchoring on a real chain: messages posted at a node end up in a batch whose root is in
//! `MessageAnchor` under the node's anchor key, and the proof the node serves verifies both in
//! Rust and on chain.

use std::time::Duration;

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256},
    providers::{Provider, ProviderBuilder},
    rpc::types::Filter,
    signers::local::PrivateKeySigner,
    sol,
    sol_types::SolEvent,
};
use dchat_node::{
    Secrets,
    anchor::{AnchorConfig, IMessageAnchor as Anchor},
    client::{Client, SignIn},
    config::Config,
    deploy::{self, Options},
    store::RoomKind,
};
use ed25519_dalek::SigningKey;

use crate::common::{Anvil, DEV_KEY, repo};

sol! {
    #[sol(rpc)]
    interface Registry {
        function register(bytes peerId, string[] multiaddrs, string url) external payable;
    }
}

/// Every `Anchored` event of the contract: (anchorer, root, count, transaction).
async fn anchored_events(anvil: &Anvil, contract: Address) -> Vec<(Address, B256, u64, B256)> {
    let provider = ProviderBuilder::new().connect_http(anvil.url.parse().expect("url"));
    let filter = Filter::new().address(contract).event_signature(Anchor::Anchored::SIGNATURE_HASH).from_block(0);
    let logs = provider.get_logs(&filter).await.expect("logs");
    logs.iter()
        .map(|l| {
            let e = Anchor::Anchored::decode_log(&l.inner).expect("Anchored");
            (e.anchorer, e.root, e.count, l.transaction_hash.expect("tx"))
        })
        .collect()
}

/// Waits until the node serves the message's proof.
async fn proof_of(node_url: &str, id: &str, token: Option<&str>) -> serde_json::Value {
    let http = reqwest::Client::new();
    let url = format!("{node_url}/v1/messages/{id}/proof");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut req = http.get(&url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("proof");
        if resp.status().is_success() {
            return resp.json().await.expect("json");
        }
        let body: serde_json::Value = resp.json().await.expect("json");
        assert_eq!(body["error"], "not_anchored_yet", "only waiting is expected: {body}");
        assert!(tokio::time::Instant::now() < deadline, "not anchored in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn siblings_of(proof: &serde_json::Value) -> Vec<B256> {
    proof["proof"].as_array().expect("proof").iter().map(|h| h.as_str().expect("hex").parse().expect("b256")).collect()
}

/// Deploys the contracts on `anvil` and returns them with a node config that anchors there.
async fn anchoring_setup(anvil: &Anvil, dir: &std::path::Path) -> (deploy::Deployment, Config) {
    let owner: PrivateKeySigner = DEV_KEY.parse().expect("key");
    let d = deploy::deploy(&anvil.url, owner, &Options { artifacts: repo().join("out"), ..Options::default() })
        .await
        .expect("deploy");
    let deployments = dir.join("deployments.json");
    deploy::record(&deployments, &d).expect("record");
    let mut config = Config {
        http: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.join("node"),
        rpc_url: Some(anvil.url.clone()),
        database_url: crate::common::test_database().await,
        anchor: Some(AnchorConfig { deployments, batch_size: 100, interval_secs: 1, bump_after_secs: 60 }),
        ..Config::default()
    };
    config.p2p.enabled = false;
    (d, config)
}

#[tokio::test]
async fn posted_messages_get_anchored_and_their_proofs_verify_on_chain() {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (d, config) = anchoring_setup(&anvil, dir.path()).await;
    let key: PrivateKeySigner = DEV_KEY.parse().expect("key");
    let anchorer = key.address();
    let node = dchat_node::spawn_with(config, Secrets { anchor_key: Some(key) }).await.expect("node");

    let wallet = PrivateKeySigner::random();
    let device = SigningKey::from_bytes(&rand::random());
    let secret = dchat_protocol::e2e::BoxSecret::random();
    let mut client = Client::new(node.url()).with_box_secret(secret.clone());
    let s = SignIn {
        wallet: &wallet,
        device: Some(&device),
        box_key: Some(secret.public()),
        ttl_secs: 600,
        chain_id: None,
    };
    client.sign_in(&s).await.expect("sign in");
    let room = client.create_room(&wallet, &device, "anchored", RoomKind::Group, &[]).await.expect("room");
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(client.send_text(&room.id, &wallet, &device, &format!("m{i}")).await.expect("send").id);
    }

    let provider = ProviderBuilder::new().connect_http(anvil.url.parse().expect("url"));
    let contract = Anchor::new(d.message_anchor, &provider);
    let events = anchored_events(&anvil, d.message_anchor).await;
    for id in &ids {
        let proof = proof_of(&node.url(), id, client.token()).await;
        let siblings = siblings_of(&proof);
        let root: B256 = proof["root"].as_str().expect("root").parse().expect("b256");
        let message: B256 = id.parse().expect("id");
        assert!(dchat_protocol::merkle::verify(&root, &message, &siblings), "verifies in Rust");
        assert_eq!(proof["anchorer"].as_str(), Some(anchorer.to_checksum(None).as_str()), "{proof}");
        assert_eq!(proof["contract"].as_str(), Some(d.message_anchor.to_checksum(None).as_str()));
        assert!(
            contract.verify(anchorer, root, message, siblings.clone()).call().await.expect("call"),
            "verifies on chain"
        );
        // A different message does not verify with this proof, nor does another anchorer.
        assert!(!contract.verify(anchorer, root, B256::repeat_byte(1), siblings.clone()).call().await.expect("call"));
        assert!(!contract.verify(Address::repeat_byte(7), root, message, siblings).call().await.expect("call"));
        // The transaction served is the one that anchored this root under this key.
        let tx: B256 = proof["tx_hash"].as_str().expect("tx hash").parse().expect("b256");
        let events = if events.iter().any(|e| e.1 == root) {
            events.clone()
        } else {
            anchored_events(&anvil, d.message_anchor).await
        };
        let event = events.iter().find(|e| e.1 == root).expect("an Anchored event for the root");
        assert_eq!((event.0, event.3), (anchorer, tx), "anchorer and transaction");
        let receipt = provider.get_transaction_receipt(tx).await.expect("receipt").expect("mined");
        assert_eq!(proof["block"].as_u64(), receipt.block_number, "block");
    }
    // Someone outside the room may not read the proof.
    let http = reqwest::Client::new();
    let stranger = http.get(format!("{}/v1/messages/{}/proof", node.url(), ids[0])).send().await.expect("req");
    assert_eq!(stranger.status().as_u16(), 404, "not even the message's existence is revealed");
    node.shutdown().await;
}

/// Anyone may anchor: a key that runs no registered node anchors all the same, and its proofs
/// verify; readers that trust only active nodes count them once the key registers its node.
#[tokio::test]
async fn any_key_anchors_and_active_node_readers_count_it_once_registered() {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (d, mut config) = anchoring_setup(&anvil, dir.path()).await;
    config.rooms.default_channel = None;
    let operator = PrivateKeySigner::random();
    let provider = ProviderBuilder::new().connect_http(anvil.url.parse().expect("url"));
    let _: serde_json::Value = provider
        .raw_request("anvil_setBalance".into(), (operator.address(), "0x8ac7230489e80000"))
        .await
        .expect("fund the operator");
    let node = dchat_node::spawn_with(config, Secrets { anchor_key: Some(operator.clone()) }).await.expect("node");

    let wallet = PrivateKeySigner::random();
    let device = SigningKey::from_bytes(&rand::random());
    let mut client = Client::new(node.url());
    let s = SignIn { wallet: &wallet, device: Some(&device), box_key: None, ttl_secs: 600, chain_id: None };
    client.sign_in(&s).await.expect("sign in");
    let room = client.create_room(&wallet, &device, "open", RoomKind::Channel, &[]).await.expect("room");
    let id = client.send_text(&room.id, &wallet, &device, "hello").await.expect("send").id;
    let proof = proof_of(&node.url(), &id, None).await;
    assert_eq!(proof["anchorer"].as_str(), Some(operator.address().to_checksum(None).as_str()));
    let root: B256 = proof["root"].as_str().expect("root").parse().expect("b256");
    let message: B256 = id.parse().expect("id");
    let siblings = siblings_of(&proof);

    let contract = Anchor::new(d.message_anchor, &provider);
    let verify = || contract.verify(operator.address(), root, message, siblings.clone());
    let trusted = || contract.verifyFromActiveNode(operator.address(), root, message, siblings.clone());
    assert!(verify().call().await.expect("verify"), "anchored under the operator's key");
    assert!(!trusted().call().await.expect("verify"), "not an active node yet");

    let signer = ProviderBuilder::new()
        .wallet(EthereumWallet::from(operator.clone()))
        .connect_http(anvil.url.parse().expect("url"));
    let receipt = Registry::new(d.node_registry, &signer)
        .register(vec![0x00, 0x24, 0x01].into(), vec![], String::new())
        .send()
        .await
        .expect("register")
        .get_receipt()
        .await
        .expect("mined");
    assert!(receipt.status());
    assert!(trusted().call().await.expect("verify"), "an active node's anchor counts");
    node.shutdown().await;
}

/// A node stopped while its anchoring transaction is still pending (the chain is not mining)
/// settles that batch after a restart: the batch is anchored exactly once and every message of it
/// gets its proof.
#[tokio::test]
async fn a_restart_while_a_batch_is_pending_neither_loses_nor_repeats_it() {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (d, mut config) = anchoring_setup(&anvil, dir.path()).await;
    config.rooms.default_channel = None;
    let owner: PrivateKeySigner = DEV_KEY.parse().expect("key");
    let provider = ProviderBuilder::new().connect_http(anvil.url.parse().expect("url"));
    let _: serde_json::Value = provider.raw_request("evm_setAutomine".into(), (false,)).await.expect("automine off");

    let node = dchat_node::spawn_with(config.clone(), Secrets { anchor_key: Some(owner.clone()) }).await.expect("node");
    let wallet = PrivateKeySigner::random();
    let device = SigningKey::from_bytes(&rand::random());
    let mut client = Client::new(node.url());
    let s = SignIn { wallet: &wallet, device: Some(&device), box_key: None, ttl_secs: 600, chain_id: None };
    client.sign_in(&s).await.expect("sign in");
    let room = client.create_room(&wallet, &device, "pending", RoomKind::Channel, &[]).await.expect("room");
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(client.send_text(&room.id, &wallet, &device, &format!("m{i}")).await.expect("send").id);
    }
    // Wait until the batch is recorded and its transaction sits in the pool.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let pool: serde_json::Value = provider.raw_request("txpool_content".into(), ()).await.expect("txpool");
        let pending = pool["pending"].as_object().is_some_and(|p| !p.is_empty());
        if pending {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no anchoring transaction was sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.shutdown().await;

    // The chain mines again (the pending transaction lands); the node restarts and settles.
    let _: serde_json::Value = provider.raw_request("evm_setAutomine".into(), (true,)).await.expect("automine on");
    let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await.expect("mine");
    let node = dchat_node::spawn_with(config, Secrets { anchor_key: Some(owner) }).await.expect("node restarts");
    let http = reqwest::Client::new();
    let mut roots = std::collections::BTreeSet::new();
    for id in &ids {
        let url = format!("{}/v1/messages/{id}/proof", node.url());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let proof: serde_json::Value = loop {
            let resp = http.get(&url).send().await.expect("proof");
            if resp.status().is_success() {
                break resp.json().await.expect("json");
            }
            assert!(tokio::time::Instant::now() < deadline, "not anchored after the restart");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        roots.insert(proof["root"].as_str().expect("root").to_string());
    }
    let events = anchored_events(&anvil, d.message_anchor).await;
    assert_eq!(roots.len(), 1, "one batch held every message");
    assert_eq!(events.len(), 1, "anchored exactly once: {events:?}");
    assert_eq!(format!("{}", events[0].1), *roots.first().expect("root"), "that batch");
    // The restarted node found the transaction sent before the restart, from its log.
    let proof = proof_of(&node.url(), &ids[0], None).await;
    assert_eq!(proof["tx_hash"].as_str(), Some(format!("{}", events[0].3).as_str()), "{proof}");
    node.shutdown().await;
}

/// A transaction that is not mined is replaced (same nonce, higher fees) until one lands; the
/// batch is anchored once.
#[tokio::test]
async fn an_unmined_anchor_is_replaced_with_higher_fees() {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (d, mut config) = anchoring_setup(&anvil, dir.path()).await;
    config.rooms.default_channel = None;
    if let Some(a) = config.anchor.as_mut() {
        a.bump_after_secs = 1;
    }
    let owner: PrivateKeySigner = DEV_KEY.parse().expect("key");
    let provider = ProviderBuilder::new().connect_http(anvil.url.parse().expect("url"));
    let _: serde_json::Value = provider.raw_request("evm_setAutomine".into(), (false,)).await.expect("automine off");
    let node = dchat_node::spawn_with(config, Secrets { anchor_key: Some(owner.clone()) }).await.expect("node");
    let wallet = PrivateKeySigner::random();
    let device = SigningKey::from_bytes(&rand::random());
    let mut client = Client::new(node.url());
    let s = SignIn { wallet: &wallet, device: Some(&device), box_key: None, ttl_secs: 600, chain_id: None };
    client.sign_in(&s).await.expect("sign in");
    let room = client.create_room(&wallet, &device, "bumps", RoomKind::Channel, &[]).await.expect("room");
    let id = client.send_text(&room.id, &wallet, &device, "stuck").await.expect("send").id;

    // Watch the pool: the node's one pending transaction gets replaced with a higher fee.
    let fee_of = |pool: &serde_json::Value| -> Option<u128> {
        let by_sender = pool["pending"].as_object()?.values().next()?.as_object()?;
        assert_eq!(by_sender.len(), 1, "one nonce pending, replaced rather than queued behind");
        let tx = by_sender.values().next()?;
        u128::from_str_radix(tx["maxFeePerGas"].as_str()?.trim_start_matches("0x"), 16).ok()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let first = loop {
        let pool: serde_json::Value = provider.raw_request("txpool_content".into(), ()).await.expect("txpool");
        if let Some(fee) = fee_of(&pool) {
            break fee;
        }
        assert!(tokio::time::Instant::now() < deadline, "no anchoring transaction was sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let bumped = loop {
        let pool: serde_json::Value = provider.raw_request("txpool_content".into(), ()).await.expect("txpool");
        if let Some(fee) = fee_of(&pool).filter(|f| *f > first) {
            break fee;
        }
        assert!(tokio::time::Instant::now() < deadline, "the fee was never bumped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(bumped >= first + first / 4, "bumped by at least 25%: {first} -> {bumped}");
    let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await.expect("mine");
    let http = reqwest::Client::new();
    let url = format!("{}/v1/messages/{id}/proof", node.url());
    loop {
        if http.get(&url).send().await.expect("proof").status().is_success() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not anchored after mining");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(anchored_events(&anvil, d.message_anchor).await.len(), 1, "anchored once");
    node.shutdown().await;
}
