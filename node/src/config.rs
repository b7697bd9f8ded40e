//! Node configuration: `Default` is a working single node on loopback with an embedded store.
//! A TOML file may override any field; flags and `DCHAT_*` environment variables override the
//! most common ones (see `main.rs`).

use std::{net::SocketAddr, path::PathBuf};

use dchat_protocol::Bounds;
use eyre::{WrapErr, bail};
use serde::Deserialize;

/// Everything a node needs to start.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP/WebSocket API listens on. Port 0 picks a free port.
    pub http: SocketAddr,
    /// Directory for the database and the node key.
    pub data_dir: PathBuf,
    /// PostgreSQL URL (`postgres://...`); when unset the node keeps an SQLite file in
    /// `data_dir`. Give it through `DCHAT_DATABASE_URL` when it holds a password.
    pub database_url: Option<String>,
    /// SIWE domain (RFC 3986 authority) this node binds sign-ins to. Defaults to
    /// `localhost:<port>`.
    pub domain: Option<String>,
    /// Public origin of this node (`scheme://authority`); SIWE URIs must be on it. Defaults to
    /// `http://<domain>`.
    pub public_url: Option<String>,
    /// Chain ids accepted in SIWE messages.
    pub chain_ids: Vec<u64>,
    /// Ethereum JSON-RPC URL; enables ERC-1271 contract-wallet sign-in.
    pub rpc_url: Option<String>,
    /// Sign-in and session settings.
    pub auth: AuthConfig,
    /// Size, clock and queue limits.
    pub limits: Limits,
    /// Request rate limits.
    pub rate_limit: RateLimitConfig,
    /// Log output format.
    pub log_format: LogFormat,
    /// Peer-to-peer network.
    pub p2p: crate::p2p::P2pConfig,
    /// On-chain anchoring of local messages (needs `rpc_url` and `DCHAT_ANCHOR_KEY`).
    pub anchor: Option<crate::anchor::AnchorConfig>,
    /// Rooms.
    pub rooms: RoomsConfig,
    /// Indexers allowed to read the ordered message log (`/v1/log`).
    pub indexer: IndexerAccessConfig,
    /// Directory of the built web dApp (`dapp/dist`), served at `/` with `index.html` for
    /// unknown paths. Unset: no dApp is served.
    pub dapp_dir: Option<PathBuf>,
    /// Media uploads: limits, quotas, retention and where files are pinned.
    pub media: MediaConfig,
    /// Contacts, presence, typing and their rate limits.
    pub social: crate::social::SocialConfig,
    /// What the dApp is told about the services around this node (`GET /v1/info`).
    pub dapp: DappConfig,
}

/// The services around this node that browsers use directly, published to the dApp by
/// `GET /v1/info`. Each is optional: the dApp hides what is not configured.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DappConfig {
    /// Public URL of the search indexer (`dchat-indexer`) that follows this node. Browsers call
    /// it directly, so it must list the dApp's origin in its `cors_origins`.
    pub indexer_url: Option<String>,
    /// Public URL of the LinkedIn gateway (`dchat-gateway`).
    pub gateway_url: Option<String>,
    /// Deployments file (see `dchat-deploy`) naming the contracts the dApp pays through (tips,
    /// paid rooms) and checks proofs against, per chain id.
    pub deployments: Option<PathBuf>,
}

/// Media uploads (`POST /v1/media`): limits, quotas, retention and where files are pinned.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Kubo RPC API to pin media in (e.g. `http://127.0.0.1:5001`). Unset: the node keeps the
    /// blocks itself under `data_dir/media`, with the CIDs Kubo would give.
    pub ipfs_api: Option<String>,
    /// Seconds one IPFS API call may take (adding a file is bounded by its upload instead).
    pub ipfs_timeout_secs: u64,
    /// Largest file accepted, bytes.
    pub max_file_bytes: u64,
    /// Per room kind (`group`, `channel`, `direct`) overrides of `max_file_bytes`.
    pub max_file_bytes_by_kind: std::collections::BTreeMap<String, u64>,
    /// Content types accepted: exact (`image/png`) or a whole family (`image/*`); `*/*` accepts
    /// any. Private-room uploads are ciphertext sent as `application/octet-stream`.
    pub allowed_types: Vec<String>,
    /// Bytes one wallet's uploads may reference in total (each reference counts its file).
    pub user_quota_bytes: u64,
    /// Bytes one room's media may reference in total.
    pub room_quota_bytes: u64,
    /// Seconds after upload when a reference expires and its file is unpinned (unless other
    /// references keep it). Unset: media stays until deleted.
    pub retention_secs: Option<u64>,
    /// Seconds between two retention sweeps.
    pub retention_interval_secs: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            ipfs_api: None,
            ipfs_timeout_secs: 30,
            max_file_bytes: 100 * 1024 * 1024,
            max_file_bytes_by_kind: std::collections::BTreeMap::new(),
            allowed_types: ["image/*", "video/*", "audio/*", "text/plain", "application/pdf"]
                .into_iter()
                .chain(["application/octet-stream"])
                .map(String::from)
                .collect(),
            user_quota_bytes: 1024 * 1024 * 1024,
            room_quota_bytes: 10 * 1024 * 1024 * 1024,
            retention_secs: None,
            retention_interval_secs: 3600,
        }
    }
}

