//! Rooms, roles and end-to-end encryption through real nodes: the authority rules as the API
//! enforces them, isolation of private rooms, direct rooms, the default channel, and encrypted
//! messages read across nodes — and not by a removed member.

use std::time::Duration;

use dchat_node::{
    client::{ClientError, Incoming, MessageView, ServerFrame},
    store::RoomKind,
};
use dchat_protocol::{
    Body, Envelope, Kind, RoomId,
    control::{Policy, Role},
    e2e::{self, Sealed},
    ids::from_hex,
};
use prost::Message as _;

use crate::common::{TestNode, User, all_ids};

fn code(e: &ClientError) -> (u16, &str) {
    (e.status().unwrap_or_default(), e.code().unwrap_or_default())
}

/// Polls until `f` holds, for at most 20 s.
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn role_of(u: &User, room: &RoomId, of: &User) -> Option<String> {
    let m = u.client.members(room).await.expect("members");
    m.members.into_iter().find(|m| m.address == of.address()).map(|m| m.role)
}

#[tokio::test]
async fn roles_and_policies_are_enforced_by_the_api() {
    let node = TestNode::start().await;
    let alice = User::sign_in(&node).await;
    let bob = User::sign_in(&node).await;
    let carol = User::sign_in(&node).await;
    let dave = User::sign_in(&node).await;
    let eve = User::sign_in(&node).await;
    let room = alice.create_room("core", RoomKind::Group, &[bob.addr(), carol.addr()]).await.expect("room").id;
    let (a, b, c) = (&alice, &bob, &carol);

    // A member cannot invite, promote themselves or change the policy.
    let err = b.client.invite(&room, &b.wallet, &b.device, &[dave.addr()]).await.expect_err("member invites");
    assert_eq!(code(&err), (403, "role_forbidden"));
    let err = b.client.set_role(&room, &b.wallet, &b.device, &b.addr(), Role::Admin).await.expect_err("self");
    assert_eq!(code(&err), (403, "role_forbidden"));
    let err = b.client.set_policy(&room, &b.wallet, &b.device, Policy::Open, None).await.expect_err("policy");
    assert_eq!(code(&err), (403, "role_forbidden"));
    // The owner promotes Bob; as admin he invites, and may not remove the owner.
    a.client.set_role(&room, &a.wallet, &a.device, &b.addr(), Role::Admin).await.expect("promote");
    assert_eq!(role_of(a, &room, b).await.as_deref(), Some("admin"));
    b.client.invite(&room, &b.wallet, &b.device, &[dave.addr()]).await.expect("admin invites");
    let err = b.client.remove(&room, &b.wallet, &b.device, &a.addr()).await.expect_err("remove owner");
    assert_eq!(code(&err), (403, "owner_stays"));
    let err = c.client.remove(&room, &c.wallet, &c.device, &b.addr()).await.expect_err("member removes admin");
    assert_eq!(code(&err), (403, "role_forbidden"));
    let err = a.client.leave(&room, &a.wallet, &a.device).await.expect_err("owner leaves");
    assert_eq!(code(&err), (403, "owner_stays"));
    let err = b.client.invite(&room, &b.wallet, &b.device, &[dave.addr()]).await.expect_err("twice");
    assert_eq!(code(&err), (409, "already_member"));

    // The admin removes Carol: she can no longer read, post or follow the room.
    c.client.send_text(&room, &c.wallet, &c.device, "before").await.expect("carol posts while a member");
    let mut carol_stream = c.client.stream(&[room]).await.expect("stream");
    assert!(matches!(carol_stream.next().await.expect("frame"), Incoming::Control(ServerFrame::Subscribed { .. })));
    b.client.remove(&room, &b.wallet, &b.device, &c.addr()).await.expect("admin removes member");
    let err = c.client.send_text(&room, &c.wallet, &c.device, "after").await.expect_err("removed posts");
    assert_eq!(code(&err), (403, "not_a_member"));
    assert_eq!(code(&c.client.history(&room, None, None, None).await.expect_err("history")), (403, "not_a_member"));
    assert_eq!(code(&c.client.members(&room).await.expect_err("members")), (403, "not_a_member"));
    assert!(c.client.rooms().await.expect("rooms").iter().all(|r| r.id != room));
    // Her live subscription ends.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match carol_stream.next().await.expect("frame") {
                Incoming::Control(ServerFrame::Unsubscribed { rooms }) => break rooms,
                _ => continue,
            }
        }
    })
    .await
    .expect("unsubscribed in time");
    assert_eq!(ended, vec![room]);

    // Invite-only: a stranger cannot join until an admin opens the room.
    assert_eq!(code(&eve.join(&room).await.expect_err("join")), (403, "invite_required"));
    b.client.set_policy(&room, &b.wallet, &b.device, Policy::Open, None).await.expect("admin opens");
    eve.join(&room).await.expect("open join");
    // Ownership handed over: the old owner becomes an admin and may then leave.
    a.client.set_role(&room, &a.wallet, &a.device, &dave.addr(), Role::Owner).await.expect("hand over");
    assert_eq!(role_of(b, &room, &dave).await.as_deref(), Some("owner"));
    assert_eq!(role_of(b, &room, a).await.as_deref(), Some("admin"));
    a.client.leave(&room, &a.wallet, &a.device).await.expect("former owner leaves");
    let members = b.client.members(&room).await.expect("members");
    let mut roles: Vec<(String, String)> = members.members.into_iter().map(|m| (m.address, m.role)).collect();
    roles.sort();
    let mut want = vec![
        (b.address(), "admin".to_string()),
        (dave.address(), "owner".to_string()),
        (eve.address(), "member".to_string()),
    ];
    want.sort();
    assert_eq!(roles, want);

    // Every refused change left no trace: history holds exactly the accepted ones.
    let kinds: Vec<Kind> = b
        .client
        .history(&room, None, None, Some(100))
        .await
        .expect("history")
        .messages
        .iter()
        .map(|m| m.kind)
        .collect();
    let controls = kinds.iter().filter(|k| k.is_control()).count();
    // create, set role, invite, remove, set policy, join, set role (owner), leave + carol's and
    // the rotation her first message needed.
    assert_eq!(controls, 9, "{kinds:?}");

    let unknown = RoomId::random();
    assert_eq!(code(&b.client.members(&unknown).await.expect_err("unknown")), (404, "room_not_found"));
    let err = b.client.invite(&unknown, &b.wallet, &b.device, &[dave.addr()]).await.expect_err("unknown room");
    assert_eq!(code(&err), (404, "room_not_found"));
}

