//! Shared helpers: start a node in a temporary directory, make wallets and device keys.

use alloy::signers::local::PrivateKeySigner;
use dchat_node::{
    NodeHandle,
    client::{Client, ClientError, RoomView, SignIn},
    config::Config,
    store::RoomKind,
};
use dchat_protocol::{Address, RoomId, e2e::BoxSecret};
use ed25519_dalek::SigningKey;
use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use tempfile::TempDir;

/// A node and the directory it keeps its data in.
pub(crate) struct TestNode {
    pub(crate) node: NodeHandle,
    config: Config,
    _dir: TempDir,
}

impl TestNode {
    pub(crate) async fn start() -> Self {
        Self::with(|_| {}).await
    }

    pub(crate) async fn with(tweak: impl FnOnce(&mut Config)) -> Self {
        init_logs();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config {
            http: "127.0.0.1:0".parse().expect("addr"),
            data_dir: dir.path().join("node"),
            ..Config::default()
        };
        config.p2p.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
        config.p2p.sync_interval_secs = 1;
        config.database_url = test_database().await;
        tweak(&mut config);
        let node = dchat_node::spawn(config.clone()).await.expect("node starts");
        Self { node, config, _dir: dir }
    }

    /// A node whose network dials `peers` at start.
    pub(crate) async fn joining(peers: &[&TestNode]) -> Self {
        let mut bootstrap = Vec::new();
        for p in peers {
            bootstrap.extend(p.addresses().await);
        }
        Self::with(move |c| c.p2p.bootstrap = bootstrap).await
    }

    /// Network addresses, ending in `/p2p/<peer id>`.
    pub(crate) async fn addresses(&self) -> Vec<String> {
        self.p2p().addresses().await.iter().map(ToString::to_string).collect()
    }

    pub(crate) fn p2p(&self) -> &dchat_node::p2p::P2p {
        self.node.p2p().expect("network enabled")
    }

    /// Stops the node cleanly, keeping its data.
    pub(crate) async fn stop(self) -> Stopped {
        let Self { node, config, _dir } = self;
        node.shutdown().await;
        Stopped { config, _dir }
    }

    pub(crate) fn client(&self) -> Client {
        Client::new(self.node.url())
    }
}

/// Logs to the test output when `RUST_LOG` is set.
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

/// With `DCHAT_TEST_STORE=postgres`, a fresh PostgreSQL database for one node (on
/// `DCHAT_TEST_PG_URL`); otherwise `None` and the node uses SQLite in its data directory.
pub(crate) async fn test_database() -> Option<String> {
    use sqlx::Connection;
    if std::env::var("DCHAT_TEST_STORE").as_deref() != Ok("postgres") {
        return None;
    }
    let base =
        std::env::var("DCHAT_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("dchat_t_{}", hex::encode(rand::random::<[u8; 8]>()));
    let mut conn = sqlx::PgConnection::connect(&base).await.expect("connect to the test PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let mut url = url::Url::parse(&base).expect("DCHAT_TEST_PG_URL is a URL");
    url.set_path(&name);
    Some(url.to_string())
}

/// A stopped node's data, ready to start again.
pub(crate) struct Stopped {
    config: Config,
    _dir: TempDir,
}

impl Stopped {
    /// Starts the node again on the same data (new HTTP port, same keys and network identity).
    pub(crate) async fn start(self) -> TestNode {
        let node = dchat_node::spawn(self.config.clone()).await.expect("node restarts");
        TestNode { node, config: self.config, _dir: self._dir }
    }
}

/// A wallet with one delegated device, signed in to a node.
pub(crate) struct User {
    pub(crate) wallet: PrivateKeySigner,
    pub(crate) device: SigningKey,
    pub(crate) box_secret: BoxSecret,
    pub(crate) client: Client,
}

impl User {
    pub(crate) async fn sign_in(node: &TestNode) -> Self {
        Self::sign_in_url(&node.node.url()).await
    }

    pub(crate) async fn sign_in_url(url: &str) -> Self {
        Self::sign_in_with(url, PrivateKeySigner::random()).await
    }

    /// Signs in with a given wallet (e.g. a funded anvil account).
    pub(crate) async fn sign_in_with(url: &str, wallet: PrivateKeySigner) -> Self {
        let device = SigningKey::from_bytes(&rand::random());
        let box_secret = BoxSecret::random();
        let mut client = Client::new(url).with_box_secret(box_secret.clone());
        let s = SignIn {
            wallet: &wallet,
            device: Some(&device),
            box_key: Some(box_secret.public()),
            ttl_secs: 3600,
            chain_id: None,
        };
        client.sign_in(&s).await.expect("sign in");
        Self { wallet, device, box_secret, client }
    }

    /// A session for the same wallet and device on another node.
    pub(crate) async fn sign_in_as(node: &TestNode, user: &User) -> Client {
        let mut client = node.client().with_box_secret(user.box_secret.clone());
        let s = SignIn {
            wallet: &user.wallet,
            device: Some(&user.device),
            box_key: Some(user.box_secret.public()),
            ttl_secs: 3600,
            chain_id: None,
        };
        client.sign_in(&s).await.expect("sign in");
        client
    }

    pub(crate) fn address(&self) -> String {
        self.wallet.address().to_checksum(None)
    }

    pub(crate) fn addr(&self) -> Address {
        self.wallet.address()
    }

    /// Creates a room signed by this user's device.
    pub(crate) async fn create_room(
        &self,
        name: &str,
        kind: RoomKind,
        members: &[Address],
    ) -> Result<RoomView, ClientError> {
        self.client.create_room(&self.wallet, &self.device, name, kind, members).await
    }

    /// Joins a public channel.
    pub(crate) async fn join(&self, room: &RoomId) -> Result<RoomView, ClientError> {
        self.client.join(room, &self.wallet, &self.device).await
    }
}

/// Every message id of a room, oldest first, paging back from the newest.
pub(crate) async fn all_ids(client: &Client, room: &dchat_protocol::RoomId) -> Vec<String> {
    let mut ids = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page = client.history(room, None, before.as_deref(), Some(500)).await.expect("history");
        let mut chunk: Vec<String> = page.messages.iter().map(|m| m.id.clone()).collect();
        before = chunk.first().cloned();
        chunk.extend(ids);
        ids = chunk;
        if !page.has_more {
            return ids;
        }
    }
}

/// anvil's first development account (owner of what the tests deploy).
pub(crate) const DEV_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// The repository root.
pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// anvil on a free loopback port, killed on drop.
pub(crate) struct Anvil {
    child: Child,
    pub(crate) url: String,
}

impl Anvil {
    pub(crate) fn start() -> Self {
        let bin = repo().join("node_modules/.bin/anvil");
        assert!(bin.exists(), "anvil is missing: run scripts/setup");
        let mut child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", "0", "--chain-id", "31337"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn anvil");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines.next().expect("anvil prints its address").expect("read");
            if let Some(addr) = line.strip_prefix("Listening on ") {
                break format!("http://{}", addr.trim());
            }
        };
        // Keep draining stdout so anvil never blocks on a full pipe.
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
