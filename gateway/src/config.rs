//! Gateway configuration: `Default` is a local gateway in front of a local node, signing in with
//! LinkedIn (issuer and endpoints discovered from LinkedIn's discovery document). A TOML file may
//! override any field; flags and `DCHAT_*` environment variables override the common ones (see
//! `main.rs`). Secrets never come from here: see [`crate::Secrets`].

use std::{net::SocketAddr, path::Path};

use alloy::primitives::Address;
use eyre::{WrapErr, bail};
use serde::Deserialize;

/// LinkedIn's OpenID Connect issuer (since 2024; it was `https://www.linkedin.com` before).
pub const LINKEDIN_ISSUER: &str = "https://www.linkedin.com/oauth";

/// Everything a gateway needs to start, apart from secrets.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on. Port 0 picks a free port.
    pub http: SocketAddr,
    /// Public origin of this gateway (`scheme://authority`), used for the default redirect URI.
    /// Defaults to `http://localhost:<port>`.
    pub public_url: Option<String>,
    /// PostgreSQL URL. Give it through `DCHAT_GATEWAY_DATABASE_URL` when it holds a password.
    pub database_url: String,
    /// Log output format.
    pub log_format: LogFormat,
    /// Browser origins (`scheme://host[:port]`) allowed to call the API from scripts (CORS, with
    /// credentials so the browser-binding cookie travels). Empty: no cross-origin calls.
    pub cors_origins: Vec<String>,
    /// The dchat node whose access tokens open a wallet session here.
    pub node: NodeConfig,
    /// The OpenID Connect provider (LinkedIn).
    pub linkedin: LinkedInConfig,
    /// Linking flow settings.
    pub link: LinkConfig,
    /// Attestation settings.
    pub attestation: AttestationConfig,
}

/// The dchat node that signs wallets in.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Base URL of the node's API; its key set is read from `<url>/.well-known/jwks.json`.
    pub url: String,
    /// When set, tokens must carry this `iss` (the node's public URL).
    pub issuer: Option<String>,
    /// Shortest time between two fetches of the node's key set, seconds (a token with an
    /// unknown key id triggers a fetch).
    pub jwks_min_refresh_secs: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self { url: "http://127.0.0.1:8480".into(), issuer: None, jwks_min_refresh_secs: 30 }
    }
}

/// The OpenID Connect provider. Every endpoint left unset is read from the issuer's discovery
/// document (`<issuer>/.well-known/openid-configuration`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkedInConfig {
    /// Issuer; id_tokens must carry exactly this `iss`.
    pub issuer: String,
    /// OAuth client id of the LinkedIn app (`DCHAT_LINKEDIN_CLIENT_ID`). The secret comes from
    /// `DCHAT_LINKEDIN_CLIENT_SECRET` only.
    pub client_id: String,
    /// Redirect URI registered with the app. Defaults to
    /// `<public_url>/v1/link/linkedin/callback`.
    pub redirect_uri: Option<String>,
    /// Scopes asked for.
    pub scopes: Vec<String>,
    /// Send a PKCE challenge (S256). LinkedIn's web flow does not support it.
    pub pkce: bool,
    /// Authorization endpoint (discovered when unset).
    pub authorization_endpoint: Option<String>,
    /// Token endpoint (discovered when unset).
    pub token_endpoint: Option<String>,
    /// Userinfo endpoint (discovered when unset).
    pub userinfo_endpoint: Option<String>,
    /// JWKS URI (discovered when unset).
    pub jwks_uri: Option<String>,
    /// Clock skew tolerated on id_token times, seconds.
    pub clock_skew_secs: i64,
    /// Shortest time between two fetches of the provider's key set, seconds (an id_token with
    /// an unknown key id triggers a fetch).
    pub jwks_min_refresh_secs: u64,
    /// Timeout of every request to the provider, seconds.
    pub timeout_secs: u64,
}

impl Default for LinkedInConfig {
    fn default() -> Self {
        Self {
            issuer: LINKEDIN_ISSUER.into(),
            client_id: String::new(),
            redirect_uri: None,
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
            pkce: false,
            authorization_endpoint: None,
            token_endpoint: None,
            userinfo_endpoint: None,
            jwks_uri: None,
            clock_skew_secs: 60,
            jwks_min_refresh_secs: 60,
            timeout_secs: 10,
        }
    }
}

/// The linking flow.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkConfig {
    /// How long a started link stays usable, seconds.
    pub ttl_secs: i64,
    /// Started links one wallet may have open at once.
    pub max_pending: i64,
    /// Require the callback to come from the browser that started the link (a cookie set by
    /// `start`). Needs the dApp and the gateway on the same site.
    pub bind_browser: bool,
    /// Where the callback sends the browser afterwards (with `linkedin=linked` or
    /// `linkedin_error=<code>` added to the query). When unset the callback answers JSON.
    pub return_url: Option<String>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self { ttl_secs: 600, max_pending: 5, bind_browser: true, return_url: None }
    }
}

/// The EIP-712 attestations.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttestationConfig {
    /// `chainId` of the EIP-712 domain.
    pub chain_id: u64,
    /// `verifyingContract` of the EIP-712 domain; left out of the domain when unset.
    pub verifying_contract: Option<Address>,
    /// Validity of an attestation, seconds.
    pub ttl_secs: u64,
}

