//! Indexer configuration: `Default` is a local indexer following a local node into a local
//! PostgreSQL database. A TOML file may override any field; flags and `DCHAT_*` environment
//! variables override the common ones (see `main.rs`). The node log key comes from the
//! environment only (see [`crate::Secrets`]).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use eyre::{WrapErr, bail};
use serde::Deserialize;

/// Everything an indexer needs to start, apart from secrets.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on. Port 0 picks a free port.
    pub http: SocketAddr,
    /// PostgreSQL URL. Give it through `DCHAT_INDEXER_DATABASE_URL` when it holds a password.
    pub database_url: String,
    /// Log output format.
    pub log_format: LogFormat,
    /// The node whose log is followed and whose access tokens sign callers in.
    pub node: NodeConfig,
    /// Following the log.
    pub follow: FollowConfig,
    /// Search limits.
    pub search: SearchConfig,
    /// The gateway whose profile feed names users (optional).
    pub gateway: Option<GatewayConfig>,
    /// The chain whose dchat contracts' events are followed (optional).
    pub chain: Option<ChainConfig>,
    /// Browser origins (`scheme://host[:port]`, the dApp's) allowed to call the search API from
    /// scripts (CORS). Other origins get no CORS headers.
    pub cors_origins: Vec<String>,
}

/// The node followed.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Base URL of the node's API: the log is read from `<url>/v1/log`, the key set from
    /// `<url>/.well-known/jwks.json`.
    pub url: String,
    /// When set, tokens must carry this `iss` (the node's public URL).
    pub issuer: Option<String>,
    /// Shortest time between two fetches of the node's key set, seconds.
    pub jwks_min_refresh_secs: u64,
    /// Timeout of every request to the node, seconds.
    pub timeout_secs: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self { url: "http://127.0.0.1:8480".into(), issuer: None, jwks_min_refresh_secs: 30, timeout_secs: 10 }
    }
}

/// Following the node's log.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FollowConfig {
    /// Entries asked for per request (the node serves at most 1000).
    pub batch: u32,
    /// Pause when the log has nothing new, milliseconds.
    pub poll_ms: u64,
    /// Pause after a failed request, milliseconds (doubling up to 30 s).
    pub retry_ms: u64,
    /// Seconds between two reconcile passes (room list, members and per-room counts).
    pub reconcile_secs: u64,
}

impl Default for FollowConfig {
    fn default() -> Self {
        Self { batch: 500, poll_ms: 500, retry_ms: 500, reconcile_secs: 60 }
    }
}

/// Search limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// Largest page of results.
    pub max_limit: u32,
    /// Most query tokens (all words, all epochs) in one encrypted-room search.
    pub max_query_tokens: usize,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self { max_limit: 100, max_query_tokens: 256 }
    }
}

/// Following dchat's contracts on a chain (MessageAnchor, Payments, NodeRegistry events).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// JSON-RPC URL of an Ethereum node.
    pub rpc_url: String,
    /// A deployments file written by `dchat-deploy` (chain id → addresses and the deployment
    /// block); the entry for the RPC's chain id gives the addresses not set below.
    pub deployments: Option<PathBuf>,
    /// `MessageAnchor` address.
    pub message_anchor: Option<alloy::primitives::Address>,
    /// `Payments` address.
    pub payments: Option<alloy::primitives::Address>,
    /// `NodeRegistry` address.
    pub node_registry: Option<alloy::primitives::Address>,
    /// First block read (default: the deployment's block, else 0).
    pub start_block: Option<u64>,
    /// Blocks a block must be buried under before it is read: 0 reads the head itself.
    /// Reorgs are detected and rolled back at any depth within `reorg_window`.
    pub confirmations: u64,
    /// Blocks kept (number, hash, parent) to detect reorgs in; older ones are final.
    pub reorg_window: u64,
    /// Most blocks per `eth_getLogs` while catching up behind the window.
    pub max_range: u64,
    /// Pause when there is no new block, milliseconds.
    pub poll_ms: u64,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            rpc_url: "http://127.0.0.1:8545".into(),
            deployments: None,
            message_anchor: None,
            payments: None,
            node_registry: None,
            start_block: None,
            confirmations: 2,
            reorg_window: 128,
            max_range: 1000,
            poll_ms: 1000,
        }
    }
}

