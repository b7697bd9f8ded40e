//! Cross-node latency: three `dchat-node` processes on loopback in a line (B dials A, C dials
//! B), so a message posted on A reaches C's clients through gossip, validated and stored on
//! every node it crosses. Senders post to A at a fixed offered rate; in every room one client
//! on A (the same-node baseline) and one on C record when each message arrives. Latency runs
//! from the message's due time in the sending schedule, so a sender falling behind counts.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use dchat_node::client::Client;
use eyre::{bail, eyre};
use futures::{StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;

use crate::{
    conn::{self, Conn, Follow},
    dchat,
    record::Recorder,
    server::Server,
};

/// Workload.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    /// Messages per second posted to node A.
    #[arg(long, env = "DCHAT_BENCH_RATE", default_value_t = 1000)]
    pub(crate) rate: u64,
    /// Seconds of sending.
    #[arg(long, env = "DCHAT_BENCH_SECS", default_value_t = 10.0)]
    pub(crate) secs: f64,
    /// Rooms (public channels) the messages are spread over.
    #[arg(long, env = "DCHAT_BENCH_ROOMS", default_value_t = 10)]
    pub(crate) rooms: usize,
    /// Text bytes per message.
    #[arg(long, env = "DCHAT_BENCH_SIZE", default_value_t = 64)]
    pub(crate) size: usize,
    /// HTTP requests in flight at most.
    #[arg(long, env = "DCHAT_BENCH_SENDERS", default_value_t = 64)]
    pub(crate) senders: usize,
    /// Seconds to wait for the last deliveries after sending ends.
    #[arg(long, env = "DCHAT_BENCH_DRAIN_SECS", default_value_t = 10.0)]
    pub(crate) drain_secs: f64,
    #[command(flatten)]
    pub(crate) servers: crate::Servers,
}

/// Latency at one vantage point.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Side {
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
    /// Share of the messages that arrived.
    pub(crate) complete: f64,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    /// Posts per second actually made (answered) during the run.
    pub(crate) offered: f64,
    pub(crate) same_node: Side,
    pub(crate) cross_node: Side,
    /// CPU of A, B and C over the sending window, % of one core.
    pub(crate) cpu: [f64; 3],
    pub(crate) errors: u64,
}

