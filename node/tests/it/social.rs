//! The social layer: contacts across nodes, blocks on every device, the requests inbox, read
//! marks and unread counts, notifications, presence and typing, rate limits and bad input.

use std::{future::Future, time::Duration};

use dchat_node::{
    client::{Client, ClientError, Incoming, SignIn, SocialEvent, Stream, seal},
    store::RoomKind,
};
use dchat_protocol::{
    Address, Kind,
    envelope::EnvelopeJson,
    social::{Action, Peer, Status, social_room},
};
use ed25519_dalek::SigningKey;
use prost::Message as _;

use crate::common::{TestNode, User};

/// Polls `check` until it holds, for at most `secs` seconds.
pub(crate) async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
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

pub(crate) async fn connected(nodes: &[&TestNode]) {
    for n in nodes {
        eventually(15, "peers connect", || async { !n.p2p().peers().await.is_empty() }).await;
    }
}

/// Another device of `user`'s wallet, signed in at `node`.
pub(crate) async fn other_device(node: &TestNode, user: &User) -> (SigningKey, Client) {
    let device = SigningKey::from_bytes(&rand::random());
    let mut client = node.client();
    let s = SignIn { wallet: &user.wallet, device: Some(&device), box_key: None, ttl_secs: 3600, chain_id: None };
    client.sign_in(&s).await.expect("sign in");
    (device, client)
}

/// The next social event on a stream, skipping everything else, within `secs`.
pub(crate) async fn next_social(stream: &mut Stream, secs: u64) -> SocialEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, stream.next()).await {
            Ok(Ok(Incoming::Social(e))) => return *e,
            Ok(Ok(Incoming::Closed(c))) => panic!("stream closed: {c:?}"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("stream failed: {e}"),
            Err(_) => panic!("no social event within {secs}s"),
        }
    }
}

fn code(r: Result<impl std::fmt::Debug, ClientError>) -> (u16, String) {
    let e = r.expect_err("refused");
    (e.status().unwrap_or(0), e.code().unwrap_or("").to_string())
}

async fn incoming_of(client: &Client) -> Vec<String> {
    client.contacts().await.map(|c| c.incoming.into_iter().map(|c| c.address).collect()).unwrap_or_default()
}

#[tokio::test]
async fn contact_request_from_node_a_is_accepted_on_node_b() {
    let a = TestNode::start().await;
    let b = TestNode::joining(&[&a]).await;
    connected(&[&a, &b]).await;
    let alice = User::sign_in(&a).await;
    let bob = User::sign_in(&b).await;
    let mut bob_live = bob.client.social_stream(&bob.addr(), &[]).await.expect("stream");
    let mut alice_live = alice.client.social_stream(&alice.addr(), &[]).await.expect("stream");

    let sent = alice.client.contact(&alice.wallet, &alice.device, Action::Request, &bob.addr()).await.expect("request");
    assert_eq!(sent.state.as_deref(), Some("outgoing"));
    eventually(15, "the request reaches node B", || async { incoming_of(&bob.client).await == [alice.address()] })
        .await;
    // Bob hears of it live on node B, and has a notification.
    loop {
        match next_social(&mut bob_live, 10).await {
            SocialEvent::Notification { notification, unread } => {
                assert_eq!(
                    (notification.kind.as_str(), notification.actor.as_str()),
                    ("contact_request", &*alice.address())
                );
                assert_eq!(unread, 1);
                break;
            }
            SocialEvent::Contact { peer, state } => assert_eq!((peer, state.as_str()), (alice.address(), "incoming")),
            other => panic!("unexpected {other:?}"),
        }
    }

    let accepted = bob.client.contact(&bob.wallet, &bob.device, Action::Accept, &alice.addr()).await.expect("accept");
    assert_eq!(accepted.state.as_deref(), Some("contact"));
    eventually(15, "the acceptance reaches node A", || async {
        alice.client.contacts().await.is_ok_and(|c| c.contacts.iter().any(|c| c.address == bob.address()))
    })
    .await;
    let mut saw_contact = false;
    while !saw_contact {
        if let SocialEvent::Contact { peer, state } = next_social(&mut alice_live, 10).await {
            saw_contact = peer == bob.address() && state == "contact";
        }
    }
    let n = alice.client.notifications(false).await.expect("notifications");
    assert_eq!(n.notifications.iter().map(|n| n.kind.as_str()).collect::<Vec<_>>(), ["contact_accepted"]);
    // Both nodes agree on both sides.
    for (client, other) in [(&bob.client, alice.address())] {
        let c = client.contacts().await.expect("contacts");
        assert_eq!(c.contacts.iter().map(|c| c.address.clone()).collect::<Vec<_>>(), [other]);
        assert!(c.incoming.is_empty() && c.outgoing.is_empty());
    }
    // A second accept is refused with a stable code, and nothing changes.
    let again = bob.client.contact(&bob.wallet, &bob.device, Action::Accept, &alice.addr()).await;
    assert_eq!(code(again), (409, "already_contacts".into()));
}