/// The gateway's profile feed (`GET <url>/v1/profiles?updated_after=&limit=`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Base URL of the gateway's API.
    pub url: String,
    /// Seconds between two reads of the feed.
    pub poll_secs: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self { url: "http://127.0.0.1:8490".into(), poll_secs: 30 }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([127, 0, 0, 1], 8470)),
            database_url: "postgres://postgres@127.0.0.1:5432/dchat_indexer".into(),
            log_format: LogFormat::Text,
            node: NodeConfig::default(),
            follow: FollowConfig::default(),
            search: SearchConfig::default(),
            gateway: None,
            chain: None,
            cors_origins: Vec::new(),
        }
    }
}

impl Config {
    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &Path) -> eyre::Result<Self> {
        let text = std::fs::read_to_string(path).wrap_err_with(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).wrap_err_with(|| format!("config file {} is invalid", path.display()))
    }

    /// Refuses settings the indexer cannot run with, saying what to fix.
    pub fn validate(&self) -> eyre::Result<()> {
        url::Url::parse(&self.node.url).wrap_err_with(|| format!("node.url {:?} is not a URL", self.node.url))?;
        if let Some(issuer) = &self.node.issuer {
            url::Url::parse(issuer).wrap_err_with(|| format!("node.issuer {issuer:?} is not a URL"))?;
        }
        if let Some(g) = &self.gateway {
            url::Url::parse(&g.url).wrap_err_with(|| format!("gateway.url {:?} is not a URL", g.url))?;
            if g.poll_secs == 0 {
                bail!("gateway.poll_secs must be at least 1");
            }
        }
        if let Some(c) = &self.chain {
            url::Url::parse(&c.rpc_url).wrap_err_with(|| format!("chain.rpc_url {:?} is not a URL", c.rpc_url))?;
            if c.deployments.is_none()
                && c.message_anchor.is_none()
                && c.payments.is_none()
                && c.node_registry.is_none()
            {
                bail!("[chain] needs a deployments file or at least one contract address");
            }
            if c.reorg_window == 0 || c.reorg_window <= c.confirmations {
                bail!("chain.reorg_window must be larger than chain.confirmations");
            }
            if c.max_range == 0 || c.poll_ms == 0 {
                bail!("chain.max_range and chain.poll_ms must be positive");
            }
        }
        if !self.database_url.starts_with("postgres://") && !self.database_url.starts_with("postgresql://") {
            bail!("database_url must be a postgres:// URL");
        }
        if self.follow.batch == 0 || self.follow.batch > 1000 {
            bail!("follow.batch must be between 1 and 1000");
        }
        if self.follow.poll_ms == 0 || self.follow.retry_ms == 0 || self.follow.reconcile_secs == 0 {
            bail!("follow.poll_ms, follow.retry_ms and follow.reconcile_secs must be positive");
        }
        if self.search.max_limit == 0 || self.search.max_query_tokens == 0 {
            bail!("search.max_limit and search.max_query_tokens must be positive");
        }
        if self.node.timeout_secs == 0 {
            bail!("node.timeout_secs must be positive");
        }
        for origin in &self.cors_origins {
            let parsed = url::Url::parse(origin).wrap_err_with(|| format!("cors_origins: {origin:?} is not a URL"))?;
            if parsed.origin().ascii_serialization() != *origin {
                bail!("cors_origins: {origin:?} must be an origin such as https://chat.example.org (no path or slash)");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_toml_overrides_fields() {
        Config::default().validate().expect("defaults work");
        let c: Config =
            toml::from_str("http = \"127.0.0.1:9000\"\n[follow]\nbatch = 10\n[gateway]\nurl = \"http://g:1\"\n")
                .expect("parses");
        assert_eq!(c.http.port(), 9000);
        assert_eq!(c.follow.batch, 10);
        assert_eq!(c.follow.poll_ms, 500);
        assert_eq!(c.gateway.as_ref().map(|g| g.poll_secs), Some(30));
        c.validate().expect("valid");
        assert!(toml::from_str::<Config>("htp = 1").is_err(), "unknown keys are refused");
        assert!(toml::from_str::<Config>("[node]\nkey = \"x\"").is_err(), "no secrets in files");
        let bad = Config { database_url: "mysql://x".into(), ..Config::default() };
        assert!(bad.validate().is_err());
    }
}
