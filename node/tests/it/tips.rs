//! Tip notifications against a real chain: anvil with the project's contracts, two nodes that
//! each follow the `Payments` contract, and a wallet whose devices use one node each.

use std::{path::Path, time::Duration};

use alloy::{
    network::{EthereumWallet, TransactionBuilder},
    primitives::{Address, B256, FixedBytes, U256},
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
    sol,
};
use dchat_node::{
    client::{NotificationView, SocialEvent},
    config::Config,
    deploy::{self, Deployment, Options},
    store::RoomKind,
    tips::tip_id,
};

use crate::{
    common::{Anvil, DEV_KEY, TestNode, User, repo},
    social::{connected, eventually, next_social, other_device},
};

/// anvil's second development account: the tipper.
const TIPPER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const CONFIRMATIONS: u64 = 2;

sol! {
    #[sol(rpc)]
    interface Pay {
        function tip(address to, bytes32 messageHash) external payable;
    }
}

/// Deploys the contracts and records them in `dir/deployments.json`.
async fn deploy_contracts(anvil: &Anvil, dir: &Path) -> (Deployment, std::path::PathBuf) {
    let owner: PrivateKeySigner = DEV_KEY.parse().expect("key");
    let d = deploy::deploy(&anvil.url, owner, &Options { artifacts: repo().join("out"), ..Options::default() })
        .await
        .expect("deploy");
    let path = dir.join("deployments.json");
    deploy::record(&path, &d).expect("record");
    (d, path)
}

/// A node config that follows tips on `rpc` through `deployments` (read as the dApp's file, as
/// `scripts/dev --devnet` sets it up).
fn follow_tips(c: &mut Config, rpc: &str, deployments: &Path) {
    c.rpc_url = Some(rpc.to_string());
    c.dapp.deployments = Some(deployments.to_path_buf());
    c.social.tips.confirmations = CONFIRMATIONS;
    c.social.tips.poll_interval_ms = 100;
}