#[tokio::test]
async fn block_on_one_device_takes_effect_on_the_other_device_on_another_node() {
    let a = TestNode::start().await;
    let b = TestNode::joining(&[&a]).await;
    connected(&[&a, &b]).await;
    let alice = User::sign_in(&a).await;
    let (phone, alice_on_b) = other_device(&b, &alice).await;
    let mallory = User::sign_in(&b).await;

    alice.client.contact(&alice.wallet, &alice.device, Action::Block, &mallory.addr()).await.expect("block");
    eventually(15, "the block reaches the other device on node B", || async {
        alice_on_b.contacts().await.is_ok_and(|c| c.blocked == [mallory.address()])
    })
    .await;
    // Node B enforces it: Mallory can neither open a direct room with Alice nor invite her.
    let direct = mallory.client.direct(&mallory.wallet, &mallory.device, &alice.addr()).await;
    assert_eq!(code(direct), (403, "blocked".into()));
    let group = mallory.create_room("trap", RoomKind::Group, &[alice.addr()]).await;
    assert_eq!(code(group), (403, "blocked".into()));
    let room = mallory.create_room("trap2", RoomKind::Group, &[]).await.expect("room");
    let invite = mallory.client.invite(&room.id, &mallory.wallet, &mallory.device, &[alice.addr()]).await;
    assert_eq!(code(invite), (403, "blocked".into()));
    // Nor can Mallory ask Alice to be contacts.
    let ask = mallory.client.contact(&mallory.wallet, &mallory.device, Action::Request, &alice.addr()).await;
    assert_eq!(code(ask), (403, "blocked".into()));

    // Unblocking on the other device lifts it everywhere.
    alice_on_b.contact(&alice.wallet, &phone, Action::Unblock, &mallory.addr()).await.expect("unblock");
    eventually(15, "the unblock reaches node A", || async {
        alice.client.contacts().await.is_ok_and(|c| c.blocked.is_empty())
    })
    .await;
    mallory.client.direct(&mallory.wallet, &mallory.device, &alice.addr()).await.expect("direct room after unblock");
}

#[tokio::test]
async fn blocked_senders_messages_and_invites_never_reach_the_blocker() {
    let node = TestNode::start().await;
    let alice = User::sign_in(&node).await;
    let bob = User::sign_in(&node).await;
    let mallory = User::sign_in(&node).await;
    let group = bob.create_room("club", RoomKind::Group, &[alice.addr(), mallory.addr()]).await.expect("group");
    let direct = mallory.client.direct(&mallory.wallet, &mallory.device, &alice.addr()).await.expect("direct");
    mallory.client.send_text(&direct.id, &mallory.wallet, &mallory.device, "hello?").await.expect("first");

    alice.client.contact(&alice.wallet, &alice.device, Action::Block, &mallory.addr()).await.expect("block");
    let mut live = alice.client.stream(&[direct.id, group.id]).await.expect("stream");
    assert!(matches!(live.next().await.expect("subscribed"), Incoming::Control(_)));

    // Mallory's posts are stored (every node keeps the same history) but never delivered.
    mallory.client.send_text(&direct.id, &mallory.wallet, &mallory.device, "spam 1").await.expect("posted");
    let env = seal(&group.id, &mallory.wallet, &mallory.device, 100, Kind::Text, b"x".to_vec());
    let mut body = dchat_protocol::Body::decode(env.body.as_slice()).expect("body");
    body.mentions = vec![alice.addr().to_vec()];
    body.payload = mallory_sealed(&mallory, &group.id).await;
    let mention = dchat_protocol::Envelope::seal(&body, &mallory.device);
    mallory.client.post_envelope(&group.id, &mention).await.expect("mention posted");
    bob.client.send_text(&group.id, &bob.wallet, &bob.device, "from bob").await.expect("bob");
    loop {
        match tokio::time::timeout(Duration::from_secs(10), live.next()).await.expect("a message").expect("frame") {
            Incoming::Message(m) => {
                assert!(
                    m.sender != mallory.address() || m.kind.is_control(),
                    "a blocked sender's message was delivered live"
                );
                if m.sender == bob.address() && m.kind == Kind::Text {
                    break;
                }
            }
            Incoming::Closed(c) => panic!("closed {c:?}"),
            _ => {}
        }
    }
    for room in [&direct.id, &group.id] {
        let page = alice.client.history(room, None, None, Some(100)).await.expect("history");
        assert!(page.messages.iter().all(|m| m.sender != mallory.address() || m.kind != Kind::Text));
    }
    // The first message, from before the block, is hidden too; Bob still sees Mallory's.
    let bobs = bob.client.history(&group.id, None, None, Some(100)).await.expect("history");
    assert!(bobs.messages.iter().any(|m| m.sender == mallory.address() && m.kind == Kind::Text));
    // No notification from Mallory's mention; no unread count from Mallory.
    let n = alice.client.notifications(false).await.expect("notifications");
    assert!(n.notifications.iter().all(|n| n.actor != mallory.address()), "{:?}", n.notifications);
    let unread = alice.client.unread().await.expect("unread");
    let direct_unread = unread.rooms.iter().find(|r| r.room == direct.id).expect("direct room");
    assert_eq!(direct_unread.unread, 0);

    // A fresh blocker: Mallory can neither open a direct room nor invite.
    let carol = User::sign_in(&node).await;
    carol.client.contact(&carol.wallet, &carol.device, Action::Block, &mallory.addr()).await.expect("block");
    assert_eq!(code(mallory.client.direct(&mallory.wallet, &mallory.device, &carol.addr()).await).1, "blocked");
    let before = carol.client.rooms().await.expect("rooms").len();
    assert_eq!(code(mallory.create_room("g", RoomKind::Group, &[carol.addr()]).await).1, "blocked");
    assert_eq!(carol.client.rooms().await.expect("rooms").len(), before, "no room reached the blocker");
    assert!(carol.client.notifications(false).await.expect("n").notifications.is_empty());
}

/// A text payload sealed by Mallory for the group (through the client, which rotates as needed).
async fn mallory_sealed(mallory: &User, room: &dchat_protocol::RoomId) -> Vec<u8> {
    let (epoch, key) = mallory.client.ensure_epoch(room, &mallory.wallet, &mallory.device).await.expect("epoch");
    dchat_protocol::e2e::seal(&key, &epoch, room, &mallory.addr(), Kind::Text, b"@alice", &mut rand::thread_rng())
        .encode_to_vec()
}

