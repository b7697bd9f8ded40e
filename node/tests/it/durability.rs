//! Crash safety of the real binary: a message acknowledged with a 2xx survives `kill -9`.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use dchat_node::{client::seal_text, store::RoomKind};
use dchat_protocol::RoomId;

use crate::common::{User, all_ids};

/// Starts `dchat-node` on a free port over `data_dir`; returns the child and its URL.
fn start(data_dir: &std::path::Path, database: Option<&str>) -> (Child, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dchat-node"));
    if let Some(url) = database {
        cmd.env("DCHAT_DATABASE_URL", url);
    }
    let mut child = cmd
        .args(["--http", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dchat-node");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read banner");
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("banner names the URL").to_string();
    (child, url)
}

#[tokio::test]
async fn acknowledged_messages_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("node");
    let database = crate::common::test_database().await;
    let (mut child, url) = start(&data, database.as_deref());
    let alice = User::sign_in_url(&url).await;
    let room = alice.create_room("durable", RoomKind::Channel, &[]).await.expect("room");

    // Post as fast as possible from a task; kill the node mid-stream.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let writer = {
        let acked = acked.clone();
        let client = alice.client.clone();
        let (wallet, device) = (alice.wallet.clone(), alice.device.clone());
        let room: RoomId = room.id;
        tokio::spawn(async move {
            for i in 0..10_000u64 {
                let env = seal_text(&room, &wallet, &device, i + 1, &format!("m{i}"));
                match client.post_envelope(&room, &env).await {
                    Ok((201, r)) => acked.lock().expect("lock").push(r.id),
                    _ => break,
                }
            }
        })
    };
    // Kill once a good number of posts were acknowledged (bounded wait).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while acked.lock().expect("lock").len() < 25 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    tokio::time::timeout(Duration::from_secs(30), writer).await.expect("writer stops").expect("writer");
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() > 10, "the writer got going before the kill ({} acks)", acked.len());

    // Restart on the same data: the node key persisted, so Alice's token still verifies.
    let (mut child, url) = start(&data, database.as_deref());
    let client = dchat_node::client::Client::new(url).with_token(alice.client.token().expect("token"));
    let stored = all_ids(&client, &room.id).await;
    let unique: std::collections::HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "no duplicates after restart");
    let missing: Vec<&String> = acked.iter().filter(|id| !stored.contains(id)).collect();
    assert!(missing.is_empty(), "{} acknowledged messages lost: {missing:?}", missing.len());
    let _ = child.kill();
    let _ = child.wait();
}
