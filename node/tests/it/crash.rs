//! Three `dchat-node` processes; one is killed with SIGKILL mid-stream and restarted. No message
//! any node acknowledged may be missing anywhere once the network settles.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use dchat_node::{client::seal_text, store::RoomKind};
use dchat_protocol::RoomId;

use crate::common::{User, all_ids};

/// A node process, killed when dropped.
struct Proc {
    child: Child,
    url: String,
    p2p: String,
}

impl Proc {
    fn start(data_dir: &Path, database: Option<&str>, bootstrap: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dchat-node"));
        if let Some(url) = database {
            cmd.env("DCHAT_DATABASE_URL", url);
        }
        cmd.args(["--http", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .env("DCHAT_CONFIG", data_dir.with_extension("toml"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if !bootstrap.is_empty() {
            cmd.args(["--bootstrap", &bootstrap.join(",")]);
        }
        let mut child = cmd.spawn().expect("spawn dchat-node");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let (mut url, mut p2p) = (None, None);
        while url.is_none() || p2p.is_none() {
            let line = lines.next().expect("node prints its addresses").expect("read");
            if let Some(rest) = line.strip_prefix("dchat-node listening on ") {
                url = rest.split_whitespace().next().map(str::to_string);
            } else if let Some(addr) = line.strip_prefix("dchat-node p2p address ") {
                p2p = Some(addr.trim().to_string());
            }
        }
        Self { child, url: url.expect("url"), p2p: p2p.expect("p2p address") }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn dirs(root: &Path) -> [PathBuf; 3] {
    ["a", "b", "c"].map(|n| {
        let dir = root.join(n);
        // Sync every second so the test converges quickly.
        std::fs::write(dir.with_extension("toml"), "[p2p]\nsync_interval_secs = 1\n").expect("config");
        dir
    })
}

/// Posts to `room` through `user` until stopped or the node fails; returns acknowledged ids.
fn writer(
    user: &User,
    room: RoomId,
    start_lamport: u64,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<Vec<String>> {
    let (client, wallet, device) = (user.client.clone(), user.wallet.clone(), user.device.clone());
    let acked = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(async move {
        let mut lamport = start_lamport;
        while !stop.is_cancelled() {
            let env = seal_text(&room, &wallet, &device, lamport, &format!("m{lamport}"));
            match tokio::time::timeout(Duration::from_secs(5), client.post_envelope(&room, &env)).await {
                Ok(Ok((201, r))) => acked.lock().expect("lock").push(r.id),
                _ => break,
            }
            lamport += 3;
        }
        acked.lock().expect("lock").clone()
    })
}

#[tokio::test]
async fn killed_node_restarts_and_every_acknowledged_message_is_everywhere() {
    let root = tempfile::tempdir().expect("tempdir");
    let [da, db, dc] = dirs(root.path());
    let dbs = [
        crate::common::test_database().await,
        crate::common::test_database().await,
        crate::common::test_database().await,
    ];
    let a = Proc::start(&da, dbs[0].as_deref(), &[]);
    let b = Proc::start(&db, dbs[1].as_deref(), &[&a.p2p]);
    let mut c = Proc::start(&dc, dbs[2].as_deref(), &[&a.p2p, &b.p2p]);

    let alice = User::sign_in_url(&a.url).await;
    let bob = User::sign_in_url(&b.url).await;
    let carol = User::sign_in_url(&c.url).await;
    let room = alice.create_room("crash", RoomKind::Channel, &[bob.addr(), carol.addr()]).await.expect("room");
    for u in [&bob, &carol] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !u.client.rooms().await.is_ok_and(|r| r.len() == 1) {
            assert!(tokio::time::Instant::now() < deadline, "room did not replicate");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let stop = tokio_util::sync::CancellationToken::new();
    let writers = [
        writer(&alice, room.id, 1, stop.clone()),
        writer(&bob, room.id, 2, stop.clone()),
        writer(&carol, room.id, 3, stop.clone()),
    ];
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.cancel();
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.expect("writer"));
    }
    assert!(acked.len() > 30, "the writers got going ({} acks)", acked.len());

    let c = Proc::start(&dc, dbs[2].as_deref(), &[&a.p2p, &b.p2p]);
    // Each node verifies only its own tokens; C kept its key across the crash.
    let carol_at_c = dchat_node::client::Client::new(c.url.clone()).with_token(carol.client.token().expect("token"));
    let clients = [alice.client.clone(), bob.client.clone(), carol_at_c];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    loop {
        let mut views = Vec::new();
        for client in &clients {
            views.push(all_ids(client, &room.id).await);
        }
        let complete = views.iter().all(|v| acked.iter().all(|id| v.contains(id)));
        if complete && views[0] == views[1] && views[1] == views[2] {
            let unique: std::collections::HashSet<&String> = views[0].iter().collect();
            assert_eq!(unique.len(), views[0].len(), "no duplicates");
            break;
        }
        if tokio::time::Instant::now() > deadline {
            let missing: Vec<usize> = views.iter().map(|v| acked.iter().filter(|id| !v.contains(id)).count()).collect();
            panic!(
                "nodes did not converge: missing acknowledged per node {missing:?}, sizes {:?}",
                views.iter().map(Vec::len).collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop((a, b, c));
}
