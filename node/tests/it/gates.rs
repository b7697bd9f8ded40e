//! Token-gated and paid rooms against a real chain: anvil with the project's contracts and a
//! mock ERC-20. Joining needs the gate; a lapsed subscription closes the room again.

use std::time::Duration;

use alloy::{
    network::{EthereumWallet, TransactionBuilder},
    primitives::{Address, FixedBytes, U256},
    providers::{Provider, ProviderBuilder},
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
    sol,
    sol_types::SolCall,
};
use dchat_node::{
    client::ClientError,
    deploy::{self, Options},
    store::RoomKind,
};
use dchat_protocol::control::{Gate, GateKind, Policy};

use crate::common::{Anvil, DEV_KEY, TestNode, User, repo};

/// anvil's second and third development accounts.
const KEY_1: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const KEY_2: &str = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";

sol! {
    interface Token {
        function mint(address to, uint256 amount) external;
    }
    interface Pay {
        function registerRoom(bytes32 room) external;
        function setRoomPrice(bytes32 room, address token, uint256 pricePerPeriod, uint64 periodSeconds) external;
        function subscribe(bytes32 room, uint32 periods) external payable returns (uint64 expiry);
    }
}

fn code(e: &ClientError) -> (u16, &str) {
    (e.status().unwrap_or_default(), e.code().unwrap_or_default())
}

async fn send(rpc: &str, key: &str, to: Address, input: Vec<u8>, value: U256) {
    let signer: PrivateKeySigner = key.parse().expect("key");
    let provider = ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_http(rpc.parse().expect("url"));
    let tx = TransactionRequest::default().with_to(to).with_input(input).with_value(value);
    let receipt = provider.send_transaction(tx).await.expect("send").get_receipt().await.expect("receipt");
    assert!(receipt.status(), "transaction reverted");
}

async fn deploy_token(rpc: &str) -> Address {
    let mut code = deploy::bytecode(&repo().join("out"), "MockERC20").expect("MockERC20 artifact");
    code.extend_from_slice(&alloy::sol_types::SolValue::abi_encode_params(&("Gate", "GATE")));
    let deployer: PrivateKeySigner = DEV_KEY.parse().expect("key");
    let provider =
        ProviderBuilder::new().wallet(EthereumWallet::from(deployer)).connect_http(rpc.parse().expect("url"));
    let tx = TransactionRequest::default().with_deploy_code(code);
    let receipt = provider.send_transaction(tx).await.expect("send").get_receipt().await.expect("receipt");
    receipt.contract_address.expect("deployed")
}

#[tokio::test]
async fn token_gated_and_paid_rooms_check_the_chain() {
    let anvil = Anvil::start();
    let owner: PrivateKeySigner = DEV_KEY.parse().expect("key");
    let d = deploy::deploy(&anvil.url, owner, &Options { artifacts: repo().join("out"), ..Options::default() })
        .await
        .expect("deploy");
    let token = deploy_token(&anvil.url).await;
    let rpc = anvil.url.clone();
    let node = TestNode::with(move |c| c.rpc_url = Some(rpc)).await;
    let url = node.node.url();
    let alice = User::sign_in_with(&url, KEY_1.parse().expect("key")).await;
    let carol = User::sign_in_with(&url, KEY_2.parse().expect("key")).await;
    let bob = User::sign_in(&node).await;

    // Token-gated: 100 GATE to join.
    let holders = alice.create_room("holders", RoomKind::Group, &[]).await.expect("room").id;
    let gate = Gate {
        kind: GateKind::Erc20 as i32,
        chain_id: 31337,
        contract: token.to_vec(),
        token_id: Vec::new(),
        min_balance: U256::from(100).to_be_bytes::<32>().to_vec(),
    };
    // A gate that does not fit the policy is refused before anything is stored.
    let err = alice
        .client
        .set_policy(&holders, &alice.wallet, &alice.device, Policy::Paid, Some(gate.clone()))
        .await
        .expect_err("erc20 gate on a paid policy");
    assert_eq!(code(&err).0, 400);
    alice
        .client
        .set_policy(&holders, &alice.wallet, &alice.device, Policy::TokenGated, Some(gate))
        .await
        .expect("gate");
    assert_eq!(code(&bob.join(&holders).await.expect_err("no tokens")), (402, "gate_not_met"));
    let mint = Token::mintCall { to: bob.addr(), amount: U256::from(99) }.abi_encode();
    send(&anvil.url, DEV_KEY, token, mint.clone(), U256::ZERO).await;
    assert_eq!(code(&bob.join(&holders).await.expect_err("99 tokens")), (402, "gate_not_met"));
    let mint = Token::mintCall { to: bob.addr(), amount: U256::from(1) }.abi_encode();
    send(&anvil.url, DEV_KEY, token, mint, U256::ZERO).await;
    bob.join(&holders).await.expect("100 tokens admit");
    bob.client.send_text(&holders, &bob.wallet, &bob.device, "holding").await.expect("member posts");

    // Paid: Alice registers the room in Payments and sells 3-second periods for 1 wei.
    let club = alice.create_room("club", RoomKind::Group, &[]).await.expect("room").id;
    let room_b = FixedBytes::from(*club.as_bytes());
    send(&anvil.url, KEY_1, d.payments, Pay::registerRoomCall { room: room_b }.abi_encode(), U256::ZERO).await;
    let price =
        Pay::setRoomPriceCall { room: room_b, token: Address::ZERO, pricePerPeriod: U256::from(1), periodSeconds: 3 };
    send(&anvil.url, KEY_1, d.payments, price.abi_encode(), U256::ZERO).await;
    let gate =
        Gate { kind: GateKind::Subscription as i32, chain_id: 31337, contract: d.payments.to_vec(), ..Gate::default() };
    alice.client.set_policy(&club, &alice.wallet, &alice.device, Policy::Paid, Some(gate)).await.expect("paid");
    assert_eq!(code(&carol.join(&club).await.expect_err("no subscription")), (402, "gate_not_met"));
    let sub = Pay::subscribeCall { room: room_b, periods: 1 }.abi_encode();
    send(&anvil.url, KEY_2, d.payments, sub, U256::from(1)).await;
    carol.join(&club).await.expect("subscriber joins");
    carol.client.history(&club, None, None, None).await.expect("subscriber reads");
    // The owner is never gated; the subscription lapses and the room closes to Carol again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let err = carol.client.history(&club, None, None, None).await.expect_err("lapsed");
    assert_eq!(code(&err), (402, "gate_not_met"));
    let err = carol.client.send_text(&club, &carol.wallet, &carol.device, "still here?").await.expect_err("lapsed");
    assert_eq!(code(&err), (402, "gate_not_met"));
    alice.client.history(&club, None, None, None).await.expect("owner reads");
}

#[tokio::test]
async fn a_gated_room_needs_a_chain_to_join() {
    let node = TestNode::start().await;
    let alice = User::sign_in(&node).await;
    let bob = User::sign_in(&node).await;
    let room = alice.create_room("gated", RoomKind::Group, &[]).await.expect("room").id;
    let gate = Gate {
        kind: GateKind::Erc721 as i32,
        chain_id: 31337,
        contract: Address::repeat_byte(7).to_vec(),
        ..Gate::default()
    };
    alice.client.set_policy(&room, &alice.wallet, &alice.device, Policy::TokenGated, Some(gate)).await.expect("gate");
    assert_eq!(code(&bob.join(&room).await.expect_err("no rpc")), (503, "chain_unavailable"));
    assert!(bob.client.rooms().await.expect("rooms").iter().all(|r| r.id != room), "nothing was stored");
}
