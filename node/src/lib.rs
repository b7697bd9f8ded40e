#![doc = include_str!("../README.md")]

pub mod api;
pub mod chain;
pub mod client;
pub mod config;
pub mod hub;
pub mod ingest;
pub mod ratelimit;
pub mod store;

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use dchat_protocol::token::TokenSigner;
use ed25519_dalek::SigningKey;
use eyre::WrapErr;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    api::{AppState, Inner},
    config::Config,
    hub::Hub,
    ratelimit::RateLimiter,
    store::Store,
};

/// A running node.
#[derive(Debug)]
pub struct NodeHandle {
    addr: SocketAddr,
    domain: String,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    store: Store,
}

impl NodeHandle {
    /// Address the API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL of the API.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The SIWE domain sign-ins must name.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Cancelled when the node stops.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, closes WebSockets, waits (bounded) for in-flight work and closes the store.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(Duration::from_secs(10), self.tracker.wait()).await.is_err() {
            tracing::warn!(target: "node", "shutdown: tasks still running after 10 s");
        }
        self.store.close().await;
    }

    /// Waits until the node has been told to stop, then shuts it down.
    pub async fn wait(self) {
        self.shutdown.cancelled().await;
        self.shutdown().await;
    }
}

/// Loads the node key from `data_dir/node.key`, creating it (mode 0600) on first start.
pub fn load_or_create_key(data_dir: &Path) -> eyre::Result<SigningKey> {
    let path = data_dir.join("node.key");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let bytes: [u8; 32] = bytes
                .try_into()
                .map_err(|_| eyre::eyre!("{} is not a 32-byte key; remove it to make a new one", path.display()))?;
            Ok(SigningKey::from_bytes(&bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir).wrap_err_with(|| format!("creating {}", data_dir.display()))?;
            let key = SigningKey::from_bytes(&rand::random());
            write_private(&path, key.as_bytes())?;
            Ok(key)
        }
        Err(e) => Err(e).wrap_err_with(|| format!("reading {}", path.display())),
    }
}

/// Writes a secret file readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> eyre::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .wrap_err_with(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Starts a node: opens the store, binds the API and serves until shut down.
pub async fn spawn(config: Config) -> eyre::Result<NodeHandle> {
    config.validate()?;
    let store = Store::open(&config.data_dir)
        .await
        .wrap_err_with(|| format!("opening the store in {}", config.data_dir.display()))?;
    let key = load_or_create_key(&config.data_dir)?;
    let listener = TcpListener::bind(config.http).await.wrap_err_with(|| format!("binding {}", config.http))?;
    let addr = listener.local_addr()?;
    let domain = config.domain_for(addr);
    let public_url = config.public_url_for(&domain);

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let signer = TokenSigner::new(key);
    let rl = &config.rate_limit;
    let state = AppState::new(Inner {
        ip_limits: RateLimiter::new(rl.ip_per_sec, rl.ip_burst, rl.max_keys),
        address_limits: RateLimiter::new(rl.address_per_sec, rl.address_burst, rl.max_keys),
        tokens: signer.verifier(),
        signer,
        domain: domain.clone(),
        public_url,
        store: store.clone(),
        hub: Arc::new(Hub::default()),
        shutdown: shutdown.clone(),
        config,
    });

    let app = api::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let stop = shutdown.clone();
    tracker.spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await;
        if let Err(e) = served {
            tracing::error!(target: "node::api", error = %e, "server stopped");
        }
    });
    tracker.spawn(prune_nonces(state.clone()));
    tracing::info!(target: "node", %addr, %domain, "node started");
    Ok(NodeHandle { addr, domain, shutdown, tracker, store })
}

async fn prune_nonces(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {
                if let Err(e) = state.store.prune_nonces(state.now(), 3600).await {
                    tracing::warn!(target: "node::auth", error = %e, "pruning nonces failed");
                }
            }
        }
    }
}
