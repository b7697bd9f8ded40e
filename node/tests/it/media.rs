//! Media on IPFS through a real node: uploads pinned in a real IPFS daemon (js-ipfs from
//! `ipfs/`, Kubo RPC API) and read back from the daemon itself; the embedded store giving the
//! same CIDs as the daemon (and Debian's `ipfs_cid`) for every shape of file DAG; oversized
//! uploads cut off before the body is read; corrupt blocks refused; access by room; ranges;
//! quotas; retention; end-to-end encrypted media in private rooms; and the `dchat media` CLI.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use dchat_node::{
    client::{ClientError, MediaInfo},
    media::{
        kubo::Kubo,
        unixfs::{CHUNK_SIZE, Cid, MAX_LINKS, cid_of_file},
    },
    store::RoomKind,
};
use dchat_protocol::{Kind, RoomId, media::encrypted_len};
use prost::Message as _;
use tempfile::TempDir;

use crate::common::{TestNode, User, repo};

fn code(e: &ClientError) -> (u16, &str) {
    (e.status().unwrap_or_default(), e.code().unwrap_or_default())
}

/// Deterministic bytes that do not repeat from chunk to chunk.
fn data(len: usize, seed: u8) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The test IPFS daemon (`ipfs/start`: js-ipfs on loopback, no network), killed by its process
/// id when dropped.
struct Ipfs {
    child: Child,
    api: String,
    _repo: TempDir,
}

impl Ipfs {
    fn start() -> Self {
        let dir = repo().join("ipfs");
        assert!(
            dir.join("node_modules/ipfs-daemon").is_dir(),
            "the test IPFS daemon is not installed ({} is missing): run scripts/setup",
            dir.join("node_modules").display()
        );
        let repo_dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(dir.join("start"))
            .arg("--repo")
            .arg(repo_dir.path().join("repo"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ipfs/start");
        let errors = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = errors.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("stderr buffer").push_str(&(line + "\n"));
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(api) = line.strip_prefix("API ") {
                    let _ = tx.send(api.trim().to_string());
                }
            }
        });
        let api = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(api) => api,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the IPFS daemon did not report its API within 120 s; its stderr:\n{}",
                    errors.lock().expect("buf")
                );
            }
        };
        Self { child, api, _repo: repo_dir }
    }

    fn kubo(&self) -> Kubo {
        Kubo::new(&self.api, Duration::from_secs(30))
    }
}

impl Drop for Ipfs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A node (embedded store unless `tweak` sets an IPFS API) and its data directory.
async fn node_with(tweak: impl FnOnce(&mut dchat_node::config::Config)) -> (TestNode, PathBuf) {
    let mut data_dir = PathBuf::new();
    let node = TestNode::with(|c| {
        c.p2p.enabled = false;
        tweak(c);
        data_dir = c.data_dir.clone();
    })
    .await;
    (node, data_dir)
}

async fn channel(owner: &User, name: &str) -> RoomId {
    owner.create_room(name, RoomKind::Channel, &[]).await.expect("channel").id
}

async fn upload(u: &User, room: &RoomId, bytes: Vec<u8>, mime: &str) -> Result<(u16, String), ClientError> {
    let len = bytes.len() as u64;
    let (status, up) = u.client.upload_media(room, reqwest::Body::from(bytes), Some(len), mime).await?;
    assert_eq!(up.size, len);
    Ok((status, up.cid))
}