impl MediaConfig {
    /// The largest file accepted in a room of this kind.
    pub fn max_file_bytes_for(&self, kind: crate::store::RoomKind) -> u64 {
        self.max_file_bytes_by_kind.get(kind.as_str()).copied().unwrap_or(self.max_file_bytes)
    }

    /// Whether uploads of this content type (lowercase, without parameters) are accepted.
    pub fn allows_type(&self, mime: &str) -> bool {
        let family = mime.split('/').next().unwrap_or_default();
        self.allowed_types.iter().any(|t| {
            t == "*/*"
                || t.eq_ignore_ascii_case(mime)
                || t.strip_suffix("/*").is_some_and(|f| f.eq_ignore_ascii_case(family))
        })
    }

    fn validate(&self) -> eyre::Result<()> {
        if let Some(api) = &self.ipfs_api {
            let url = url::Url::parse(api).wrap_err_with(|| format!("media.ipfs_api {api:?} is not a URL"))?;
            if !matches!(url.scheme(), "http" | "https") {
                bail!("media.ipfs_api {api:?} must be an http(s) URL such as http://127.0.0.1:5001");
            }
        }
        for kind in self.max_file_bytes_by_kind.keys() {
            if kind.parse::<crate::store::RoomKind>().is_err() {
                bail!("media.max_file_bytes_by_kind: {kind:?} is not a room kind (group, channel or direct)");
            }
        }
        for t in &self.allowed_types {
            let well_formed =
                t.split_once('/').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && !t.contains(';'));
            if !well_formed {
                bail!("media.allowed_types: {t:?} is not a type such as image/png, image/* or */*");
            }
        }
        if self.retention_interval_secs == 0 {
            bail!("media.retention_interval_secs must be at least 1");
        }
        Ok(())
    }
}

/// Indexers allowed to read the ordered message log (`/v1/log`): each sends its key as a bearer
/// token; the node keeps only the keys' SHA-256 (hex, `printf %s "$KEY" | sha256sum`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexerAccessConfig {
    /// SHA-256 (hex) of each accepted indexer key. Empty: the log is closed.
    pub key_hashes: Vec<String>,
}

/// Rooms.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomsConfig {
    /// Name of the public channel a new node creates on first start; empty for none.
    pub default_channel: Option<String>,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        Self { default_channel: Some("team".into()) }
    }
}

/// Sign-in and session settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// How long an issued nonce stays usable, seconds.
    pub nonce_ttl_secs: i64,
    /// Access-token lifetime, seconds (never past the SIWE `Expiration Time`).
    pub token_ttl_secs: i64,
    /// Clock skew tolerated on SIWE time bounds and delegations, seconds.
    pub clock_skew_secs: i64,
    /// Longest device delegation accepted, seconds.
    pub max_delegation_secs: i64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { nonce_ttl_secs: 600, token_ttl_secs: 3600, clock_skew_secs: 60, max_delegation_secs: 30 * 24 * 3600 }
    }
}

/// Size, clock and queue limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Envelope bounds (size, future skew, lamport jump).
    pub envelope: Bounds,
    /// How old a newly posted message's timestamp may be, milliseconds.
    pub max_past_ms: u64,
    /// Outbound frames queued per WebSocket before the client is dropped as too slow.
    pub ws_queue: usize,
    /// Rooms one WebSocket may subscribe to.
    pub ws_max_subscriptions: usize,
    /// Largest history page.
    pub max_page: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            envelope: Bounds::default(),
            max_past_ms: 10 * 60 * 1000,
            ws_queue: 256,
            ws_max_subscriptions: 1000,
            max_page: 500,
        }
    }
}

