//! Media memory benchmark: does the node's memory stay flat while a large file streams through?
//!
//! Starts the `dchat-node` binary (the build's profile: release under `cargo bench`) on a
//! temporary data directory, signs a wallet in, and uploads one generated file of
//! `DCHAT_BENCH_MEDIA_MB` MB (default 200) into a channel as a stream, then downloads it again,
//! while sampling the node's resident memory (`VmRSS` in `/proc/<pid>/status`) every 10 ms.
//! Prints RSS before, the peak during upload and during download, and after; and the
//! throughput. Runs with the embedded block store, then pinning in the test IPFS daemon
//! (`ipfs/start`) when it is installed.
//!
//! `scripts/bench media` runs it. Figures are recorded in docs/media.md.
#![allow(missing_docs)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use alloy::signers::local::PrivateKeySigner;
use dchat_node::{
    client::{Client, SignIn},
    store::RoomKind,
};
use ed25519_dalek::SigningKey;
use futures::StreamExt;

/// A child process killed by its id when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `cmd` and returns it with the rest of the first stdout line starting with `prefix`.
fn spawn_until(mut cmd: Command, prefix: &'static str) -> (Proc, String) {
    let mut child = Proc(cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn"));
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix(prefix) {
                let _ = tx.send(rest.to_string());
            }
        }
    });
    let found = rx.recv_timeout(Duration::from_secs(120)).unwrap_or_else(|_| panic!("no {prefix:?} line in 120 s"));
    (child, found)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Samples a process' RSS every 10 ms, keeping the peak, until stopped.
struct Sampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(rss_kib(pid)));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                p.fetch_max(rss_kib(pid), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Self { peak, stop, thread: Some(thread) }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::SeqCst)
    }
}

/// `len` pseudo-random bytes, generated as they are sent.
fn generated(len: u64) -> impl futures::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static {
    const PIECE: u64 = 64 * 1024;
    futures::stream::unfold((0u64, 0x9e37_79b9_7f4a_7c15u64), move |(sent, mut x)| async move {
        if sent >= len {
            return None;
        }
        let n = PIECE.min(len - sent) as usize;
        let mut buf = Vec::with_capacity(n);
        while buf.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf.extend_from_slice(&x.to_le_bytes());
        }
        buf.truncate(n);
        Some((Ok(buf), (sent + n as u64, x)))
    })
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

async fn run(label: &str, ipfs_api: Option<&str>, size: u64, dir: &Path) {
    let data_dir = dir.join(label);
    let config = data_dir.with_extension("toml");
    let mut toml = format!(
        "[media]\nmax_file_bytes = {}\nuser_quota_bytes = {}\nroom_quota_bytes = {}\n",
        size + 1,
        size * 4,
        size * 4
    );
    if let Some(api) = ipfs_api {
        toml.push_str(&format!("ipfs_api = \"{api}\"\n"));
    }
    std::fs::write(&config, toml).expect("config");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dchat-node"));
    cmd.args(["--http", "127.0.0.1:0", "--no-p2p", "--config"]).arg(&config).arg("--data-dir").arg(&data_dir);
    cmd.env("RUST_LOG", "warn");
    let (node, line) = spawn_until(cmd, "dchat-node listening on ");
    let url = line.split_whitespace().next().expect("url").to_string();
    let pid = node.0.id();

    let wallet = PrivateKeySigner::random();
    let device = SigningKey::from_bytes(&rand::random());
    let mut client = Client::new(&url);
    let s = SignIn { wallet: &wallet, device: Some(&device), box_key: None, ttl_secs: 3600, chain_id: None };
    client.sign_in(&s).await.expect("sign in");
    let room = client.create_room(&wallet, &device, "bench", RoomKind::Channel, &[]).await.expect("room").id;
    // One small upload first, so the "before" figure includes a warmed-up upload path.
    let body = reqwest::Body::from(vec![1u8; 1024]);
    client.upload_media(&room, body, Some(1024), "application/octet-stream").await.expect("warm-up");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid);

    let sampler = Sampler::start(pid);
    let started = Instant::now();
    let body = reqwest::Body::wrap_stream(generated(size));
    let (_, up) = client.upload_media(&room, body, Some(size), "video/mp4").await.expect("upload");
    let up_secs = started.elapsed().as_secs_f64();
    let peak_up = sampler.finish();
    assert_eq!(up.size, size);

    let sampler = Sampler::start(pid);
    let started = Instant::now();
    let mut body = client.media_response(&up.cid, None).await.expect("download").bytes_stream();
    let mut got = 0u64;
    while let Some(piece) = body.next().await {
        got += piece.expect("body").len() as u64;
    }
    let down_secs = started.elapsed().as_secs_f64();
    let peak_down = sampler.finish();
    assert_eq!(got, size);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(pid);

    let mb = size as f64 / 1e6;
    println!(
        "media {label}: {mb:.0} MB file {} | node RSS before {} | peak during upload {} ({:+.1} MiB) at {:.0} MB/s | \
         peak during download {} ({:+.1} MiB) at {:.0} MB/s | after {}",
        up.cid,
        mib(before),
        mib(peak_up),
        (peak_up as f64 - before as f64) / 1024.0,
        mb / up_secs,
        mib(peak_down),
        (peak_down as f64 - before as f64) / 1024.0,
        mb / down_secs,
        mib(after),
    );
    drop(node);
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let size: u64 = std::env::var("DCHAT_BENCH_MEDIA_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(200) * 1_000_000;
    let dir = tempfile::tempdir().expect("tempdir");
    run("embedded", None, size, dir.path()).await;

    let start = repo().join("ipfs/start");
    if !repo().join("ipfs/node_modules/ipfs-daemon").is_dir() {
        println!("media ipfs: skipped, the test IPFS daemon is not installed (run scripts/setup)");
        return;
    }
    let mut cmd = Command::new(start);
    cmd.arg("--repo").arg(dir.path().join("ipfs-repo"));
    let (daemon, api) = spawn_until(cmd, "API ");
    run("ipfs", Some(api.trim()), size, dir.path()).await;
    drop(daemon);
}
