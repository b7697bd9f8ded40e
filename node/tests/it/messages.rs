//! Rooms and messages over the real HTTP API.

use dchat_node::{
    client::{ClientError, SignIn, seal, seal_text},
    store::RoomKind,
};
use dchat_protocol::{
    Body, Envelope, Kind, RoomId,
    envelope::EnvelopeJson,
    room::{self, CreateRoom},
};
use ed25519_dalek::SigningKey;
use prost::Message as _;
use serde_json::{Value, json};

use crate::common::{TestNode, User};

async fn room_creation(user: &User, room: &RoomId) -> String {
    let page = user.client.history(room, None, None, Some(500)).await.expect("history");
    page.messages.iter().find(|m| m.kind == Kind::CreateRoom).expect("creation").id.clone()
}

fn json_of(env: &Envelope) -> Vec<u8> {
    serde_json::to_vec(&EnvelopeJson::from(env)).expect("json")
}

fn code(e: &ClientError) -> (u16, &str) {
    (e.status().unwrap_or_default(), e.code().unwrap_or_default())
}

/// A raw POST with the user's token; returns status and JSON body.
async fn raw_post(node: &TestNode, token: Option<&str>, path: &str, ctype: &str, body: Vec<u8>) -> (u16, Value) {
    let mut req =
        reqwest::Client::new().post(format!("{}{path}", node.node.url())).header("content-type", ctype).body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn posts_are_stored_once_and_paged_in_order() {
    let node = TestNode::start().await;
    let alice = User::sign_in(&node).await;
    let room = alice.create_room("team", RoomKind::Channel, &[]).await.expect("room");
    assert_eq!(room.role.as_deref(), Some("owner"));
    assert_eq!(alice.client.rooms().await.expect("rooms"), vec![room.clone()]);

    let mut ids = Vec::new();
    for i in 0..25 {
        let env = seal_text(&room.id, &alice.wallet, &alice.device, i + 1, &format!("message {i}"));
        let (status, reply) = alice.client.post_envelope(&room.id, &env).await.expect("post");
        assert_eq!(status, 201);
        assert!(!reply.duplicate);
        ids.push(reply.id);
        if i == 0 {
            // Posting the same envelope again is idempotent.
            let (status, again) = alice.client.post_envelope(&room.id, &env).await.expect("repost");
            assert_eq!((status, again.duplicate, again.id.as_str()), (200, true, ids[0].as_str()));
        }
    }

    // Page backwards from the newest, 10 at a time.
    let mut seen = Vec::new();
    let mut before: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = alice.client.history(&room.id, None, before.as_deref(), Some(10)).await.expect("page");
        pages += 1;
        let mut chunk: Vec<String> = page.messages.iter().map(|m| m.id.clone()).collect();
        before = chunk.first().cloned();
        chunk.extend(seen);
        seen = chunk;
        if !page.has_more {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen[0], room_creation(&alice, &room.id).await, "history starts with the room's creation");
    assert_eq!(seen[1..], ids, "backward paging returns every message once, in order");

    // Forward from the 5th.
    let page = alice.client.history(&room.id, Some(&ids[4]), None, Some(500)).await.expect("forward");
    assert_eq!(page.messages.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), ids[5..].to_vec());
    assert!(!page.has_more);
    let first = &alice.client.history(&room.id, None, None, Some(25)).await.expect("all").messages[0];
    assert_eq!(first.id, ids[0]);
    assert_eq!(first.text.as_deref(), Some("message 0"));
    assert_eq!(first.sender, alice.address());
    // The envelope comes back as signed: a client can verify it.
    let env = Envelope::try_from(&first.envelope).expect("hex");
    let v = env.open(&Default::default(), u64::MAX / 2).expect("verifies");
    assert_eq!(format!("{}", v.id), first.id);
}

