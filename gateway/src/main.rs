//! `dchat-gateway`: runs the gateway.

use std::{net::SocketAddr, path::PathBuf};

use clap::Parser;
use dchat_gateway::{
    Secrets,
    config::{Config, LogFormat},
};
use tracing_subscriber::EnvFilter;

/// Runs the dchat gateway: links LinkedIn accounts to wallets and signs profile attestations.
/// Needs DCHAT_GATEWAY_KEY and DCHAT_LINKEDIN_CLIENT_SECRET in the environment.
#[derive(Debug, Parser)]
#[command(name = "dchat-gateway", version)]
struct Args {
    /// TOML config file; flags and environment variables override it.
    #[arg(long, env = "DCHAT_GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    /// Address for the HTTP API (port 0 picks one).
    #[arg(long, env = "DCHAT_GATEWAY_HTTP")]
    http: Option<SocketAddr>,
    /// Public origin, e.g. https://gateway.example.org (default http://localhost:<port>).
    #[arg(long, env = "DCHAT_GATEWAY_PUBLIC_URL")]
    public_url: Option<String>,
    /// PostgreSQL URL.
    #[arg(long, env = "DCHAT_GATEWAY_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The dchat node whose access tokens open wallet sessions.
    #[arg(long, env = "DCHAT_GATEWAY_NODE_URL")]
    node_url: Option<String>,
    /// OpenID Connect issuer (default LinkedIn's).
    #[arg(long, env = "DCHAT_LINKEDIN_ISSUER")]
    linkedin_issuer: Option<String>,
    /// The LinkedIn app's client id.
    #[arg(long, env = "DCHAT_LINKEDIN_CLIENT_ID")]
    linkedin_client_id: Option<String>,
    /// The redirect URI registered with the LinkedIn app.
    #[arg(long, env = "DCHAT_LINKEDIN_REDIRECT_URI")]
    linkedin_redirect_uri: Option<String>,
    /// EIP-712 chain id of the attestations.
    #[arg(long, env = "DCHAT_GATEWAY_CHAIN_ID")]
    chain_id: Option<u64>,
    /// Log format.
    #[arg(long, env = "DCHAT_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
}

#[tokio::main]
async fn main() -> eyre::Result<()> {
    let args = Args::parse();
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(v) = args.http {
        config.http = v;
    }
    if args.public_url.is_some() {
        config.public_url = args.public_url;
    }
    if let Some(v) = args.database_url {
        config.database_url = v;
    }
    if let Some(v) = args.node_url {
        config.node.url = v;
    }
    if let Some(v) = args.linkedin_issuer {
        config.linkedin.issuer = v;
    }
    if let Some(v) = args.linkedin_client_id {
        config.linkedin.client_id = v;
    }
    if args.linkedin_redirect_uri.is_some() {
        config.linkedin.redirect_uri = args.linkedin_redirect_uri;
    }
    if let Some(v) = args.chain_id {
        config.attestation.chain_id = v;
    }
    if let Some(v) = args.log_format {
        config.log_format = v;
    }
    init_tracing(config.log_format);
    config.validate()?;
    let secrets = Secrets::from_env()?;

    let gateway = dchat_gateway::spawn(config, secrets).await?;
    announce(&format!("dchat-gateway listening on {} (attestation signer {})", gateway.url(), gateway.signer()));
    let stop = gateway.shutdown_token();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!(target: "gateway", "shutting down");
        stop.cancel();
    });
    gateway.wait().await;
    Ok(())
}

/// Prints a start-up line on stdout; a closed stdout must not stop the gateway.
fn announce(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return ctrl_c.await.unwrap_or_default(),
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
