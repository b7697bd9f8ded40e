//! Shared helpers: a real OpenID Connect provider (gateway/oidc/provider.mjs under Node.js), a
//! real dchat node in process, a fresh PostgreSQL database and the gateway, all on loopback; a
//! browser-like client that follows redirects by hand.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use alloy::signers::local::PrivateKeySigner;
use dchat_gateway::{
    GatewayHandle, Secrets,
    config::{Config, LinkedInConfig, NodeConfig},
};
use dchat_node::client::{Client, SignIn};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use tempfile::TempDir;

pub(crate) const CLIENT_ID: &str = "dchat-test-client";
const CLIENT_SECRET: &str = "dchat-test-secret";
/// anvil's second development key; the tests' gateway key.
pub(crate) const GATEWAY_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

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

/// The OpenID Connect provider process, killed on drop.
pub(crate) struct Provider {
    child: Child,
    /// Base URL (`http://127.0.0.1:<port>`).
    pub(crate) url: String,
    http: reqwest::Client,
}

impl Provider {
    pub(crate) fn start(redirect_uri: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc");
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "gateway/oidc/node_modules is missing: run scripts/setup (npm ci in gateway/oidc)"
        );
        let mut child = Command::new("node")
            .current_dir(&dir)
            .args(["provider.mjs", "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET])
            .args(["--redirect-uri", redirect_uri])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn node provider.mjs (is Node.js installed? run scripts/setup)");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines.next().expect("provider prints its address").expect("read");
            if let Some(url) = line.strip_prefix("listening on ") {
                break url.trim().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Self { child, url, http: reqwest::Client::new() }
    }

    /// The issuer (`<url>/oauth`, as LinkedIn's `https://www.linkedin.com/oauth`).
    pub(crate) fn issuer(&self) -> String {
        format!("{}/oauth", self.url)
    }

    async fn admin(&self, path: &str, body: Value) -> Value {
        let resp = self.http.post(format!("{}{path}", self.url)).json(&body).send().await.expect("provider admin");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.expect("json")
    }

    /// Adds or replaces an account.
    pub(crate) async fn account(&self, claims: Value) {
        self.admin("/__test/accounts", claims).await;
    }

    /// How the next id_tokens are altered (`normal`, `unknown_key`, `expired`, ...).
    pub(crate) async fn id_token_mode(&self, mode: &str) {
        self.admin("/__test/mode", json!({ "id_token": mode })).await;
    }

    /// Rotates the signing key (the old one stays published).
    pub(crate) async fn rotate(&self) {
        self.admin("/__test/rotate", json!({})).await;
    }

    /// Requests the provider has served, by endpoint.
    pub(crate) async fn stats(&self) -> Value {
        self.http.get(format!("{}/__test/stats", self.url)).send().await.expect("stats").json().await.expect("json")
    }

    /// Stops the provider (for "provider down" tests).
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A fresh PostgreSQL database (`dchat_t_gw_<random>`), dropped on drop.
pub(crate) struct TestDb {
    base: String,
    name: String,
    pub(crate) url: String,
}

impl TestDb {
    pub(crate) async fn create() -> Self {
        use sqlx::Connection;
        let base =
            std::env::var("DCHAT_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("dchat_t_gw_{}", hex::encode(rand::random::<[u8; 8]>()));
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
        // Drop runs inside the test's runtime: do the async work on a thread of its own.
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

/// Everything a link needs: provider, node, database, gateway.
pub(crate) struct Env {
    pub(crate) provider: Provider,
    pub(crate) node: dchat_node::NodeHandle,
    pub(crate) gateway: Option<GatewayHandle>,
    pub(crate) url: String,
    pub(crate) http: reqwest::Client,
    _db: TestDb,
    _dir: TempDir,
}

impl Env {
    pub(crate) async fn start() -> Self {
        Self::with(|_| {}).await
    }

    pub(crate) async fn with(tweak: impl FnOnce(&mut Config)) -> Self {
        init_logs();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut node_config = dchat_node::config::Config {
            http: "127.0.0.1:0".parse().expect("addr"),
            data_dir: dir.path().join("node"),
            ..dchat_node::config::Config::default()
        };
        node_config.p2p.enabled = false;
        let node = dchat_node::spawn(node_config).await.expect("node starts");

        let db = TestDb::create().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let provider = Provider::start(&format!("{url}/v1/link/linkedin/callback"));
        let mut config = Config {
            http: listener.local_addr().expect("addr"),
            public_url: Some(url.clone()),
            database_url: db.url.clone(),
            node: NodeConfig {
                url: node.url(),
                issuer: Some(format!("http://{}", node.domain())),
                ..NodeConfig::default()
            },
            linkedin: LinkedInConfig {
                issuer: provider.issuer(),
                client_id: CLIENT_ID.into(),
                ..LinkedInConfig::default()
            },
            ..Config::default()
        };
        tweak(&mut config);
        let secrets = Secrets { gateway_key: GATEWAY_KEY.parse().expect("key"), client_secret: CLIENT_SECRET.into() };
        let gateway = dchat_gateway::serve(listener, config, secrets).await.expect("gateway starts");
        Self { provider, node, gateway: Some(gateway), url, http: reqwest::Client::new(), _db: db, _dir: dir }
    }

    /// A new wallet signed in at the node.
    pub(crate) async fn wallet(&self) -> Wallet {
        self.wallet_for(3600).await
    }

    /// A new wallet signed in at the node for `ttl_secs`.
    pub(crate) async fn wallet_for(&self, ttl_secs: i64) -> Wallet {
        let key = PrivateKeySigner::random();
        let mut client = Client::new(self.node.url());
        let s = SignIn { wallet: &key, device: None, box_key: None, ttl_secs, chain_id: None };
        client.sign_in(&s).await.expect("sign in at the node");
        let token = client.token().expect("token").to_string();
        Wallet { address: key.address().to_checksum(None), token }
    }

    /// `GET` a gateway path; status and JSON body (`Null` when empty).
    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        read(self.http.get(format!("{}{path}", self.url)).send().await.expect("get")).await
    }

    /// A wallet's profile.
    pub(crate) async fn profile(&self, address: &str) -> (StatusCode, Value) {
        self.get(&format!("/v1/profiles/{address}")).await
    }

    /// Unlinks a wallet.
    pub(crate) async fn unlink(&self, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.delete(format!("{}/v1/link/linkedin", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.expect("delete")).await
    }

    /// Asserts the wallet has no profile and the feed is empty: nothing was written.
    pub(crate) async fn assert_nothing_stored(&self, address: &str) {
        let (status, body) = self.profile(address).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"], "profile_not_found");
        let (_, feed) = self.get("/v1/profiles").await;
        assert_eq!(feed["profiles"], json!([]), "the feed shows no change");
    }
}

/// A wallet and its node access token.
pub(crate) struct Wallet {
    pub(crate) address: String,
    pub(crate) token: String,
}

/// A browser: keeps cookies (the provider's session, the gateway's binding cookie), follows no
/// redirect by itself.
pub(crate) struct Browser {
    http: reqwest::Client,
}

impl Browser {
    pub(crate) fn new() -> Self {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self { http }
    }

    /// `POST /v1/link/linkedin/start` with the wallet's token; the raw answer.
    pub(crate) async fn start_raw(&self, env: &Env, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.post(format!("{}/v1/link/linkedin/start", env.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await.expect("start")).await
    }

    /// Starts a link; the authorization URL.
    pub(crate) async fn start(&self, env: &Env, wallet: &Wallet) -> String {
        let (status, body) = self.start_raw(env, Some(&wallet.token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["authorization_url"].as_str().expect("authorization_url").to_string()
    }

    /// Follows the provider's redirects from `authorization_url`, signing in as `login`, until
    /// they lead back to the gateway; that callback URL (not yet visited).
    pub(crate) async fn authorize(&self, env: &Env, authorization_url: &str, login: &str) -> String {
        let mut url = url::Url::parse(authorization_url).expect("url");
        for _ in 0..10 {
            if url.as_str().starts_with(&env.url) {
                return url.into();
            }
            if url.path().starts_with("/interaction/") {
                url.query_pairs_mut().append_pair("login", login);
            }
            let resp = self.http.get(url.clone()).send().await.expect("provider answers");
            assert!(
                resp.status().is_redirection(),
                "{url}: {} {}",
                resp.status(),
                resp.text().await.unwrap_or_default()
            );
            let location = resp.headers()[header::LOCATION].to_str().expect("location");
            url = url.join(location).expect("location is a URL");
        }
        panic!("too many redirects");
    }

    /// Visits the callback URL.
    pub(crate) async fn callback(&self, callback_url: &str) -> (StatusCode, Value) {
        read(self.callback_raw(callback_url).await).await
    }

    /// Visits the callback URL; the raw answer.
    pub(crate) async fn callback_raw(&self, callback_url: &str) -> reqwest::Response {
        self.http.get(callback_url).send().await.expect("callback")
    }

    /// The whole link as `login`: start, provider, callback.
    pub(crate) async fn link(&self, env: &Env, wallet: &Wallet, login: &str) -> (StatusCode, Value) {
        let auth = self.start(env, wallet).await;
        let callback = self.authorize(env, &auth, login).await;
        self.callback(&callback).await
    }
}

async fn read(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, body)
}

/// Replaces (or adds) one query parameter of a URL.
pub(crate) fn with_param(url: &str, key: &str, value: &str) -> String {
    let mut u = url::Url::parse(url).expect("url");
    let pairs: Vec<(String, String)> =
        u.query_pairs().filter(|(k, _)| k != key).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    u.query_pairs_mut().clear().extend_pairs(pairs).append_pair(key, value);
    u.into()
}

/// One query parameter of a URL.
pub(crate) fn param(url: &str, key: &str) -> String {
    url::Url::parse(url).expect("url").query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned()).expect(key)
}