/// Token-bucket rate limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per second sustained, per client IP.
    pub ip_per_sec: f64,
    /// Burst per client IP.
    pub ip_burst: f64,
    /// Writes per second sustained, per signed-in address.
    pub address_per_sec: f64,
    /// Burst per signed-in address.
    pub address_burst: f64,
    /// Keys tracked before idle ones are evicted.
    pub max_keys: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self { ip_per_sec: 100.0, ip_burst: 200.0, address_per_sec: 20.0, address_burst: 50.0, max_keys: 100_000 }
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
            http: SocketAddr::from(([127, 0, 0, 1], 8480)),
            data_dir: PathBuf::from(".dchat/node"),
            database_url: None,
            domain: None,
            public_url: None,
            chain_ids: vec![1, 31337],
            rpc_url: None,
            auth: AuthConfig::default(),
            limits: Limits::default(),
            rate_limit: RateLimitConfig::default(),
            log_format: LogFormat::Text,
            p2p: crate::p2p::P2pConfig::default(),
            anchor: None,
            dapp_dir: None,
            rooms: RoomsConfig::default(),
            indexer: IndexerAccessConfig::default(),
            media: MediaConfig::default(),
            social: crate::social::SocialConfig::default(),
            dapp: DappConfig::default(),
        }
    }
}

impl Config {
    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &std::path::Path) -> eyre::Result<Self> {
        let text = std::fs::read_to_string(path).wrap_err_with(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).wrap_err_with(|| format!("config file {} is invalid", path.display()))
    }

    /// Refuses settings the node cannot run with, saying what to fix.
    pub fn validate(&self) -> eyre::Result<()> {
        if self.chain_ids.is_empty() {
            bail!("chain_ids is empty: list at least one chain id sign-ins may use (for example 1)");
        }
        if let Some(url) = &self.public_url {
            let parsed = url::Url::parse(url).wrap_err_with(|| format!("public_url {url:?} is not a URL"))?;
            let origin_only = parsed.path() == "/" && parsed.query().is_none() && parsed.fragment().is_none();
            if parsed.host_str().is_none() || !matches!(parsed.scheme(), "http" | "https") || !origin_only {
                bail!("public_url {url:?} must be an http(s) origin with no path, such as https://chat.example.org");
            }
        }
        if let Some(url) = &self.rpc_url {
            url::Url::parse(url).wrap_err_with(|| format!("rpc_url {url:?} is not a URL"))?;
        }
        if let Some(domain) = &self.domain
            && (domain.is_empty() || domain.contains('/') || domain.contains(char::is_whitespace))
        {
            bail!("domain {domain:?} must be a host[:port] authority such as chat.example.org");
        }
        if self.limits.ws_queue == 0 || self.limits.max_page == 0 {
            bail!("limits.ws_queue and limits.max_page must be at least 1");
        }
        if self.auth.token_ttl_secs <= 0 || self.auth.nonce_ttl_secs <= 0 {
            bail!("auth.token_ttl_secs and auth.nonce_ttl_secs must be positive");
        }
        self.media.validate()?;
        for (key, url) in [("indexer_url", &self.dapp.indexer_url), ("gateway_url", &self.dapp.gateway_url)] {
            if let Some(url) = url {
                let parsed = url::Url::parse(url).wrap_err_with(|| format!("dapp.{key} {url:?} is not a URL"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    bail!("dapp.{key} {url:?} must be an http(s) URL");
                }
            }
        }
        Ok(())
    }

    /// The SIWE domain, given the port actually bound.
    pub fn domain_for(&self, bound: SocketAddr) -> String {
        self.domain.clone().unwrap_or_else(|| format!("localhost:{}", bound.port()))
    }

    /// The public origin, given the SIWE domain, without a trailing slash.
    pub fn public_url_for(&self, domain: &str) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{domain}")).trim_end_matches('/').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_and_toml_overrides_fields() {
        Config::default().validate().expect("defaults work");
        let c: Config = toml::from_str("http = \"127.0.0.1:9000\"\n[auth]\ntoken_ttl_secs = 60\n").expect("parses");
        assert_eq!(c.http.port(), 9000);
        assert_eq!(c.auth.token_ttl_secs, 60);
        assert_eq!(c.auth.nonce_ttl_secs, 600);
        assert!(toml::from_str::<Config>("htp = 1").is_err(), "unknown keys are refused");
        assert!(toml::from_str::<Config>("[limits.envelope]\nmax_bytes = 1").is_err(), "also in nested tables");
        let bad = Config { public_url: Some("https://chat.example.org/app".into()), ..Config::default() };
        assert!(bad.validate().is_err(), "public_url must be an origin");
    }

    #[test]
    fn domain_and_public_url_default_from_bound_port() {
        let c = Config::default();
        let d = c.domain_for(SocketAddr::from(([127, 0, 0, 1], 4000)));
        assert_eq!(d, "localhost:4000");
        assert_eq!(c.public_url_for(&d), "http://localhost:4000");
    }
}
