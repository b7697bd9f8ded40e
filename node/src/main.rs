//! `dchat-node`: runs a dchat node.

use std::{net::SocketAddr, path::PathBuf};

use clap::Parser;
use dchat_node::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

/// Runs a dchat node. With no options: one node on 127.0.0.1:8480 with an embedded store
/// under .dchat/node.
#[derive(Debug, Parser)]
#[command(name = "dchat-node", version)]
struct Args {
    /// TOML config file; flags and environment variables override it.
    #[arg(long, env = "DCHAT_CONFIG")]
    config: Option<PathBuf>,
    /// Address for the HTTP/WebSocket API (port 0 picks one).
    #[arg(long, env = "DCHAT_HTTP")]
    http: Option<SocketAddr>,
    /// Directory for the database and node key.
    #[arg(long, env = "DCHAT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// PostgreSQL URL for the store (default: an SQLite file in the data directory).
    #[arg(long, env = "DCHAT_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// SIWE domain this node binds sign-ins to (default localhost:<port>).
    #[arg(long, env = "DCHAT_DOMAIN")]
    domain: Option<String>,
    /// Public origin, e.g. https://chat.example.org (default http://<domain>).
    #[arg(long, env = "DCHAT_PUBLIC_URL")]
    public_url: Option<String>,
    /// Chain ids accepted at sign-in, comma separated.
    #[arg(long, env = "DCHAT_CHAIN_IDS", value_delimiter = ',')]
    chain_ids: Option<Vec<u64>>,
    /// Ethereum JSON-RPC URL, enables contract-wallet (ERC-1271) sign-in.
    #[arg(long, env = "DCHAT_RPC_URL")]
    rpc_url: Option<String>,
    /// Log format.
    #[arg(long, env = "DCHAT_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Network listen multiaddrs, comma separated (e.g. /ip4/127.0.0.1/tcp/8481).
    #[arg(long, env = "DCHAT_LISTEN", value_delimiter = ',')]
    listen: Option<Vec<String>>,
    /// Peers to dial at start, comma separated multiaddrs ending in /p2p/<peer id>.
    #[arg(long, env = "DCHAT_BOOTSTRAP", value_delimiter = ',')]
    bootstrap: Option<Vec<String>>,
    /// Run without the peer-to-peer network.
    #[arg(long, env = "DCHAT_NO_P2P")]
    no_p2p: bool,
    /// Serve the built web dApp from this directory at `/` (e.g. dapp/dist).
    #[arg(long, env = "DCHAT_DAPP_DIR")]
    dapp_dir: Option<std::path::PathBuf>,
    /// Kubo RPC API to pin media in, e.g. http://127.0.0.1:5001 (default: the node keeps media
    /// blocks itself in the data directory).
    #[arg(long, env = "DCHAT_IPFS_API")]
    ipfs_api: Option<String>,
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
    if let Some(v) = args.data_dir {
        config.data_dir = v;
    }
    if args.database_url.is_some() {
        config.database_url = args.database_url;
    }
    if args.domain.is_some() {
        config.domain = args.domain;
    }
    if args.public_url.is_some() {
        config.public_url = args.public_url;
    }
    if let Some(v) = args.chain_ids {
        config.chain_ids = v;
    }
    if args.rpc_url.is_some() {
        config.rpc_url = args.rpc_url;
    }
    if let Some(v) = args.log_format {
        config.log_format = v;
    }
    if let Some(v) = args.listen {
        config.p2p.listen = v;
    }
    if let Some(v) = args.bootstrap {
        config.p2p.bootstrap = v;
    }
    if args.dapp_dir.is_some() {
        config.dapp_dir = args.dapp_dir;
    }
    if args.no_p2p {
        config.p2p.enabled = false;
    }
    if args.ipfs_api.is_some() {
        config.media.ipfs_api = args.ipfs_api;
    }
    init_tracing(config.log_format);

    let node = dchat_node::spawn(config).await?;
    announce(&format!("dchat-node listening on {} (SIWE domain {})", node.url(), node.domain()));
    if let Some(p2p) = node.p2p() {
        announce(&format!("dchat-node peer id {}", p2p.peer_id()));
        for addr in p2p.addresses().await {
            announce(&format!("dchat-node p2p address {addr}"));
        }
    }
    let stop = node.shutdown_token();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!(target: "node", "shutting down");
        stop.cancel();
    });
    node.wait().await;
    Ok(())
}

/// Prints a start-up line on stdout. A closed stdout (the reader went away) must not stop the
/// node, so write errors are ignored.
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
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or_default(),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