#[tokio::test]
async fn uploads_are_pinned_in_the_ipfs_daemon_and_unpinned_on_delete() {
    let ipfs = Ipfs::start();
    let api = ipfs.api.clone();
    let (node, _) = node_with(|c| c.media.ipfs_api = Some(api)).await;
    let alice = User::sign_in(&node).await;
    let room = channel(&alice, "pics").await;
    let file = data(3 * CHUNK_SIZE + 12_345, 1);

    let (status, cid) = upload(&alice, &room, file.clone(), "image/png").await.expect("upload");
    assert_eq!(status, 201);
    assert_eq!(cid, cid_of_file(&file).to_string(), "the node's CID is the file's CIDv0");
    let parsed: Cid = cid.parse().expect("CIDv0");

    // The daemon itself holds and pins it: read it straight from its own API.
    let kubo = ipfs.kubo();
    let from_daemon = kubo.cat(&parsed, None, None).await.expect("cat").bytes().await.expect("body");
    assert!(from_daemon == file, "the daemon serves the uploaded bytes");
    assert!(kubo.pin_ls(&parsed).await.expect("pin/ls"), "pinned in the daemon");

    // Served back through the node, whole and in part, with the type given at upload.
    let resp = alice.client.media_response(&cid, None).await.expect("get");
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.headers()["accept-ranges"], "bytes");
    assert!(resp.bytes().await.expect("body") == file);
    let part = alice.client.media_response(&cid, Some("bytes=262100-262200")).await.expect("range");
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.expect("body").as_ref(), &file[262_100..=262_200]);
    // Anyone may read a channel's media, signed in or not.
    let anonymous = node.client().download_media(&cid).await.expect("anonymous read of channel media");
    assert!(anonymous == file);

    // Deleting the last reference unpins it in the daemon.
    let deleted = alice.client.delete_media(&cid, &room).await.expect("delete");
    assert!(deleted.unpinned);
    assert!(!kubo.pin_ls(&parsed).await.expect("pin/ls"), "no longer pinned in the daemon");
    assert_eq!(code(&alice.client.download_media(&cid).await.expect_err("gone")), (404, "media_not_found"));
}

#[tokio::test]
async fn embedded_store_and_ipfs_daemon_agree_on_cids() {
    let ipfs = Ipfs::start();
    let api = ipfs.api.clone();
    let (embedded, _) = node_with(|_| {}).await;
    let (pinned, _) = node_with(|c| c.media.ipfs_api = Some(api)).await;
    let a = User::sign_in(&embedded).await;
    let b = User::sign_in(&pinned).await;
    let (room_a, room_b) = (channel(&a, "files").await, channel(&b, "files").await);
    let kubo = ipfs.kubo();
    let ipfs_cid = Path::new("/usr/bin/ipfs_cid");
    assert!(ipfs_cid.exists(), "Debian's ipfs_cid is missing (package ipfs-cid): run scripts/setup");
    let dir = tempfile::tempdir().expect("tempdir");

    // Empty, one byte, one chunk exactly, one chunk and a byte, 1 MiB, and past 174 chunks (a
    // second level of inner nodes).
    let sizes = [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 1 << 20, MAX_LINKS * CHUNK_SIZE + 1000];
    for (i, size) in sizes.into_iter().enumerate() {
        let bytes = data(size, i as u8);
        let path = dir.path().join(format!("f{i}"));
        std::fs::write(&path, &bytes).expect("write");
        let embedded_cid =
            a.client.upload_media_file(&room_a, &path, "application/octet-stream").await.expect("up").cid;
        // The pinning node checks that the daemon's CID is its own, or fails the upload.
        let pinned_cid = b.client.upload_media_file(&room_b, &path, "application/octet-stream").await.expect("up").cid;
        let daemon_cid = kubo.add_file(&path, false).await.expect("add").cid;
        let out = Command::new(ipfs_cid).arg(&path).stderr(Stdio::null()).output().expect("ipfs_cid");
        let reference: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ipfs_cid prints JSON");
        assert_eq!(embedded_cid, daemon_cid, "embedded store vs daemon, {size} bytes");
        assert_eq!(pinned_cid, daemon_cid, "node pinning in the daemon vs daemon, {size} bytes");
        assert_eq!(reference["CIDv0"], daemon_cid, "ipfs_cid vs daemon, {size} bytes");
        if size == 0 {
            assert_eq!(embedded_cid, "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH");
        }
        // Both nodes read it back intact, from its second-level tree too.
        let from = size.saturating_sub(300_000);
        let range = format!("bytes={from}-");
        for (client, cid) in [(&a.client, &embedded_cid), (&b.client, &pinned_cid)] {
            let got = match size {
                0 => client.download_media(cid).await.expect("get"),
                _ => client.media_response(cid, Some(&range)).await.expect("get").bytes().await.expect("body").to_vec(),
            };
            assert!(got == bytes[from..], "content of the {size}-byte file read back");
        }
    }
}

