//! `dchat-deploy`: deploys dchat's contracts and records them in a deployments file.

use std::path::PathBuf;

use alloy::signers::local::PrivateKeySigner;
use clap::Parser;
use dchat_node::deploy::{self, Options};
use eyre::{WrapErr, eyre};

/// Deploys NodeRegistry, MessageAnchor and Payments from forge's artifacts (run
/// scripts/forge-test first) and writes their addresses under the chain id in the deployments
/// file. The deployer key comes from DCHAT_DEPLOYER_KEY only.
#[derive(Debug, Parser)]
#[command(name = "dchat-deploy", version)]
struct Args {
    /// Ethereum JSON-RPC URL.
    #[arg(long, env = "DCHAT_RPC_URL", default_value = "http://127.0.0.1:8545")]
    rpc_url: String,
    /// forge's build output directory.
    #[arg(long, default_value = "out")]
    artifacts: PathBuf,
    /// Deployments file to update.
    #[arg(long, env = "DCHAT_DEPLOYMENTS", default_value = "deployments.json")]
    out: PathBuf,
    /// Operator fee on payments, basis points.
    #[arg(long, default_value_t = 100)]
    fee_bps: u16,
    /// Seconds a deregistered node's stake stays locked.
    #[arg(long, default_value_t = 7 * 24 * 3600)]
    unbonding_delay: u64,
}

#[tokio::main]
async fn main() -> eyre::Result<()> {
    let args = Args::parse();
    let key = std::env::var("DCHAT_DEPLOYER_KEY")
        .map_err(|_| eyre!("set DCHAT_DEPLOYER_KEY to the deployer's private key (hex)"))?;
    let deployer: PrivateKeySigner =
        key.trim().parse().map_err(|_| eyre!("DCHAT_DEPLOYER_KEY is not a hex private key"))?;
    eprintln!("dchat-deploy: deploying from {} to {}", deployer.address(), args.rpc_url);
    let options = Options {
        artifacts: args.artifacts,
        fee_bps: args.fee_bps,
        unbonding_delay: args.unbonding_delay,
        ..Options::default()
    };
    let d = deploy::deploy(&args.rpc_url, deployer, &options).await?;
    deploy::record(&args.out, &d).wrap_err("recording the deployment")?;
    println!(
        "chain {}: NodeRegistry {} MessageAnchor {} Payments {} (block {})",
        d.chain_id, d.node_registry, d.message_anchor, d.payments, d.block
    );
    println!("recorded in {}", args.out.display());
    Ok(())
}
