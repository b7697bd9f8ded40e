//! Network benchmark: three nodes on loopback in one process.
//!
//! - delivery: a client on node A posts at a fixed offered rate; subscribers on A (same node,
//!   the baseline) and on C (two hops away through gossip) record send-to-receive latency;
//!   reports p50/p99/max for both, their ratio, and the rate C delivered;
//! - sync: a node with H messages in a room, and a fresh node joining it; reports how long the
//!   newcomer takes to hold all H, as messages/s, against the rate the first node took them in
//!   through its API in the same run.
//!
//! `scripts/bench network` runs it in release. Environment: `DCHAT_BENCH_RATE` (messages/s,
//! default 1000), `DCHAT_BENCH_SECS` (default 5), `DCHAT_BENCH_HISTORY` (comma list, default
//! 1000,5000).
#![allow(missing_docs)]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use alloy::signers::local::PrivateKeySigner;
use dchat_node::{
    NodeHandle,
    client::{Client, Incoming, SignIn, seal_text},
    config::Config,
    store::RoomKind,
};
use dchat_protocol::RoomId;
use ed25519_dalek::SigningKey;
use hdrhistogram::Histogram;

struct Node {
    handle: NodeHandle,
    _dir: tempfile::TempDir,
}

async fn node(bootstrap: Vec<String>) -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config =
        Config { http: "127.0.0.1:0".parse().expect("addr"), data_dir: dir.path().join("n"), ..Config::default() };
    config.p2p.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
    config.p2p.bootstrap = bootstrap;
    config.rate_limit.ip_burst = 1e9;
    config.rate_limit.ip_per_sec = 1e9;
    config.rate_limit.address_burst = 1e9;
    config.rate_limit.address_per_sec = 1e9;
    let handle = dchat_node::spawn(config).await.expect("node");
    Node { handle, _dir: dir }
}

async fn addrs(n: &Node) -> Vec<String> {
    n.handle.p2p().expect("p2p").addresses().await.iter().map(ToString::to_string).collect()
}

struct User {
    wallet: PrivateKeySigner,
    device: SigningKey,
    client: Client,
}

async fn user(n: &Node) -> User {
    let wallet = PrivateKeySigner::random();
    let device = SigningKey::from_bytes(&rand::random());
    let mut client = Client::new(n.handle.url());
    let s = SignIn { wallet: &wallet, device: Some(&device), box_key: None, ttl_secs: 3600, chain_id: None };
    client.sign_in(&s).await.expect("sign in");
    User { wallet, device, client }
}