#[tokio::test]
async fn strangers_land_in_the_requests_inbox_until_answered() {
    let node = TestNode::start().await;
    let alice = User::sign_in(&node).await;
    let stranger = User::sign_in(&node).await;
    let friend = User::sign_in(&node).await;
    friend.client.contact(&friend.wallet, &friend.device, Action::Request, &alice.addr()).await.expect("request");
    alice.client.contact(&alice.wallet, &alice.device, Action::Accept, &friend.addr()).await.expect("accept");

    let from_stranger = stranger.client.direct(&stranger.wallet, &stranger.device, &alice.addr()).await.expect("dm");
    stranger.client.send_text(&from_stranger.id, &stranger.wallet, &stranger.device, "hi").await.expect("send");
    let from_friend = friend.client.direct(&friend.wallet, &friend.device, &alice.addr()).await.expect("dm");
    friend.client.send_text(&from_friend.id, &friend.wallet, &friend.device, "yo").await.expect("send");

    let requests = alice.client.requests().await.expect("requests");
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (requests[0].room.id, requests[0].from.clone(), requests[0].unread),
        (from_stranger.id, stranger.address(), 1)
    );
    let unread = alice.client.unread().await.expect("unread");
    assert_eq!(unread.total, 1, "requests do not count in the total");
    assert!(unread.rooms.iter().any(|r| r.room == from_stranger.id && r.request && r.unread == 1));

    // The room list can leave requests out, or show only them.
    let http = reqwest::Client::new();
    let list = |inbox: &'static str| {
        let req = http.get(format!("{}/v1/rooms?inbox={inbox}", node.node.url()));
        req.bearer_auth(alice.client.token().expect("token")).send()
    };
    let ids = |v: serde_json::Value| -> Vec<String> {
        v["rooms"].as_array().expect("rooms").iter().map(|r| r["id"].as_str().expect("id").to_string()).collect()
    };
    let main = ids(list("main").await.expect("main").json().await.expect("json"));
    assert!(main.contains(&from_friend.id.to_string()) && !main.contains(&from_stranger.id.to_string()));
    let only = ids(list("requests").await.expect("requests").json().await.expect("json"));
    assert_eq!(only, [from_stranger.id.to_string()]);
    let bad = list("spam").await.expect("bad");
    assert_eq!(bad.status().as_u16(), 400);
    assert_eq!(bad.json::<serde_json::Value>().await.expect("json")["error"], "invalid_inbox");

    // Answering moves the room out of requests.
    alice.client.send_text(&from_stranger.id, &alice.wallet, &alice.device, "hello").await.expect("reply");
    assert!(alice.client.requests().await.expect("requests").is_empty());
}

#[tokio::test]
async fn read_marks_and_notification_counts_match_across_devices_and_nodes() {
    let a = TestNode::start().await;
    let b = TestNode::joining(&[&a]).await;
    connected(&[&a, &b]).await;
    let alice = User::sign_in(&a).await;
    let (laptop, alice_on_b) = other_device(&b, &alice).await;
    let bob = User::sign_in(&a).await;
    let room = bob.create_room("news", RoomKind::Channel, &[alice.addr()]).await.expect("room");
    for i in 0..3 {
        bob.client.send_text(&room.id, &bob.wallet, &bob.device, &format!("m{i}")).await.expect("send");
    }
    // A reply to Alice's message and a mention of her.
    alice.client.send_text(&room.id, &alice.wallet, &alice.device, "mine").await.expect("send");
    let mine = alice.client.history(&room.id, None, None, Some(1)).await.expect("h").messages[0].clone();
    let lamport = bob.client.next_lamport(&room.id).await.expect("lamport");
    let mut body = dchat_protocol::Body::decode(
        seal(&room.id, &bob.wallet, &bob.device, lamport, Kind::Text, b"re".to_vec()).body.as_slice(),
    )
    .expect("body");
    body.reply_to = mine.id.parse::<dchat_protocol::B256>().expect("id").to_vec();
    body.mentions = vec![alice.addr().to_vec()];
    bob.client.post_envelope(&room.id, &dchat_protocol::Envelope::seal(&body, &bob.device)).await.expect("reply");

    let expect = |unread: u64, notes: u64| {
        let c = alice_on_b.clone();
        let room = room.id;
        async move {
            let Ok(u) = c.unread().await else { return false };
            u.rooms.iter().any(|r| r.room == room && r.unread == unread) && u.notifications == notes
        }
    };
    // The invite at creation and the reply (which also mentions her: one notification).
    eventually(20, "node B counts 4 unread and 2 notifications", || expect(4, 2)).await;
    let n = alice.client.notifications(true).await.expect("notifications");
    assert_eq!(n.notifications.iter().map(|n| n.kind.as_str()).collect::<Vec<_>>(), ["reply", "invite"]);

    // Reading on the first device (node A) clears both counts on the second (node B).
    let newest = alice.client.history(&room.id, None, None, Some(1)).await.expect("h").messages[0].lamport;
    let r = alice.client.mark_read(&room.id, &alice.wallet, &alice.device, newest).await.expect("read");
    assert_eq!(r.unread, Some(0));
    let now_ms = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).expect("now");
    let all = alice.client.mark_notifications(&alice.wallet, &alice.device, &[], Some(now_ms)).await;
    assert_eq!(all.expect("mark all").unread, Some(0));
    eventually(20, "node B counts nothing unread", || expect(0, 0)).await;
    let receipts = bob.client.receipts(&room.id).await.expect("receipts");
    assert_eq!(
        receipts.iter().map(|r| (r.address.clone(), r.lamport)).collect::<Vec<_>>(),
        [(alice.address(), newest)]
    );
    // An older mark from the other device does not lower it: the highest wins.
    alice_on_b.mark_read(&room.id, &alice.wallet, &laptop, 1).await.expect("older mark");
    assert_eq!(
        alice_on_b.unread().await.expect("u").rooms.iter().find(|r| r.room == room.id).expect("r").read_lamport,
        newest
    );

    // Marking one read by id: a new mention on node B, read on node A.
    let lamport = bob.client.next_lamport(&room.id).await.expect("lamport");
    let mut body = dchat_protocol::Body::decode(
        seal(&room.id, &bob.wallet, &bob.device, lamport, Kind::Text, b"@alice".to_vec()).body.as_slice(),
    )
    .expect("body");
    body.mentions = vec![alice.addr().to_vec()];
    let env = dchat_protocol::Envelope::seal(&body, &bob.device);
    bob.client.post_envelope(&room.id, &env).await.expect("mention");
    eventually(20, "node B has the mention", || expect(1, 1)).await;
    let id = alkeccak(&env);
    alice.client.mark_notifications(&alice.wallet, &alice.device, &[id], None).await.expect("mark one");
    eventually(20, "node B has it read", || async {
        alice_on_b.notifications(false).await.is_ok_and(|n| n.unread == 0 && n.notifications[0].read)
    })
    .await;

    // A muted room's notifications are not counted.
    alice_on_b.mute(&alice.wallet, &laptop, &room.id, true).await.expect("mute");
    let lamport = bob.client.next_lamport(&room.id).await.expect("lamport");
    let mut body = dchat_protocol::Body::decode(
        seal(&room.id, &bob.wallet, &bob.device, lamport, Kind::Text, b"@alice again".to_vec()).body.as_slice(),
    )
    .expect("body");
    body.mentions = vec![alice.addr().to_vec()];
    bob.client.post_envelope(&room.id, &dchat_protocol::Envelope::seal(&body, &bob.device)).await.expect("mention");
    eventually(20, "node A knows the room is muted", || async {
        alice.client.unread().await.is_ok_and(|u| u.rooms.iter().any(|r| r.room == room.id && r.muted && r.unread == 2))
    })
    .await;
    assert_eq!(alice.client.notifications(false).await.expect("n").unread, 0);
}

