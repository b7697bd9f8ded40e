#![doc = include_str!("../README.md")]

pub mod anchor;
pub mod api;
pub mod chain;
pub mod client;
pub mod config;
pub mod deploy;
pub mod gates;
pub mod hub;
pub mod ingest;
pub mod media;
pub mod p2p;
pub mod ratelimit;
pub mod registry;
pub mod rooms;
pub mod social;
pub mod store;
pub mod tips;

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
    p2p: Option<p2p::P2p>,
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

    /// The store (for inspection by tools and tests).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The network handle, when the network is enabled.
    pub fn p2p(&self) -> Option<&p2p::P2p> {
        self.p2p.as_ref()
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

/// Secrets a node takes from its environment, never from configuration files.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// Key that sends anchor transactions (`DCHAT_ANCHOR_KEY`).
    pub anchor_key: Option<alloy::signers::local::PrivateKeySigner>,
}

impl Secrets {
    /// Reads `DCHAT_ANCHOR_KEY`.
    pub fn from_env() -> eyre::Result<Self> {
        let anchor_key = match std::env::var("DCHAT_ANCHOR_KEY") {
            Ok(k) => Some(k.trim().parse().map_err(|_| eyre::eyre!("DCHAT_ANCHOR_KEY is not a hex private key"))?),
            Err(_) => None,
        };
        Ok(Self { anchor_key })
    }
}

/// Starts a node with secrets from the environment ([`Secrets::from_env`]).
pub async fn spawn(config: Config) -> eyre::Result<NodeHandle> {
    // Read only for the features configured: a stray variable must not stop a node.
    let secrets = if config.anchor.is_some() { Secrets::from_env()? } else { Secrets::default() };
    spawn_with(config, secrets).await
}

/// Starts a node: opens the store, binds the API and serves until shut down.
pub async fn spawn_with(config: Config, secrets: Secrets) -> eyre::Result<NodeHandle> {
    config.validate()?;
    let store = Store::open(&config.data_dir, config.database_url.as_deref()).await.wrap_err_with(|| match &config
        .database_url
    {
        Some(_) => "opening the PostgreSQL store (database_url)".to_string(),
        None => format!("opening the store in {}", config.data_dir.display()),
    })?;
    let key = load_or_create_key(&config.data_dir)?;
    let listener = TcpListener::bind(config.http).await.wrap_err_with(|| format!("binding {}", config.http))?;
    let addr = listener.local_addr()?;
    let domain = config.domain_for(addr);
    let public_url = config.public_url_for(&domain);

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let signer = TokenSigner::new(key);
    let network = if config.p2p.enabled { Some(p2p_parts(&config)?) } else { None };
    let anchoring = match &config.anchor {
        Some(a) => Some(anchor_target(&config, a, secrets.anchor_key.clone()).await?),
        None => None,
    };
    let media = media::Media::open(&config.media, &config.data_dir).await?;
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
        p2p: network.as_ref().map(|n| n.client.clone()),
        anchor: anchoring.as_ref().map(|(t, _)| *t),
        media,
        social: social::Social::new(&config.social),
        config,
    });
    state.social.load(&state.store).await.wrap_err("loading blocks and settings")?;

    let app = api::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let stop = shutdown.clone();
    tracker.spawn(async move {
        // Nagle off: live frames and small replies go out at once instead of waiting for an ACK.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let served = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await;
        if let Err(e) = served {
            tracing::error!(target: "node::api", error = %e, "server stopped");
        }
    });
    tracker.spawn(prune_nonces(state.clone()));
    match media::api::sweep_orphans(&state).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(target: "node::media", removed = n, "unpinned media no room references"),
        Err(e) => tracing::warn!(target: "node::media", code = e.code, "could not sweep unreferenced media"),
    }
    tracker.spawn(media::api::retention(state.clone()));
    tracker.spawn(social::sweep_typing(state.clone()));
    tracker.spawn(social::sweep_presence(state.clone()));
    tracker.spawn(tips::run(state.clone()));
    if let (Some((target, key)), Some(rpc)) = (anchoring, state.config.rpc_url.clone()) {
        tracker.spawn(anchor::run(state.clone(), rpc, key, target, shutdown.clone()));
    }
    let p2p = match network {
        Some(n) => Some(start_network(n, &state, &tracker, &shutdown).await?),
        None => None,
    };
    if let Err(e) = rooms::ensure_default_channel(&state).await {
        tracing::warn!(target: "node::rooms", error = %e, "could not create the default channel");
    }
    tracing::info!(target: "node", %addr, %domain, "node started");
    Ok(NodeHandle { addr, domain, shutdown, tracker, store, p2p })
}