pub(crate) async fn run(args: &Args) -> eyre::Result<Report> {
    if args.rooms == 0 || args.rate == 0 {
        bail!("rooms and rate must be positive");
    }
    let bin = &args.servers.dchat_bin;
    let (a, a_addrs) = Server::dchat_peer(bin, &[])?;
    let (b, b_addrs) = Server::dchat_peer(bin, &a_addrs)?;
    let (c, _) = Server::dchat_peer(bin, &b_addrs)?;
    println!(
        "cross: nodes A {} (pid {}), B (pid {}), C {} (pid {}); B dials A, C dials B",
        a.url,
        a.pid(),
        b.pid(),
        c.url,
        c.pid()
    );

    // One owner per room posts on A; one reader per room signs in on each of A and C.
    let owners = dchat::sign_in(&a.url, args.rooms, 16).await?;
    let readers_a = dchat::sign_in(&a.url, args.rooms, 16).await?;
    let readers_c = dchat::sign_in(&c.url, args.rooms, 16).await?;
    let rooms = dchat::create_rooms(&a.url, &owners, args.rooms, 1).await?;
    // The rooms reach C through gossip (or its history sync) before anyone there follows them.
    let probe = Client::new(&c.url).with_token(readers_c[0].token.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    for room in &rooms {
        while probe.room(room).await.is_err() {
            if Instant::now() > deadline {
                bail!("room {room} did not reach node C within 60 s: is the mesh up?");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let same = Arc::new(Recorder::new(&[args.rate], args.secs));
    let cross = Arc::new(Recorder::new(&[args.rate], args.secs));
    let stop = CancellationToken::new();
    let follows: Vec<(String, Follow, Arc<Recorder>)> = rooms
        .iter()
        .enumerate()
        .flat_map(|(i, room)| {
            [
                (
                    a.url.clone(),
                    Follow::Dchat { token: readers_a[i].token.clone(), room: room.to_string() },
                    same.clone(),
                ),
                (
                    c.url.clone(),
                    Follow::Dchat { token: readers_c[i].token.clone(), room: room.to_string() },
                    cross.clone(),
                ),
            ]
        })
        .collect();
    let conns: Vec<Conn> = futures::stream::iter(follows)
        .map(|(url, follow, rec)| {
            let stop = stop.clone();
            async move { conn::open(&url, follow, Some(rec), stop).await }
        })
        .buffered(16)
        .try_collect()
        .await?;

    // Message `seq` goes to room `seq % rooms`, from its owner, with the room's next lamport.
    let step = &same.steps[0];
    let mut lamports = vec![0u64; args.rooms];
    let plan: Vec<(u64, usize, usize, u64)> = (0..step.count)
        .map(|seq| {
            let room = (seq % args.rooms as u64) as usize;
            lamports[room] += 1;
            (seq, room, room, lamports[room])
        })
        .collect();
    let posts = Arc::new(dchat::seal_posts(&owners, &rooms, &plan, args.size)?);
    let plan = Arc::new(plan);
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.senders).build()?;
    let urls: Arc<Vec<String>> = Arc::new(rooms.iter().map(|r| format!("{}/v1/rooms/{r}/messages", a.url)).collect());
    let tokens: Arc<Vec<String>> = Arc::new(owners.iter().map(|u| u.token.clone()).collect());
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now() + Duration::from_millis(200);
    same.steps[0].start.set(start).map_err(|_| eyre!("started twice"))?;
    cross.steps[0].start.set(start).map_err(|_| eyre!("started twice"))?;
    let cpu0 = [a.cpu(), b.cpu(), c.cpu()];
    let n = args.senders.max(1);
    let mut senders = Vec::new();
    for s in 0..n {
        let (plan, posts, errors) = (plan.clone(), posts.clone(), errors.clone());
        let (http, urls, tokens, same) = (http.clone(), urls.clone(), tokens.clone(), same.clone());
        senders.push(tokio::spawn(async move {
            let step = &same.steps[0];
            for j in (s..plan.len()).step_by(n) {
                tokio::time::sleep_until(step.due(start, plan[j].0).into()).await;
                let p = &posts[j];
                let ok = crate::fanout::post(&http, &urls[p.room], &tokens[p.user], p.body.clone()).await;
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep_until((start + Duration::from_secs_f64(args.secs)).into()).await;
    let cpu1 = [a.cpu(), b.cpu(), c.cpu()];
    for s in senders {
        s.await?;
    }
    let sent_for = start.elapsed().as_secs_f64();
    let expected = step.count;
    let deadline = Instant::now() + Duration::from_secs_f64(args.drain_secs);
    while (same.delivered(0) < expected || cross.delivered(0) < expected) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.cancel();
    for conn in conns {
        let _ = conn.task.await;
    }
    let side = |r: &Recorder| {
        let (h, _) = r.result(0);
        Side {
            p50: h.value_at_quantile(0.50) as f64 / 1000.0,
            p99: h.value_at_quantile(0.99) as f64 / 1000.0,
            max: h.max() as f64 / 1000.0,
            complete: r.delivered(0) as f64 / expected.max(1) as f64,
        }
    };
    let errors = errors.load(Ordering::Relaxed);
    let window = args.secs;
    let cpu = std::array::from_fn(|i| cpu1[i].saturating_sub(cpu0[i]).as_secs_f64() / window * 100.0);
    let report = Report {
        offered: (expected - errors.min(expected)) as f64 / sent_for.max(window),
        same_node: side(&same),
        cross_node: side(&cross),
        cpu,
        errors,
    };
    drop((a, b, c));
    Ok(report)
}

/// Prints a run's figures and the verdict on the target (p99 <= 50 ms at 1,000 msg/s).
pub(crate) fn print(args: &Args, r: &Report) {
    let line = |name: &str, s: &Side| {
        println!(
            "cross: {name}  p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  ({:.2}% arrived)",
            s.p50,
            s.p99,
            s.max,
            s.complete * 100.0
        );
    };
    println!(
        "cross: asked {} msg/s for {} s over {} rooms; offered {:.0} msg/s{}",
        args.rate,
        args.secs,
        args.rooms,
        r.offered,
        if r.errors > 0 { format!(" ({} posts failed)", r.errors) } else { String::new() }
    );
    line("A -> A (same node)", &r.same_node);
    line("A -> C (two hops) ", &r.cross_node);
    println!("cross: node CPU A {:.0}%  B {:.0}%  C {:.0}% (of one core)", r.cpu[0], r.cpu[1], r.cpu[2]);
    let met = r.cross_node.p99 <= 50.0 && r.offered >= 0.95 * 1000.0 && r.cross_node.complete >= 0.999;
    println!(
        "cross: ratio p99 A->C / A->A {:.2}; target p99 <= 50 ms at 1,000 msg/s: {}",
        r.cross_node.p99 / r.same_node.p99.max(0.001),
        if args.rate < 1000 {
            "not measured (rate below 1,000)"
        } else if met {
            "met"
        } else {
            "missed"
        }
    );
}