fn alkeccak(env: &dchat_protocol::Envelope) -> dchat_protocol::B256 {
    alloy::primitives::keccak256(&env.body)
}

#[tokio::test]
async fn presence_appears_expires_and_can_be_hidden() {
    let a = TestNode::with(|c| c.social.presence_ttl_secs = 2).await;
    let boot = a.addresses().await;
    let b = TestNode::with(move |c| {
        c.social.presence_ttl_secs = 2;
        c.p2p.bootstrap = boot;
    })
    .await;
    connected(&[&a, &b]).await;
    let alice = User::sign_in(&a).await;
    let bob = User::sign_in(&b).await;
    bob.client.contact(&bob.wallet, &bob.device, Action::Request, &alice.addr()).await.expect("request");
    eventually(15, "request arrives", || async { incoming_of(&alice.client).await == [bob.address()] }).await;
    alice.client.contact(&alice.wallet, &alice.device, Action::Accept, &bob.addr()).await.expect("accept");
    eventually(15, "contacts on B", || async { bob.client.contacts().await.is_ok_and(|c| c.contacts.len() == 1) })
        .await;
    let mut bob_live = bob.client.social_stream(&bob.addr(), &[]).await.expect("stream");

    alice.client.announce_presence(&alice.wallet, &alice.device, Status::Online).await.expect("online");
    eventually(10, "node B shows Alice online", || async {
        bob.client.presence(&[alice.addr()]).await.is_ok_and(|p| p[0].status == "online" && p[0].last_seen_ms.is_some())
    })
    .await;
    // Her contact hears it live.
    loop {
        if let SocialEvent::Presence { address, status, .. } = next_social(&mut bob_live, 10).await {
            assert_eq!((address, status.as_str()), (alice.address(), "online"));
            break;
        }
    }
    // Nothing refreshes it: after the TTL she is offline, with a last-seen time, and her
    // contact hears that live too.
    loop {
        if let SocialEvent::Presence { address, status, last_seen_ms } = next_social(&mut bob_live, 10).await
            && status == "offline"
        {
            assert_eq!(address, alice.address());
            assert!(last_seen_ms.is_some());
            break;
        }
    }
    eventually(10, "presence expires on both nodes", || async {
        let on_b = bob.client.presence(&[alice.addr()]).await.expect("presence");
        let on_a = alice.client.presence(&[alice.addr()]).await.expect("presence");
        on_b[0].status == "offline" && on_b[0].last_seen_ms.is_some() && on_a[0].status == "offline"
    })
    .await;

    // Hidden: no status and no last seen, anywhere; announcing is refused.
    alice.client.hide_presence(&alice.wallet, &alice.device, true).await.expect("hide");
    eventually(10, "node B hides her", || async {
        bob.client.presence(&[alice.addr()]).await.is_ok_and(|p| p[0].last_seen_ms.is_none())
    })
    .await;
    let r = alice.client.announce_presence(&alice.wallet, &alice.device, Status::Online).await;
    assert_eq!(code(r), (403, "presence_hidden".into()));
    assert!(alice.client.settings().await.expect("settings").hide_presence);
}

