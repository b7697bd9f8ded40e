#![doc = include_str!("../README.md")]

pub mod api;
pub mod chain;
pub mod config;
pub mod error;
pub mod follower;
pub mod metrics;
pub mod session;
pub mod source;
pub mod store;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use eyre::WrapErr;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    api::AppState, config::Config, follower::Follower, metrics::Metrics, session::Sessions, source::Source,
    store::Store,
};

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    now_ms() / 1000
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Secrets an indexer takes from its environment, never from configuration files.
#[derive(Clone)]
pub struct Secrets {
    /// The key the node knows this indexer by (`DCHAT_INDEXER_KEY`): sent as a bearer token to
    /// `/v1/log`; the node lists its SHA-256 in `[indexer] key_hashes`.
    pub node_key: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").finish_non_exhaustive()
    }
}

impl Secrets {
    /// Reads `DCHAT_INDEXER_KEY`; the error says what to set.
    pub fn from_env() -> eyre::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`Secrets::from_env`], reading variables through `var`.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> eyre::Result<Self> {
        let node_key =
            var("DCHAT_INDEXER_KEY").map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).ok_or_else(|| {
                eyre::eyre!(
                    "DCHAT_INDEXER_KEY is not set: give the key the node accepts for its log (the node lists its \
                 SHA-256 in [indexer] key_hashes)"
                )
            })?;
        Ok(Self { node_key })
    }
}

/// A running indexer.
#[derive(Debug)]
pub struct IndexerHandle {
    addr: SocketAddr,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    store: Store,
    metrics: Arc<Metrics>,
}

impl IndexerHandle {
    /// Address the API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL of the API.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The store (for tools and tests).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The follower's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Cancelled when the indexer stops.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops following and serving, waits (bounded) for in-flight work and closes the store.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(Duration::from_secs(10), self.tracker.wait()).await.is_err() {
            tracing::warn!(target: "indexer", "shutdown: tasks still running after 10 s");
        }
        self.store.close().await;
    }

    /// Waits until the indexer has been told to stop, then shuts it down.
    pub async fn wait(self) {
        self.shutdown.cancelled().await;
        self.shutdown().await;
    }
}

/// Binds `config.http` and starts the indexer.
pub async fn spawn(config: Config, secrets: Secrets) -> eyre::Result<IndexerHandle> {
    config.validate()?;
    let listener = TcpListener::bind(config.http).await.wrap_err_with(|| format!("binding {}", config.http))?;
    serve(listener, config, secrets).await
}

/// Starts the indexer on a bound listener: migrates the store, follows the node and serves
/// the API until shut down.
pub async fn serve(listener: TcpListener, config: Config, secrets: Secrets) -> eyre::Result<IndexerHandle> {
    config.validate()?;
    let store = Store::connect(&config.database_url).await?;
    let addr = listener.local_addr()?;
    let timeout = Duration::from_secs(config.node.timeout_secs);
    let http = reqwest::Client::builder().timeout(timeout).build()?;
    let source = Source::new(&config.node.url, secrets.node_key, timeout)?;
    let metrics = Arc::new(Metrics::default());
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();

    let follower = Follower::new(source, store.clone(), metrics.clone(), config.follow.clone());
    tracker.spawn(follower.run(shutdown.child_token()));
    if let Some(gateway) = config.gateway.clone() {
        tracker.spawn(follower::follow_profiles(gateway, store.clone(), http.clone(), shutdown.child_token()));
    }

    if let Some(chain) = config.chain.clone() {
        tracker.spawn(follow_chain(chain, store.clone(), metrics.chain.clone(), shutdown.child_token()));
    }

    let state = AppState(Arc::new(api::Inner {
        sessions: Sessions::new(&config.node, http),
        config,
        store: store.clone(),
        metrics: metrics.clone(),
    }));
    let app = api::router(state.clone());
    let stop = shutdown.clone();
    tracker.spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await;
        if let Err(e) = served {
            tracing::error!(target: "indexer::api", error = %e, "server stopped");
        }
    });
    tracing::info!(target: "indexer", %addr, node = %state.config.node.url, "indexer started");
    Ok(IndexerHandle { addr, shutdown, tracker, store, metrics })
}

/// Connects the chain follower (retrying while the RPC is down) and runs it until `shutdown`.
async fn follow_chain(
    config: config::ChainConfig,
    store: Store,
    metrics: Arc<chain::ChainMetrics>,
    shutdown: CancellationToken,
) {
    let mut pause = Duration::from_millis(config.poll_ms);
    let follower = loop {
        match chain::ChainFollower::connect(config.clone(), store.clone(), metrics.clone()).await {
            Ok(f) => break f,
            Err(e) => {
                metrics.errors_total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(target: "indexer::chain", error = %format!("{e:#}"), "cannot start the chain follower; retrying");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(30));
    };
    tracing::info!(target: "indexer::chain", contracts = ?follower.contracts(), "following the chain");
    follower.run(shutdown).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_key_is_required_and_never_printed() {
        let err = Secrets::from_lookup(|_| None).expect_err("unset").to_string();
        assert!(err.contains("DCHAT_INDEXER_KEY"), "{err}");
        let s = Secrets::from_lookup(|_| Some("s3cret-key".into())).expect("set");
        assert!(!format!("{s:?}").contains("s3cret"));
    }
}
