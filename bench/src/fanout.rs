//! Fan-out: `clients` WebSocket clients spread evenly over `rooms`; senders post into the rooms
//! at a rate that rises step by step, each message reaching every client of its room (its
//! sender included). Run against each server with the same workload.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use eyre::{bail, eyre};
use futures::{StreamExt, TryStreamExt};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use crate::{
    conn::{self, Conn, Follow},
    dchat,
    record::Recorder,
    server::{Kind, Server},
};

/// Workload and where the servers are.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    /// WebSocket clients.
    #[arg(long, env = "DCHAT_BENCH_CLIENTS", default_value_t = 1000)]
    pub(crate) clients: usize,
    /// Rooms; the clients are spread evenly over them.
    #[arg(long, env = "DCHAT_BENCH_ROOMS", default_value_t = 100)]
    pub(crate) rooms: usize,
    /// Messages per second sent at each step, comma separated.
    #[arg(
        long,
        env = "DCHAT_BENCH_RATES",
        value_delimiter = ',',
        default_value = "250,500,1000,2000,4000,8000,16000,32000"
    )]
    pub(crate) rates: Vec<u64>,
    /// Seconds each step sends for.
    #[arg(long, env = "DCHAT_BENCH_STEP_SECS", default_value_t = 5.0)]
    pub(crate) secs: f64,
    /// Text bytes per message.
    #[arg(long, env = "DCHAT_BENCH_SIZE", default_value_t = 64)]
    pub(crate) size: usize,
    /// Seconds to wait for a step's last deliveries after sending ends.
    #[arg(long, env = "DCHAT_BENCH_DRAIN_SECS", default_value_t = 5.0)]
    pub(crate) drain_secs: f64,
    /// Concurrent senders (dchat: HTTP requests in flight at most).
    #[arg(long, env = "DCHAT_BENCH_SENDERS", default_value_t = 128)]
    pub(crate) senders: usize,
    /// Servers to measure, in order.
    #[arg(long, env = "DCHAT_BENCH_TARGETS", value_delimiter = ',', default_value = "socketio,dchat")]
    pub(crate) targets: Vec<String>,
    #[command(flatten)]
    pub(crate) servers: crate::Servers,
}

/// One step's figures.
#[derive(Debug, Clone)]
pub(crate) struct StepReport {
    pub(crate) rate: u64,
    pub(crate) p50: f64,
    pub(crate) p95: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
    /// Deliveries per second during the sending window.
    pub(crate) delivered_per_sec: f64,
    /// Share of the step's expected deliveries that arrived (by the end of the drain).
    pub(crate) complete: f64,
    /// Server CPU over the sending window, % of one core.
    pub(crate) cpu: f64,
    /// Load client CPU over the sending window, % of one core.
    pub(crate) client_cpu: f64,
    pub(crate) rss_mb: f64,
    pub(crate) errors: u64,
    pub(crate) sustained: bool,
}

/// A step is sustained when the deliveries keep up with what was sent (95%), every message
/// arrives, nothing failed, and p99 stays under a second.
fn sustained(r: &StepReport, per_room: usize) -> bool {
    r.delivered_per_sec >= 0.95 * (r.rate * per_room as u64) as f64
        && r.complete >= 0.999
        && r.errors == 0
        && r.p99 <= 1000.0
}