#[tokio::test]
async fn typing_shows_then_stops_after_its_ttl() {
    let node = TestNode::with(|c| c.social.typing_ttl_secs = 2).await;
    let alice = User::sign_in(&node).await;
    let bob = User::sign_in(&node).await;
    let room = alice.create_room("t", RoomKind::Group, &[bob.addr()]).await.expect("room");
    let mut live = bob.client.stream(&[room.id]).await.expect("stream");
    let reply = alice.client.typing(&room.id, &alice.wallet, &alice.device, true).await.expect("typing");
    assert!(!reply.stored);
    let typing = bob.client.typing_in(&room.id).await.expect("typing");
    assert_eq!(typing.iter().map(|t| t.address.clone()).collect::<Vec<_>>(), [alice.address()]);
    // Bob's stream carried the typing envelope.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), live.next()).await.expect("frame").expect("ok") {
            Incoming::Message(m) if m.kind == Kind::Typing => break,
            _ => {}
        }
    }
    eventually(6, "typing lapses after its TTL", || async {
        bob.client.typing_in(&room.id).await.is_ok_and(|t| t.is_empty())
    })
    .await;
    // An explicit stop ends it at once; nothing was stored.
    alice.client.typing(&room.id, &alice.wallet, &alice.device, true).await.expect("typing");
    alice.client.typing(&room.id, &alice.wallet, &alice.device, false).await.expect("stop");
    assert!(bob.client.typing_in(&room.id).await.expect("typing").is_empty());
    let page = bob.client.history(&room.id, None, None, Some(100)).await.expect("history");
    assert!(page.messages.iter().all(|m| m.kind != Kind::Typing));
    // Outsiders cannot type in the room.
    let outsider = User::sign_in(&node).await;
    let r = outsider.client.typing(&room.id, &outsider.wallet, &outsider.device, true).await;
    assert_eq!(code(r).0, 403);
}

#[tokio::test]
async fn request_typing_and_presence_floods_hit_429() {
    let node = TestNode::with(|c| {
        c.social.contact_requests_burst = 3.0;
        c.social.contact_requests_per_min = 0.1;
        c.social.typing_burst = 3.0;
        c.social.typing_per_sec = 0.01;
        c.social.presence_burst = 2.0;
        c.social.presence_per_sec = 0.01;
    })
    .await;
    let spammer = User::sign_in(&node).await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        let target = Address::from(rand::random::<[u8; 20]>());
        let r = spammer.client.contact(&spammer.wallet, &spammer.device, Action::Request, &target).await;
        codes.push(r.map(|_| 201).unwrap_or_else(|e| e.status().unwrap_or(0)));
    }
    assert_eq!(codes, [201, 201, 201, 429, 429]);
    let e = spammer
        .client
        .contact(&spammer.wallet, &spammer.device, Action::Request, &Address::from(rand::random::<[u8; 20]>()))
        .await;
    assert_eq!(code(e), (429, "rate_limited".into()));

    let other = User::sign_in(&node).await;
    let room = spammer.create_room("r", RoomKind::Group, &[other.addr()]).await.expect("room");
    let mut typing = Vec::new();
    for _ in 0..5 {
        let r = spammer.client.typing(&room.id, &spammer.wallet, &spammer.device, true).await;
        typing.push(r.map(|_| 202).unwrap_or_else(|e| e.status().unwrap_or(0)));
    }
    assert_eq!(typing, [202, 202, 202, 429, 429]);
    let mut presence = Vec::new();
    for _ in 0..4 {
        let r = spammer.client.announce_presence(&spammer.wallet, &spammer.device, Status::Online).await;
        presence.push(r.map(|_| 202).unwrap_or_else(|e| e.status().unwrap_or(0)));
    }
    assert_eq!(presence, [202, 202, 429, 429]);
}

async fn presence_entries(node: &TestNode) -> u64 {
    let text = reqwest::get(format!("{}/metrics", node.node.url())).await.expect("metrics").text().await.expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix("dchat_presence_entries "))
        .and_then(|v| v.trim().parse().ok())
        .expect("dchat_presence_entries")
}

#[tokio::test]
async fn presence_spam_is_dropped_without_memory_growth() {
    let cap = 5;
    let node = TestNode::with(|c| c.social.max_presence = cap).await;
    let mut accepted = 0;
    let mut full = 0;
    for _ in 0..(cap * 3) {
        let u = User::sign_in(&node).await;
        match u.client.announce_presence(&u.wallet, &u.device, Status::Online).await {
            Ok(_) => accepted += 1,
            Err(e) => {
                assert_eq!((e.status(), e.code()), (Some(503), Some("presence_full")));
                full += 1;
            }
        }
        assert!(presence_entries(&node).await <= cap as u64, "the presence map grew past its cap");
    }
    assert_eq!((accepted, full), (cap, cap * 2));
    assert_eq!(presence_entries(&node).await, cap as u64);
}

