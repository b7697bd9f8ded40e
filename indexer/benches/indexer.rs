//! Indexer benchmarks, each reported as a ratio to a baseline run in the same process on the
//! same PostgreSQL:
//!
//! - `ingest`: rows/s of the indexer's page writes (`Store::apply`, pages of 500 with the
//!   cursor, as the follower stores them) and of the whole follower (a real node's log read over
//!   HTTP, every envelope's hash and signature checked, then stored), against a raw `COPY` of
//!   the same rows into the same table (same indexes: the GIN over the generated tsvector).
//! - `search`: p50/p99 latency of `GET /v1/search/messages` and `GET /v1/search/users` through
//!   the indexer's HTTP API (a real node's JWT checked on every call) over 1M generated public
//!   channel messages and 100k users; baseline: `GET /healthz` through the same stack.
//!
//! Run with `scripts/bench indexer` / `scripts/bench search`. PostgreSQL from
//! `DCHAT_TEST_PG_URL` (default postgres://postgres@127.0.0.1:5432/postgres); a database
//! `dchat_bench_<random>` is created and dropped. Sizes: `DCHAT_BENCH_INGEST_ROWS` (100000),
//! `DCHAT_BENCH_FOLLOW_ROWS` (10000), `DCHAT_BENCH_SEARCH_MESSAGES` (1000000),
//! `DCHAT_BENCH_SEARCH_USERS` (100000), `DCHAT_BENCH_SEARCH_QUERIES` (1000).

use std::{
    fmt::Write as _,
    time::{Duration, Instant},
};

use alloy::signers::local::PrivateKeySigner;
use dchat_indexer::{
    Secrets,
    config::Config,
    store::{NewMessage, Store},
};
use dchat_node::{
    client::{Client, SignIn},
    store::RoomKind,
};
use dchat_protocol::{Address, B256, RoomId};
use ed25519_dalek::SigningKey;
use rand::{Rng, SeedableRng, rngs::StdRng};
use sqlx::{Connection, postgres::PgPoolCopyExt};

const INDEXER_KEY: &str = "bench-indexer-key-0123456789";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A scratch database, dropped at the end.
struct Db {
    base: String,
    name: String,
    url: String,
}

impl Db {
    async fn create() -> Self {
        let name = format!("dchat_bench_{}", hex::encode(rand::random::<[u8; 6]>()));
        let db = Self::named(name);
        db.create_now().await;
        db
    }

    /// A database of a fixed name on `DCHAT_TEST_PG_URL`'s server, not created yet.
    fn named(name: String) -> Self {
        let base =
            std::env::var("DCHAT_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut url = url::Url::parse(&base).expect("url");
        url.set_path(&name);
        Self { base, name, url: url.to_string() }
    }

    async fn create_now(&self) {
        let mut conn =
            sqlx::PgConnection::connect(&self.base).await.expect("connect to PostgreSQL (DCHAT_TEST_PG_URL)");
        let sql = format!("CREATE DATABASE {}", self.name);
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.expect("create");
    }

    async fn exists(&self) -> bool {
        let mut conn =
            sqlx::PgConnection::connect(&self.base).await.expect("connect to PostgreSQL (DCHAT_TEST_PG_URL)");
        sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&self.name)
            .fetch_one(&mut conn)
            .await
            .expect("pg_database")
    }

    async fn drop_if_exists(&self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.base).await {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.expect("drop");
        }
    }

    async fn drop_now(self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.base).await {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
        }
    }
}