/// Sends a raw HTTP upload: `Content-Length: declared` with no body, or (without `declared`) a
/// chunked body that would go on for `offer` bytes. Returns the reply as read and how many body
/// bytes the socket accepted before the node answered or stopped reading.
fn raw_upload(addr: SocketAddr, token: &str, room: &RoomId, declared: Option<u64>, offer: u64) -> (String, u64) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_write_timeout(Some(Duration::from_secs(5))).expect("timeout");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let framing = match declared {
        Some(n) => format!("Content-Length: {n}"),
        None => "Transfer-Encoding: chunked".to_string(),
    };
    let head = format!(
        "POST /v1/media?room={room} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\n{framing}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("headers");
    let mut reader = stream.try_clone().expect("clone");
    let answered = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = answered.clone();
    let read = std::thread::spawn(move || {
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    reply.extend_from_slice(&buf[..n]);
                    seen.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }
        String::from_utf8_lossy(&reply).into_owned()
    });
    let mut sent = 0u64;
    if declared.is_none() {
        let chunk = vec![0x5a; 64 * 1024];
        let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        while sent < offer && !answered.load(std::sync::atomic::Ordering::SeqCst) {
            if stream.write_all(&frame).is_err() {
                break;
            }
            sent += chunk.len() as u64;
        }
    }
    let reply = read.join().expect("reader");
    (reply, sent)
}

#[tokio::test]
async fn oversized_uploads_are_refused_before_the_body_is_read() {
    const LIMIT: u64 = 4 << 20;
    let (node, data_dir) = node_with(|c| {
        c.media.max_file_bytes = 64 << 20;
        c.media.max_file_bytes_by_kind.insert("channel".into(), LIMIT);
    })
    .await;
    let alice = User::sign_in(&node).await;
    let room = channel(&alice, "small files only").await;
    let token = alice.client.token().expect("token").to_string();
    let addr = node.node.local_addr();

    // Declared too large: refused on the headers alone.
    let t = token.clone();
    let (reply, _) =
        tokio::task::spawn_blocking(move || raw_upload(addr, &t, &room, Some(LIMIT + 1), 0)).await.expect("join");
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("\"media_too_large\""), "{reply}");

    // Streamed with no length, offering 1 GiB: cut off once past the limit. What the socket
    // took beyond the limit is what loopback's kernel buffers hold, not what the node read.
    let t = token.clone();
    let (reply, sent) =
        tokio::task::spawn_blocking(move || raw_upload(addr, &t, &room, None, 1 << 30)).await.expect("join");
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("\"media_too_large\""), "{reply}");
    assert!(sent < LIMIT + (32 << 20), "the node kept reading: {sent} bytes went out for a {LIMIT}-byte limit");
    println!("streamed upload refused after {sent} bytes were sent (limit {LIMIT})");

    // The same through the client library with a generator that would never end.
    let pulled = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = pulled.clone();
    let endless = futures::stream::repeat_with(move || {
        count.fetch_add(64 * 1024, std::sync::atomic::Ordering::SeqCst);
        Ok::<_, std::io::Error>(vec![7u8; 64 * 1024])
    });
    let r = alice.client.upload_media(&room, reqwest::Body::wrap_stream(endless), None, "image/png").await;
    if let Err(e) = &r
        && e.status().is_some()
    {
        assert_eq!(code(e), (413, "media_too_large"));
    }
    assert!(r.is_err(), "an endless upload never succeeds");
    let pulled = pulled.load(std::sync::atomic::Ordering::SeqCst);
    println!("endless client body refused after {pulled} bytes were pulled (limit {LIMIT})");
    assert!(pulled < LIMIT + (32 << 20), "{pulled} bytes pulled from the generator for a {LIMIT}-byte limit");

    // Nothing of the refused uploads stays on disk; a file within the limit still goes in.
    let staging = data_dir.join("media/tmp");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&staging).expect("tmp").next().is_some() {
        assert!(tokio::time::Instant::now() < deadline, "staging files left behind");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = upload(&alice, &room, data(LIMIT as usize, 3), "image/png").await.expect("at the limit");
    assert_eq!(status, 201);
}

