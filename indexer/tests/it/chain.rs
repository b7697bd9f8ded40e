//! The chain follower against anvil: dchat's contracts deployed, events indexed block by
//! block, a reorg of depth 3 rolled back to exactly the canonical chain's events, and a
//! confirmation depth respected.

use std::collections::BTreeSet;

use alloy::{
    network::{EthereumWallet, TransactionBuilder},
    primitives::{Address, B256, U256},
    providers::{Provider, ProviderBuilder},
    rpc::types::{Filter, TransactionRequest},
    signers::local::PrivateKeySigner,
    sol,
    sol_types::SolCall,
};
use dchat_indexer::config::ChainConfig;
use dchat_node::deploy::{Deployment, Options, deploy};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Anvil, DEV_KEY, Env, repo, wait_for};

sol! {
    function anchor(bytes32 root, uint64 count) external;
    function tip(address to, bytes32 messageHash) external payable;
}

/// anvil's second development account (a public test key).
const OTHER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

async fn deployed(anvil: &Anvil) -> Deployment {
    let owner: PrivateKeySigner = DEV_KEY.parse().expect("dev key");
    let options = Options { artifacts: repo().join("out"), ..Options::default() };
    deploy(&anvil.url, owner, &options).await.expect("deploy the contracts (scripts/forge-test builds them)")
}

fn chain_config(anvil: &Anvil, d: &Deployment, confirmations: u64) -> ChainConfig {
    ChainConfig {
        rpc_url: anvil.url.clone(),
        message_anchor: Some(d.message_anchor),
        payments: Some(d.payments),
        node_registry: Some(d.node_registry),
        start_block: Some(d.block),
        confirmations,
        poll_ms: 50,
        ..ChainConfig::default()
    }
}

fn anchor_tx(d: &Deployment, root: B256) -> TransactionRequest {
    let data = anchorCall { root, count: 10 }.abi_encode();
    TransactionRequest::default().with_to(d.message_anchor).with_input(data)
}

fn tip_tx(d: &Deployment, to: Address, message: B256) -> TransactionRequest {
    let data = tipCall { to, messageHash: message }.abi_encode();
    TransactionRequest::default().with_to(d.payments).with_input(data).with_value(U256::from(1_000_000u64))
}

/// (block, log index, tx hash) of every log of the contracts on the chain as it is now, of the
/// events dchat indexes (ownership and fee settings are not).
async fn canonical_logs(anvil: &Anvil, d: &Deployment) -> BTreeSet<(u64, u64, String)> {
    let provider = ProviderBuilder::new().connect_http(anvil.url.parse().expect("url"));
    let filter = Filter::new().from_block(d.block).address(vec![d.message_anchor, d.payments, d.node_registry]);
    let logs = provider.get_logs(&filter).await.expect("logs");
    logs.iter()
        .filter(|l| dchat_indexer::chain::decode(l).is_some())
        .map(|l| {
            (
                l.block_number.expect("block"),
                l.log_index.expect("index"),
                format!("{:#x}", l.transaction_hash.expect("tx")),
            )
        })
        .collect()
}

/// (block, log index, tx hash) of every event the index holds.
async fn indexed_logs(env: &Env) -> BTreeSet<(u64, u64, String)> {
    let rows: Vec<(i64, i64, Vec<u8>)> =
        sqlx::query_as("SELECT block_number, log_index, tx_hash FROM chain_events ORDER BY 1, 2")
            .fetch_all(env.indexer().store().pool())
            .await
            .expect("events");
    rows.into_iter()
        .map(|(b, i, tx)| {
            (u64::try_from(b).expect("b"), u64::try_from(i).expect("i"), format!("0x{}", hex::encode(tx)))
        })
        .collect()
}

