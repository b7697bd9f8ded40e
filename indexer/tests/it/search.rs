//! Search at scale: the newest-first walk over seq buckets and the split user search return
//! exactly what one query over every match returns, on data sets crossing many buckets.

use dchat_indexer::store::{Match, NewMessage, RANKED_MATCHES, Store};
use dchat_protocol::{Address, B256, RoomId};
use rand::{Rng, SeedableRng, rngs::StdRng};
use sqlx::Row;

use crate::common::TestDb;

/// Every match of `q`, newest first, cut to `want`: the single query the walk replaces.
async fn reference_matches(store: &Store, q: &str, room: Option<&RoomId>, want: i64) -> Vec<Match> {
    let rows = sqlx::query(
        "SELECT m.id, m.seq, ts_rank_cd(m.tsv, websearch_to_tsquery('simple', $1)) AS rank
         FROM messages m JOIN rooms r ON r.id = m.room
         WHERE r.kind = 'channel' AND m.tsv @@ websearch_to_tsquery('simple', $1)
           AND ($2::bytea IS NULL OR m.room = $2)
         ORDER BY m.seq DESC LIMIT $3",
    )
    .bind(q)
    .bind(room.map(|r| r.as_bytes().to_vec()))
    .bind(want)
    .fetch_all(store.pool())
    .await
    .expect("reference query");
    rows.iter().map(|r| Match { id: r.get("id"), seq: r.get("seq"), rank: r.get("rank") }).collect()
}