async fn metric(node: &TestNode, name: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", node.node.url())).await.expect("metrics").text().await.expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

fn tips_of(list: &[NotificationView]) -> Vec<&NotificationView> {
    list.iter().filter(|n| n.kind == "tip").collect()
}

async fn mine(rpc: &str, blocks: u64) {
    let provider = ProviderBuilder::new().connect_http(rpc.parse().expect("url"));
    for _ in 0..blocks {
        let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await.expect("evm_mine");
    }
}

#[tokio::test]
async fn a_tip_is_notified_once_with_one_id_on_every_node_of_the_wallet() {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (d, deployments) = deploy_contracts(&anvil, dir.path()).await;
    let (rpc, file) = (anvil.url.clone(), deployments.clone());
    let a = TestNode::with(move |c| follow_tips(c, &rpc, &file)).await;
    let boot = a.addresses().await;
    let (rpc, file) = (anvil.url.clone(), deployments.clone());
    let b = TestNode::with(move |c| {
        follow_tips(c, &rpc, &file);
        c.p2p.bootstrap = boot;
    })
    .await;
    connected(&[&a, &b]).await;

    // Y posts in a channel on node A; its second device uses node B.
    let y = User::sign_in(&a).await;
    let (phone, y_on_b) = other_device(&b, &y).await;
    let room = y.create_room("tips", RoomKind::Channel, &[]).await.expect("room").id;
    let posted = y.client.send_text(&room, &y.wallet, &y.device, "worth a tip").await.expect("send");
    let message: B256 = posted.id.parse().expect("id");
    eventually(15, "the message reaches node B", || async {
        y_on_b.history(&room, None, None, Some(10)).await.is_ok_and(|p| p.messages.iter().any(|m| m.id == posted.id))
    })
    .await;
    let mut live = y.client.social_stream(&y.addr(), &[]).await.expect("stream");

    // X tips the message through Payments.
    let tipper: PrivateKeySigner = TIPPER_KEY.parse().expect("key");
    let x = tipper.address();
    let provider =
        ProviderBuilder::new().wallet(EthereumWallet::from(tipper)).connect_http(anvil.url.parse().expect("url"));
    let receipt = Pay::new(d.payments, &provider)
        .tip(y.addr(), FixedBytes::from(message.0))
        .value(U256::from(1_000_000u64))
        .send()
        .await
        .expect("send tip")
        .get_receipt()
        .await
        .expect("receipt");
    assert!(receipt.status(), "tip reverted");
    let log = receipt.inner.logs().iter().find(|l| l.address() == d.payments).expect("Tipped log");
    let block = receipt.block_number.expect("block");
    let id = tip_id(31337, &d.payments, &receipt.transaction_hash, log.log_index.expect("index")).to_string();

    // Below the confirmation depth (one block on top of it, two needed): both nodes read every
    // block before it, and not it.
    mine(&anvil.url, CONFIRMATIONS - 1).await;
    for node in [&a, &b] {
        eventually(15, "the follower reaches the tip's block", || async {
            metric(node, "dchat_tips_next_block").await == block
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    for (node, client) in [(&a, &y.client), (&b, &y_on_b)] {
        assert_eq!(metric(node, "dchat_tips_next_block").await, block, "read an unconfirmed block");
        let n = client.notifications(false).await.expect("notifications");
        assert!(tips_of(&n.notifications).is_empty(), "notified before {CONFIRMATIONS} confirmations");
    }

    // One more block confirms it: live on node A, listed on node B, with the same id.
    mine(&anvil.url, 1).await;
    let (pushed, unread) = loop {
        if let SocialEvent::Notification { notification, unread } = next_social(&mut live, 15).await
            && notification.kind == "tip"
        {
            break (notification, unread);
        }
    };
    assert_eq!(unread, 1);
    assert_eq!(
        (pushed.id.as_str(), pushed.actor.as_str(), pushed.room, pushed.read),
        (&*id, &*x.to_checksum(None), Some(room), false)
    );
    let tip = pushed.tip.clone().expect("tip details");
    assert_eq!(
        (tip.amount.as_str(), tip.token.as_str(), tip.message.as_str(), tip.block, tip.chain_id),
        ("1000000", &*Address::ZERO.to_checksum(None), &*message.to_string(), block, 31337)
    );
    assert_eq!(tip.tx, receipt.transaction_hash.to_string());
    let block_time = provider.get_block_by_number(block.into()).await.expect("block").expect("found").header.timestamp;
    assert_eq!(pushed.created_ms, block_time * 1000);
    eventually(15, "node B lists the tip", || async {
        y_on_b.notifications(false).await.is_ok_and(|n| tips_of(&n.notifications).len() == 1 && n.unread == 1)
    })
    .await;
    let on_b = y_on_b.notifications(false).await.expect("notifications");
    assert_eq!(*tips_of(&on_b.notifications)[0], pushed, "node B shows the same notification");
    let only_tips = reqwest::Client::new()
        .get(format!("{}/v1/notifications?kind=tip", b.node.url()))
        .bearer_auth(y_on_b.token().expect("token"))
        .send()
        .await
        .expect("get");
    let only_tips: serde_json::Value = only_tips.json().await.expect("json");
    assert_eq!(only_tips["notifications"].as_array().map(Vec::len), Some(1));

    // Read on the device on node B: the device on node A counts nothing unread.
    let marked = y_on_b.mark_notifications(&y.wallet, &phone, &[id.parse().expect("id")], None).await.expect("mark");
    assert_eq!(marked.unread, Some(0));
    eventually(15, "node A has it read", || async {
        let Ok(u) = y.client.unread().await else { return false };
        let Ok(n) = y.client.notifications(false).await else { return false };
        u.notifications == 0 && tips_of(&n.notifications).first().is_some_and(|t| t.read)
    })
    .await;
    loop {
        if let SocialEvent::NotificationsRead { unread } = next_social(&mut live, 15).await {
            assert_eq!(unread, 0);
            break;
        }
    }

    // Reading the same blocks again (a rewound cursor) stores and pushes nothing twice.
    let notified = metric(&a, "dchat_tips_notified_total").await;
    assert_eq!(notified, 1);
    a.node.store().set_chain_cursor("tips", 31337, &d.payments, d.block).await.expect("rewind");
    eventually(15, "node A reads the tip's block again", || async {
        metric(&a, "dchat_tips_events_total").await == 2 && metric(&a, "dchat_tips_next_block").await > block
    })
    .await;
    assert_eq!(metric(&a, "dchat_tips_notified_total").await, 1);
    assert_eq!(tips_of(&y.client.notifications(false).await.expect("n").notifications).len(), 1);

    // After a restart the node resumes from its cursor: nothing read twice, nothing duplicated.
    let a = a.stop().await.start().await;
    let y_again = User::sign_in_as(&a, &y).await;
    mine(&anvil.url, 3).await;
    eventually(15, "the restarted follower catches up", || async {
        metric(&a, "dchat_tips_next_block").await > block + CONFIRMATIONS
    })
    .await;
    assert_eq!(metric(&a, "dchat_tips_events_total").await, 0, "re-read blocks after a restart");
    let n = y_again.notifications(false).await.expect("notifications");
    assert_eq!(tips_of(&n.notifications).len(), 1);
    assert!(tips_of(&n.notifications)[0].read);
    assert_eq!(n.unread, 0);
}

#[tokio::test]
async fn an_unreachable_chain_does_not_stop_the_node() {
    // Nothing listens on the RPC port: the follower logs, counts and retries.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let node = TestNode::with(move |c| {
        c.rpc_url = Some(format!("http://127.0.0.1:{port}"));
        c.social.tips.payments = Some(Address::repeat_byte(0x11));
        c.social.tips.poll_interval_ms = 50;
    })
    .await;
    eventually(15, "failures are counted", || async { metric(&node, "dchat_tips_errors_total").await >= 2 }).await;
    assert_eq!(metric(&node, "dchat_tips_chain_id").await, 0);
    let user = User::sign_in(&node).await;
    let n = user.client.notifications(false).await.expect("notifications still served");
    assert!(n.notifications.is_empty());
    let r = reqwest::Client::new()
        .get(format!("{}/v1/notifications?kind=tips", node.node.url()))
        .bearer_auth(user.client.token().expect("token"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 400);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"], "invalid_kind");
}

/// anvil's third and fourth development accounts.
const KEY_2: &str = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
const KEY_3: &str = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";

sol! {
    #[sol(rpc)]
    interface Erc20Tips {
        function mint(address to, uint256 amount) external;
        function approve(address spender, uint256 amount) external returns (bool);
        function tipToken(address token, address to, uint256 amount, bytes32 messageHash) external;
    }
}

#[tokio::test]
async fn token_tips_name_their_token_and_blocked_or_self_tips_are_not_notified() {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (d, deployments) = deploy_contracts(&anvil, dir.path()).await;
    let (rpc, file) = (anvil.url.clone(), deployments.clone());
    let node = TestNode::with(move |c| {
        follow_tips(c, &rpc, &file);
        c.social.tips.confirmations = 0;
    })
    .await;
    // Y has funds of its own (for the self-tip) and blocks one tipper.
    let y = User::sign_in_with(&node.node.url(), KEY_3.parse().expect("key")).await;
    let blocked: PrivateKeySigner = KEY_2.parse().expect("key");
    y.client
        .contact(&y.wallet, &y.device, dchat_protocol::social::Action::Block, &blocked.address())
        .await
        .expect("block");
    let url: alloy::transports::http::reqwest::Url = anvil.url.parse().expect("url");
    let connect = |key: &str| {
        let signer: PrivateKeySigner = key.parse().expect("key");
        ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_http(url.clone())
    };
    let message = FixedBytes::from(rand::random::<[u8; 32]>());

    // An ERC-20 tip: mint, approve Payments, tip.
    let mut code = deploy::bytecode(&repo().join("out"), "MockERC20").expect("MockERC20 artifact");
    code.extend_from_slice(&alloy::sol_types::SolValue::abi_encode_params(&("Tip", "TIP")));
    let deployer = connect(DEV_KEY);
    let tx = alloy::rpc::types::TransactionRequest::default().with_deploy_code(code);
    let token = deployer.send_transaction(tx).await.expect("send").get_receipt().await.expect("receipt");
    let token = token.contract_address.expect("token deployed");
    let tipper = connect(TIPPER_KEY);
    let x = TIPPER_KEY.parse::<PrivateKeySigner>().expect("key").address();
    let erc20 = Erc20Tips::new(token, &tipper);
    erc20.mint(x, U256::from(500)).send().await.expect("mint").get_receipt().await.expect("receipt");
    erc20.approve(d.payments, U256::from(500)).send().await.expect("approve").get_receipt().await.expect("receipt");
    let payments = Erc20Tips::new(d.payments, &tipper);
    let tip = payments.tipToken(token, y.addr(), U256::from(500), message);
    assert!(tip.send().await.expect("tip").get_receipt().await.expect("receipt").status());
    // A tip from the wallet Y blocks, and Y tipping itself.
    for (key, value) in [(KEY_2, 7u64), (KEY_3, 9)] {
        let p = connect(key);
        let sent = Pay::new(d.payments, &p).tip(y.addr(), message).value(U256::from(value)).send().await.expect("tip");
        assert!(sent.get_receipt().await.expect("receipt").status());
    }

    eventually(15, "the node reads the three tips", || async { metric(&node, "dchat_tips_events_total").await == 3 })
        .await;
    assert_eq!(metric(&node, "dchat_tips_notified_total").await, 1);
    let n = y.client.notifications(false).await.expect("notifications");
    let tips = tips_of(&n.notifications);
    assert_eq!(tips.len(), 1, "{tips:?}");
    let t = tips[0].tip.as_ref().expect("details");
    assert_eq!((tips[0].actor.as_str(), tips[0].room), (&*x.to_checksum(None), None), "an unknown message has no room");
    assert_eq!((t.token.as_str(), t.amount.as_str()), (&*token.to_checksum(None), "500"));
    assert_eq!(t.message, B256::from(message.0).to_string());
}
