//! Memory per idle WebSocket: the server's resident memory before and after `connections`
//! clients connect (dchat: signed in, each following one public channel; Socket.IO: each joined
//! to one room) and then stay quiet.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;

use crate::{
    conn::{self, Conn, Follow},
    dchat,
    server::{Kind, Server},
};

/// Workload and where the servers are.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    /// Idle connections to open.
    #[arg(long, env = "DCHAT_BENCH_CONNECTIONS", default_value_t = 10_000)]
    pub(crate) connections: usize,
    /// Wallets signed in (dchat); the connections share their sessions in turn.
    #[arg(long, env = "DCHAT_BENCH_IDLE_USERS", default_value_t = 100)]
    pub(crate) users: usize,
    /// Rooms (public channels) the connections follow, in turn.
    #[arg(long, env = "DCHAT_BENCH_IDLE_ROOMS", default_value_t = 100)]
    pub(crate) rooms: usize,
    /// Seconds to let the server settle before each reading.
    #[arg(long, env = "DCHAT_BENCH_SETTLE_SECS", default_value_t = 3.0)]
    pub(crate) settle_secs: f64,
    /// Servers to measure, in order.
    #[arg(long, env = "DCHAT_BENCH_TARGETS", value_delimiter = ',', default_value = "socketio,dchat")]
    pub(crate) targets: Vec<String>,
    #[command(flatten)]
    pub(crate) servers: crate::Servers,
}

/// What one server's run measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Report {
    pub(crate) before: u64,
    pub(crate) after: u64,
    pub(crate) per_conn: f64,
}

/// Opens the idle connections to one server and reads its memory.
pub(crate) async fn run(kind: Kind, args: &Args) -> eyre::Result<Report> {
    let server = Server::start(kind, &args.servers.dchat_bin, &args.servers.socketio_dir)?;
    let rooms = args.rooms.max(1);
    let (users, room_ids) = match kind {
        Kind::Dchat => {
            let users = dchat::sign_in(&server.url, args.users.max(rooms), 32).await?;
            let room_ids = dchat::create_rooms(&server.url, &users, rooms, 1).await?;
            (users, room_ids)
        }
        Kind::SocketIo => (Vec::new(), Vec::new()),
    };
    let follow = |i: usize| match kind {
        Kind::Dchat => {
            Follow::Dchat { token: users[i % users.len()].token.clone(), room: room_ids[i % rooms].to_string() }
        }
        Kind::SocketIo => Follow::SocketIo { room: format!("r{}", i % rooms) },
    };
    let settle = Duration::from_secs_f64(args.settle_secs);
    tokio::time::sleep(settle).await;
    let before = server.rss();
    let stop = CancellationToken::new();
    let t = Instant::now();
    let conns: Vec<Conn> = futures::stream::iter(0..args.connections)
        .map(|i| conn::open(&server.url, follow(i), None, stop.clone()))
        .buffer_unordered(100)
        .try_collect()
        .await?;
    let opened = t.elapsed();
    tokio::time::sleep(settle).await;
    let after = server.rss();
    let per_conn = after.saturating_sub(before) as f64 / conns.len().max(1) as f64;
    println!(
        "{:>9}: {} idle connections opened in {:.1} s; RSS {:.1} MB before, {:.1} MB after: {:.0} bytes ({:.1} kB) per connection",
        kind.name(),
        conns.len(),
        opened.as_secs_f64(),
        before as f64 / 1e6,
        after as f64 / 1e6,
        per_conn,
        per_conn / 1000.0
    );
    stop.cancel();
    for c in conns {
        let _ = c.task.await;
    }
    drop(server);
    Ok(Report { before, after, per_conn })
}