#[tokio::test]
async fn bad_social_input_gets_4xx_with_stable_codes() {
    let node = TestNode::start().await;
    let alice = User::sign_in(&node).await;
    let bob = User::sign_in(&node).await;
    let http = reqwest::Client::new();
    let url = node.node.url();
    let token = alice.client.token().expect("token").to_string();
    let post = |path: &str, env: &dchat_protocol::Envelope| {
        http.post(format!("{url}{path}")).bearer_auth(&token).json(&EnvelopeJson::from(env)).send()
    };
    let status_code = |r: reqwest::Response| async move {
        let s = r.status().as_u16();
        let v: serde_json::Value = r.json().await.unwrap_or_default();
        (s, v["error"].as_str().unwrap_or_default().to_string())
    };
    let peer = |a: Address| Peer { address: a.to_vec() }.encode_to_vec();
    let mine = social_room(&alice.addr());

    let cases: Vec<(&str, dchat_protocol::Envelope, (u16, &str))> = vec![
        (
            "/v1/contacts",
            seal(&social_room(&bob.addr()), &alice.wallet, &alice.device, 1, Kind::FriendRequest, peer(bob.addr())),
            (400, "social_room_mismatch"),
        ),
        (
            "/v1/contacts",
            seal(&mine, &alice.wallet, &alice.device, 1, Kind::FriendRequest, peer(alice.addr())),
            (400, "contact_self"),
        ),
        (
            "/v1/contacts",
            seal(&mine, &alice.wallet, &alice.device, 1, Kind::FriendRequest, vec![0xff, 0xff]),
            (400, "social_payload_malformed"),
        ),
        (
            "/v1/contacts",
            seal(&mine, &alice.wallet, &alice.device, 1, Kind::FriendAccept, peer(bob.addr())),
            (409, "no_request"),
        ),
        (
            "/v1/contacts",
            seal(&mine, &alice.wallet, &alice.device, 1, Kind::FriendRemove, peer(bob.addr())),
            (409, "not_contacts"),
        ),
        (
            "/v1/contacts",
            seal(&mine, &alice.wallet, &alice.device, 1, Kind::Unblock, peer(bob.addr())),
            (409, "not_blocked"),
        ),
        ("/v1/contacts", seal(&mine, &alice.wallet, &alice.device, 1, Kind::Mute, vec![]), (400, "unsupported_kind")),
        (
            "/v1/presence",
            seal(&mine, &alice.wallet, &alice.device, 0, Kind::Presence, vec![8, 9]),
            (400, "social_payload_malformed"),
        ),
        (
            "/v1/notifications/read",
            seal(&mine, &alice.wallet, &alice.device, 1, Kind::NotificationsRead, vec![]),
            (400, "social_payload_malformed"),
        ),
        (
            "/v1/mutes",
            seal(&mine, &alice.wallet, &alice.device, 1, Kind::Mute, vec![10, 1, 1]),
            (400, "social_payload_malformed"),
        ),
    ];
    for (path, env, want) in cases {
        let got = status_code(post(path, &env).await.expect("post")).await;
        assert_eq!((got.0, got.1.as_str()), want, "{path}");
    }
    // Clocks far past anything seen are refused, in the social clock and in a room's.
    let far = seal(&mine, &alice.wallet, &alice.device, u64::MAX, Kind::FriendRequest, peer(bob.addr()));
    assert_eq!(
        status_code(post("/v1/contacts", &far).await.expect("post")).await,
        (400, "envelope_lamport_jump".into())
    );
    let own = alice.create_room("mine", RoomKind::Group, &[]).await.expect("room");
    let mark = dchat_protocol::social::ReadMark { lamport: u64::MAX, message: vec![] }.encode_to_vec();
    let env = seal(&own.id, &alice.wallet, &alice.device, 1, Kind::Receipt, mark);
    let got = status_code(post(&format!("/v1/rooms/{}/read", own.id), &env).await.expect("post")).await;
    assert_eq!(got, (400, "envelope_lamport_jump".into()));
    // A mark of every notification up to the end of time is accepted and breaks nothing.
    let all = dchat_protocol::social::NotificationsRead { up_to_ms: u64::MAX, ids: vec![] }.encode_to_vec();
    let env = seal(&mine, &alice.wallet, &alice.device, 1, Kind::NotificationsRead, all);
    assert_eq!(status_code(post("/v1/notifications/read", &env).await.expect("post")).await.0, 201);
    assert_eq!(alice.client.notifications(true).await.expect("notifications").unread, 0);
    assert_eq!(alice.client.unread().await.expect("unread").notifications, 0);
    // Bob's own envelope posted with Alice's session.
    let bobs = seal(&social_room(&bob.addr()), &bob.wallet, &bob.device, 1, Kind::FriendRequest, peer(alice.addr()));
    assert_eq!(status_code(post("/v1/contacts", &bobs).await.expect("post")).await, (403, "sender_not_caller".into()));
    // A read mark in a room Alice is not in, and in a room that does not exist.
    let room = bob.create_room("b", RoomKind::Group, &[]).await.expect("room");
    let mark = dchat_protocol::social::ReadMark { lamport: 1, message: vec![] }.encode_to_vec();
    let env = seal(&room.id, &alice.wallet, &alice.device, 1, Kind::Receipt, mark.clone());
    assert_eq!(status_code(post(&format!("/v1/rooms/{}/read", room.id), &env).await.expect("p")).await.0, 403);
    let nowhere = dchat_protocol::RoomId([7; 32]);
    let env = seal(&nowhere, &alice.wallet, &alice.device, 1, Kind::Receipt, mark);
    assert_eq!(
        status_code(post(&format!("/v1/rooms/{nowhere}/read"), &env).await.expect("p")).await,
        (404, "room_not_found".into())
    );
    // Queries.
    let get = |path: &str| http.get(format!("{url}{path}")).bearer_auth(&token).send();
    for (path, want) in [
        ("/v1/presence?addresses=", (400, "invalid_addresses")),
        ("/v1/presence?addresses=0x12", (400, "invalid_address")),
        ("/v1/presence", (400, "invalid_query")),
        ("/v1/notifications?limit=0", (400, "invalid_limit")),
        ("/v1/rooms/nope/typing", (400, "invalid_room_id")),
    ] {
        let got = status_code(get(path).await.expect("get")).await;
        assert_eq!((got.0, got.1.as_str()), want, "{path}");
    }
    for path in ["/v1/contacts", "/v1/notifications", "/v1/unread", "/v1/requests", "/v1/settings", "/v1/mutes"] {
        let r = http.get(format!("{url}{path}")).send().await.expect("get");
        assert_eq!(status_code(r).await, (401, "unauthorized".into()), "{path}");
    }
    // Not JSON or protobuf.
    let r = http.post(format!("{url}/v1/contacts")).bearer_auth(&token).body("x").send().await.expect("post");
    assert_eq!(status_code(r).await, (415, "unsupported_media_type".into()));
}