/// Runs the ramp against one server; stops after the first step it does not sustain.
pub(crate) async fn run(kind: Kind, args: &Args) -> eyre::Result<Vec<StepReport>> {
    if args.rooms == 0 || args.clients < args.rooms || !args.clients.is_multiple_of(args.rooms) {
        bail!("clients ({}) must be a positive multiple of rooms ({})", args.clients, args.rooms);
    }
    let per_room = args.clients / args.rooms;
    let server = Server::start(kind, &args.servers.dchat_bin, &args.servers.socketio_dir)?;
    println!(
        "{}: started (pid {}), setting up {} clients in {} rooms",
        kind.name(),
        server.pid(),
        args.clients,
        args.rooms
    );
    let t = Instant::now();
    let (users, room_ids) = match kind {
        Kind::Dchat => {
            let users = dchat::sign_in(&server.url, args.clients, 32).await?;
            let rooms = dchat::create_rooms(&server.url, &users, args.rooms, per_room).await?;
            (users, rooms)
        }
        Kind::SocketIo => (Vec::new(), Vec::new()),
    };
    let follow = |i: usize| match kind {
        Kind::Dchat => Follow::Dchat { token: users[i].token.clone(), room: room_ids[i / per_room].to_string() },
        Kind::SocketIo => Follow::SocketIo { room: format!("r{}", i / per_room) },
    };
    let recorder = Arc::new(Recorder::new(&args.rates, args.secs));
    let stop = CancellationToken::new();
    let conns: Vec<Conn> = futures::stream::iter(0..args.clients)
        .map(|i| conn::open(&server.url, follow(i), Some(recorder.clone()), stop.clone()))
        .buffered(64)
        .try_collect()
        .await?;
    println!(
        "{}: {} clients signed in and following their rooms in {:.1} s",
        kind.name(),
        conns.len(),
        t.elapsed().as_secs_f64()
    );
    let conns = Arc::new(conns);

    let http = reqwest::Client::builder().pool_max_idle_per_host(args.senders).build()?;
    let urls: Arc<Vec<String>> =
        Arc::new(room_ids.iter().map(|r| format!("{}/v1/rooms/{r}/messages", server.url)).collect());
    let tokens: Arc<Vec<String>> = Arc::new(users.iter().map(|u| u.token.clone()).collect());
    let mut lamports = vec![0u64; args.rooms];
    let mut reports = Vec::new();
    for (i, step) in recorder.steps.iter().enumerate() {
        // Who sends what: message `seq` goes to room `seq % rooms`, from its members in turn.
        let plan: Vec<(u64, usize, usize, u64)> = (step.first..step.first + step.count)
            .map(|seq| {
                let room = (seq % args.rooms as u64) as usize;
                let member = ((seq / args.rooms as u64) % per_room as u64) as usize;
                lamports[room] += 1;
                (seq, room, room * per_room + member, lamports[room])
            })
            .collect();
        let posts = match kind {
            Kind::Dchat => Arc::new(dchat::seal_posts(&users, &room_ids, &plan, args.size)?),
            Kind::SocketIo => Arc::new(Vec::new()),
        };
        let plan = Arc::new(plan);
        let errors = Arc::new(AtomicU64::new(0));
        let start = Instant::now() + Duration::from_millis(200);
        step.start.set(start).map_err(|_| eyre!("step started twice"))?;
        let (cpu0, own0) = (server.cpu(), own_cpu());
        let mut senders = Vec::new();
        for s in 0..args.senders.max(1) {
            let (plan, posts, errors, conns) = (plan.clone(), posts.clone(), errors.clone(), conns.clone());
            let (http, urls, tokens, recorder) = (http.clone(), urls.clone(), tokens.clone(), recorder.clone());
            let (n, size) = (args.senders.max(1), args.size);
            senders.push(tokio::spawn(async move {
                let step = &recorder.steps[i];
                for j in (s..plan.len()).step_by(n) {
                    let (seq, _, user, _) = plan[j];
                    tokio::time::sleep_until(step.due(start, seq).into()).await;
                    let ok = match kind {
                        Kind::Dchat => {
                            let p = &posts[j];
                            post(&http, &urls[p.room], &tokens[p.user], p.body.clone()).await
                        }
                        Kind::SocketIo => {
                            let frame = format!("42[\"msg\",\"{}\"]", dchat::text(seq, size));
                            conns[user].tx.send(Utf8Bytes::from(frame)).await.is_ok()
                        }
                    };
                    if !ok {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        tokio::time::sleep_until((start + Duration::from_secs_f64(args.secs)).into()).await;
        let (cpu1, own1, rss) = (server.cpu(), own_cpu(), server.rss());
        for s in senders {
            s.await?;
        }
        let expected = step.count * per_room as u64;
        let deadline = Instant::now() + Duration::from_secs_f64(args.drain_secs);
        while recorder.delivered(i) < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Let clients hand over their last arrivals.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let (hist, in_window) = recorder.result(i);
        let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
        let window = args.secs;
        let mut r = StepReport {
            rate: step.rate,
            p50: ms(0.50),
            p95: ms(0.95),
            p99: ms(0.99),
            max: hist.max() as f64 / 1000.0,
            delivered_per_sec: in_window as f64 / window,
            complete: recorder.delivered(i) as f64 / expected.max(1) as f64,
            cpu: (cpu1.saturating_sub(cpu0)).as_secs_f64() / window * 100.0,
            client_cpu: (own1.saturating_sub(own0)).as_secs_f64() / window * 100.0,
            rss_mb: rss as f64 / 1e6,
            errors: errors.load(Ordering::Relaxed),
            sustained: false,
        };
        r.sustained = sustained(&r, per_room);
        println!(
            "{:>9} {:>6} msg/s -> {:>8.0} deliveries/s ({:>6.2}% arrived)  p50 {:>8.2} ms  p95 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  server CPU {:>4.0}%  RSS {:>6.1} MB  client CPU {:>4.0}%{}{}",
            kind.name(),
            r.rate,
            r.delivered_per_sec,
            r.complete * 100.0,
            r.p50,
            r.p95,
            r.p99,
            r.max,
            r.cpu,
            r.rss_mb,
            r.client_cpu,
            if r.errors > 0 { format!("  {} send errors", r.errors) } else { String::new() },
            if r.sustained { "" } else { "  <- saturated" },
        );
        let done = !r.sustained;
        reports.push(r);
        if done {
            break;
        }
    }
    if recorder.disconnects() > 0 {
        println!("{}: {} clients were disconnected by the server", kind.name(), recorder.disconnects());
    }
    stop.cancel();
    let conns = Arc::try_unwrap(conns).map_err(|_| eyre!("clients still shared"))?;
    for c in conns {
        let _ = c.task.await;
    }
    drop(server);
    Ok(reports)
}

/// Posts one envelope; true on a 2xx answer.
pub(crate) async fn post(http: &reqwest::Client, url: &str, token: &str, body: bytes::Bytes) -> bool {
    let sent = http.post(url).bearer_auth(token).header("content-type", "application/json").body(body).send().await;
    match sent {
        Ok(resp) => {
            let ok = resp.status().is_success();
            if !ok {
                static ONCE: std::sync::Once = std::sync::Once::new();
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                ONCE.call_once(|| eprintln!("dchat: post refused: {status} {text}"));
                return false;
            }
            resp.bytes().await.is_ok()
        }
        Err(e) => {
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| eprintln!("dchat: post failed: {e}"));
            false
        }
    }
}

/// CPU time of this process.
fn own_cpu() -> Duration {
    crate::server::cpu_time(std::process::id()).unwrap_or_default()
}

/// Prints the comparison of the two ramps and whether the targets are met.
pub(crate) fn summary(sio: &[StepReport], dchat: &[StepReport]) {
    let best = |r: &[StepReport]| r.iter().filter(|s| s.sustained).max_by_key(|s| s.rate).cloned();
    let (Some(s), Some(d)) = (best(sio), best(dchat)) else {
        println!("fanout: a server sustained no step; no ratio");
        return;
    };
    println!("fanout summary (highest rate each sustained):");
    println!(
        "  socket.io: {} msg/s sent, {:.0} deliveries/s, p99 {:.2} ms, CPU {:.0}%",
        s.rate, s.delivered_per_sec, s.p99, s.cpu
    );
    println!(
        "  dchat:     {} msg/s sent, {:.0} deliveries/s, p99 {:.2} ms, CPU {:.0}%",
        d.rate, d.delivered_per_sec, d.p99, d.cpu
    );
    if sio.last().is_some_and(|r| r.sustained) {
        println!("  socket.io did not saturate within the rates given: its saturation rate is above {} msg/s", s.rate);
    }
    if dchat.last().is_some_and(|r| r.sustained) {
        println!("  dchat did not saturate within the rates given: its highest rate is above {} msg/s", d.rate);
    }
    let ratio = d.delivered_per_sec / s.delivered_per_sec;
    println!("  ratio dchat/socket.io: delivered {ratio:.2}x (target >= 10), p99 {:.2} (target <= 1)", d.p99 / s.p99);
    match dchat.iter().find(|r| r.rate == s.rate) {
        Some(at) => println!(
            "  dchat at socket.io's saturation rate ({} msg/s): p99 {:.2} ms (target <= 20 ms), {:.0} deliveries/s",
            s.rate, at.p99, at.delivered_per_sec
        ),
        None => println!("  dchat did not reach socket.io's saturation rate ({} msg/s)", s.rate),
    }
}