#[tokio::test]
async fn private_rooms_refuse_plaintext_and_stay_private() {
    let node = TestNode::start().await;
    let alice = User::sign_in(&node).await;
    let stranger = User::sign_in(&node).await;
    let room = alice.create_room("secret", RoomKind::Group, &[]).await.expect("room").id;
    // Plaintext into a private room is refused, and so is an epoch the room does not have.
    let env = dchat_node::client::seal_text(&room, &alice.wallet, &alice.device, 1, "in the clear");
    let err = alice.client.post_envelope(&room, &env).await.expect_err("plaintext");
    assert_eq!(code(&err), (400, "not_encrypted"));
    let forged = e2e::seal(&[1; 32], &[2; 32].into(), &room, &alice.addr(), Kind::Text, b"x", &mut rand::thread_rng());
    let env = dchat_node::client::seal(&room, &alice.wallet, &alice.device, 1, Kind::Text, forged.encode_to_vec());
    assert_eq!(code(&alice.client.post_envelope(&room, &env).await.expect_err("epoch")), (409, "unknown_epoch"));

    let sent = alice.client.send_text(&room, &alice.wallet, &alice.device, "sealed").await.expect("send");
    let page = alice.client.history(&room, None, None, None).await.expect("history");
    let m = page.messages.iter().find(|m| m.id == sent.id).expect("stored");
    assert!(m.encrypted && m.text.is_none(), "the node never shows a private message as text");
    assert_eq!(alice.client.open_text(m).await.expect("open").as_deref(), Some("sealed"));
    // Nothing of the room reaches a stranger: not history, members, keys or the live stream.
    assert_eq!(code(&stranger.client.history(&room, None, None, None).await.expect_err("h")), (403, "not_a_member"));
    assert_eq!(code(&stranger.client.room(&room).await.expect_err("room")), (403, "not_a_member"));
    let keys = stranger.client.epoch_key(&room, &m.id.parse().expect("id")).await.expect_err("keys");
    assert_eq!(code(&keys), (403, "not_a_member"));
    let mut s = stranger.client.stream(&[room]).await.expect("stream");
    match s.next().await.expect("frame") {
        Incoming::Control(ServerFrame::Error { error, .. }) => assert_eq!(error, "not_a_member"),
        Incoming::Control(ServerFrame::Subscribed { rooms }) => assert!(rooms.is_empty()),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn direct_rooms_are_shared_by_exactly_two() {
    let node = TestNode::start().await;
    let alice = User::sign_in(&node).await;
    let bob = User::sign_in(&node).await;
    let carol = User::sign_in(&node).await;
    let dm = alice.client.direct(&alice.wallet, &alice.device, &bob.addr()).await.expect("dm");
    assert_eq!(dm.kind, RoomKind::Direct);
    // Bob opening the conversation from his side finds the same room.
    let again = bob.client.direct(&bob.wallet, &bob.device, &alice.addr()).await.expect("dm from bob");
    assert_eq!(again.id, dm.id);
    let err = alice.client.invite(&dm.id, &alice.wallet, &alice.device, &[carol.addr()]).await.expect_err("invite");
    assert_eq!(code(&err), (403, "direct_room_fixed"));
    assert_eq!(code(&carol.join(&dm.id).await.expect_err("join")), (403, "invite_required"));
    assert_eq!(code(&carol.client.history(&dm.id, None, None, None).await.expect_err("read")), (403, "not_a_member"));

    alice.client.send_text(&dm.id, &alice.wallet, &alice.device, "hi bob").await.expect("send");
    bob.client.send_text(&dm.id, &bob.wallet, &bob.device, "hi alice").await.expect("reply");
    let page = bob.client.history(&dm.id, None, None, None).await.expect("history");
    let mut texts = Vec::new();
    for m in page.messages.iter().filter(|m| m.kind == Kind::Text) {
        texts.push(bob.client.open_text(m).await.expect("open").expect("bob holds the key"));
    }
    assert_eq!(texts, vec!["hi bob", "hi alice"]);
}

#[tokio::test]
async fn a_new_node_has_a_default_team_channel_anyone_can_join() {
    let node = TestNode::start().await;
    let alice = User::sign_in(&node).await;
    let channels = alice.client.channels().await.expect("channels");
    let team = channels.iter().find(|c| c.default).expect("a default channel");
    assert_eq!((team.room.name.as_str(), team.room.kind), ("team", RoomKind::Channel));
    alice.join(&team.room.id).await.expect("join");
    alice.client.send_text(&team.room.id, &alice.wallet, &alice.device, "hello team").await.expect("post");
    // Restarting does not make a second one.
    let node = node.stop().await.start().await;
    let channels = node.client().channels().await.expect("channels");
    assert_eq!(channels.iter().filter(|c| c.default).count(), 1);
    assert_eq!(channels.iter().filter(|c| c.room.name == "team").count(), 1);
    let off = TestNode::with(|c| c.rooms.default_channel = None).await;
    assert!(off.client().channels().await.expect("channels").is_empty());
}

/// Every key a device could ever have been given for `room`, opened with its box secret.
async fn all_keys_of(user: &User, room: &RoomId) -> Vec<[u8; 32]> {
    let mut keys = Vec::new();
    let members = user.client.members(room).await;
    if members.is_err() {
        return keys;
    }
    for k in user.client.history(room, None, None, Some(500)).await.map(|p| p.messages).unwrap_or_default() {
        if k.kind == Kind::RotateKey
            && let Some(key) = user.client.epoch_key(room, &k.id.parse().expect("id")).await.ok().flatten()
        {
            keys.push(key);
        }
    }
    keys
}

fn sealed_of(m: &MessageView) -> (Sealed, dchat_protocol::Address) {
    let env = Envelope::try_from(&m.envelope).expect("envelope");
    let body = Body::decode(env.body.as_slice()).expect("body");
    (Sealed::decode(body.payload.as_slice()).expect("sealed"), dchat_protocol::Address::from_slice(&body.sender))
}

#[tokio::test]
async fn members_on_different_nodes_read_each_other_and_a_removed_member_reads_nothing_new() {
    let a = TestNode::start().await;
    let b = TestNode::joining(&[&a]).await;
    let c = TestNode::joining(&[&a, &b]).await;
    eventually("the mesh", || async { c.p2p().peers().await.len() >= 2 && a.p2p().peers().await.len() >= 2 }).await;
    let alice = User::sign_in(&a).await;
    let bob = User::sign_in(&c).await;
    let carol = User::sign_in(&b).await;
    // Every node learns every device (announced at sign-in) before the first key is made.
    for (node, user) in [(&a, &bob), (&a, &carol), (&c, &alice), (&b, &alice)] {
        let who = user.addr();
        eventually("device announcements", || async {
            !node.node.store().delegations_of(&who).await.expect("delegations").is_empty()
        })
        .await;
    }
    let room = alice.create_room("across", RoomKind::Group, &[bob.addr(), carol.addr()]).await.expect("room").id;
    for u in [&bob, &carol] {
        eventually("the room on every node", || async { u.client.room(&room).await.is_ok() }).await;
    }
    let first = alice.client.send_text(&room, &alice.wallet, &alice.device, "from A").await.expect("send").id;
    eventually("alice's message on C", || async { all_ids(&bob.client, &room).await.contains(&first) }).await;
    let reply = bob.client.send_text(&room, &bob.wallet, &bob.device, "from C").await.expect("reply").id;
    eventually("bob's reply on A", || async { all_ids(&alice.client, &room).await.contains(&reply) }).await;
    for (reader, id, text) in [(&bob, &first, "from A"), (&alice, &reply, "from C"), (&carol, &first, "from A")] {
        eventually("readable", || async { all_ids(&reader.client, &room).await.contains(id) }).await;
        let page = reader.client.history(&room, None, None, Some(100)).await.expect("history");
        let m = page.messages.iter().find(|m| &m.id == id).expect("message");
        assert_eq!(reader.client.open_text(m).await.expect("open").as_deref(), Some(text));
    }

    // Carol has every key she was given; then Alice (on A) removes her.
    let carol_keys = all_keys_of(&carol, &room).await;
    assert!(!carol_keys.is_empty());
    alice.client.remove(&room, &alice.wallet, &alice.device, &carol.addr()).await.expect("remove");
    eventually("the removal on B", || async { carol.client.history(&room, None, None, None).await.is_err() }).await;
    // Bob's next message starts a new epoch without Carol's device.
    let after = bob.client.send_text(&room, &bob.wallet, &bob.device, "after carol").await.expect("send").id;
    eventually("the message on A", || async { all_ids(&alice.client, &room).await.contains(&after) }).await;
    let page = alice.client.history(&room, None, None, Some(100)).await.expect("history");
    let m = page.messages.iter().find(|m| m.id == after).expect("message");
    assert_eq!(alice.client.open_text(m).await.expect("open").as_deref(), Some("after carol"));
    let (sealed, sender) = sealed_of(m);
    assert!(
        !carol.client.members(&room).await.is_ok_and(|r| r.epoch.is_some_and(|e| {
            e.box_keys.iter().any(|k| from_hex(k).ok().as_deref() == Some(&carol.box_secret.public()[..]))
        })),
        "the new epoch is not wrapped for Carol"
    );
    // The ciphertext does not open with any key Carol ever held.
    for key in &carol_keys {
        assert!(e2e::open(key, &sealed, &room, &sender, Kind::Text).is_err(), "a removed member opened it");
    }
    // Nor can she fetch the new epoch's wrap.
    assert_eq!(
        code(&carol.client.epoch_key(&room, &sealed.epoch_id().expect("epoch")).await.expect_err("keys")),
        (403, "not_a_member")
    );
}
