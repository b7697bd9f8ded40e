//! `dchat-indexer`: runs the indexer.

use std::{net::SocketAddr, path::PathBuf};

use clap::Parser;
use dchat_indexer::{
    Secrets,
    config::{Config, LogFormat},
};
use tracing_subscriber::EnvFilter;

/// Runs the dchat indexer: follows a node's message log into PostgreSQL and serves search.
/// Needs DCHAT_INDEXER_KEY (the key the node accepts for its log) in the environment.
#[derive(Debug, Parser)]
#[command(name = "dchat-indexer", version)]
struct Args {
    /// TOML config file; flags and environment variables override it.
    #[arg(long, env = "DCHAT_INDEXER_CONFIG")]
    config: Option<PathBuf>,
    /// Address for the HTTP API (port 0 picks one).
    #[arg(long, env = "DCHAT_INDEXER_HTTP")]
    http: Option<SocketAddr>,
    /// PostgreSQL URL.
    #[arg(long, env = "DCHAT_INDEXER_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The dchat node to follow (its log and its access tokens).
    #[arg(long, env = "DCHAT_INDEXER_NODE_URL")]
    node_url: Option<String>,
    /// The gateway whose profile feed names users.
    #[arg(long, env = "DCHAT_INDEXER_GATEWAY_URL")]
    gateway_url: Option<String>,
    /// Follow dchat's contracts on this Ethereum JSON-RPC (with --deployments).
    #[arg(long, env = "DCHAT_INDEXER_RPC_URL")]
    rpc_url: Option<String>,
    /// The deployments file (`dchat-deploy`'s output) naming the contracts to follow.
    #[arg(long, env = "DCHAT_INDEXER_DEPLOYMENTS")]
    deployments: Option<std::path::PathBuf>,
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
    if let Some(v) = args.database_url {
        config.database_url = v;
    }
    if let Some(v) = args.node_url {
        config.node.url = v;
    }
    if let Some(url) = args.gateway_url {
        config.gateway = Some(dchat_indexer::config::GatewayConfig { url, ..config.gateway.unwrap_or_default() });
    }
    if args.rpc_url.is_some() || args.deployments.is_some() {
        let mut chain = config.chain.unwrap_or_default();
        if let Some(url) = args.rpc_url {
            chain.rpc_url = url;
        }
        if let Some(path) = args.deployments {
            chain.deployments = Some(path);
        }
        config.chain = Some(chain);
    }
    if let Some(v) = args.log_format {
        config.log_format = v;
    }
    init_tracing(config.log_format);
    config.validate()?;
    let secrets = Secrets::from_env()?;

    let indexer = dchat_indexer::spawn(config, secrets).await?;
    announce(&format!("dchat-indexer listening on {}", indexer.url()));
    let stop = indexer.shutdown_token();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!(target: "indexer", "shutting down");
        stop.cancel();
    });
    indexer.wait().await;
    Ok(())
}

/// Prints a start-up line on stdout; a closed stdout must not stop the indexer.
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