#[tokio::test]
async fn corrupt_blocks_are_refused_and_never_served() {
    let (node, data_dir) = node_with(|_| {}).await;
    let alice = User::sign_in(&node).await;
    let room = channel(&alice, "integrity").await;
    let pins = data_dir.join("media/pins");

    // One block: the whole file is checked before the reply starts.
    let small = data(10_000, 1);
    let (_, cid) = upload(&alice, &room, small.clone(), "text/plain").await.expect("upload");
    let block = pins.join(&cid).join(&cid);
    let mut bytes = std::fs::read(&block).expect("block");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&block, &bytes).expect("corrupt");
    let err = alice.client.download_media(&cid).await.expect_err("corrupt block");
    assert_eq!(code(&err), (500, "media_corrupt"));

    // Several blocks: a damaged later leaf stops the transfer where it starts; every byte sent
    // before it is the file's.
    let big = data(3 * CHUNK_SIZE + 10, 2);
    let (_, cid) = upload(&alice, &room, big.clone(), "application/octet-stream").await.expect("upload");
    let root: Cid = cid.parse().expect("cid");
    let leaf3 = cid_of_file(&big[2 * CHUNK_SIZE..3 * CHUNK_SIZE]).to_string();
    let leaf1 = cid_of_file(&big[..CHUNK_SIZE]).to_string();
    let path = pins.join(root.to_string()).join(&leaf3);
    let mut bytes = std::fs::read(&path).expect("leaf");
    bytes[100] ^= 1;
    std::fs::write(&path, &bytes).expect("corrupt");
    let resp = alice.client.media_response(&cid, None).await.expect("starts");
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let mut got = Vec::new();
    let mut broke = false;
    while let Some(piece) = futures::StreamExt::next(&mut body).await {
        match piece {
            Ok(p) => got.extend_from_slice(&p),
            Err(_) => {
                broke = true;
                break;
            }
        }
    }
    assert!(broke, "the transfer must fail, not end as if complete");
    assert!(got.len() <= 2 * CHUNK_SIZE && got == big[..got.len()], "only verified bytes were sent");
    // A range that avoids the damaged block is still served; one that starts in it is refused.
    let ok = alice.client.media_response(&cid, Some("bytes=0-1000")).await.expect("first block");
    assert_eq!(ok.bytes().await.expect("body").as_ref(), &big[..=1000]);
    let err =
        alice.client.media_response(&cid, Some(&format!("bytes={}-", 2 * CHUNK_SIZE + 5))).await.expect_err("bad");
    assert_eq!(code(&err), (500, "media_corrupt"));
    // A missing block is refused the same way.
    std::fs::remove_file(pins.join(root.to_string()).join(&leaf1)).expect("remove");
    assert_eq!(code(&alice.client.download_media(&cid).await.expect_err("missing")), (500, "media_corrupt"));
}

