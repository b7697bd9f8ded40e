//! A raw libp2p peer (not a dchat node) injects forged envelopes over gossip: none is stored
//! or relayed; a valid one sent the same way is, which shows the path works.

use std::time::Duration;

use alloy::signers::{SignerSync, local::PrivateKeySigner};
use dchat_node::{client::seal_text, p2p::shard_topic, store::RoomKind};
use dchat_protocol::{
    Envelope,
    delegation::SIGN_PREFIX,
    siwe::{Fields, format_time},
    wire::{Certificate, Relay},
};
use ed25519_dalek::SigningKey;
use futures::StreamExt;
use libp2p::{Multiaddr, gossipsub, swarm::SwarmEvent};
use prost::Message as _;
use time::OffsetDateTime;

use crate::common::{TestNode, User, all_ids};

/// A certificate by `wallet` for `device`, valid from `from` to `to` (offsets from now, seconds).
fn certificate(wallet: &PrivateKeySigner, device: &SigningKey, from: i64, to: i64) -> Certificate {
    let now = OffsetDateTime::now_utc();
    let text = Fields {
        domain: "elsewhere.example".into(),
        address: wallet.address().to_checksum(None),
        uri: "https://elsewhere.example".into(),
        version: "1".into(),
        chain_id: 1,
        nonce: "abcdefgh1234".into(),
        issued_at: format_time(now + time::Duration::seconds(from)),
        expiration_time: Some(format_time(now + time::Duration::seconds(to))),
        resources: vec![format!("{SIGN_PREFIX}{}", hex::encode(device.verifying_key().as_bytes()))],
        ..Fields::default()
    }
    .to_text();
    let signature = wallet.sign_message_sync(text.as_bytes()).expect("sign").as_bytes().to_vec();
    Certificate { message: text, signature }
}

fn relay(envelope: Envelope, certificate: Option<Certificate>) -> Vec<u8> {
    Relay { envelope: Some(envelope), certificate }.encode_to_vec()
}

#[tokio::test]
async fn forged_envelopes_from_a_raw_peer_are_neither_stored_nor_relayed() {
    let b = TestNode::start().await;
    let c = TestNode::joining(&[&b]).await;
    let alice = User::sign_in(&b).await;
    let room = alice.create_room("guarded", RoomKind::Channel, &[]).await.expect("room");
    let (reader_b, reader_c) = (b.client(), c.client());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while reader_c.history(&room.id, None, None, Some(1)).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "room did not reach C");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The forgeries, all claiming to come from Alice.
    let device = SigningKey::from_bytes(&rand::random());
    let good_cert = certificate(&alice.wallet, &device, -60, 3600);
    let mut bad_sig = seal_text(&room.id, &alice.wallet, &device, 1, "bad signature");
    bad_sig.signature[0] ^= 1;
    let stranger = SigningKey::from_bytes(&rand::random());
    let expired_device = SigningKey::from_bytes(&rand::random());
    let future = {
        let env = seal_text(&room.id, &alice.wallet, &device, 1, "from the future");
        let mut body = dchat_protocol::Body::decode(env.body.as_slice()).expect("body");
        body.timestamp_ms += 3_600_000;
        Envelope::seal(&body, &device)
    };
    let forged = vec![
        relay(bad_sig, Some(good_cert.clone())),
        relay(seal_text(&room.id, &alice.wallet, &stranger, 1, "undelegated key"), None),
        relay(
            seal_text(&room.id, &alice.wallet, &expired_device, 1, "expired delegation"),
            Some(certificate(&alice.wallet, &expired_device, -7200, -3600)),
        ),
        relay(seal_text(&room.id, &alice.wallet, &device, 1, &"x".repeat(70_000)), Some(good_cert.clone())),
        relay(future, Some(good_cert.clone())),
    ];
    let valid = seal_text(&room.id, &alice.wallet, &device, 2, "genuine, relayed by a raw peer");
    let valid_id = format!("{}", alloy::primitives::keccak256(&valid.body));

    // A bare libp2p peer speaking only gossipsub, connected to B alone.
    let key = libp2p::identity::Keypair::generate_ed25519();
    let config = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(Duration::from_millis(100))
        .max_transmit_size(256 * 1024)
        .build()
        .expect("config");
    let behaviour: gossipsub::Behaviour =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), config).expect("gossipsub");
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(libp2p::tcp::Config::default(), libp2p::noise::Config::new, libp2p::yamux::Config::default)
        .expect("tcp")
        .with_behaviour(|_| behaviour)
        .expect("behaviour")
        .build();
    let topic = shard_topic(&room.id, 64);
    swarm.behaviour_mut().subscribe(&topic).expect("subscribe");
    let target: Multiaddr = b.addresses().await[0].parse().expect("addr");
    swarm.dial(target).expect("dial");
    let b_peer = b.p2p().peer_id();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let event = tokio::time::timeout_at(deadline, swarm.select_next_some()).await.expect("B subscribes in time");
        if let SwarmEvent::Behaviour(gossipsub::Event::Subscribed { peer_id, topic: t }) = event
            && peer_id == b_peer
            && t == topic.hash()
        {
            break;
        }
    }
    for data in forged.into_iter().chain([relay(valid, Some(good_cert))]) {
        swarm.behaviour_mut().publish(topic.clone(), data).expect("publish");
    }
    // Keep the raw peer's connection serviced while the nodes work.
    let pump = tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (on_b, on_c) = (all_ids(&reader_b, &room.id).await, all_ids(&reader_c, &room.id).await);
        if on_b.contains(&valid_id) && on_c.contains(&valid_id) {
            assert_eq!(on_b.len(), 2, "B stored the creation and the genuine message only");
            assert_eq!(on_b, on_c, "C got exactly what B accepted");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the genuine message never arrived (B {on_b:?}, C {on_c:?})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing forged shows up later either (sync included).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(all_ids(&reader_c, &room.id).await.len(), 2);
    pump.abort();
}