impl Default for AttestationConfig {
    fn default() -> Self {
        Self { chain_id: 1, verifying_contract: None, ttl_secs: 180 * 24 * 3600 }
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
            http: SocketAddr::from(([127, 0, 0, 1], 8490)),
            public_url: None,
            database_url: "postgres://postgres@127.0.0.1:5432/dchat_gateway".into(),
            log_format: LogFormat::Text,
            cors_origins: Vec::new(),
            node: NodeConfig::default(),
            linkedin: LinkedInConfig::default(),
            link: LinkConfig::default(),
            attestation: AttestationConfig::default(),
        }
    }
}

impl Config {
    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &Path) -> eyre::Result<Self> {
        let text = std::fs::read_to_string(path).wrap_err_with(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).wrap_err_with(|| format!("config file {} is invalid", path.display()))
    }

    /// Refuses settings the gateway cannot run with, saying what to fix.
    pub fn validate(&self) -> eyre::Result<()> {
        if self.linkedin.client_id.trim().is_empty() {
            bail!(
                "the LinkedIn client id is not set: set linkedin.client_id in the config file or \
                 DCHAT_LINKEDIN_CLIENT_ID"
            );
        }
        url::Url::parse(&self.linkedin.issuer)
            .wrap_err_with(|| format!("linkedin.issuer {:?} is not a URL", self.linkedin.issuer))?;
        let l = &self.linkedin;
        for (name, value) in [
            ("linkedin.redirect_uri", &l.redirect_uri),
            ("linkedin.authorization_endpoint", &l.authorization_endpoint),
            ("linkedin.token_endpoint", &l.token_endpoint),
            ("linkedin.userinfo_endpoint", &l.userinfo_endpoint),
            ("linkedin.jwks_uri", &l.jwks_uri),
            ("link.return_url", &self.link.return_url),
            ("node.issuer", &self.node.issuer),
        ] {
            if let Some(v) = value {
                url::Url::parse(v).wrap_err_with(|| format!("{name} {v:?} is not a URL"))?;
            }
        }
        url::Url::parse(&self.node.url).wrap_err_with(|| format!("node.url {:?} is not a URL", self.node.url))?;
        if let Some(url) = &self.public_url {
            let parsed = url::Url::parse(url).wrap_err_with(|| format!("public_url {url:?} is not a URL"))?;
            if parsed.host_str().is_none() || !matches!(parsed.scheme(), "http" | "https") || parsed.path() != "/" {
                bail!("public_url {url:?} must be an http(s) origin with no path, such as https://gateway.example.org");
            }
        }
        for origin in &self.cors_origins {
            let parsed = url::Url::parse(origin).wrap_err_with(|| format!("cors_origins: {origin:?} is not a URL"))?;
            if parsed.origin().ascii_serialization() != origin.as_str() {
                bail!("cors_origins: {origin:?} must be an origin such as https://chat.example.org (no path or slash)");
            }
        }
        if !l.scopes.iter().any(|s| s == "openid") {
            bail!("linkedin.scopes must include openid");
        }
        if self.link.ttl_secs <= 0 || self.link.max_pending <= 0 {
            bail!("link.ttl_secs and link.max_pending must be positive");
        }
        if self.attestation.ttl_secs == 0 {
            bail!("attestation.ttl_secs must be positive");
        }
        if l.clock_skew_secs < 0 || l.timeout_secs == 0 {
            bail!("linkedin.clock_skew_secs must not be negative and linkedin.timeout_secs must be positive");
        }
        Ok(())
    }

    /// The public origin, given the port actually bound, without a trailing slash.
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://localhost:{}", bound.port()))
            .trim_end_matches('/')
            .to_string()
    }

    /// The redirect URI, given the public origin.
    pub fn redirect_uri_for(&self, public_url: &str) -> String {
        self.linkedin.redirect_uri.clone().unwrap_or_else(|| format!("{public_url}/v1/link/linkedin/callback"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_name_linkedin_and_need_a_client_id() {
        let c = Config::default();
        assert_eq!(c.linkedin.issuer, LINKEDIN_ISSUER);
        assert_eq!(c.linkedin.scopes, ["openid", "profile", "email"]);
        let err = c.validate().expect_err("no client id").to_string();
        assert!(err.contains("DCHAT_LINKEDIN_CLIENT_ID"), "{err}");
        let c: Config = toml::from_str("[linkedin]\nclient_id = \"abc\"\n").expect("parses");
        c.validate().expect("valid with a client id");
    }

    #[test]
    fn toml_overrides_fields_and_refuses_unknown_keys() {
        let c: Config =
            toml::from_str("http = \"127.0.0.1:9000\"\n[attestation]\nchain_id = 10\n[linkedin]\npkce = true\n")
                .expect("parses");
        assert_eq!(c.http.port(), 9000);
        assert_eq!(c.attestation.chain_id, 10);
        assert!(c.linkedin.pkce);
        assert_eq!(c.link.ttl_secs, 600);
        assert!(toml::from_str::<Config>("htp = 1").is_err());
        let mut c: Config =
            toml::from_str("cors_origins = [\"https://chat.example.org\"]\n[linkedin]\nclient_id = \"a\"")
                .expect("parses");
        c.validate().expect("an origin is valid");
        c.cors_origins = vec!["https://chat.example.org/".into()];
        assert!(c.validate().is_err(), "a trailing slash is not an origin");
        assert!(toml::from_str::<Config>("[linkedin]\nclient_secret = \"x\"").is_err(), "no secrets in files");
    }

    #[test]
    fn redirect_uri_defaults_from_the_public_url() {
        let c = Config::default();
        let public = c.public_url_for(SocketAddr::from(([127, 0, 0, 1], 4000)));
        assert_eq!(public, "http://localhost:4000");
        assert_eq!(c.redirect_uri_for(&public), "http://localhost:4000/v1/link/linkedin/callback");
    }
}
