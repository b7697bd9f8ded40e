//! Contract-wallet sign-in (ERC-1271) against a real chain: anvil with a deployed wallet.

use alloy::{
    network::{EthereumWallet, TransactionBuilder},
    primitives::Address,
    providers::{Provider, ProviderBuilder},
    rpc::types::TransactionRequest,
    signers::{SignerSync, local::PrivateKeySigner},
};
use dchat_protocol::siwe::{Fields, format_time};
use time::{Duration, OffsetDateTime};

use crate::common::{Anvil, DEV_KEY, TestNode, repo};

/// Deploys `ERC1271Wallet(owner)` from the forge artifact.
async fn deploy_wallet(rpc: &str, owner: Address) -> Address {
    let artifact = repo().join("out/ERC1271Wallet.sol/ERC1271Wallet.json");
    let text = std::fs::read_to_string(&artifact)
        .unwrap_or_else(|e| panic!("{}: {e}; build the contracts first (scripts/forge-test)", artifact.display()));
    let json: serde_json::Value = serde_json::from_str(&text).expect("artifact json");
    let hex_code = json["bytecode"]["object"].as_str().expect("bytecode");
    let mut code = hex::decode(hex_code.trim_start_matches("0x")).expect("hex");
    code.extend_from_slice(owner.into_word().as_slice());
    let deployer: PrivateKeySigner = DEV_KEY.parse().expect("key");
    let provider =
        ProviderBuilder::new().wallet(EthereumWallet::from(deployer)).connect_http(rpc.parse().expect("url"));
    let tx = TransactionRequest::default().with_deploy_code(code);
    let receipt = provider.send_transaction(tx).await.expect("send").get_receipt().await.expect("receipt");
    receipt.contract_address.expect("deployed")
}

async fn siwe_for(node: &TestNode, account: Address) -> String {
    let n = node.client().nonce().await.expect("nonce");
    let now = OffsetDateTime::now_utc();
    Fields {
        domain: n.domain,
        address: account.to_checksum(None),
        uri: n.uri,
        version: "1".into(),
        chain_id: 31337,
        nonce: n.nonce,
        issued_at: format_time(now),
        expiration_time: Some(format_time(now + Duration::minutes(10))),
        ..Fields::default()
    }
    .to_text()
}

#[tokio::test]
async fn contract_wallet_signs_in_through_erc1271() {
    let anvil = Anvil::start();
    let owner = PrivateKeySigner::random();
    let wallet = deploy_wallet(&anvil.url, owner.address()).await;
    let rpc = anvil.url.clone();
    let node = TestNode::with(move |c| c.rpc_url = Some(rpc)).await;

    let text = siwe_for(&node, wallet).await;
    let sig = owner.sign_message_sync(text.as_bytes()).expect("sign").as_bytes();
    let session = node.client().submit_siwe(text, &sig).await.expect("contract wallet accepted");
    assert_eq!(session.address, wallet.to_checksum(None));

    // Someone else's signature is refused by the contract.
    let text = siwe_for(&node, wallet).await;
    let intruder = PrivateKeySigner::random();
    let sig = intruder.sign_message_sync(text.as_bytes()).expect("sign").as_bytes();
    let err = node.client().submit_siwe(text, &sig).await.expect_err("refused");
    assert_eq!((err.status(), err.code()), (Some(401), Some("siwe_signature_invalid")));

    // Without an RPC the same contract account cannot sign in.
    let plain = TestNode::start().await;
    let text = siwe_for(&plain, wallet).await;
    let sig = owner.sign_message_sync(text.as_bytes()).expect("sign").as_bytes();
    let err = plain.client().submit_siwe(text, &sig).await.expect_err("no rpc");
    assert_eq!(err.code(), Some("siwe_signature_invalid"));
}

#[tokio::test]
async fn unreachable_chain_is_a_502_not_a_silent_refusal() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let node = TestNode::with(move |c| c.rpc_url = Some(format!("http://{closed}"))).await;
    let account = PrivateKeySigner::random().address();
    let text = siwe_for(&node, account).await;
    let sig = PrivateKeySigner::random().sign_message_sync(text.as_bytes()).expect("sign").as_bytes();
    let err = node.client().submit_siwe(text, &sig).await.expect_err("refused");
    assert_eq!((err.status(), err.code()), (Some(502), Some("chain_unavailable")));
}
