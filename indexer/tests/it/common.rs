//! Shared helpers: a fresh PostgreSQL database per test, a real node serving its log to an
//! indexer key, signed-in users with device keys, and the indexer itself.

use std::{future::Future, time::Duration};

use alloy::signers::local::PrivateKeySigner;
use dchat_indexer::{IndexerHandle, Secrets, config::Config};
use dchat_node::{
    NodeHandle,
    client::{Client, SignIn},
    store::RoomKind,
};
use dchat_protocol::{Address, RoomId, e2e::BoxSecret};
use ed25519_dalek::SigningKey;
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;

/// The key the tests' indexer presents to the node.
pub(crate) const INDEXER_KEY: &str = "indexer-test-key-0123456789";

fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("RUST_LOG").is_some() {
        ONCE.call_once(|| {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        });
    }
}

/// A fresh PostgreSQL database (`dchat_t_ix_<random>`), dropped on drop.
pub(crate) struct TestDb {
    base: String,
    name: String,
    pub(crate) url: String,
}

impl TestDb {
    pub(crate) async fn create() -> Self {
        let base =
            std::env::var("DCHAT_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        Self::create_on(base).await
    }

    /// A fresh database on the server `base` points at.
    pub(crate) async fn create_on(base: String) -> Self {
        use sqlx::Connection;
        let name = format!("dchat_t_ix_{}", hex::encode(rand::random::<[u8; 8]>()));
        let mut conn = sqlx::PgConnection::connect(&base)
            .await
            .expect("connect to the test PostgreSQL (DCHAT_TEST_PG_URL; run scripts/setup)");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create db");
        let mut url = url::Url::parse(&base).expect("DCHAT_TEST_PG_URL is a URL");
        url.set_path(&name);
        Self { base, name, url: url.to_string() }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
                }
            });
        })
        .join();
    }
}

/// A node, a database and (while running) an indexer following the node into it.
pub(crate) struct Env {
    pub(crate) node: NodeHandle,
    pub(crate) indexer: Option<IndexerHandle>,
    pub(crate) db: TestDb,
    pub(crate) http: reqwest::Client,
    _dir: TempDir,
}

impl Env {
    /// A node, a database, no indexer yet.
    pub(crate) async fn start() -> Self {
        Self::start_with(TestDb::create().await).await
    }

    /// A node and `db`, no indexer yet.
    pub(crate) async fn start_with(db: TestDb) -> Self {
        init_logs();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = dchat_node::config::Config {
            http: "127.0.0.1:0".parse().expect("addr"),
            data_dir: dir.path().join("node"),
            ..dchat_node::config::Config::default()
        };
        config.p2p.enabled = false;
        config.rooms.default_channel = None;
        config.indexer.key_hashes = vec![dchat_node::api::log::key_hash(INDEXER_KEY)];
        // Tests post in bursts; the node's limits are tested in its own suite.
        config.rate_limit.address_burst = 1e6;
        config.rate_limit.address_per_sec = 1e6;
        config.rate_limit.ip_burst = 1e6;
        config.rate_limit.ip_per_sec = 1e6;
        let node = dchat_node::spawn(config).await.expect("node starts");
        Self { node, indexer: None, db, http: reqwest::Client::new(), _dir: dir }
    }

    /// The indexer's configuration for this environment: fast polling.
    pub(crate) fn config(&self) -> Config {
        let mut c = Config {
            http: "127.0.0.1:0".parse().expect("addr"),
            database_url: self.db.url.clone(),
            ..Config::default()
        };
        c.node.url = self.node.url();
        c.node.issuer = Some(format!("http://{}", self.node.domain()));
        c.follow.poll_ms = 50;
        c.follow.retry_ms = 50;
        c
    }

    /// Starts the indexer with `config`.
    pub(crate) async fn start_indexer(&mut self, config: Config) {
        let secrets = Secrets { node_key: INDEXER_KEY.into() };
        self.indexer = Some(dchat_indexer::spawn(config, secrets).await.expect("indexer starts"));
    }

    /// Stops the indexer.
    pub(crate) async fn stop_indexer(&mut self) {
        if let Some(ix) = self.indexer.take() {
            ix.shutdown().await;
        }
    }

    pub(crate) fn indexer(&self) -> &IndexerHandle {
        self.indexer.as_ref().expect("indexer running")
    }

    /// The node's log summary.
    pub(crate) async fn node_summary(&self) -> Value {
        self.http
            .get(format!("{}/v1/log/summary", self.node.url()))
            .bearer_auth(INDEXER_KEY)
            .send()
            .await
            .expect("summary")
            .json()
            .await
            .expect("json")
    }

    /// Every message id in the node's log, in seq order.
    pub(crate) async fn node_ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        let mut after = 0;
        loop {
            let page: Value = self
                .http
                .get(format!("{}/v1/log?after={after}&limit=1000", self.node.url()))
                .bearer_auth(INDEXER_KEY)
                .send()
                .await
                .expect("log")
                .json()
                .await
                .expect("json");
            for e in page["entries"].as_array().expect("entries") {
                ids.push(e["id"].as_str().expect("id").to_string());
            }
            after = page["next"].as_i64().expect("next");
            if !page["has_more"].as_bool().expect("has_more") {
                return ids;
            }
        }
    }

    /// Every message id the index holds (with repeats, if there were any).
    pub(crate) async fn indexed_ids(&self) -> Vec<String> {
        let pool = sqlx::PgPool::connect(&self.db.url).await.expect("connect");
        let rows: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT id FROM messages ORDER BY seq").fetch_all(&pool).await.expect("ids");
        pool.close().await;
        rows.iter().map(|r| format!("0x{}", hex::encode(r))).collect()
    }

    /// Waits until the index holds every message of the node's log.
    pub(crate) async fn caught_up(&self) {
        let target = self.node_summary().await["count"].as_i64().expect("count");
        wait_for("the index to catch up with the node", || async {
            self.indexer().store().message_count().await.expect("count") >= target
        })
        .await;
    }

    /// `GET` an indexer path as `token`; status and JSON.
    pub(crate) async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.get(format!("{}{path}", self.indexer().url()));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.expect("get")).await
    }

    /// `POST` JSON to an indexer path as `token`.
    pub(crate) async fn post(&self, path: &str, token: &str, body: &Value) -> (StatusCode, Value) {
        let req = self.http.post(format!("{}{path}", self.indexer().url())).bearer_auth(token).json(body);
        read(req.send().await.expect("post")).await
    }
}