async fn insert_room(store: &Store, id: &RoomId, kind: &str, name: &str) {
    sqlx::query("INSERT INTO rooms (id, kind, name, policy, synced_at) VALUES ($1, $2, $3, 'open', 0)")
        .bind(id.as_bytes().as_slice())
        .bind(kind)
        .bind(name)
        .execute(store.pool())
        .await
        .expect("room");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_first_walk_returns_what_one_query_over_every_match_returns() {
    let db = TestDb::create().await;
    let store = Store::connect(&db.url).await.expect("store");
    let mut rng = StdRng::seed_from_u64(5);
    let channels: Vec<RoomId> = (0..3).map(|_| RoomId(rng.r#gen())).collect();
    let group = RoomId(rng.r#gen());
    for (i, c) in channels.iter().enumerate() {
        insert_room(&store, c, "channel", &format!("channel {i}")).await;
    }
    insert_room(&store, &group, "group", "private").await;

    // 12,000 messages with seqs 13 apart (the node's seq also counts other rooms' messages):
    // about 38 buckets of 4,096 seqs. Words of every frequency, some repeated in a message so
    // ranks differ; a group's rows carry text too, to show that only channels are searched.
    let filler = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit"];
    let words: [(&str, f64); 5] = [("common", 0.5), ("often", 0.1), ("middle", 0.02), ("rare", 0.002), ("single", 0.0)];
    let sender = Address::from(rng.r#gen::<[u8; 20]>());
    let n = 12_000;
    let mut messages = Vec::with_capacity(n);
    for i in 0..n {
        let seq = 1 + 13 * i as i64;
        let mut text: Vec<&str> = (0..rng.gen_range(3..8)).map(|_| filler[rng.gen_range(0..filler.len())]).collect();
        for (word, p) in words {
            if rng.gen_bool(p) {
                for _ in 0..rng.gen_range(1..=3) {
                    text.push(word);
                }
            }
        }
        if i == n / 2 {
            text.push("single");
        }
        let room = if i % 10 == 9 { group } else { channels[i % channels.len()] };
        messages.push(NewMessage {
            id: B256::from(rng.r#gen::<[u8; 32]>()),
            seq,
            room,
            sender,
            kind: 1,
            lamport: seq,
            timestamp_ms: seq,
            received_at: seq,
            body: Some(text.join(" ")),
        });
    }
    for page in messages.chunks(1000) {
        store.apply(None, page, &[], 0).await.expect("apply");
    }
    sqlx::query("ANALYZE").execute(store.pool()).await.expect("analyze");

    let queries = [
        "common",
        "often",
        "middle",
        "rare",
        "single",
        "nowhere",
        "common middle",
        "often or rare",
        "\"common common\"",
        "middle -often",
        "-common",
    ];
    for q in queries {
        for room in [None, Some(&channels[1]), Some(&group)] {
            for want in [1, 20, 150, RANKED_MATCHES, 20_000] {
                let walked = store.newest_public_matches(q, room, want).await.expect("walk");
                let expected = reference_matches(&store, q, room, want).await;
                assert_eq!(walked, expected, "q={q:?} room={room:?} want={want}");
            }
        }
    }
    assert_eq!(store.newest_public_matches("single", None, 10).await.expect("walk").len(), 1);

    // Pages of the ranking: the newest 1000 matches by rank, newest first among equals.
    for q in ["common", "often", "middle", "rare"] {
        let mut expected = reference_matches(&store, q, None, RANKED_MATCHES).await;
        expected.sort_by(|a, b| b.rank.total_cmp(&a.rank).then(b.seq.cmp(&a.seq)));
        for offset in [0, 20, 990] {
            let hits = store.search_public(q, None, 20, offset).await.expect("search");
            let got: Vec<(Vec<u8>, Option<f32>)> = hits.iter().map(|h| (h.id.to_vec(), h.rank)).collect();
            let want: Vec<(Vec<u8>, Option<f32>)> =
                expected.iter().skip(offset as usize).take(20).map(|m| (m.id.clone(), Some(m.rank))).collect();
            assert_eq!(got, want, "q={q:?} offset={offset}");
            assert!(hits.iter().all(|h| h.highlight.as_deref().is_some_and(|t| t.contains("<b>"))));
        }
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_search_returns_the_best_of_every_visible_match() {
    let db = TestDb::create().await;
    let store = Store::connect(&db.url).await.expect("store");
    let mut rng = StdRng::seed_from_u64(6);
    let channel = RoomId(rng.r#gen());
    let group = RoomId(rng.r#gen());
    insert_room(&store, &channel, "channel", "open").await;
    insert_room(&store, &group, "group", "closed").await;
    let caller = Address::from(rng.r#gen::<[u8; 20]>());
    let first = ["ada", "adam", "alan", "grace", "linus", "canada"];
    let last = ["lovelace", "love", "turing", "hopper", "adams"];
    let mut users = vec![caller];
    for i in 0..3000 {
        let who = Address::from(rng.r#gen::<[u8; 20]>());
        users.push(who);
        let name = (i % 3 == 0).then(|| {
            let mut n = format!("{} {}", first[rng.gen_range(0..first.len())], last[rng.gen_range(0..last.len())]);
            if rng.gen_bool(0.7) {
                n.push_str(&format!(" {}", rng.gen_range(0..100_000)));
            }
            n
        });
        sqlx::query("INSERT INTO users (address, address_hex, name, verified, updated_at) VALUES ($1, $2, $3, $4, 0)")
            .bind(who.as_slice())
            .bind(dchat_indexer::store::address_hex(&who))
            .bind(&name)
            .bind(name.is_some())
            .execute(store.pool())
            .await
            .expect("user");
        // Some in the public channel, some sharing the group with the caller, the rest nowhere.
        let room = match i % 4 {
            0 => Some(channel),
            1 => Some(group),
            _ => None,
        };
        if let Some(room) = room {
            sqlx::query("INSERT INTO members (room, address, role) VALUES ($1, $2, 'member')")
                .bind(room.as_bytes().as_slice())
                .bind(who.as_slice())
                .execute(store.pool())
                .await
                .expect("member");
        }
    }
    sqlx::query("INSERT INTO members (room, address, role) VALUES ($1, $2, 'owner')")
        .bind(group.as_bytes().as_slice())
        .bind(caller.as_slice())
        .execute(store.pool())
        .await
        .expect("caller");
    sqlx::query("ANALYZE").execute(store.pool()).await.expect("analyze");

    // Everything that matches and may be seen, scored by what matched, in one query; addresses
    // match only fragments that look like part of one ($5).
    let reference = "SELECT u.address, GREATEST(
             CASE WHEN $5 AND u.address_hex LIKE $2 THEN similarity(u.address_hex, $1) END,
             CASE WHEN lower(u.name) LIKE $2 OR lower(u.name) % $1 THEN similarity(lower(u.name), $1) END) AS score
         FROM users u
         WHERE (($5 AND u.address_hex LIKE $2) OR lower(u.name) LIKE $2 OR lower(u.name) % $1)
           AND (u.name IS NOT NULL OR u.address = $3
                OR EXISTS (SELECT 1 FROM members m JOIN rooms r ON r.id = m.room
                           WHERE m.address = u.address AND r.kind = 'channel')
                OR EXISTS (SELECT 1 FROM members a JOIN members b ON a.room = b.room
                           WHERE a.address = u.address AND b.address = $3))
         ORDER BY 2 DESC, u.address_hex LIMIT $4";
    let mut queries: Vec<String> =
        ["ada", "adam", "love", "lovelace", "ing", "canada", "a", "ab", "0x", "zzz", "lovelase", "alan hoper", "adma"]
            .map(String::from)
            .to_vec();
    for who in users.iter().take(40) {
        let hex = dchat_indexer::store::address_hex(who);
        queries.push(hex[..5].to_string());
        queries.push(hex[10..13].to_string());
        queries.push(hex[10..14].to_string());
    }
    for q in &queries {
        for limit in [1, 5, 20, 100] {
            let got = store.search_users(q, &caller, limit).await.expect("search");
            let like = format!("%{q}%");
            let rows = sqlx::query(reference)
                .bind(q)
                .bind(&like)
                .bind(caller.as_slice())
                .bind(limit)
                .bind(dchat_indexer::store::is_address_fragment(q))
                .fetch_all(store.pool())
                .await
                .expect("reference");
            let expected: Vec<(Vec<u8>, f32)> = rows.iter().map(|r| (r.get("address"), r.get("score"))).collect();
            let got: Vec<(Vec<u8>, f32)> = got.iter().map(|u| (u.address.to_vec(), u.score)).collect();
            assert_eq!(got, expected, "q={q:?} limit={limit}");
        }
    }
    // Three bare hex digits are a word, not a wallet; `0x` and two digits, or four digits, are
    // part of an address.
    use dchat_indexer::store::is_address_fragment;
    assert!(!is_address_fragment("ada") && !is_address_fragment("0x") && !is_address_fragment("0xa"));
    assert!(is_address_fragment("0xab") && is_address_fragment("dead") && !is_address_fragment("deaf0xz"));
    let hits = store.search_users("ada", &caller, 100).await.expect("search");
    assert!(!hits.is_empty() && hits.iter().all(|u| u.name.is_some()), "{hits:?}");
    store.close().await;
}