async fn wait_for(what: &str, secs: u64, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn count(client: &Client, room: &RoomId) -> usize {
    // Page back through the room (500 a page) and count.
    let mut n = 0;
    let mut before: Option<String> = None;
    loop {
        let Ok(page) = client.history(room, None, before.as_deref(), Some(500)).await else { return 0 };
        n += page.messages.len();
        before = page.messages.first().map(|m| m.id.clone());
        if !page.has_more {
            return n;
        }
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn pct(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

async fn delivery() {
    let rate = env_u64("DCHAT_BENCH_RATE", 1000);
    let secs = env_u64("DCHAT_BENCH_SECS", 5);
    let senders = 16u64;
    let per_sender = rate * secs / senders;
    let total = per_sender * senders;
    let a = node(vec![]).await;
    let b = node(addrs(&a).await).await;
    // C talks to B only, so A -> C crosses two gossip hops.
    let c = node(addrs(&b).await).await;
    // Keep the chain A - B - C: A and C must not meet directly (Kademlia would introduce them).
    let (pa, pc) = (a.handle.p2p().expect("p2p").peer_id(), c.handle.p2p().expect("p2p").peer_id());
    a.handle.p2p().expect("p2p").block(pc).await;
    c.handle.p2p().expect("p2p").block(pa).await;
    wait_for("mesh", 20, async || {
        c.handle.p2p().expect("p2p").peers().await == vec![b.handle.p2p().expect("p2p").peer_id()]
    })
    .await;
    let alice = user(&a).await;
    let carol = user(&c).await;
    let room = alice
        .client
        .create_room(&alice.wallet, &alice.device, "bench", RoomKind::Channel, &[carol.wallet.address()])
        .await
        .expect("room");
    wait_for("room reaches C", 20, async || carol.client.rooms().await.is_ok_and(|r| r.len() == 1)).await;
    // Let gossipsub graft its meshes (heartbeats) before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut receivers = Vec::new();
    for client in [&alice.client, &carol.client] {
        let mut stream = client.stream(&[room.id]).await.expect("stream");
        let sent = sent.clone();
        receivers.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
            let mut got = 0u64;
            let start = Instant::now();
            let mut last = start;
            while got < total {
                match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
                    Ok(Ok(Incoming::Message(m))) => {
                        let now = Instant::now();
                        // The post's reply may land after the frame; wait briefly for the send time.
                        let mut t0 = sent.lock().expect("lock").get(&m.id).copied();
                        while t0.is_none() {
                            tokio::task::yield_now().await;
                            t0 = sent.lock().expect("lock").get(&m.id).copied();
                        }
                        if let Some(t0) = t0 {
                            let _ = h.record(now.saturating_duration_since(t0).as_micros().max(1) as u64);
                        }
                        got += 1;
                        last = now;
                    }
                    Ok(Ok(_)) => {}
                    _ => break,
                }
            }
            (h, got, last.saturating_duration_since(start))
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Offered load: `rate` posts per second from 16 concurrent senders, each on a schedule.
    let interval = Duration::from_secs_f64(senders as f64 / rate as f64);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..senders {
        let (client, wallet, device, sent) =
            (alice.client.clone(), alice.wallet.clone(), alice.device.clone(), sent.clone());
        let room = room.id;
        tasks.push(tokio::spawn(async move {
            let mut next = start + interval.mul_f64(s as f64 / senders as f64);
            for i in 0..per_sender {
                tokio::time::sleep_until(next.into()).await;
                next += interval;
                let env = seal_text(
                    &room,
                    &wallet,
                    &device,
                    1 + i * senders + s,
                    "benchmark message of a typical length, ~60 bytes",
                );
                let id = format!("{}", alloy::primitives::keccak256(&env.body));
                sent.lock().expect("lock").insert(id, Instant::now());
                client.post_envelope(&room, &env).await.expect("post");
            }
        }));
    }
    for t in tasks {
        t.await.expect("sender");
    }
    let offered = (per_sender * senders) as f64 / start.elapsed().as_secs_f64();
    let mut results = Vec::new();
    for r in receivers {
        results.push(r.await.expect("receiver"));
    }
    let (same, same_n, _) = &results[0];
    let (cross, cross_n, cross_t) = &results[1];
    println!("delivery: offered {offered:.0} msg/s for {secs} s, 3 nodes (A -> B -> C), one process");
    println!(
        "  same node (A->A): p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({same_n} delivered)",
        pct(same, 0.5),
        pct(same, 0.99),
        same.max() as f64 / 1000.0
    );
    println!(
        "  cross node (A->C): p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({cross_n} delivered, {:.0} msg/s)",
        pct(cross, 0.5),
        pct(cross, 0.99),
        cross.max() as f64 / 1000.0,
        *cross_n as f64 / cross_t.as_secs_f64().max(1e-9)
    );
    println!(
        "  ratio cross/same: p50 {:.2}  p99 {:.2}",
        pct(cross, 0.5) / pct(same, 0.5),
        pct(cross, 0.99) / pct(same, 0.99)
    );
    for n in [a, b, c] {
        n.handle.shutdown().await;
    }
}

async fn sync_scaling() {
    let sizes: Vec<u64> = std::env::var("DCHAT_BENCH_HISTORY")
        .unwrap_or_else(|_| "1000,5000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    for h in sizes {
        let a = node(vec![]).await;
        let alice = user(&a).await;
        let room = alice
            .client
            .create_room(&alice.wallet, &alice.device, "history", RoomKind::Channel, &[])
            .await
            .expect("room");
        let start = Instant::now();
        let mut tasks = Vec::new();
        let senders = 8u64;
        for s in 0..senders {
            let (client, wallet, device) = (alice.client.clone(), alice.wallet.clone(), alice.device.clone());
            let room = room.id;
            tasks.push(tokio::spawn(async move {
                for i in 0..h / senders {
                    let env =
                        seal_text(&room, &wallet, &device, 1 + i * senders + s, "history message of a typical length");
                    client.post_envelope(&room, &env).await.expect("post");
                }
            }));
        }
        for t in tasks {
            t.await.expect("writer");
        }
        let ingest = start.elapsed();
        let total = (h / senders) * senders + 1;
        let start = Instant::now();
        let f = node(addrs(&a).await).await;
        let reader = Client::new(f.handle.url());
        wait_for("sync completes", 600, async || count(&reader, &room.id).await as u64 == total).await;
        let synced = start.elapsed();
        let ingest_rate = (total - 1) as f64 / ingest.as_secs_f64();
        let sync_rate = total as f64 / synced.as_secs_f64();
        println!(
            "sync: history {total:>6}: newcomer complete in {:.2} s ({sync_rate:.0} msg/s); API ingest {ingest_rate:.0} msg/s; ratio sync/ingest {:.2}",
            synced.as_secs_f64(),
            sync_rate / ingest_rate
        );
        a.handle.shutdown().await;
        f.handle.shutdown().await;
    }
}

fn main() {
    // `cargo bench` passes --bench; nothing else is taken.
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        delivery().await;
        sync_scaling().await;
    });
}