#[tokio::test]
async fn membership_and_room_errors_are_distinct() {
    let node = TestNode::start().await;
    let alice = User::sign_in(&node).await;
    let bob = User::sign_in(&node).await;
    let group = alice.create_room("private", RoomKind::Group, &[]).await.expect("group");
    let channel = alice.create_room("public", RoomKind::Channel, &[]).await.expect("channel");
    alice.client.send_text(&channel.id, &alice.wallet, &alice.device, "hi all").await.expect("send");

    // Bob may not read or post in the group, and cannot join it.
    assert_eq!(code(&bob.client.history(&group.id, None, None, None).await.expect_err("read")), (403, "not_a_member"));
    assert_eq!(
        code(&bob.client.send_text(&group.id, &bob.wallet, &bob.device, "x").await.expect_err("post")),
        (403, "not_a_member")
    );
    assert_eq!(code(&bob.join(&group.id).await.expect_err("join")), (403, "invite_required"));
    // Anonymous readers get 401 on the group, but can read the channel.
    assert_eq!(
        code(&node.client().history(&group.id, None, None, None).await.expect_err("anon")),
        (401, "unauthorized")
    );
    let page = node.client().history(&channel.id, None, None, None).await.expect("public read");
    assert_eq!(page.messages.last().and_then(|m| m.text.as_deref()), Some("hi all"));
    // Bob joins the channel and posts.
    bob.join(&channel.id).await.expect("join channel");
    bob.client.send_text(&channel.id, &bob.wallet, &bob.device, "hello").await.expect("bob posts");
    // Unknown room and malformed ids.
    let unknown = RoomId::random();
    assert_eq!(code(&bob.client.history(&unknown, None, None, None).await.expect_err("404")), (404, "room_not_found"));
    let (status, body) =
        raw_post(&node, bob.client.token(), "/v1/rooms/0x12/messages", "application/json", b"{}".to_vec()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_room_id")));

    // Initial members can post straight away.
    let with_bob = alice.create_room("duo", RoomKind::Group, &[bob.addr()]).await.expect("duo");
    bob.client.send_text(&with_bob.id, &bob.wallet, &bob.device, "in").await.expect("member posts");
    assert_eq!(bob.client.rooms().await.expect("bob rooms").len(), 2);
}

#[tokio::test]
async fn envelopes_must_be_signed_by_a_live_delegation_of_the_sender() {
    let node = TestNode::with(|c| c.auth.clock_skew_secs = 0).await;
    let alice = User::sign_in(&node).await;
    let bob = User::sign_in(&node).await;
    let room = alice.create_room("r", RoomKind::Channel, &[bob.addr()]).await.expect("room");

    // A device key no wallet delegated.
    let stranger = SigningKey::from_bytes(&rand::random());
    let env = seal_text(&room.id, &alice.wallet, &stranger, 1, "who am I");
    assert_eq!(
        code(&alice.client.post_envelope(&room.id, &env).await.expect_err("undelegated")),
        (403, "device_not_delegated")
    );
    // Bob's device signing a message that claims Alice as sender.
    let env = seal_text(&room.id, &alice.wallet, &bob.device, 1, "spoof");
    assert_eq!(
        code(&alice.client.post_envelope(&room.id, &env).await.expect_err("spoof")),
        (403, "device_not_delegated")
    );
    // Alice posting a message whose sender is Bob.
    let env = seal_text(&room.id, &bob.wallet, &bob.device, 1, "relay");
    assert_eq!(code(&alice.client.post_envelope(&room.id, &env).await.expect_err("relay")), (403, "sender_not_caller"));

    // A second device with a 2-second delegation: fine now, refused once it lapsed.
    let short = SigningKey::from_bytes(&rand::random());
    let mut c = node.client();
    c.sign_in(&SignIn { wallet: &alice.wallet, device: Some(&short), box_key: None, ttl_secs: 2, chain_id: None })
        .await
        .expect("short sign-in");
    let env = seal_text(&room.id, &alice.wallet, &short, 1, "quick");
    assert_eq!(alice.client.post_envelope(&room.id, &env).await.expect("live delegation").0, 201);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let env = seal_text(&room.id, &alice.wallet, &short, 2, "too late");
    assert_eq!(
        code(&alice.client.post_envelope(&room.id, &env).await.expect_err("expired")),
        (403, "delegation_expired")
    );
}

#[tokio::test]
async fn bad_envelopes_and_bodies_get_clear_4xx() {
    let node = TestNode::start().await;
    let alice = User::sign_in(&node).await;
    let room = alice.create_room("r", RoomKind::Channel, &[]).await.expect("room");
    let token = alice.client.token();
    let path = format!("/v1/rooms/{}/messages", room.id);
    let client = alice.client.clone();
    let room_id = room.id;
    let post = move |env: Envelope| {
        let client = client.clone();
        async move { client.post_envelope(&room_id, &env).await }
    };

    let mut env = seal_text(&room.id, &alice.wallet, &alice.device, 1, "x");
    env.signature[0] ^= 1;
    assert_eq!(code(&post(env.clone()).await.expect_err("bad sig")), (400, "envelope_signature_invalid"));
    let mut env = seal_text(&room.id, &alice.wallet, &alice.device, 1, "x");
    env.body.push(0);
    assert_eq!(code(&post(env.clone()).await.expect_err("hash")), (400, "envelope_hash_mismatch"));

    let body = |tweak: &dyn Fn(&mut Body)| {
        let env = seal_text(&room.id, &alice.wallet, &alice.device, 1, "x");
        let mut b = Body::decode(env.body.as_slice()).expect("body");
        tweak(&mut b);
        Envelope::seal(&b, &alice.device)
    };
    assert_eq!(
        code(&post(body(&|b| b.timestamp_ms += 3_600_000)).await.expect_err("future")),
        (400, "envelope_clock_skew")
    );
    assert_eq!(code(&post(body(&|b| b.timestamp_ms -= 3_600_000)).await.expect_err("old")), (400, "envelope_too_old"));
    assert_eq!(
        code(&post(body(&|b| b.lamport = 10_000_000)).await.expect_err("lamport")),
        (400, "envelope_lamport_jump")
    );
    assert_eq!(code(&post(body(&|b| b.kind = 77)).await.expect_err("kind")), (400, "envelope_unknown_kind"));
    assert_eq!(
        code(&post(body(&|b| b.kind = Kind::Invite as i32)).await.expect_err("control")),
        (400, "unsupported_kind")
    );
    assert_eq!(
        code(&post(body(&|b| b.version = 9)).await.expect_err("version")),
        (400, "envelope_unsupported_version")
    );
    let other_room = RoomId::random();
    assert_eq!(code(&post(body(&|b| b.room = other_room.0.to_vec())).await.expect_err("room")), (400, "room_mismatch"));
    assert_eq!(
        code(&post(body(&|b| b.payload = vec![b'a'; 65_600])).await.expect_err("big")),
        (413, "envelope_too_large")
    );

    // Transport-level problems.
    let (s, b) = raw_post(&node, token, &path, "application/json", b"{not json".to_vec()).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_json")));
    let (s, b) = raw_post(&node, token, &path, "text/plain", b"hi".to_vec()).await;
    assert_eq!((s, b["error"].as_str()), (415, Some("unsupported_media_type")));
    let (s, b) = raw_post(&node, token, &path, "application/json", vec![b' '; 400_000]).await;
    assert_eq!((s, b["error"].as_str()), (413, Some("payload_too_large")));
    // Room creation takes a signed CreateRoom envelope; its payload is checked too.
    let (s, b) = raw_post(
        &node,
        token,
        "/v1/rooms",
        "application/json",
        serde_json::to_vec(&json!({"name": "x"})).expect("json"),
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_json")));
    let create = |name: &str, salt_from: &alloy::signers::local::PrivateKeySigner| {
        let (id, payload) = CreateRoom::new(&salt_from.address(), name, room::RoomKind::Group, &[]);
        seal(&id, &alice.wallet, &alice.device, 0, Kind::CreateRoom, payload.encode_to_vec())
    };
    let (s, b) = raw_post(&node, token, "/v1/rooms", "application/json", json_of(&create("", &alice.wallet))).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_name")));
    let squatter = alloy::signers::local::PrivateKeySigner::random();
    let (s, b) = raw_post(&node, token, "/v1/rooms", "application/json", json_of(&create("x", &squatter))).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("room_id_mismatch")));
    let (s, b) = raw_post(&node, token, &path, "application/json", json_of(&create("x", &alice.wallet))).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("unsupported_kind")), "control kinds are refused on /messages");
    let text = seal_text(&room.id, &alice.wallet, &alice.device, 1, "x");
    let (s, b) = raw_post(&node, token, "/v1/rooms", "application/json", json_of(&text)).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("unsupported_kind")), "only CreateRoom on /rooms");
    let err = alice.client.history(&room.id, Some("0x1234"), None, None).await.expect_err("cursor");
    assert_eq!(code(&err), (400, "invalid_cursor"));
    let err = alice.client.history(&room.id, None, None, Some(0)).await.expect_err("limit");
    assert_eq!(code(&err), (400, "invalid_limit"));

    // Protobuf bodies are accepted too, and nothing refused above was stored.
    let env = seal_text(&room.id, &alice.wallet, &alice.device, 1, "binary");
    let (s, _) = raw_post(&node, token, &path, "application/x-protobuf", env.encode_to_vec()).await;
    assert_eq!(s, 201);
    let page = alice.client.history(&room.id, None, None, None).await.expect("history");
    let texts: Vec<String> =
        page.messages.iter().filter(|m| m.kind == Kind::Text).filter_map(|m| m.text.clone()).collect();
    assert_eq!(texts, vec!["binary"]);
    assert_eq!(page.messages[0].kind, Kind::CreateRoom, "the room's history starts with its creation");
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let node = TestNode::with(|c| {
        c.rate_limit.address_burst = 5.0;
        c.rate_limit.address_per_sec = 0.01;
    })
    .await;
    let alice = User::sign_in(&node).await;
    let room = alice.create_room("r", RoomKind::Channel, &[]).await.expect("room");
    let mut statuses = Vec::new();
    for i in 0..8 {
        let env = seal_text(&room.id, &alice.wallet, &alice.device, i + 1, "x");
        statuses.push(match alice.client.post_envelope(&room.id, &env).await {
            Ok((s, _)) => s,
            Err(e) => {
                assert_eq!(e.code(), Some("rate_limited"));
                e.status().unwrap_or_default()
            }
        });
    }
    assert_eq!(statuses, vec![201, 201, 201, 201, 429, 429, 429, 429], "room creation took one token of five");
    // Another wallet is not affected by Alice's limit.
    let bob = User::sign_in(&node).await;
    bob.create_room("b", RoomKind::Group, &[]).await.expect("bob unaffected");

    // Per-IP limit on every /v1 request, with Retry-After.
    let node = TestNode::with(|c| {
        c.rate_limit.ip_burst = 3.0;
        c.rate_limit.ip_per_sec = 0.01;
    })
    .await;
    let mut last = None;
    for _ in 0..4 {
        last = Some(reqwest::get(format!("{}/v1/auth/nonce", node.node.url())).await.expect("req"));
    }
    let last = last.expect("response");
    assert_eq!(last.status().as_u16(), 429);
    assert!(last.headers().get("retry-after").is_some());
}