#[tokio::test]
async fn media_access_follows_room_membership() {
    let (node, data_dir) = node_with(|_| {}).await;
    let alice = User::sign_in(&node).await;
    let bob = User::sign_in(&node).await;
    let eve = User::sign_in(&node).await;
    let group = alice.create_room("team", RoomKind::Group, &[bob.addr()]).await.expect("group").id;
    let chan = channel(&alice, "public").await;
    let file = data(5000, 9);

    // Uploads: members only, to rooms that exist, of accepted types.
    assert_eq!(code(&upload(&eve, &group, file.clone(), "image/png").await.expect_err("eve")), (403, "not_a_member"));
    assert_eq!(
        code(&upload(&eve, &chan, file.clone(), "image/png").await.expect_err("not joined")),
        (403, "not_a_member")
    );
    let unknown = RoomId::random();
    assert_eq!(
        code(&upload(&alice, &unknown, file.clone(), "image/png").await.expect_err("x")),
        (404, "room_not_found")
    );
    let html = upload(&alice, &chan, b"<script>".to_vec(), "text/html").await.expect_err("html");
    assert_eq!(code(&html), (415, "media_type_not_allowed"));
    let anonymous = node.client().upload_media(&chan, reqwest::Body::from(vec![1]), Some(1), "image/png").await;
    assert_eq!(code(&anonymous.expect_err("anonymous")), (401, "unauthorized"));

    let (status, cid) = upload(&bob, &group, file.clone(), "application/octet-stream").await.expect("bob uploads");
    assert_eq!(status, 201);
    let (again, _) = upload(&bob, &group, file.clone(), "application/octet-stream").await.expect("again");
    assert_eq!(again, 200, "uploading the same file to the same room again is idempotent");

    // Private-room media: members read it; nobody else learns it exists.
    assert!(alice.client.download_media(&cid).await.expect("member reads") == file);
    assert_eq!(code(&eve.client.download_media(&cid).await.expect_err("eve")), (404, "media_not_found"));
    assert_eq!(code(&node.client().download_media(&cid).await.expect_err("anon")), (404, "media_not_found"));
    let unknown_cid = cid_of_file(b"never uploaded").to_string();
    assert_eq!(code(&alice.client.download_media(&unknown_cid).await.expect_err("unknown")), (404, "media_not_found"));
    assert_eq!(code(&alice.client.download_media("not-a-cid").await.expect_err("bad")), (400, "invalid_cid"));

    // Once the same file is also in a channel, anyone may read it.
    upload(&alice, &chan, file.clone(), "application/octet-stream").await.expect("alice shares it publicly");
    assert!(eve.client.download_media(&cid).await.expect("now public") == file);

    // Deleting: the uploader or a room admin, per room; the file stays while referenced.
    assert_eq!(code(&eve.client.delete_media(&cid, &group).await.expect_err("eve")), (403, "not_a_member"));
    let d = alice.client.delete_media(&cid, &chan).await.expect("uploader deletes from the channel");
    assert!(!d.unpinned, "the group still references it");
    assert_eq!(code(&eve.client.download_media(&cid).await.expect_err("private again")), (404, "media_not_found"));
    let owner = alice.client.delete_media(&cid, &group).await.expect("the owner removes bob's upload");
    assert!(owner.unpinned, "no room references it any more");
    assert!(!data_dir.join("media/pins").join(&cid).exists(), "its blocks are gone");
    assert_eq!(code(&bob.client.download_media(&cid).await.expect_err("gone")), (404, "media_not_found"));
    assert_eq!(code(&bob.client.delete_media(&cid, &group).await.expect_err("twice")), (404, "media_not_found"));

    // A plain member may delete only their own uploads.
    let (_, mine) = upload(&alice, &group, data(100, 1), "image/png").await.expect("alice uploads");
    assert_eq!(code(&bob.client.delete_media(&mine, &group).await.expect_err("bob")), (403, "not_uploader"));
}

#[tokio::test]
async fn range_requests_follow_rfc_9110() {
    let (node, _) = node_with(|_| {}).await;
    let alice = User::sign_in(&node).await;
    let room = channel(&alice, "video").await;
    let file = data(2 * CHUNK_SIZE + 777, 4);
    let (_, cid) = upload(&alice, &room, file.clone(), "video/mp4").await.expect("upload");
    let size = file.len();

    let whole = alice.client.media_response(&cid, None).await.expect("get");
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.headers()["content-length"], size.to_string().as_str());
    assert_eq!(whole.headers()["etag"], format!("\"{cid}\"").as_str());
    assert_eq!(whole.headers()["x-content-type-options"], "nosniff");

    // Across a chunk boundary, open-ended, and a suffix.
    let cases = [
        ("bytes=262000-262300", 262_000, 262_301),
        (&format!("bytes={}-", size - 10) as &str, size - 10, size),
        ("bytes=-100", size - 100, size),
        ("bytes=0-0", 0, 1),
        ("bytes=100-99999999", 100, size),
    ];
    for (range, start, end) in cases {
        let r = alice.client.media_response(&cid, Some(range)).await.expect("range");
        assert_eq!(r.status(), 206, "{range}");
        let want = format!("bytes {start}-{}/{size}", end - 1);
        assert_eq!(r.headers()["content-range"], want.as_str(), "{range}");
        assert_eq!(r.bytes().await.expect("body").as_ref(), &file[start..end], "{range}");
    }
    for bad in [&format!("bytes={size}-") as &str, "bytes=50-10", "bytes=abc", "bytes=-0"] {
        let err = alice.client.media_response(&cid, Some(bad)).await.expect_err("unsatisfiable");
        assert_eq!(code(&err), (416, "range_not_satisfiable"), "{bad}");
    }
    let raw = reqwest::Client::new()
        .get(format!("{}/v1/media/{cid}", node.node.url()))
        .header("range", format!("bytes={size}-"))
        .send()
        .await
        .expect("send");
    assert_eq!(raw.headers()["content-range"], format!("bytes */{size}").as_str());
    // A cached copy is revalidated by its CID.
    let cached = reqwest::Client::new()
        .get(format!("{}/v1/media/{cid}", node.node.url()))
        .header("if-none-match", format!("\"{cid}\""))
        .send()
        .await
        .expect("send");
    assert_eq!(cached.status(), 304);
}

