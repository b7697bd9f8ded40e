//! A raw libp2p peer speaking the sync protocol answers with an envelope the node never asked
//! for: the node stores nothing from it and cuts it off.

use std::time::Duration;

use dchat_node::{
    client::seal_text,
    p2p::{
        behaviour::SYNC_PROTOCOL,
        sync::{SyncRequest, SyncResponse},
    },
    store::Summary,
};
use dchat_protocol::{RoomId, wire::Relay};
use futures::StreamExt;
use libp2p::{
    Multiaddr,
    request_response::{self, ProtocolSupport},
    swarm::SwarmEvent,
};
use prost::Message as _;

use crate::common::{TestNode, User};

#[tokio::test]
async fn a_sync_peer_that_sends_what_was_not_asked_for_is_cut_off() {
    let node = TestNode::with(|c| c.p2p.sync_interval_secs = 1).await;
    let alice = User::sign_in(&node).await;
    let fake_room = RoomId::random();
    // An envelope nobody will ask for: the liar sends it in answer to any fetch.
    let unasked = seal_text(&fake_room, &alice.wallet, &alice.device, 1, "smuggled");
    let unasked = Relay { envelope: Some(unasked), certificate: None }.encode_to_vec();

    let key = libp2p::identity::Keypair::generate_ed25519();
    let behaviour = request_response::cbor::Behaviour::<SyncRequest, SyncResponse>::new(
        [(SYNC_PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default(),
    );
    let mut liar = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(libp2p::tcp::Config::default(), libp2p::noise::Config::new, libp2p::yamux::Config::default)
        .expect("tcp")
        .with_behaviour(|_| behaviour)
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let target: Multiaddr = node.addresses().await[0].parse().expect("addr");
    liar.dial(target).expect("dial");
    let liar_id = *liar.local_peer_id();

    // Answer the node's sync requests with a room it lacks, one id, then a different envelope.
    let mut asked_fetch = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !asked_fetch {
        let event =
            tokio::time::timeout_at(deadline, liar.select_next_some()).await.expect("the node syncs with the peer");
        if let SwarmEvent::Behaviour(request_response::Event::Message {
            message: request_response::Message::Request { request, channel, .. },
            ..
        }) = event
        {
            let response = match request {
                SyncRequest::Summaries { .. } => {
                    SyncResponse::Summaries(vec![Summary { room: fake_room, count: 1, fingerprint: [7; 32] }])
                }
                SyncRequest::Ids { .. } => SyncResponse::Ids(vec![dchat_protocol::B256::repeat_byte(7)]),
                SyncRequest::Fetch { .. } => {
                    asked_fetch = true;
                    SyncResponse::Relays(vec![unasked.clone()])
                }
                SyncRequest::SocialSummary => SyncResponse::SocialSummary { count: 0, fingerprint: [0; 32] },
                SyncRequest::SocialIds { .. } => SyncResponse::Ids(Vec::new()),
            };
            let _ = liar.behaviour_mut().send_response(channel, response);
        }
    }
    // Keep polling so the answer goes out and the disconnect is seen.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let _ = tokio::time::timeout(Duration::from_millis(50), liar.select_next_some()).await;
        if !node.p2p().peers().await.contains(&liar_id) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the lying peer was not cut off");
    }
    // It stays cut off: dialling again does not get it back in.
    let again: Multiaddr = node.addresses().await[0].parse().expect("addr");
    liar.dial(again).expect("dial again");
    let until = tokio::time::Instant::now() + Duration::from_millis(1500);
    while tokio::time::Instant::now() < until {
        let _ = tokio::time::timeout(Duration::from_millis(50), liar.select_next_some()).await;
        assert!(!node.p2p().peers().await.contains(&liar_id), "a blocked peer got back in");
    }
    assert!(node.client().history(&fake_room, None, None, Some(1)).await.is_err(), "nothing was stored");
}
