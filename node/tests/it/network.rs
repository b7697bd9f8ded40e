//! Several nodes on loopback: gossip, history sync after restart and partition.

use std::{collections::HashSet, future::Future, time::Duration};

use dchat_node::{
    client::{Client, Incoming, seal_text},
    store::RoomKind,
};
use dchat_protocol::RoomId;

use crate::common::{TestNode, User, all_ids};

/// Polls `check` until it holds, for at most `secs` seconds.
async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn connected(nodes: &[&TestNode], peers: usize) {
    for n in nodes {
        eventually(15, "peers connect", || async { n.p2p().peers().await.len() >= peers }).await;
    }
}

/// Ids of a room as `client` sees them, or empty while the room is unknown there.
async fn ids_on(client: &Client, room: &RoomId) -> Vec<String> {
    match client.history(room, None, None, Some(1)).await {
        Ok(_) => all_ids(client, room).await,
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
async fn messages_reach_subscribers_on_every_node_in_the_same_order() {
    let a = TestNode::start().await;
    let b = TestNode::joining(&[&a]).await;
    let c = TestNode::joining(&[&a, &b]).await;
    connected(&[&a, &b, &c], 2).await;

    let alice = User::sign_in(&a).await;
    let bob = User::sign_in(&b).await;
    let carol = User::sign_in(&c).await;
    let room = alice.create_room("mesh", RoomKind::Channel, &[bob.addr(), carol.addr()]).await.expect("room");
    for user in [&bob, &carol] {
        eventually(15, "room replicates", || async { user.client.rooms().await.is_ok_and(|r| r.len() == 1) }).await;
    }

    let users = [&alice, &bob, &carol];
    let mut streams = Vec::new();
    for u in users {
        let mut s = u.client.stream(&[room.id]).await.expect("stream");
        assert!(matches!(s.next().await.expect("frame"), Incoming::Control(_)), "subscribed");
        streams.push(s);
    }
    let per_user = 10u64;
    let mut sent = HashSet::new();
    for i in 0..per_user {
        for (n, u) in users.iter().enumerate() {
            let env = seal_text(&room.id, &u.wallet, &u.device, 1 + i * 3 + n as u64, &format!("{n}:{i}"));
            sent.insert(u.client.post_envelope(&room.id, &env).await.expect("post").1.id);
        }
    }
    for s in &mut streams {
        let mut got = HashSet::new();
        while got.len() < sent.len() {
            match tokio::time::timeout(Duration::from_secs(20), s.next()).await {
                Ok(Ok(Incoming::Message(m))) => {
                    got.insert(m.id);
                }
                Ok(Ok(Incoming::Control(_))) => {}
                other => panic!("stream ended early after {} of {}: {other:?}", got.len(), sent.len()),
            }
        }
        assert_eq!(got, sent, "every subscriber on every node got every message once");
    }
    let histories = [
        ids_on(&alice.client, &room.id).await,
        ids_on(&bob.client, &room.id).await,
        ids_on(&carol.client, &room.id).await,
    ];
    assert_eq!(histories[0].len(), sent.len() + 1, "creation plus every message");
    assert_eq!(histories[0], histories[1], "same order on A and B");
    assert_eq!(histories[0], histories[2], "same order on A and C");

    // A fourth node joining late catches up on history it never saw (read anonymously after
    // Dave signs in there; he is no member, so use a public channel of the same traffic).
    let channel = alice.create_room("late", RoomKind::Channel, &[]).await.expect("channel");
    for i in 0..20u64 {
        let env = seal_text(&channel.id, &alice.wallet, &alice.device, i + 1, &format!("c{i}"));
        alice.client.post_envelope(&channel.id, &env).await.expect("post");
    }
    let d = TestNode::joining(&[&c]).await;
    let (expected_room, expected_channel) = (histories[0].clone(), ids_on(&alice.client, &channel.id).await);
    let dave_reader = d.client();
    eventually(30, "late node catches up on the channel", || async {
        ids_on(&dave_reader, &channel.id).await == expected_channel
    })
    .await;
    // The private room's history reached D too (members would read it there).
    let carol_at_d = User::sign_in_as(&d, &carol).await;
    eventually(30, "late node catches up on the group", || async {
        ids_on(&carol_at_d, &room.id).await == expected_room
    })
    .await;
}

#[tokio::test]
async fn restarted_node_catches_up_through_sync() {
    let a = TestNode::start().await;
    let b = TestNode::joining(&[&a]).await;
    connected(&[&a, &b], 1).await;
    let alice = User::sign_in(&a).await;
    let room = alice.create_room("catch-up", RoomKind::Channel, &[]).await.expect("room");
    let reader = b.client();
    eventually(15, "room reaches B", || async { reader.history(&room.id, None, None, Some(1)).await.is_ok() }).await;

    // B goes away; A keeps taking messages.
    let b_down = b.stop().await;
    for i in 0..30u64 {
        let env = seal_text(&room.id, &alice.wallet, &alice.device, i + 1, &format!("while away {i}"));
        alice.client.post_envelope(&room.id, &env).await.expect("post");
    }
    let b = b_down.start().await;
    let expected = ids_on(&alice.client, &room.id).await;
    assert_eq!(expected.len(), 31);
    let reader = b.client();
    eventually(30, "B catches up", || async { ids_on(&reader, &room.id).await == expected }).await;
}

#[tokio::test]
async fn partitioned_nodes_converge_with_no_loss_and_no_duplicates() {
    let a = TestNode::start().await;
    let b = TestNode::joining(&[&a]).await;
    connected(&[&a, &b], 1).await;
    let alice = User::sign_in(&a).await;
    let bob = User::sign_in(&b).await;
    let room = alice.create_room("split", RoomKind::Channel, &[bob.addr()]).await.expect("room");
    eventually(15, "room reaches B", || async { bob.client.rooms().await.is_ok_and(|r| r.len() == 1) }).await;

    // Cut the link both ways; both sides keep writing.
    let (pa, pb) = (a.p2p().peer_id(), b.p2p().peer_id());
    a.p2p().block(pb).await;
    b.p2p().block(pa).await;
    eventually(10, "link is down", || async { a.p2p().peers().await.is_empty() && b.p2p().peers().await.is_empty() })
        .await;
    let mut lamport = 1;
    for i in 0..15 {
        for u in [&alice, &bob] {
            let env = seal_text(&room.id, &u.wallet, &u.device, lamport, &format!("split {i}"));
            u.client.post_envelope(&room.id, &env).await.expect("post");
            lamport += 1;
        }
    }
    let (on_a, on_b) = (ids_on(&alice.client, &room.id).await, ids_on(&bob.client, &room.id).await);
    assert_eq!((on_a.len(), on_b.len()), (16, 16), "each side holds only its own writes");

    // Heal: both end with the union, in the same order, each message once.
    a.p2p().unblock(pb).await;
    b.p2p().unblock(pa).await;
    for addr in a.p2p().addresses().await {
        b.p2p().dial(addr).await;
    }
    eventually(30, "sides converge", || async {
        let (x, y) = (ids_on(&alice.client, &room.id).await, ids_on(&bob.client, &room.id).await);
        x.len() == 31 && x == y
    })
    .await;
    let all = ids_on(&alice.client, &room.id).await;
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "no duplicates");
    assert!(on_a.iter().chain(&on_b).all(|id| all.contains(id)), "no loss");
}

#[tokio::test]
async fn invalid_gossip_is_rejected_and_scores_the_sender_down() {
    let a = TestNode::start().await;
    let b = TestNode::joining(&[&a]).await;
    connected(&[&a, &b], 1).await;
    let alice = User::sign_in(&a).await;
    let room = alice.create_room("r", RoomKind::Channel, &[]).await.expect("room");
    let reader = b.client();
    eventually(15, "room reaches B", || async { reader.history(&room.id, None, None, Some(1)).await.is_ok() }).await;
    let before = ids_on(&reader, &room.id).await;

    // A (as a faulty or hostile node would) publishes a forged envelope and plain garbage.
    let topic = dchat_node::p2p::shard_topic(&room.id, 64);
    let mut forged = seal_text(&room.id, &alice.wallet, &alice.device, 5, "forged");
    forged.signature[0] ^= 1;
    let relay = dchat_protocol::wire::Relay { envelope: Some(forged), certificate: None };
    let pa = a.p2p().peer_id();
    for i in 0..20u8 {
        a.p2p().publish(topic.clone(), prost::Message::encode_to_vec(&relay).into_iter().chain([i]).collect()).await;
        a.p2p().publish(topic.clone(), vec![0xff, i, 1, 2, 3]).await;
    }
    eventually(15, "A's score on B drops below zero", || async {
        b.p2p().peer_score(pa).await.is_some_and(|s| s < 0.0)
    })
    .await;
    assert_eq!(ids_on(&reader, &room.id).await, before, "nothing invalid was stored");
}

#[tokio::test]
async fn messages_signed_under_an_earlier_delegation_still_sync_after_the_device_signs_in_again() {
    let a = TestNode::with(|c| c.auth.clock_skew_secs = 0).await;
    let alice = User::sign_in(&a).await;
    let room = alice.create_room("history", RoomKind::Channel, &[]).await.expect("room");
    alice.client.send_text(&room.id, &alice.wallet, &alice.device, "before").await.expect("send");
    // The same device signs in again: a new delegation that starts after the first message.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut again = a.client();
    let s = dchat_node::client::SignIn {
        wallet: &alice.wallet,
        device: Some(&alice.device),
        box_key: None,
        ttl_secs: 600,
        chain_id: None,
    };
    again.sign_in(&s).await.expect("second sign-in");
    again.send_text(&room.id, &alice.wallet, &alice.device, "after").await.expect("send");

    // A node that joins late must accept both, each with the certificate it was signed under.
    let b = TestNode::with({
        let boot = a.addresses().await;
        move |c| {
            c.auth.clock_skew_secs = 0;
            c.p2p.bootstrap = boot;
        }
    })
    .await;
    let expected = ids_on(&alice.client, &room.id).await;
    assert_eq!(expected.len(), 3);
    let reader = b.client();
    eventually(20, "late node holds the whole history", || async { ids_on(&reader, &room.id).await == expected }).await;
    assert!(b.p2p().peers().await.contains(&a.p2p().peer_id()), "the honest peer was not cut off");
}

#[tokio::test]
async fn gossip_alone_carries_messages_across_two_hops() {
    // Sync only at start-up, so whatever arrives later came by gossip.
    let quiet = |c: &mut dchat_node::config::Config| {
        c.p2p.sync_interval_secs = 3600;
        c.rate_limit.address_burst = 1000.0;
    };
    let a = TestNode::with(quiet).await;
    let b = TestNode::with({
        let boot = a.addresses().await;
        move |c| {
            quiet(c);
            c.p2p.bootstrap = boot;
        }
    })
    .await;
    let c = TestNode::with({
        let boot = b.addresses().await;
        move |c| {
            quiet(c);
            c.p2p.bootstrap = boot;
        }
    })
    .await;
    let (pa, pc) = (a.p2p().peer_id(), c.p2p().peer_id());
    a.p2p().block(pc).await;
    c.p2p().block(pa).await;
    connected(&[&a, &c], 1).await;
    let alice = User::sign_in(&a).await;
    let room = alice.create_room("hops", RoomKind::Channel, &[]).await.expect("room");
    let reader = c.client();
    eventually(15, "room reaches C by gossip", || async {
        reader.history(&room.id, None, None, Some(1)).await.is_ok()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in 0..100u64 {
        let env = seal_text(&room.id, &alice.wallet, &alice.device, i + 1, &format!("hop {i}"));
        alice.client.post_envelope(&room.id, &env).await.expect("post");
    }
    eventually(10, "all 100 reach C by gossip", || async { ids_on(&reader, &room.id).await.len() == 101 }).await;
}