#[tokio::test]
async fn social_state_reaches_a_late_node_through_history_sync() {
    let a = TestNode::start().await;
    let alice = User::sign_in(&a).await;
    let bob = User::sign_in(&a).await;
    let mallory = User::sign_in(&a).await;
    bob.client.contact(&bob.wallet, &bob.device, Action::Request, &alice.addr()).await.expect("request");
    alice.client.contact(&alice.wallet, &alice.device, Action::Accept, &bob.addr()).await.expect("accept");
    alice.client.contact(&alice.wallet, &alice.device, Action::Block, &mallory.addr()).await.expect("block");
    let room = bob.create_room("r", RoomKind::Channel, &[alice.addr()]).await.expect("room");
    bob.client.send_text(&room.id, &bob.wallet, &bob.device, "one").await.expect("send");
    let lamport = alice.client.next_lamport(&room.id).await.expect("lamport") - 1;
    alice.client.mark_read(&room.id, &alice.wallet, &alice.device, lamport).await.expect("read");

    // Node B never heard the gossip: it starts afterwards and catches up through sync.
    let b = TestNode::joining(&[&a]).await;
    let (_, alice_on_b) = other_device(&b, &alice).await;
    eventually(30, "contacts, blocks and read marks reach node B", || async {
        let Ok(c) = alice_on_b.contacts().await else { return false };
        let Ok(u) = alice_on_b.unread().await else { return false };
        c.contacts.iter().map(|c| c.address.clone()).collect::<Vec<_>>() == [bob.address()]
            && c.blocked == [mallory.address()]
            && u.rooms.iter().any(|r| r.room == room.id && r.unread == 0 && r.read_lamport == lamport)
    })
    .await;
    let mallory_on_b = User::sign_in_as(&b, &mallory).await;
    let direct = mallory_on_b.direct(&mallory.wallet, &mallory.device, &alice.addr()).await;
    assert_eq!(code(direct), (403, "blocked".into()));
}

/// The next `typing_stopped` frame on a stream: (room, who, reason).
async fn next_typing_stopped(stream: &mut Stream, secs: u64) -> (dchat_protocol::RoomId, String, String) {
    loop {
        if let SocialEvent::TypingStopped { room, address, reason } = next_social(stream, secs).await {
            return (room, address, reason);
        }
    }
}

#[tokio::test]
async fn typing_stopped_frames_follow_a_lapse_a_stop_and_a_message_across_nodes() {
    let ttl = 2;
    let a = TestNode::with(|c| c.social.typing_ttl_secs = ttl).await;
    let boot = a.addresses().await;
    let b = TestNode::with(move |c| {
        c.social.typing_ttl_secs = ttl;
        c.p2p.bootstrap = boot;
    })
    .await;
    connected(&[&a, &b]).await;
    let alice = User::sign_in(&a).await;
    let bob = User::sign_in(&b).await;
    let room = alice.create_room("typing", RoomKind::Channel, &[bob.addr()]).await.expect("room");
    eventually(15, "the room reaches node B", || async { bob.client.typing_in(&room.id).await.is_ok() }).await;
    // Bob follows the room on node B; Alice types on node A.
    let mut live = bob.client.stream(&[room.id]).await.expect("stream");
    let mut local = alice.client.stream(&[room.id]).await.expect("stream");
    let typing = |on: bool| alice.client.typing(&room.id, &alice.wallet, &alice.device, on);

    // 1. Nothing refreshes it: it lapses after its TTL and both nodes say so.
    let started = tokio::time::Instant::now();
    typing(true).await.expect("typing");
    let stopped = next_typing_stopped(&mut live, 10).await;
    assert_eq!(stopped, (room.id, alice.address(), "expired".into()));
    assert!(started.elapsed() >= Duration::from_millis(ttl * 1000 - 500), "stopped before its TTL");
    assert_eq!(next_typing_stopped(&mut local, 10).await.2, "expired");
    assert!(bob.client.typing_in(&room.id).await.expect("typing").is_empty());

    // 2. An explicit stop, long before the TTL.
    typing(true).await.expect("typing");
    eventually(5, "node B shows her typing", || async {
        bob.client.typing_in(&room.id).await.is_ok_and(|t| t.len() == 1)
    })
    .await;
    typing(false).await.expect("stop");
    assert_eq!(next_typing_stopped(&mut live, 5).await, (room.id, alice.address(), "stopped".into()));
    assert_eq!(next_typing_stopped(&mut local, 5).await.2, "stopped");

    // 3. Her message ends it.
    typing(true).await.expect("typing");
    eventually(5, "node B shows her typing", || async {
        bob.client.typing_in(&room.id).await.is_ok_and(|t| t.len() == 1)
    })
    .await;
    alice.client.send_text(&room.id, &alice.wallet, &alice.device, "done typing").await.expect("send");
    assert_eq!(next_typing_stopped(&mut live, 5).await, (room.id, alice.address(), "message".into()));
    assert_eq!(next_typing_stopped(&mut local, 5).await.2, "message");
    assert!(bob.client.typing_in(&room.id).await.expect("typing").is_empty());

    // A stop with no indicator held, and a lapse after the message, send nothing more.
    typing(false).await.expect("stop");
    let quiet = tokio::time::timeout(Duration::from_secs(ttl + 1), next_typing_stopped(&mut live, ttl + 2)).await;
    assert!(quiet.is_err(), "an extra typing_stopped frame: {quiet:?}");
}

/// Fails if a presence event arrives on `stream` within `ms`.
async fn no_presence(stream: &mut Stream, ms: u64, who: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, stream.next()).await {
            Err(_) => return,
            Ok(Ok(Incoming::Social(e))) => {
                assert!(!matches!(*e, SocialEvent::Presence { .. }), "{who} got a presence: {e:?}");
            }
            Ok(Ok(Incoming::Closed(c))) => panic!("stream closed: {c:?}"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("stream failed: {e}"),
        }
    }
}