async fn read(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, body)
}

/// Polls `check` every 50 ms for up to 20 s.
pub(crate) async fn wait_for<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A wallet with one delegated device, signed in to the node.
pub(crate) struct User {
    pub(crate) wallet: PrivateKeySigner,
    pub(crate) device: SigningKey,
    pub(crate) client: Client,
}

impl User {
    pub(crate) async fn sign_in(node: &NodeHandle) -> Self {
        let wallet = PrivateKeySigner::random();
        let device = SigningKey::from_bytes(&rand::random());
        let box_secret = BoxSecret::random();
        let mut client = Client::new(node.url()).with_box_secret(box_secret.clone());
        let s = SignIn {
            wallet: &wallet,
            device: Some(&device),
            box_key: Some(box_secret.public()),
            ttl_secs: 3600,
            chain_id: None,
        };
        client.sign_in(&s).await.expect("sign in");
        Self { wallet, device, client }
    }

    pub(crate) fn addr(&self) -> Address {
        self.wallet.address()
    }

    pub(crate) fn token(&self) -> &str {
        self.client.token().expect("signed in")
    }

    pub(crate) async fn create(&self, name: &str, kind: RoomKind, members: &[Address]) -> RoomId {
        self.client.create_room(&self.wallet, &self.device, name, kind, members).await.expect("create room").id
    }

    /// Sends a text; its id.
    pub(crate) async fn say(&self, room: &RoomId, text: &str) -> String {
        self.client.send_text(room, &self.wallet, &self.device, text).await.expect("send").id
    }
}

/// anvil's first development account (owner of what the tests deploy).
pub(crate) const DEV_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// The repository root.
pub(crate) fn repo() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// anvil on a free loopback port, killed (by its PID) on drop.
pub(crate) struct Anvil {
    child: std::process::Child,
    pub(crate) url: String,
}

impl Anvil {
    pub(crate) fn start() -> Self {
        use std::io::BufRead;
        let bin = repo().join("node_modules/.bin/anvil");
        assert!(bin.exists(), "anvil is missing: run scripts/setup");
        let mut child = std::process::Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", "0", "--chain-id", "31337"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn anvil");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let url = loop {
            let line = lines.next().expect("anvil prints its address").expect("read");
            if let Some(addr) = line.strip_prefix("Listening on ") {
                break format!("http://{}", addr.trim());
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Self { child, url }
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PostgreSQL server of its own (initdb in a temporary directory, a free loopback port), for
/// tests that stop and restart the server; stopped (by its data directory's PID file) on drop.
pub(crate) struct PrivatePg {
    dir: TempDir,
    bin: std::path::PathBuf,
    port: u16,
    pub(crate) url: String,
}

impl PrivatePg {
    /// The newest PostgreSQL server installed (`DCHAT_TEST_PG_BIN` overrides).
    fn bin_dir() -> std::path::PathBuf {
        if let Some(dir) = std::env::var_os("DCHAT_TEST_PG_BIN") {
            return dir.into();
        }
        let mut versions: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries (/usr/lib/postgresql; run scripts/setup or set DCHAT_TEST_PG_BIN)")
            .filter_map(|e| {
                let e = e.ok()?;
                let v = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((v, bin))
            })
            .collect();
        versions.sort();
        versions.pop().expect("an initdb under /usr/lib/postgresql/<version>/bin").1
    }

    /// A server tool, run as the `postgres` user when running as root (the server refuses root).
    fn tool(&self, tool: &str) -> std::process::Command {
        let exe = self.bin.join(tool);
        if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            std::process::Command::new(exe)
        }
    }

    /// Runs a server tool; panics with its output when it fails.
    fn run(&self, tool: &str, args: &[&str]) {
        let out = self.tool(tool).args(args).output().unwrap_or_else(|e| panic!("running {tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        if is_root() {
            let status = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the data directory to postgres");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let pg =
            Self { bin: Self::bin_dir(), port, url: format!("postgres://postgres@127.0.0.1:{port}/postgres"), dir };
        let data = pg.data();
        pg.run("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]);
        pg.start_again();
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_string_lossy().into_owned()
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub(crate) fn start_again(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").to_string_lossy().into_owned();
        self.run("pg_ctl", &["-D", &self.data(), "-o", &opts, "-l", &log, "-w", "-t", "30", "start"]);
    }

    /// Stops the server the hard way (`-m immediate`: no shutdown checkpoint, every connection
    /// cut, like a crash).
    pub(crate) fn crash(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.tool("pg_ctl").args(["-D", &data, "-m", "immediate", "-w", "stop"]).output();
    }
}

/// Whether this process runs as root (reads `/proc/self/status`, no libc call).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}