#[tokio::test]
async fn quotas_limit_what_users_and_rooms_pin() {
    let (node, _) = node_with(|c| {
        c.media.user_quota_bytes = 300_000;
        c.media.room_quota_bytes = 500_000;
    })
    .await;
    let alice = User::sign_in(&node).await;
    let bob = User::sign_in(&node).await;
    let room = channel(&alice, "quota").await;
    bob.join(&room).await.expect("join");

    let (status, _) = upload(&alice, &room, data(100_000, 1), "image/png").await.expect("within quota");
    assert_eq!(status, 201);
    // The same file again in the same room is one reference, counted once.
    let (status, _) = upload(&alice, &room, data(100_000, 1), "image/png").await.expect("idempotent");
    assert_eq!(status, 200);
    let (_, second) = upload(&alice, &room, data(150_000, 2), "image/png").await.expect("250 kB of 300 kB");
    let over = upload(&alice, &room, data(100_000, 3), "image/png").await.expect_err("over the user quota");
    assert_eq!(code(&over), (413, "quota_exceeded"));
    // Bob has his own quota, but the room's fills up.
    upload(&bob, &room, data(240_000, 4), "image/png").await.expect("bob within quota");
    let full = upload(&bob, &room, data(20_000, 5), "image/png").await.expect_err("room full");
    assert_eq!(code(&full), (413, "quota_exceeded"));
    assert!(full.to_string().contains("this room"), "{full}");
    // Deleting frees the space.
    alice.client.delete_media(&second, &room).await.expect("delete");
    upload(&alice, &room, data(100_000, 3), "image/png").await.expect("space again");
}