#[tokio::test]
async fn presence_reaches_members_of_shared_rooms_but_not_strangers_blockers_or_large_rooms() {
    let a = TestNode::with(|c| c.social.presence_room_max_members = 3).await;
    let boot = a.addresses().await;
    let b = TestNode::with(move |c| {
        c.social.presence_room_max_members = 3;
        c.p2p.bootstrap = boot;
    })
    .await;
    connected(&[&a, &b]).await;
    let alice = User::sign_in(&a).await;
    let (carol, mallory, dave, erin) =
        (User::sign_in(&b).await, User::sign_in(&b).await, User::sign_in(&b).await, User::sign_in(&b).await);
    let (x, y) = (Address::from(rand::random::<[u8; 20]>()), Address::from(rand::random::<[u8; 20]>()));
    // A group of three (small enough), a channel of four (too large), no room with Dave.
    let trio = alice.create_room("trio", RoomKind::Group, &[carol.addr(), mallory.addr()]).await.expect("group");
    let big = alice.create_room("big", RoomKind::Channel, &[erin.addr(), x, y]).await.expect("channel");
    mallory.client.contact(&mallory.wallet, &mallory.device, Action::Block, &alice.addr()).await.expect("block");
    eventually(15, "the rooms reach node B", || async {
        let ids = |c: &Client| {
            let c = c.clone();
            async move { c.rooms().await.map(|r| r.iter().map(|r| r.id).collect::<Vec<_>>()).unwrap_or_default() }
        };
        ids(&carol.client).await.contains(&trio.id) && ids(&erin.client).await.contains(&big.id)
    })
    .await;
    let mut carol_live = carol.client.social_stream(&carol.addr(), &[]).await.expect("stream");
    let mut others = Vec::new();
    for (u, name) in [(&mallory, "a co-member who blocks her"), (&dave, "a stranger"), (&erin, "a large room's member")]
    {
        others.push((u.client.social_stream(&u.addr(), &[]).await.expect("stream"), name));
    }

    alice.client.announce_presence(&alice.wallet, &alice.device, Status::Online).await.expect("online");
    loop {
        if let SocialEvent::Presence { address, status, .. } = next_social(&mut carol_live, 10).await {
            assert_eq!((address, status.as_str()), (alice.address(), "online"));
            break;
        }
    }
    for (stream, name) in &mut others {
        no_presence(stream, 1000, name).await;
    }
}

#[tokio::test]
async fn notifications_page_with_before_and_messages_show_their_mentions_and_reply() {
    let a = TestNode::start().await;
    let alice = User::sign_in(&a).await;
    let bob = User::sign_in(&a).await;
    let room = bob.create_room("pages", RoomKind::Channel, &[alice.addr()]).await.expect("room");
    alice.client.send_text(&room.id, &alice.wallet, &alice.device, "first").await.expect("send");
    let first = alice.client.history(&room.id, None, None, Some(1)).await.expect("h").messages[0].id.clone();
    // Five mentions of Alice, the last also a reply to her message: with the invite, six.
    for i in 0..5 {
        let lamport = bob.client.next_lamport(&room.id).await.expect("lamport");
        let mut body = dchat_protocol::Body::decode(
            seal(&room.id, &bob.wallet, &bob.device, lamport, Kind::Text, format!("hi {i}").into_bytes())
                .body
                .as_slice(),
        )
        .expect("body");
        body.mentions = vec![alice.addr().to_vec()];
        if i == 4 {
            body.reply_to = first.parse::<dchat_protocol::B256>().expect("id").to_vec();
        }
        bob.client.post_envelope(&room.id, &dchat_protocol::Envelope::seal(&body, &bob.device)).await.expect("post");
    }
    let all = alice.client.notifications(false).await.expect("all").notifications;
    assert_eq!(all.len(), 6, "{all:?}");

    // Pages of two, each starting after the last id of the one before, cover the list once.
    let (mut paged, mut before) = (Vec::new(), None::<String>);
    for _ in 0..4 {
        let page = alice.client.notifications_page(2, before.as_deref()).await.expect("page");
        paged.extend(page.notifications.iter().map(|n| n.id.clone()));
        before = page.next;
        if before.is_none() {
            break;
        }
    }
    assert_eq!(paged, all.iter().map(|n| n.id.clone()).collect::<Vec<_>>());
    let last = alice.client.notifications_page(2, Some(&all[5].id)).await.expect("after the last");
    assert!(last.notifications.is_empty() && last.next.is_none());
    assert_eq!(code(alice.client.notifications_page(2, Some("nope")).await), (400, "invalid_before".into()));
    let stranger = format!("0x{}", "ab".repeat(32));
    assert_eq!(code(alice.client.notifications_page(2, Some(&stranger)).await), (404, "notification_not_found".into()));
    // Someone else's notification id is not a cursor into Alice's list.
    assert_eq!(code(bob.client.notifications_page(2, Some(&all[0].id)).await), (404, "notification_not_found".into()));

    // The message views carry the mentions and the reply target.
    let page = alice.client.history(&room.id, None, None, Some(100)).await.expect("history");
    let reply = page.messages.iter().find(|m| m.text.as_deref() == Some("hi 4")).expect("reply");
    assert_eq!(reply.mentions, [alice.address()]);
    assert_eq!(reply.reply_to.as_deref(), Some(first.as_str()));
    let plain = page.messages.iter().find(|m| m.text.as_deref() == Some("first")).expect("first");
    assert!(plain.mentions.is_empty() && plain.reply_to.is_none());
}