/// Where and with which key to anchor: the `MessageAnchor` of the RPC's chain from the
/// deployments file, and `DCHAT_ANCHOR_KEY`. Every missing piece is a clear start-up error.
async fn anchor_target(
    config: &Config,
    a: &anchor::AnchorConfig,
    key: Option<alloy::signers::local::PrivateKeySigner>,
) -> eyre::Result<(anchor::Target, alloy::signers::local::PrivateKeySigner)> {
    use alloy::providers::Provider;
    let rpc = config.rpc_url.as_deref().ok_or_else(|| eyre::eyre!("[anchor] needs rpc_url (or --rpc-url)"))?;
    let key = key.ok_or_else(|| {
        eyre::eyre!("[anchor] needs DCHAT_ANCHOR_KEY: the private key (hex) that sends anchor transactions")
    })?;
    let provider = alloy::providers::ProviderBuilder::new().connect_http(rpc.parse().wrap_err("rpc_url is not a URL")?);
    let chain_id = provider.get_chain_id().await.wrap_err("asking the chain id for anchoring (is the RPC up?)")?;
    let deployments = deploy::read(&a.deployments)?;
    let d = deployments.get(&chain_id).ok_or_else(|| {
        eyre::eyre!("{} has no deployment for chain {chain_id}; run dchat-deploy first", a.deployments.display())
    })?;
    // Anyone may anchor; readers count the anchors of active nodes only, so say when this key is none.
    let (registry, active) = anchor::check_target(&provider, d.message_anchor, key.address()).await?;
    if !active {
        tracing::warn!(
            target: "node::anchor",
            anchorer = %key.address(),
            %registry,
            "the anchor key is not an active node in NodeRegistry: its anchors go on chain, but readers that trust only active nodes will not count them"
        );
    }
    Ok((anchor::Target { chain_id, contract: d.message_anchor, anchorer: key.address() }, key))
}

/// The network's pieces before it runs.
struct Network {
    client: p2p::P2p,
    swarm: libp2p::Swarm<p2p::behaviour::Behaviour>,
    commands: tokio::sync::mpsc::Receiver<p2p::client::Command>,
}

/// Builds the swarm (TCP + Noise + Yamux, and QUIC) with the persistent network key.
fn p2p_parts(config: &Config) -> eyre::Result<Network> {
    let key = load_or_create_p2p_key(&config.data_dir)?;
    let max_transmit = config.limits.envelope.max_envelope_bytes + 16 * 1024;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(libp2p::tcp::Config::default(), libp2p::noise::Config::new, libp2p::yamux::Config::default)?
        .with_quic()
        .with_behaviour(|key| {
            p2p::behaviour::Behaviour::new(key, max_transmit, config.p2p.shards)
                .map_err(Box::<dyn std::error::Error + Send + Sync>::from)
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    let (tx, commands) = tokio::sync::mpsc::channel(1024);
    let client = p2p::P2p::new(tx, *swarm.local_peer_id());
    Ok(Network { client, swarm, commands })
}

/// Subscribes to every shard, listens, dials the bootstrap peers and starts the event loop and
/// the sync task; returns once the network listens.
async fn start_network(
    mut n: Network,
    state: &AppState,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> eyre::Result<p2p::P2p> {
    let cfg = &state.config.p2p;
    for shard in 0..cfg.shards.max(1) {
        let topic = libp2p::gossipsub::IdentTopic::new(format!("/dchat/1/shard/{shard}"));
        n.swarm.behaviour_mut().gossipsub.subscribe(&topic).map_err(|e| eyre::eyre!("subscribing to {topic}: {e}"))?;
    }
    for addr in p2p::event_loop::parse_addrs(&cfg.listen, "listen")? {
        n.swarm.listen_on(addr.clone()).wrap_err_with(|| format!("listening on {addr}"))?;
    }
    let mut bootstrap = p2p::event_loop::parse_addrs(&cfg.bootstrap, "bootstrap")?;
    if let (Some(deployments), Some(rpc)) = (&cfg.registry, &state.config.rpc_url) {
        // A registry that cannot be read does not stop the node; the configured peers remain.
        match registry::bootstrap_peers(rpc, deployments, n.swarm.local_peer_id()).await {
            Ok(found) => {
                tracing::info!(target: "node::p2p", peers = found.len(), "bootstrap addresses from NodeRegistry");
                bootstrap.extend(p2p::event_loop::parse_addrs(&found, "registry")?);
            }
            Err(e) => tracing::warn!(target: "node::p2p", error = %e, "could not read NodeRegistry"),
        }
    }
    let connected = Arc::new(tokio::sync::Notify::new());
    let event_loop =
        p2p::event_loop::EventLoop::new(n.swarm, n.commands, n.client.clone(), state.clone(), connected.clone());
    tracker.spawn(event_loop.run(shutdown.clone()));
    let interval = Duration::from_secs(cfg.sync_interval_secs.max(1));
    tracker.spawn(p2p::sync::run(state.clone(), n.client.clone(), connected, interval, shutdown.clone()));
    for addr in bootstrap {
        n.client.dial(addr).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while n.client.addresses().await.is_empty() {
        if tokio::time::Instant::now() > deadline {
            eyre::bail!("the network did not start listening within 5 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(n.client)
}

/// Loads the network identity from `data_dir/p2p.key`, creating it on first start.
fn load_or_create_p2p_key(data_dir: &Path) -> eyre::Result<libp2p::identity::Keypair> {
    let path = data_dir.join("p2p.key");
    match std::fs::read(&path) {
        Ok(bytes) => libp2p::identity::Keypair::from_protobuf_encoding(&bytes)
            .map_err(|e| eyre::eyre!("{} is not a network key ({e}); remove it to make a new one", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = libp2p::identity::Keypair::generate_ed25519();
            let bytes = key.to_protobuf_encoding().map_err(|e| eyre::eyre!("encoding the network key: {e}"))?;
            write_private(&path, &bytes)?;
            Ok(key)
        }
        Err(e) => Err(e).wrap_err_with(|| format!("reading {}", path.display())),
    }
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
