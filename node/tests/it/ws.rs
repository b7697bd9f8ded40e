//! Live streams over the real WebSocket endpoint.

use std::time::Duration;

use dchat_node::{
    client::{Incoming, ServerFrame, SignIn, seal_text},
    store::RoomKind,
};
use dchat_protocol::RoomId;
use futures::StreamExt;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{TestNode, User};

const WAIT: Duration = Duration::from_secs(20);

async fn next(stream: &mut dchat_node::client::Stream) -> Incoming {
    timeout(WAIT, stream.next()).await.expect("frame within the deadline").expect("stream ok")
}

#[tokio::test]
async fn subscribers_receive_new_messages_live() {
    let node = TestNode::start().await;
    let alice = User::sign_in(&node).await;
    let bob = User::sign_in(&node).await;
    let room = alice.create_room("live", RoomKind::Channel, &[bob.addr()]).await.expect("room");

    let mut stream = alice.client.stream(&[room.id]).await.expect("stream");
    assert!(
        matches!(next(&mut stream).await, Incoming::Control(ServerFrame::Subscribed { rooms }) if rooms == vec![room.id])
    );
    let mut sent = Vec::new();
    for i in 0..5 {
        sent.push(bob.client.send_text(&room.id, &bob.wallet, &bob.device, &format!("hi {i}")).await.expect("send").id);
    }
    for (i, id) in sent.iter().enumerate() {
        match next(&mut stream).await {
            Incoming::Message(m) => {
                assert_eq!(&m.id, id);
                assert_eq!(m.text, Some(format!("hi {i}")));
                assert_eq!(m.sender, bob.address());
            }
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn subscriptions_respect_membership() {
    let node = TestNode::start().await;
    let alice = User::sign_in(&node).await;
    let eve = User::sign_in(&node).await;
    let group = alice.create_room("secret", RoomKind::Group, &[]).await.expect("group");
    let channel = alice.create_room("open", RoomKind::Channel, &[]).await.expect("channel");

    let mut s = eve.client.stream(&[group.id]).await.expect("stream");
    assert!(
        matches!(next(&mut s).await, Incoming::Control(ServerFrame::Error { error, .. }) if error == "not_a_member")
    );
    let mut anon = node.client().stream(&[group.id, channel.id]).await.expect("anonymous stream");
    assert!(
        matches!(next(&mut anon).await, Incoming::Control(ServerFrame::Subscribed { rooms }) if rooms == vec![channel.id])
    );
    assert!(
        matches!(next(&mut anon).await, Incoming::Control(ServerFrame::Error { error, .. }) if error == "unauthorized")
    );
    let mut bad = node.client().stream(&[RoomId::random()]).await.expect("stream");
    assert!(
        matches!(next(&mut bad).await, Incoming::Control(ServerFrame::Error { error, .. }) if error == "room_not_found")
    );

    // The secret never reaches Eve; the channel message reaches the anonymous reader.
    alice.client.send_text(&group.id, &alice.wallet, &alice.device, "secret").await.expect("send");
    alice.client.send_text(&channel.id, &alice.wallet, &alice.device, "public").await.expect("send");
    match next(&mut anon).await {
        Incoming::Message(m) => assert_eq!(m.text.as_deref(), Some("public")),
        other => panic!("expected the channel message, got {other:?}"),
    }
    assert!(timeout(Duration::from_millis(300), s.next()).await.is_err(), "nothing reaches a non-member");
}

#[tokio::test]
async fn token_in_authorization_header_is_accepted() {
    let node = TestNode::start().await;
    let alice = User::sign_in(&node).await;
    let room = alice.create_room("r", RoomKind::Channel, &[]).await.expect("room");
    let mut req = format!("ws://{}/v1/ws", node.node.local_addr()).into_client_request().expect("request");
    let auth = format!("Bearer {}", alice.client.token().expect("token"));
    req.headers_mut().insert("authorization", auth.parse().expect("header"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("connect");
    use futures::SinkExt;
    let sub = serde_json::json!({"type": "subscribe", "rooms": [room.id.to_string()]}).to_string();
    ws.send(tokio_tungstenite::tungstenite::Message::text(sub)).await.expect("send");
    let reply = timeout(WAIT, ws.next()).await.expect("reply").expect("frame").expect("ok");
    let v: serde_json::Value = serde_json::from_str(reply.to_text().expect("text")).expect("json");
    assert_eq!(v["type"], "subscribed", "private room subscription works with a header token");
}

#[tokio::test]
async fn slow_consumer_is_dropped_with_4008_and_others_keep_receiving() {
    let node = TestNode::with(|c| {
        c.limits.ws_queue = 8;
        c.rate_limit.address_burst = 10_000.0;
        c.rate_limit.ip_burst = 10_000.0;
    })
    .await;
    let alice = User::sign_in(&node).await;
    let room = alice.create_room("firehose", RoomKind::Channel, &[]).await.expect("room");
    // The slow client subscribes and then reads nothing.
    let mut slow = alice.client.stream(&[room.id]).await.expect("slow stream");
    assert!(matches!(next(&mut slow).await, Incoming::Control(ServerFrame::Subscribed { .. })));
    // A fast client drains continuously and counts.
    let mut fast = alice.client.stream(&[room.id]).await.expect("fast stream");
    assert!(matches!(next(&mut fast).await, Incoming::Control(ServerFrame::Subscribed { .. })));
    let got = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = {
        let got = got.clone();
        tokio::spawn(async move {
            loop {
                match fast.next().await {
                    Ok(Incoming::Message(_)) => {
                        got.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Ok(Incoming::Control(_)) => {}
                    other => return other.map(|_| ()),
                }
            }
        })
    };

    // ~60 KB messages until the node reports the slow client dropped (bounded).
    let text = "x".repeat(60_000);
    let mut sent = 0u64;
    while dropped_slow(&node).await == 0 {
        assert!(sent < 2_000, "the slow client was never dropped");
        let env = seal_text(&room.id, &alice.wallet, &alice.device, sent + 1, &text);
        alice.client.post_envelope(&room.id, &env).await.expect("post");
        sent += 1;
    }
    assert_eq!(dropped_slow(&node).await, 1, "only the slow client was dropped");
    // The fast client keeps receiving everything.
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.load(std::sync::atomic::Ordering::SeqCst) < sent {
        assert!(tokio::time::Instant::now() < deadline, "fast client fell behind");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reader.abort();

    // Draining the slow client ends in a 4008 close after at most what was buffered.
    let mut received = 0u64;
    let close = loop {
        match next(&mut slow).await {
            Incoming::Message(_) => received += 1,
            Incoming::Closed(c) => break c,
            Incoming::Control(_) | Incoming::Social(_) => {}
        }
    };
    assert_eq!(close.map(|c| c.0), Some(4008), "slow client closed as too slow");
    assert!(received < sent, "the slow client was cut off (got {received} of {sent})");
}

async fn dropped_slow(node: &TestNode) -> u64 {
    let text = reqwest::get(format!("{}/metrics", node.node.url())).await.expect("metrics").text().await.expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix("dchat_ws_dropped_slow_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("metric present")
}

#[tokio::test]
async fn stream_closes_with_4001_when_the_session_expires() {
    let node = TestNode::with(|c| c.auth.clock_skew_secs = 0).await;
    let wallet = alloy::signers::local::PrivateKeySigner::random();
    let device = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    let mut client = node.client();
    client
        .sign_in(&SignIn { wallet: &wallet, device: Some(&device), box_key: None, ttl_secs: 2, chain_id: None })
        .await
        .expect("sign in");
    let mut s = client.stream(&[]).await.expect("stream");
    match next(&mut s).await {
        Incoming::Closed(c) => assert_eq!(c.map(|c| c.0), Some(4001)),
        other => panic!("expected close, got {other:?}"),
    }
}

#[tokio::test]
async fn plain_http_on_the_websocket_endpoint_gets_a_json_400() {
    let node = TestNode::start().await;
    let resp = reqwest::get(format!("{}/v1/ws", node.node.url())).await.expect("request");
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["error"], "websocket_upgrade_required");
}
