//! The ordered log for indexers: closed without a configured key, 401/403 with stable codes,
//! entries in `seq` order (all rooms or one), rooms with members and roles, the summary.

use dchat_node::{api::log::key_hash, store::RoomKind};
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{TestNode, User};

const KEY: &str = "log-test-indexer-key";

async fn get(node: &TestNode, path: &str, key: Option<&str>) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new().get(format!("{}{path}", node.node.url()));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.expect("get");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_needs_a_configured_indexer_key() {
    let closed = TestNode::with(|c| c.p2p.enabled = false).await;
    let (status, body) = get(&closed, "/v1/log", Some(KEY)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("log_disabled")));

    let node = TestNode::with(|c| {
        c.p2p.enabled = false;
        c.indexer.key_hashes = vec![key_hash(KEY).to_uppercase()];
    })
    .await;
    let (status, body) = get(&node, "/v1/log", None).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("indexer_key_missing")));
    let (status, body) = get(&node, "/v1/log/summary", Some("wrong-key")).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("indexer_key_invalid")));
    // A user's access token is not an indexer key.
    let alice = User::sign_in(&node).await;
    let token = alice.client.token().expect("token").to_string();
    let (status, _) = get(&node, "/v1/log/rooms", Some(&token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = get(&node, "/v1/log", Some(KEY)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = get(&node, "/v1/log?limit=0", Some(KEY)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_limit")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_lists_messages_in_seq_order_and_rooms_with_members() {
    let node = TestNode::with(|c| {
        c.p2p.enabled = false;
        c.rooms.default_channel = None;
        c.indexer.key_hashes = vec![key_hash(KEY)];
    })
    .await;
    let alice = User::sign_in(&node).await;
    let bob = User::sign_in(&node).await;
    let channel = alice.create_room("news", RoomKind::Channel, &[]).await.expect("channel").id;
    let group = alice.create_room("team", RoomKind::Group, &[bob.addr()]).await.expect("group").id;
    let mut sent = Vec::new();
    for i in 0..5 {
        let r = alice.client.send_text(&channel, &alice.wallet, &alice.device, &format!("hello {i}")).await;
        sent.push(r.expect("send").id);
    }
    bob.client.send_text(&group, &bob.wallet, &bob.device, "sealed").await.expect("send in group");

    // Every message in seq order, in pages.
    let mut entries = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = get(&node, &format!("/v1/log?after={after}&limit=3"), Some(KEY)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        entries.extend(page["entries"].as_array().expect("entries").iter().cloned());
        after = page["next"].as_i64().expect("next");
        if !page["has_more"].as_bool().expect("has_more") {
            break;
        }
    }
    let seqs: Vec<i64> = entries.iter().map(|e| e["seq"].as_i64().expect("seq")).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let channel_ids: Vec<&str> = entries
        .iter()
        .filter(|e| e["room"] == channel.to_string() && e["kind"] == 1)
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    assert_eq!(channel_ids, sent.iter().map(String::as_str).collect::<Vec<_>>());
    let first = &entries[0];
    assert!(first["envelope"].as_str().expect("envelope").starts_with("0x"));
    assert!(first["received_at"].as_i64().expect("received_at") > 0);

    // One room's entries only.
    let (_, page) = get(&node, &format!("/v1/log?room={group}"), Some(KEY)).await;
    let rooms: Vec<&Value> = page["entries"].as_array().expect("entries").iter().map(|e| &e["room"]).collect();
    assert!(!rooms.is_empty() && rooms.iter().all(|r| **r == group.to_string()), "{page}");

    // Rooms with their members and roles.
    let (_, listed) = get(&node, "/v1/log/rooms?limit=1", Some(KEY)).await;
    assert_eq!(listed["rooms"].as_array().expect("rooms").len(), 1);
    let next = listed["next"].as_str().expect("a second page");
    let (_, rest) = get(&node, &format!("/v1/log/rooms?after={next}"), Some(KEY)).await;
    assert_eq!(rest["rooms"].as_array().expect("rooms").len(), 1);
    assert!(rest["next"].is_null());
    let (status, room) = get(&node, &format!("/v1/log/rooms/{group}"), Some(KEY)).await;
    assert_eq!(status, StatusCode::OK, "{room}");
    assert_eq!(room["kind"], "group");
    let mut members: Vec<(String, String)> = room["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| (m["address"].as_str().expect("a").to_string(), m["role"].as_str().expect("r").to_string()))
        .collect();
    members.sort();
    let mut expect = vec![(alice.address(), "owner".to_string()), (bob.address(), "member".to_string())];
    expect.sort();
    assert_eq!(members, expect);

    let (_, summary) = get(&node, "/v1/log/summary", Some(KEY)).await;
    assert_eq!(summary["count"].as_i64(), Some(entries.len() as i64), "{summary}");
    assert_eq!(summary["max_seq"].as_i64(), seqs.last().copied());
    assert_eq!(summary["rooms"].as_i64(), Some(2));
}