/// A vocabulary of made-up words, drawn with a Zipf-like skew (rank r with weight 1/r).
struct Words {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Words {
    fn new(rng: &mut StdRng, n: usize) -> Self {
        const SYL: &[&str] = &[
            "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "zo", "pe", "da", "gu", "ri", "bo", "fe", "hi", "ja", "ku",
        ];
        let mut words = Vec::with_capacity(n);
        let mut seen = std::collections::HashSet::new();
        while words.len() < n {
            let len = rng.gen_range(2..=4);
            let w: String = (0..len).map(|_| SYL[rng.gen_range(0..SYL.len())]).collect();
            if seen.insert(w.clone()) {
                words.push(w);
            }
        }
        let mut total = 0.0;
        let cumulative = (1..=n)
            .map(|r| {
                total += 1.0 / r as f64;
                total
            })
            .collect();
        Self { words, cumulative }
    }

    fn pick(&self, rng: &mut StdRng) -> &str {
        let total = *self.cumulative.last().expect("words");
        let x = rng.r#gen::<f64>() * total;
        let i = self.cumulative.partition_point(|c| *c < x).min(self.words.len() - 1);
        &self.words[i]
    }

    fn sentence(&self, rng: &mut StdRng) -> String {
        let n = rng.gen_range(6..=14);
        (0..n).map(|_| self.pick(rng)).collect::<Vec<_>>().join(" ")
    }
}

fn generated_messages(
    rng: &mut StdRng,
    words: &Words,
    rooms: &[RoomId],
    senders: &[Address],
    n: usize,
    first_seq: i64,
) -> Vec<NewMessage> {
    (0..n)
        .map(|i| {
            let seq = first_seq + i as i64;
            NewMessage {
                id: B256::from(rng.r#gen::<[u8; 32]>()),
                seq,
                room: rooms[rng.gen_range(0..rooms.len())],
                sender: senders[rng.gen_range(0..senders.len())],
                kind: 1,
                lamport: seq,
                timestamp_ms: 1_700_000_000_000 + seq,
                received_at: 1_700_000_000_000 + seq,
                body: Some(words.sentence(rng)),
            }
        })
        .collect()
}

fn copy_text(rows: &[NewMessage]) -> Vec<u8> {
    let mut out = String::with_capacity(rows.len() * 200);
    for m in rows {
        let body = m.body.as_deref().unwrap_or("");
        let _ = writeln!(
            out,
            "\\\\x{}\t{}\t\\\\x{}\t\\\\x{}\t{}\t{}\t{}\t{}\t{}",
            hex::encode(m.id),
            m.seq,
            hex::encode(m.room.as_bytes()),
            hex::encode(m.sender),
            m.kind,
            m.lamport,
            m.timestamp_ms,
            m.received_at,
            body.replace('\\', "\\\\").replace('\t', "\\t").replace('\n', "\\n"),
        );
    }
    out.into_bytes()
}

const COPY_MESSAGES: &str = "COPY messages (id, seq, room, sender, kind, lamport, timestamp_ms, received_at, body) FROM STDIN WITH (FORMAT text)";

async fn copy_rows(store: &Store, rows: &[NewMessage]) -> Duration {
    let data = copy_text(rows);
    let start = Instant::now();
    let mut copy = store.pool().copy_in_raw(COPY_MESSAGES).await.expect("copy in");
    for chunk in data.chunks(1 << 20) {
        copy.send(chunk).await.expect("copy send");
    }
    copy.finish().await.expect("copy finish");
    start.elapsed()
}

async fn apply_rows(store: &Store, rows: &[NewMessage]) -> Duration {
    let start = Instant::now();
    for page in rows.chunks(500) {
        let cursor = page.last().map(|m| m.seq).unwrap_or(0);
        store.apply(Some(("bench", cursor)), page, &[], 0).await.expect("apply");
    }
    start.elapsed()
}

async fn truncate(store: &Store) {
    sqlx::query("TRUNCATE messages, message_tokens, cursors").execute(store.pool()).await.expect("truncate");
    sqlx::query("VACUUM ANALYZE messages").execute(store.pool()).await.expect("vacuum");
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

async fn ingest() {
    let n = env_usize("DCHAT_BENCH_INGEST_ROWS", 100_000);
    let db = Db::create().await;
    let store = Store::connect(&db.url).await.expect("store");
    let mut rng = StdRng::seed_from_u64(7);
    let words = Words::new(&mut rng, 5000);
    let rooms: Vec<RoomId> = (0..20).map(|_| RoomId(rng.r#gen::<[u8; 32]>())).collect();
    let senders: Vec<Address> = (0..1000).map(|_| Address::from(rng.r#gen::<[u8; 20]>())).collect();
    let rows = generated_messages(&mut rng, &words, &rooms, &senders, n, 1);
    println!("ingest: {n} public-channel text rows (6-14 words each), table `messages` with its GIN index");

    // Alternate the two, twice, so neither gets a warmer cache; keep each one's best.
    let (mut copy_best, mut apply_best) = (Duration::MAX, Duration::MAX);
    for round in 1..=2 {
        truncate(&store).await;
        let c = copy_rows(&store, &rows).await;
        truncate(&store).await;
        let a = apply_rows(&store, &rows).await;
        println!("  round {round}: COPY {:.0} rows/s, indexer page writes {:.0} rows/s", rate(n, c), rate(n, a));
        copy_best = copy_best.min(c);
        apply_best = apply_best.min(a);
    }
    let (copy_rate, apply_rate) = (rate(n, copy_best), rate(n, apply_best));
    println!(
        "ingest (store): indexer {apply_rate:.0} rows/s vs COPY {copy_rate:.0} rows/s, ratio {:.3} (target >= 0.50)",
        apply_rate / copy_rate
    );
    store.close().await;
    db.drop_now().await;

    follow(copy_rate).await;
}

/// A node in `dir` serving its log to the bench's indexer key, no peers, rate limits lifted.
async fn bench_node(dir: &tempfile::TempDir) -> dchat_node::NodeHandle {
    let mut config = dchat_node::config::Config {
        http: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().join("node"),
        ..dchat_node::config::Config::default()
    };
    config.p2p.enabled = false;
    config.rooms.default_channel = None;
    config.rate_limit.ip_burst = 1e9;
    config.rate_limit.ip_per_sec = 1e9;
    config.rate_limit.address_burst = 1e9;
    config.rate_limit.address_per_sec = 1e9;
    config.indexer.key_hashes = vec![dchat_node::api::log::key_hash(INDEXER_KEY)];
    dchat_node::spawn(config).await.expect("node")
}

/// The whole follower: a real node holding `DCHAT_BENCH_FOLLOW_ROWS` messages, the indexer
/// started against it; rows/s from start to caught up.
async fn follow(copy_rate: f64) {
    let n = env_usize("DCHAT_BENCH_FOLLOW_ROWS", 10_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let node = bench_node(&dir).await;
    let wallet = PrivateKeySigner::random();
    let device = SigningKey::from_bytes(&rand::random());
    let mut client = Client::new(node.url());
    client
        .sign_in(&SignIn { wallet: &wallet, device: Some(&device), box_key: None, ttl_secs: 3600, chain_id: None })
        .await
        .expect("sign in");
    let room = client.create_room(&wallet, &device, "bench", RoomKind::Channel, &[]).await.expect("room").id;
    let mut rng = StdRng::seed_from_u64(9);
    let words = Words::new(&mut rng, 5000);
    let texts: Vec<String> = (0..n).map(|_| words.sentence(&mut rng)).collect();
    let start = Instant::now();
    let senders = 8;
    let mut tasks = Vec::new();
    for s in 0..senders {
        let (client, wallet, device) = (client.clone(), wallet.clone(), device.clone());
        let mine: Vec<String> = texts.iter().skip(s).step_by(senders).cloned().collect();
        tasks.push(tokio::spawn(async move {
            for t in mine {
                client.send_text(&room, &wallet, &device, &t).await.expect("send");
            }
        }));
    }
    for t in tasks {
        t.await.expect("sender");
    }
    let api_rate = rate(n, start.elapsed());

    let db = Db::create().await;
    let mut ix =
        Config { http: "127.0.0.1:0".parse().expect("addr"), database_url: db.url.clone(), ..Config::default() };
    ix.node.url = node.url();
    ix.follow.poll_ms = 20;
    ix.follow.batch = 500;
    let start = Instant::now();
    let indexer = dchat_indexer::spawn(ix, Secrets { node_key: INDEXER_KEY.into() }).await.expect("indexer");
    let target = i64::try_from(n + 1).expect("n");
    // Rows/s from the first stored row to the last (start-up, migrations and the first
    // reconcile pass are reported apart).
    let mut first: Option<(Instant, i64)> = None;
    loop {
        let count = indexer.store().message_count().await.expect("count");
        if first.is_none() && count > 0 {
            first = Some((Instant::now(), count));
        }
        if count >= target {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(600), "the follower did not catch up in 10 minutes");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (at, already) = first.expect("rows");
    let follow_rate = (target - already) as f64 / at.elapsed().as_secs_f64();
    println!(
        "ingest (follower, {n} messages from a real node's log, signatures checked): {follow_rate:.0} rows/s, ratio \
         to COPY {:.3} (first row stored {:.2} s after start); the node took them through its API at {api_rate:.0} \
         msg/s",
        follow_rate / copy_rate,
        at.duration_since(start).as_secs_f64()
    );
    indexer.shutdown().await;
    node.shutdown().await;
    db.drop_now().await;
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

async fn timed(http: &reqwest::Client, urls: &[String], token: &str) -> Vec<Duration> {
    let mut times = Vec::with_capacity(urls.len());
    for url in urls {
        let start = Instant::now();
        let resp = http.get(url).bearer_auth(token).send().await.expect("request");
        let status = resp.status();
        let _ = resp.bytes().await.expect("body");
        times.push(start.elapsed());
        assert!(status.is_success(), "{url}: {status}");
    }
    times.sort();
    times
}

fn report(what: &str, times: &[Duration], baseline: &[Duration], target_ms: f64) {
    let (p50, p99) = (percentile(times, 0.50), percentile(times, 0.99));
    let (b50, b99) = (percentile(baseline, 0.50), percentile(baseline, 0.99));
    println!(
        "search ({what}): p50 {p50:.2} ms, p99 {p99:.2} ms, max {:.2} ms over {} queries; baseline /healthz p50 \
         {b50:.2} ms p99 {b99:.2} ms; ratio p99/baseline p99 {:.1} (target p99 <= {target_ms} ms)",
        percentile(times, 1.0),
        times.len(),
        p99 / b99
    );
}

async fn search() {
    let n_messages = env_usize("DCHAT_BENCH_SEARCH_MESSAGES", 1_000_000);
    let n_users = env_usize("DCHAT_BENCH_SEARCH_USERS", 100_000);
    let n_queries = env_usize("DCHAT_BENCH_SEARCH_QUERIES", 1000);
    let dir = tempfile::tempdir().expect("tempdir");
    let node = bench_node(&dir).await;
    let wallet = PrivateKeySigner::random();
    let mut client = Client::new(node.url());
    client
        .sign_in(&SignIn { wallet: &wallet, device: None, box_key: None, ttl_secs: 3600, chain_id: None })
        .await
        .expect("sign in");
    let token = client.token().expect("token").to_string();

    // The loaded data set is kept between runs under a fixed name (loading 1M rows takes
    // minutes); it is reused when it was loaded with the same sizes and generator, and loaded
    // afresh with DCHAT_BENCH_SEARCH_REBUILD=1. Migrations added since the load run on it at
    // connect, as they would on a deployed index.
    let db = Db::named("dchat_bench_search".to_string());
    let rebuild = std::env::var("DCHAT_BENCH_SEARCH_REBUILD").is_ok_and(|v| !v.is_empty() && v != "0");
    let mut rng = StdRng::seed_from_u64(11);
    let words = Words::new(&mut rng, 20_000);
    let rooms: Vec<RoomId> = (0..100).map(|_| RoomId(rng.r#gen::<[u8; 32]>())).collect();
    let users: Vec<Address> = (0..n_users).map(|_| Address::from(rng.r#gen::<[u8; 20]>())).collect();
    let reuse = !rebuild && db.exists().await && loaded_dataset(&db.url).await == Some((n_messages, n_users));
    if !reuse {
        db.drop_if_exists().await;
        db.create_now().await;
    }
    let store = Store::connect(&db.url).await.expect("store");
    if reuse {
        sqlx::query("ANALYZE").execute(store.pool()).await.expect("analyze");
        println!(
            "search: reusing database {} ({n_messages} messages, {n_users} users; DCHAT_BENCH_SEARCH_REBUILD=1 loads \
             it afresh)",
            db.name
        );
    } else {
        let load = Instant::now();
        load_search_data(&store, &mut rng, &words, &rooms, &users, n_messages).await;
        println!(
            "search: loaded {n_messages} messages in 100 public channels and {n_users} users (20% named) in {:.0} s \
             into database {} (kept for the next run)",
            load.elapsed().as_secs_f64(),
            db.name
        );
    }
    store.close().await;

    let mut ix =
        Config { http: "127.0.0.1:0".parse().expect("addr"), database_url: db.url.clone(), ..Config::default() };
    ix.node.url = node.url();
    let indexer = dchat_indexer::spawn(ix, Secrets { node_key: INDEXER_KEY.into() }).await.expect("indexer");
    let base = indexer.url();
    let http = reqwest::Client::new();

    // Queries: one or two words drawn like the messages' own words (common words come up
    // often, as in real use); users: name fragments and address prefixes.
    let mut qrng = StdRng::seed_from_u64(13);
    let message_urls: Vec<String> = (0..n_queries)
        .map(|i| {
            let q = if i % 2 == 0 {
                words.pick(&mut qrng).to_string()
            } else {
                format!("{} {}", words.pick(&mut qrng), words.pick(&mut qrng))
            };
            format!("{base}/v1/search/messages?q={}&limit=20", q.replace(' ', "%20"))
        })
        .collect();
    let user_urls: Vec<String> = (0..n_queries)
        .map(|i| {
            let q = match i % 3 {
                0 => FIRST[qrng.gen_range(0..FIRST.len())].to_string(),
                1 => LAST[qrng.gen_range(0..LAST.len())][..5].to_string(),
                _ => format!("0x{}", &hex::encode(users[qrng.gen_range(0..users.len())])[..6]),
            };
            format!("{base}/v1/search/users?q={q}&limit=20")
        })
        .collect();
    let health: Vec<String> = (0..n_queries).map(|_| format!("{base}/healthz")).collect();
    // Warm up the connection, the key set and the caches.
    timed(&http, &message_urls[..50.min(n_queries)], &token).await;
    timed(&http, &user_urls[..50.min(n_queries)], &token).await;
    let baseline = timed(&http, &health, &token).await;
    let messages = timed(&http, &message_urls, &token).await;
    let users_t = timed(&http, &user_urls, &token).await;
    report("messages, ranked full text with highlights", &messages, &baseline, 20.0);
    report("users, trigram match on names and addresses", &users_t, &baseline, 10.0);
    indexer.shutdown().await;
    node.shutdown().await;
}

/// Version of the search data set's generator: a database loaded by another version is loaded
/// again.
const SEARCH_DATASET_VERSION: i64 = 1;

/// Sizes of the search data set already loaded in `url`, when it is complete and of this
/// generator's version.
async fn loaded_dataset(url: &str) -> Option<(usize, usize)> {
    let mut conn = sqlx::PgConnection::connect(url).await.ok()?;
    let row: (i64, i64, i64) =
        sqlx::query_as("SELECT messages, users, version FROM bench_search_dataset").fetch_one(&mut conn).await.ok()?;
    (row.2 == SEARCH_DATASET_VERSION).then_some((row.0 as usize, row.1 as usize))
}

const FIRST: &[&str] = &["ada", "alan", "grace", "linus", "barbara", "ken", "margaret", "dennis", "frances", "edsger"];
const LAST: &[&str] = &["lovelace", "turing", "hopper", "torvalds", "liskov", "thompson", "hamilton", "ritchie"];

/// Loads the search data set with `COPY`, analyses it, and records its sizes last (so an
/// interrupted load is never reused).
async fn load_search_data(
    store: &Store,
    rng: &mut StdRng,
    words: &Words,
    rooms: &[RoomId],
    users: &[Address],
    n_messages: usize,
) {
    let mut tx = store.pool().begin().await.expect("tx");
    for (i, r) in rooms.iter().enumerate() {
        sqlx::query("INSERT INTO rooms (id, kind, name, policy, synced_at) VALUES ($1, 'channel', $2, 'open', 0)")
            .bind(r.as_bytes().as_slice())
            .bind(format!("channel {i}"))
            .execute(&mut *tx)
            .await
            .expect("room");
    }
    tx.commit().await.expect("commit");
    let mut users_copy = String::new();
    let mut members_copy = String::new();
    for (i, u) in users.iter().enumerate() {
        let hexa = hex::encode(u);
        let name = if i % 5 == 0 {
            format!("{} {} {i}", FIRST[rng.gen_range(0..FIRST.len())], LAST[rng.gen_range(0..LAST.len())])
        } else {
            "\\N".into()
        };
        let verified = if i % 5 == 0 { "t" } else { "f" };
        let _ = writeln!(users_copy, "\\\\x{hexa}\t0x{hexa}\t{name}\t{verified}\t0");
        let _ = writeln!(members_copy, "\\\\x{}\t\\\\x{hexa}\tmember", hex::encode(rooms[i % rooms.len()].as_bytes()));
    }
    for (sql, data) in [
        ("COPY users (address, address_hex, name, verified, updated_at) FROM STDIN", users_copy),
        ("COPY members (room, address, role) FROM STDIN", members_copy),
    ] {
        let mut copy = store.pool().copy_in_raw(sql).await.expect("copy");
        copy.send(data.into_bytes()).await.expect("send");
        copy.finish().await.expect("finish");
    }
    let chunk = 100_000;
    let mut seq = 1;
    while (seq as usize) <= n_messages {
        let count = chunk.min(n_messages + 1 - seq as usize);
        let rows = generated_messages(rng, words, rooms, users, count, seq);
        copy_rows(store, &rows).await;
        seq += count as i64;
    }
    sqlx::query("VACUUM ANALYZE").execute(store.pool()).await.expect("analyze");
    sqlx::query(
        "CREATE TABLE bench_search_dataset (messages BIGINT NOT NULL, users BIGINT NOT NULL, version BIGINT NOT NULL)",
    )
    .execute(store.pool())
    .await
    .expect("dataset table");
    sqlx::query("INSERT INTO bench_search_dataset VALUES ($1, $2, $3)")
        .bind(n_messages as i64)
        .bind(users.len() as i64)
        .bind(SEARCH_DATASET_VERSION)
        .execute(store.pool())
        .await
        .expect("dataset row");
}

fn main() {
    let parts: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let parts = if parts.is_empty() { vec!["ingest".to_string(), "search".to_string()] } else { parts };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    for part in parts {
        match part.as_str() {
            "ingest" => rt.block_on(ingest()),
            "search" => rt.block_on(search()),
            other => {
                eprintln!("unknown part {other:?}: ingest or search");
                std::process::exit(2);
            }
        }
    }
}
