#![doc = include_str!("../README.md")]

pub mod api;
pub mod attest;
pub mod config;
pub mod error;
pub mod oidc;
pub mod session;
pub mod store;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use eyre::WrapErr;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{api::AppState, attest::Attester, config::Config, oidc::Oidc, session::Sessions, store::Store};

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    now_ms() / 1000
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Secrets a gateway takes from its environment, never from configuration files.
#[derive(Clone)]
pub struct Secrets {
    /// Key that signs attestations (`DCHAT_GATEWAY_KEY`, hex secp256k1 private key).
    pub gateway_key: PrivateKeySigner,
    /// The LinkedIn app's client secret (`DCHAT_LINKEDIN_CLIENT_SECRET`).
    pub client_secret: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").field("gateway_address", &self.gateway_key.address()).finish_non_exhaustive()
    }
}

impl Secrets {
    /// Reads `DCHAT_GATEWAY_KEY` and `DCHAT_LINKEDIN_CLIENT_SECRET`; the error names the variable
    /// that is missing or wrong.
    pub fn from_env() -> eyre::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`Secrets::from_env`], reading variables through `var`.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> eyre::Result<Self> {
        let required = |name: &str, what: &str| {
            var(name).filter(|v| !v.trim().is_empty()).ok_or_else(|| eyre::eyre!("{name} is not set: {what}"))
        };
        let key = required("DCHAT_GATEWAY_KEY", "give the hex secp256k1 private key that signs attestations")?;
        let gateway_key =
            key.trim().parse().map_err(|_| eyre::eyre!("DCHAT_GATEWAY_KEY is not a hex secp256k1 private key"))?;
        let client_secret = required(
            "DCHAT_LINKEDIN_CLIENT_SECRET",
            "give the LinkedIn app's client secret (Sign In with LinkedIn needs it)",
        )?;
        Ok(Self { gateway_key, client_secret })
    }
}

/// A running gateway.
#[derive(Debug)]
pub struct GatewayHandle {
    addr: SocketAddr,
    public_url: String,
    signer: Address,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    store: Store,
}

impl GatewayHandle {
    /// Address the API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL of the API (on the bound address).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The public origin the redirect URI is built on.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The address that signs attestations.
    pub fn signer(&self) -> Address {
        self.signer
    }

    /// Cancelled when the gateway stops.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, waits (bounded) for in-flight requests and closes the store.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(Duration::from_secs(10), self.tracker.wait()).await.is_err() {
            tracing::warn!(target: "gateway", "shutdown: tasks still running after 10 s");
        }
        self.store.close().await;
    }

    /// Waits until the gateway has been told to stop, then shuts it down.
    pub async fn wait(self) {
        self.shutdown.cancelled().await;
        self.shutdown().await;
    }
}

/// Binds `config.http` and starts the gateway.
pub async fn spawn(config: Config, secrets: Secrets) -> eyre::Result<GatewayHandle> {
    config.validate()?;
    let listener = TcpListener::bind(config.http).await.wrap_err_with(|| format!("binding {}", config.http))?;
    serve(listener, config, secrets).await
}

/// Starts the gateway on a bound listener: migrates the store and serves until shut down.
pub async fn serve(listener: TcpListener, config: Config, secrets: Secrets) -> eyre::Result<GatewayHandle> {
    config.validate()?;
    let store = Store::connect(&config.database_url).await?;
    let addr = listener.local_addr()?;
    let public_url = config.public_url_for(addr);
    let redirect_uri = config.redirect_uri_for(&public_url);
    let oidc = Oidc::new(config.linkedin.clone(), secrets.client_secret, redirect_uri.clone())?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(config.linkedin.timeout_secs))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let sessions = Sessions::new(&config.node, http);
    let attester = Attester::new(secrets.gateway_key, &config.attestation);
    let signer = attester.address();

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let state = AppState(Arc::new(api::Inner {
        secure_cookies: public_url.starts_with("https://"),
        config,
        store: store.clone(),
        oidc,
        sessions,
        attester,
    }));

    let app = api::router(state.clone());
    let stop = shutdown.clone();
    tracker.spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await;
        if let Err(e) = served {
            tracing::error!(target: "gateway::api", error = %e, "server stopped");
        }
    });
    tracker.spawn(prune_links(store.clone(), shutdown.clone()));
    tracing::info!(target: "gateway", %addr, %redirect_uri, %signer, issuer = %state.0.oidc.issuer(), "gateway started");
    Ok(GatewayHandle { addr, public_url, signer, shutdown, tracker, store })
}

/// Drops expired links once a minute.
async fn prune_links(store: Store, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {
                if let Err(e) = store.prune_links(now()).await {
                    tracing::warn!(target: "gateway::store", error = %e, "pruning expired links failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_secrets_are_named() {
        let key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d".to_string();
        let err = Secrets::from_lookup(|_| None).expect_err("nothing set").to_string();
        assert!(err.contains("DCHAT_GATEWAY_KEY"), "{err}");
        let only_key = |n: &str| (n == "DCHAT_GATEWAY_KEY").then(|| key.clone());
        let err = Secrets::from_lookup(only_key).expect_err("no secret").to_string();
        assert!(err.contains("DCHAT_LINKEDIN_CLIENT_SECRET"), "{err}");
        let bad_key = |n: &str| Some(if n == "DCHAT_GATEWAY_KEY" { "0x1234".into() } else { "s".into() });
        let err = Secrets::from_lookup(bad_key).expect_err("bad key").to_string();
        assert!(err.contains("DCHAT_GATEWAY_KEY is not"), "{err}");
        let both = |n: &str| Some(if n == "DCHAT_GATEWAY_KEY" { key.clone() } else { "s".into() });
        let s = Secrets::from_lookup(both).expect("both set");
        assert!(!format!("{s:?}").contains("59c699"), "the key is never printed");
    }
}
