//! Following the node's log: a stream indexed in order, a restart mid-stream without gap or
//! duplicate, reconcile refilling rows the index lost, metrics, public full-text search.

use std::collections::BTreeSet;

use dchat_node::store::RoomKind;
use reqwest::StatusCode;

use crate::common::{Env, PrivatePg, TestDb, User, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_stream_leaves_no_gap_and_no_duplicate() {
    let mut env = Env::start().await;
    let alice = User::sign_in(&env.node).await;
    let room = alice.create("general", RoomKind::Channel, &[]).await;
    for i in 0..20 {
        alice.say(&room, &format!("first half message {i}")).await;
    }
    let mut config = env.config();
    config.follow.batch = 3;
    env.start_indexer(config.clone()).await;
    wait_for("the follower to store some pages", || async {
        env.indexer().store().message_count().await.expect("count") >= 6
    })
    .await;
    env.stop_indexer().await;
    let stored_before = env.indexed_ids().await.len();

    for i in 0..20 {
        alice.say(&room, &format!("second half message {i}")).await;
    }
    env.start_indexer(config).await;
    env.caught_up().await;

    let node_ids = env.node_ids().await;
    let indexed = env.indexed_ids().await;
    assert!(stored_before < node_ids.len(), "the first run stopped mid-stream");
    assert_eq!(indexed, node_ids, "every message once, in the node's order");
    let unique: BTreeSet<&String> = indexed.iter().collect();
    assert_eq!(unique.len(), indexed.len(), "no duplicate");

    wait_for("the lag to reach zero", || async { env.indexer().metrics().lag() == 0 }).await;
    let metrics = env.http.get(format!("{}/metrics", env.indexer().url())).send().await.expect("metrics");
    let text = metrics.text().await.expect("text");
    assert!(text.contains("dchat_indexer_lag_seq 0\n"), "{text}");
    assert!(text.contains("dchat_indexer_rows_total"), "{text}");
    assert!(text.contains("dchat_indexer_rows_per_second"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_channel_text_is_searchable_ranked_and_highlighted() {
    let mut env = Env::start().await;
    let alice = User::sign_in(&env.node).await;
    let bob = User::sign_in(&env.node).await;
    let room = alice.create("general", RoomKind::Channel, &[]).await;
    let hit = alice.say(&room, "The quarterly roadmap review is on Thursday").await;
    alice.say(&room, "lunch at noon").await;
    alice.say(&room, "Roadmap roadmap roadmap: the roadmap for everyone").await;
    env.start_indexer(env.config()).await;
    env.caught_up().await;

    let (status, body) = env.get("/v1/search/messages?q=roadmap%20thursday", Some(bob.token())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 1, "{body}");
    assert_eq!(results[0]["id"], hit.as_str());
    assert_eq!(results[0]["room_name"], "general");
    let highlight = results[0]["highlight"].as_str().expect("highlight");
    assert!(highlight.contains("<b>roadmap</b>") && highlight.contains("<b>Thursday</b>"), "{highlight}");

    let (_, body) = env.get("/v1/search/messages?q=roadmap&limit=1", Some(bob.token())).await;
    let first = &body["results"][0];
    assert!(first["text"].as_str().expect("text").starts_with("Roadmap roadmap"), "more matches rank first: {body}");
    let cursor = body["next_cursor"].as_str().expect("a second page").to_string();
    let (_, page2) =
        env.get(&format!("/v1/search/messages?q=roadmap&limit=1&cursor={cursor}"), Some(bob.token())).await;
    assert_eq!(page2["results"][0]["id"], hit.as_str());
    assert!(page2.get("next_cursor").is_none(), "{page2}");

    let (status, body) = env.get("/v1/search/messages?q=roadmap", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "session_missing");
    let (status, body) = env.get("/v1/search/messages?q=roadmap", Some("not.a.token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "token_malformed", "{body}");
    let (status, body) = env.get("/v1/search/messages", Some(bob.token())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "query_missing");

    // Users: fuzzy on the address (alice is a member of a public channel).
    let hex = format!("{:#x}", alice.addr());
    let (status, body) = env.get(&format!("/v1/search/users?q={}", &hex[..12]), Some(bob.token())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["address"], alice.addr().to_checksum(None), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_refetches_rows_the_index_lost() {
    let mut env = Env::start().await;
    let alice = User::sign_in(&env.node).await;
    let room = alice.create("general", RoomKind::Channel, &[]).await;
    for i in 0..12 {
        alice.say(&room, &format!("message number {i}")).await;
    }
    let mut config = env.config();
    config.follow.reconcile_secs = 1;
    env.start_indexer(config).await;
    env.caught_up().await;
    let all = env.indexed_ids().await;

    // Lose rows behind the cursor (as a restore from an older backup would).
    let lost = sqlx::query("DELETE FROM messages WHERE seq % 3 = 0")
        .execute(env.indexer().store().pool())
        .await
        .expect("delete")
        .rows_affected();
    assert!(lost > 0);
    wait_for("reconcile to refill the room", || async { env.indexed_ids().await.len() == all.len() }).await;
    assert_eq!(env.indexed_ids().await, all);
    assert!(env.indexer().metrics().reconciled_total.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_crashing_mid_ingest_leaves_no_gap_and_no_duplicate() {
    let pg = PrivatePg::start();
    let mut env = Env::start_with(TestDb::create_on(pg.url.clone()).await).await;
    let alice = User::sign_in(&env.node).await;
    let room = alice.create("general", RoomKind::Channel, &[]).await;
    for i in 0..120 {
        alice.say(&room, &format!("before the crash {i}")).await;
    }
    let mut config = env.config();
    config.follow.batch = 4;
    env.start_indexer(config).await;
    wait_for("the follower to store some pages", || async {
        env.indexer().store().message_count().await.unwrap_or(0) >= 12
    })
    .await;

    // Cut the database away mid-ingest (an immediate stop: every connection dropped, no
    // checkpoint), keep the node busy meanwhile, then bring the database back. The follower
    // either fails a step and retries, or waits in the pool for a connection: both must end
    // with the same index.
    let before = env.indexer().store().message_count().await.expect("count");
    pg.crash();
    assert!(before < 121, "the crash came mid-ingest ({before} of 121 stored)");
    for i in 0..30 {
        alice.say(&room, &format!("while the database is down {i}")).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    pg.start_again();

    env.caught_up().await;
    let node_ids = env.node_ids().await;
    let indexed = env.indexed_ids().await;
    assert_eq!(indexed, node_ids, "every message once, in the node's order");
    let unique: BTreeSet<&String> = indexed.iter().collect();
    assert_eq!(unique.len(), indexed.len(), "no duplicate");
    env.stop_indexer().await;
}
