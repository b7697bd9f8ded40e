//! Access control: encrypted rooms are searched with keyed tokens by members only; a stranger
//! with the right tokens gets nothing, and a removed member stops seeing the room.

use dchat_node::store::RoomKind;
use dchat_protocol::{
    B256, RoomId,
    search::{Match, SearchKey, TokenUpload},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Env, User, wait_for};

/// The room's search key under the epoch the user sends in now.
async fn search_key(user: &User, room: &RoomId) -> SearchKey {
    let (_, key) = user.client.ensure_epoch(room, &user.wallet, &user.device).await.expect("epoch");
    SearchKey::derive(&key, room)
}

/// Sends a sealed text and uploads its tokens (retrying while the indexer has not read it).
async fn say_with_tokens(env: &Env, user: &User, room: &RoomId, text: &str) -> String {
    let id = user.say(room, text).await;
    let key = search_key(user, room).await;
    let upload = serde_json::to_value(TokenUpload::new(id.clone(), &key.message_tokens(text))).expect("json");
    let mut last = Value::Null;
    for _ in 0..200 {
        let (status, body) = env.post("/v1/search/tokens", user.token(), &upload).await;
        if status == StatusCode::OK {
            assert!(body["stored"].as_u64().expect("stored") > 0);
            return id;
        }
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"], "message_not_indexed");
        last = body;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("tokens never accepted: {last}");
}

fn token_query(room: &RoomId, key: &SearchKey, q: &str, how: Match) -> String {
    let mut path = format!("/v1/search/messages?room={room}");
    for t in key.query_tokens(q, how) {
        path.push_str(&format!("&tokens={}", dchat_protocol::ids::to_hex(t)));
    }
    path
}

fn ids(body: &Value) -> Vec<String> {
    body["results"].as_array().expect("results").iter().map(|r| r["id"].as_str().expect("id").to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_find_encrypted_messages_and_strangers_get_nothing() {
    let mut env = Env::start().await;
    let alice = User::sign_in(&env.node).await;
    let bob = User::sign_in(&env.node).await;
    let carol = User::sign_in(&env.node).await;
    let room = alice.create("secret plans", RoomKind::Group, &[bob.addr()]).await;
    env.start_indexer(env.config()).await;
    let hit = say_with_tokens(&env, &alice, &room, "Launch codes are in the blue folder").await;
    say_with_tokens(&env, &alice, &room, "lunch is at noon").await;
    let key = search_key(&alice, &room).await;

    // Bob, a member, finds it by word and by prefix; a word not in it finds nothing.
    let (status, body) = env.get(&token_query(&room, &key, "blue folder", Match::Word), Some(bob.token())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ids(&body), std::slice::from_ref(&hit));
    assert!(body["results"][0].get("text").is_none(), "no plaintext anywhere");
    let (_, body) = env.get(&token_query(&room, &key, "fold", Match::Prefix), Some(bob.token())).await;
    assert_eq!(ids(&body), std::slice::from_ref(&hit));
    let (_, body) = env.get(&token_query(&room, &key, "red folder", Match::Word), Some(bob.token())).await;
    assert!(ids(&body).is_empty(), "{body}");

    // Carol, a stranger holding the very same tokens, gets the answer of a room that does not exist.
    let (status, body) = env.get(&token_query(&room, &key, "blue folder", Match::Word), Some(carol.token())).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "room_not_found");
    let unknown = RoomId([9; 32]);
    let (status, body) = env.get(&token_query(&unknown, &key, "blue", Match::Word), Some(carol.token())).await;
    assert_eq!((status, body["error"].clone()), (StatusCode::NOT_FOUND, json!("room_not_found")));
    // Nor does full text over public channels reach the encrypted room.
    let (status, body) = env.get("/v1/search/messages?q=blue%20folder", Some(carol.token())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ids(&body).is_empty(), "{body}");
    let (status, body) = env.get(&format!("/v1/search/messages?q=blue&room={room}"), Some(carol.token())).await;
    assert_eq!((status, body["error"].clone()), (StatusCode::NOT_FOUND, json!("room_not_found")));
    // Nobody but the sender attaches tokens, and only to messages of rooms they belong to.
    let forged = json!({"message_id": hit, "tokens": [dchat_protocol::ids::to_hex(key.word_token("forged"))]});
    let (status, body) = env.post("/v1/search/tokens", carol.token(), &forged).await;
    assert_eq!((status, body["error"].clone()), (StatusCode::FORBIDDEN, json!("not_sender")));
    let (status, body) = env.post("/v1/search/tokens", bob.token(), &forged).await;
    assert_eq!((status, body["error"].clone()), (StatusCode::FORBIDDEN, json!("not_sender")));
    let bad = json!({"message_id": hit, "tokens": ["0x1234"]});
    let (status, body) = env.post("/v1/search/tokens", alice.token(), &bad).await;
    assert_eq!((status, body["error"].clone()), (StatusCode::BAD_REQUEST, json!("invalid_token")));
    let missing = json!({"message_id": B256::repeat_byte(7).to_string(), "tokens": []});
    let (status, body) = env.post("/v1/search/tokens", alice.token(), &missing).await;
    assert_eq!((status, body["error"].clone()), (StatusCode::CONFLICT, json!("message_not_indexed")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_stops_seeing_the_room() {
    let mut env = Env::start().await;
    let alice = User::sign_in(&env.node).await;
    let bob = User::sign_in(&env.node).await;
    let room = alice.create("team", RoomKind::Group, &[bob.addr()]).await;
    env.start_indexer(env.config()).await;
    say_with_tokens(&env, &alice, &room, "budget draft one").await;
    let old_key = search_key(&alice, &room).await;
    let (status, body) = env.get(&token_query(&room, &old_key, "budget", Match::Word), Some(bob.token())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ids(&body).len(), 1);

    alice.client.remove(&room, &alice.wallet, &alice.device, &bob.addr()).await.expect("remove bob");
    let after = say_with_tokens(&env, &alice, &room, "budget draft two").await;
    let new_key = search_key(&alice, &room).await;
    // Alice, still a member, finds the new message under the new epoch's key.
    let (_, body) = env.get(&token_query(&room, &new_key, "budget", Match::Word), Some(alice.token())).await;
    assert_eq!(ids(&body), [after]);

    wait_for("the index to drop bob from the room", || async {
        let (status, _) = env.get(&token_query(&room, &old_key, "budget", Match::Word), Some(bob.token())).await;
        status == StatusCode::NOT_FOUND
    })
    .await;
    let (status, body) = env.get(&token_query(&room, &new_key, "budget", Match::Word), Some(bob.token())).await;
    assert_eq!((status, body["error"].clone()), (StatusCode::NOT_FOUND, json!("room_not_found")));
}