async fn status(env: &Env) -> Value {
    let (code, body) = env.get("/v1/chain/status", None).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_of_depth_3_leaves_exactly_the_canonical_events() {
    let anvil = Anvil::start();
    let d = deployed(&anvil).await;
    let wallet: PrivateKeySigner = DEV_KEY.parse().expect("dev key");
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(wallet.clone()))
        .connect_http(anvil.url.parse().expect("url"));
    let mut env = Env::start().await;
    let mut config = env.config();
    config.chain = Some(chain_config(&anvil, &d, 0));
    env.start_indexer(config).await;

    // Six blocks with events: anchors r1..r3, a tip, anchors r4 and r5.
    let root = |i: u8| B256::repeat_byte(i);
    let bob = Address::repeat_byte(0xb0);
    let mut txs = vec![anchor_tx(&d, root(1)), anchor_tx(&d, root(2)), anchor_tx(&d, root(3))];
    txs.push(tip_tx(&d, bob, B256::repeat_byte(0x71)));
    txs.extend([anchor_tx(&d, root(4)), anchor_tx(&d, root(5))]);
    for tx in txs {
        let receipt = provider.send_transaction(tx).await.expect("send").get_receipt().await.expect("mined");
        assert!(receipt.status(), "transaction succeeded");
    }
    let head = provider.get_block_number().await.expect("head");
    wait_for("the follower to reach the head", || async { status(&env).await["indexed_block"] == json!(head) }).await;
    let before = indexed_logs(&env).await;
    assert_eq!(before, canonical_logs(&anvil, &d).await, "the index holds the chain's events");
    let (_, anchors) = env.get("/v1/chain/anchors", None).await;
    assert_eq!(anchors["anchors"].as_array().expect("anchors").len(), 5, "{anchors}");
    let (_, tips) = env.get("/v1/chain/events?event=Tipped", None).await;
    assert_eq!(tips["events"].as_array().expect("events").len(), 1, "{tips}");

    // Replace the last three blocks (the tip, r4, r5): the new chain anchors r6 and tips another
    // message instead.
    let from = format!("{:#x}", wallet.address());
    let to_anchor = format!("{:#x}", d.message_anchor);
    let to_pay = format!("{:#x}", d.payments);
    let r6 = format!("0x{}", hex::encode(anchorCall { root: root(6), count: 10 }.abi_encode()));
    let tip2 = format!("0x{}", hex::encode(tipCall { to: bob, messageHash: B256::repeat_byte(0x72) }.abi_encode()));
    // Nonces as of the block the new chain grows from; gas set (an estimate made against the
    // old chain's state can fall short).
    let nonce = provider.get_transaction_count(wallet.address()).block_id((head - 3).into()).await.expect("nonce");
    let pairs = json!([
        [{"from": from, "to": to_anchor, "data": r6, "gas": "0x40000", "nonce": format!("{nonce:#x}")}, 0],
        [{"from": from, "to": to_pay, "data": tip2, "value": "0xf4240", "gas": "0x40000", "nonce": format!("{:#x}", nonce + 1)}, 2],
    ]);
    let _: Value = provider.raw_request("anvil_reorg".into(), (3u64, pairs)).await.expect("anvil_reorg");
    assert_eq!(provider.get_block_number().await.expect("head"), head, "same height, other blocks");
    let canonical = canonical_logs(&anvil, &d).await;
    assert_ne!(canonical, before, "the reorg changed the chain's events");

    wait_for("the follower to roll back and reread the new blocks", || async {
        indexed_logs(&env).await == canonical && status(&env).await["indexed_block"] == json!(head)
    })
    .await;
    let s = status(&env).await;
    assert!(s["reorgs"].as_u64().expect("reorgs") >= 1, "{s}");
    assert!(s["rolled_back_blocks"].as_u64().expect("rolled back") >= 3, "{s}");

    let (_, anchors) = env.get("/v1/chain/anchors", None).await;
    let roots: Vec<&str> =
        anchors["anchors"].as_array().expect("anchors").iter().map(|a| a["root"].as_str().expect("root")).collect();
    let want: Vec<String> = [1u8, 2, 3, 6].iter().map(|i| format!("{}", root(*i))).collect();
    assert_eq!(roots, want, "r1-r3 and the new chain's r6, in chain order; r4 and r5 are gone: {anchors}");
    let anchorer = format!("{:#x}", wallet.address());
    assert!(
        anchors["anchors"].as_array().expect("anchors").iter().all(|a| a["anchorer"] == json!(anchorer)),
        "{anchors}"
    );
    let (_, tips) = env.get("/v1/chain/events?event=Tipped", None).await;
    let tips = tips["events"].as_array().expect("events").clone();
    assert_eq!(tips.len(), 1, "{tips:?}");
    assert_eq!(tips[0]["data"]["message_hash"], json!(B256::repeat_byte(0x72)), "only the new chain's tip");
    let (_, old) = env.get(&format!("/v1/chain/events?message_hash={}", B256::repeat_byte(0x71)), None).await;
    assert_eq!(old["events"], json!([]), "the orphaned tip is gone");
    let metrics = env.http.get(format!("{}/metrics", env.indexer().url())).send().await.expect("metrics");
    let text = metrics.text().await.expect("text");
    assert!(text.contains("dchat_indexer_chain_lag_blocks 0\n"), "{text}");
    env.stop_indexer().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_wait_for_their_confirmations_and_bad_queries_get_codes() {
    let anvil = Anvil::start();
    let d = deployed(&anvil).await;
    let wallet: PrivateKeySigner = DEV_KEY.parse().expect("dev key");
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(wallet.clone()))
        .connect_http(anvil.url.parse().expect("url"));
    let mut env = Env::start().await;
    let mut config = env.config();
    config.chain = Some(chain_config(&anvil, &d, 3));
    env.start_indexer(config).await;

    let receipt = provider
        .send_transaction(anchor_tx(&d, B256::repeat_byte(9)))
        .await
        .expect("send")
        .get_receipt()
        .await
        .expect("mined");
    let block = receipt.block_number.expect("block");
    let _: Value = provider.raw_request("anvil_mine".into(), (2u64,)).await.expect("mine");
    wait_for("the follower to read up to the block before the anchor", || async {
        status(&env).await["indexed_block"].as_u64() == Some(block - 1)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, anchors) = env.get("/v1/chain/anchors", None).await;
    assert_eq!(anchors["anchors"], json!([]), "buried under 2 blocks only: {anchors}");
    assert_eq!(status(&env).await["indexed_block"].as_u64(), Some(block - 1), "head - 3 at most");
    let _: Value = provider.raw_request("anvil_mine".into(), (1u64,)).await.expect("mine");
    wait_for("the anchor once confirmed", || async {
        let (_, a) = env.get("/v1/chain/anchors", None).await;
        a["anchors"].as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
    let (_, anchors) = env.get("/v1/chain/anchors", None).await;
    let first = &anchors["anchors"][0];
    assert_eq!(first["tx_hash"], json!(format!("{:#x}", receipt.transaction_hash)));
    assert_eq!(first["count"], 10);
    assert_eq!(first["anchorer"], json!(format!("{:#x}", wallet.address())), "{anchors}");
    assert_eq!(first["root"], json!(B256::repeat_byte(9)), "{anchors}");
    assert_eq!(first["contract"], json!(format!("{:#x}", d.message_anchor)), "{anchors}");

    // Another account anchors the same root: its own anchor, listed beside the first.
    let other: PrivateKeySigner = OTHER_KEY.parse().expect("key");
    let other_address = other.address();
    let other_provider =
        ProviderBuilder::new().wallet(EthereumWallet::from(other)).connect_http(anvil.url.parse().expect("url"));
    let receipt = other_provider
        .send_transaction(anchor_tx(&d, B256::repeat_byte(9)))
        .await
        .expect("send")
        .get_receipt()
        .await
        .expect("mined");
    assert!(receipt.status(), "a second anchorer may anchor the same root");
    let _: Value = provider.raw_request("anvil_mine".into(), (3u64,)).await.expect("mine");
    let by_root = format!("/v1/chain/anchors?root={}", B256::repeat_byte(9));
    wait_for("both anchors of the root", || async {
        let (_, a) = env.get(&by_root, None).await;
        a["anchors"].as_array().is_some_and(|a| a.len() == 2)
    })
    .await;
    let (_, mine) = env.get(&format!("/v1/chain/anchors?anchorer={other_address:#x}"), None).await;
    let mine = mine["anchors"].as_array().expect("anchors").clone();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["tx_hash"], json!(format!("{:#x}", receipt.transaction_hash)));
    // Paging: one per page, the cursor leads to the second.
    let (_, page) = env.get("/v1/chain/anchors?limit=1", None).await;
    let next = page["next"].as_str().expect("a next cursor").to_string();
    let (_, page2) = env.get(&format!("/v1/chain/anchors?limit=1&after={next}"), None).await;
    assert_eq!(page2["anchors"][0]["anchorer"], json!(format!("{other_address:#x}")), "{page2}");

    for (path, code) in [
        ("/v1/chain/events?event=Nope", "unknown_event"),
        ("/v1/chain/events?room=0x12", "invalid_room_id"),
        ("/v1/chain/events?account=zz", "invalid_address"),
        ("/v1/chain/events?after=7", "invalid_cursor"),
        ("/v1/chain/anchors?limit=0", "invalid_limit"),
        ("/v1/chain/anchors?after=7", "invalid_cursor"),
        ("/v1/chain/anchors?root=0x12", "invalid_root"),
        ("/v1/chain/anchors?anchorer=zz", "invalid_address"),
        ("/v1/chain/anchors?bogus=1", "invalid_query"),
    ] {
        let (status, body) = env.get(path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"], code, "{path}: {body}");
    }
    env.stop_indexer().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_chain_the_routes_say_so() {
    let mut env = Env::start().await;
    env.start_indexer(env.config()).await;
    let (status, body) = env.get("/v1/chain/status", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "chain_not_followed");
    env.stop_indexer().await;
}