#[tokio::test]
async fn retention_unpins_expired_media() {
    let (node, data_dir) = node_with(|c| {
        c.media.retention_secs = Some(1);
        c.media.retention_interval_secs = 1;
    })
    .await;
    let alice = User::sign_in(&node).await;
    let room = channel(&alice, "ephemeral").await;
    let (_, cid) = upload(&alice, &room, data(1000, 1), "image/png").await.expect("upload");
    assert!(data_dir.join("media/pins").join(&cid).exists());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match alice.client.download_media(&cid).await {
            Err(e) if code(&e) == (404, "media_not_found") => break,
            _ => {
                assert!(tokio::time::Instant::now() < deadline, "media still served past its retention");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    assert!(!data_dir.join("media/pins").join(&cid).exists(), "unpinned");
}

#[tokio::test]
async fn private_room_media_is_end_to_end_encrypted() {
    let (node, _) = node_with(|_| {}).await;
    let alice = User::sign_in(&node).await;
    let bob = User::sign_in(&node).await;
    let eve = User::sign_in(&node).await;
    let group = alice.create_room("family", RoomKind::Group, &[bob.addr()]).await.expect("group").id;
    let dir = tempfile::tempdir().expect("tempdir");
    let photo = data(300_000, 5);
    let path = dir.path().join("holiday.png");
    std::fs::write(&path, &photo).expect("write");

    let info = MediaInfo { mime: "image/png".into(), name: "holiday.png".into(), width: 640, height: 480 };
    let (sent, r) = alice.client.send_media(&group, &alice.wallet, &alice.device, &path, info).await.expect("send");
    assert!(r.is_encrypted());
    // The node holds ciphertext only, and the message names nothing in the clear.
    let stored = alice.client.download_media(&r.cid).await.expect("raw");
    assert_eq!(stored.len() as u64, encrypted_len(photo.len() as u64));
    assert!(!stored.windows(64).any(|w| w == &photo[..64]), "no plaintext on the node");
    let m = bob.client.find_message(&group, &sent.id).await.expect("history").expect("message");
    assert_eq!(m.kind, Kind::Media);
    assert!(m.encrypted, "the media reference is sealed");
    let body = dchat_protocol::Body::decode(
        dchat_protocol::Envelope::try_from(&m.envelope).expect("envelope").body.as_slice(),
    )
    .expect("body");
    assert!(!body.payload.windows(r.cid.len()).any(|w| w == r.cid.as_bytes()), "the CID is not in the clear");

    // Bob opens the reference and decrypts the file.
    let got = bob.client.media_ref(&m).await.expect("open").expect("bob holds the key");
    assert_eq!((got.name.as_str(), got.mime.as_str(), got.width, got.height), ("holiday.png", "image/png", 640, 480));
    let out = dir.path().join("bob.png");
    assert_eq!(bob.client.fetch_media(&got, &out).await.expect("fetch"), photo.len() as u64);
    assert!(std::fs::read(&out).expect("read") == photo);
    // Eve can fetch neither the message nor the ciphertext.
    assert_eq!(code(&eve.client.download_media(&r.cid).await.expect_err("eve")), (404, "media_not_found"));
    // A key for other bytes fails loudly rather than writing garbage.
    let mut wrong = got.clone();
    wrong.key[0] ^= 1;
    assert!(bob.client.fetch_media(&wrong, &out).await.is_err());
    assert!(!out.exists(), "a failed download leaves no file");

    // In a channel the reference and the file are plain.
    let chan = channel(&alice, "open").await;
    let (sent, r) =
        alice.client.send_media(&chan, &alice.wallet, &alice.device, &path, MediaInfo::default()).await.expect("send");
    assert!(!r.is_encrypted());
    assert_eq!(r.cid, cid_of_file(&photo).to_string());
    let m = eve.client.find_message(&chan, &sent.id).await.expect("history").expect("message");
    assert!(!m.encrypted);
    assert_eq!(eve.client.media_ref(&m).await.expect("plain").expect("ref"), r);
}

#[tokio::test]
async fn cli_puts_and_gets_media() {
    let (node, _) = node_with(|_| {}).await;
    let home = tempfile::tempdir().expect("home");
    let url = node.node.url();
    let home_dir = home.path().to_path_buf();
    let run = move |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_dchat"))
            .args(["--node", &url, "--home"])
            .arg(&home_dir)
            .args(args)
            .output()
            .expect("run dchat");
        assert!(out.status.success(), "dchat {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let file = home.path().join("notes.txt");
    let text = data(200_000, 8);
    std::fs::write(&file, &text).expect("write");
    let file = file.to_str().expect("path").to_string();
    tokio::task::spawn_blocking(move || {
        run(&["login"]);
        for kind in ["group", "channel"] {
            let room = run(&["rooms", "create", "files", "--kind", kind]).trim().to_string();
            let put = run(&["media", "put", &room, &file]);
            assert_eq!(put.contains("encrypted"), kind == "group", "{put}");
            let id = put.split_whitespace().next().expect("message id").to_string();
            let out = format!("{file}.{kind}");
            run(&["media", "get", &room, &id, &out]);
            assert!(std::fs::read(&out).expect("downloaded") == text, "{kind}: the file comes back as sent");
            assert!(run(&["history", &room]).contains("notes.txt"), "history shows the file");
        }
    })
    .await
    .expect("cli");
}
