#![doc = include_str!("../README.md")]

mod conn;
mod cross;
mod dchat;
mod fanout;
mod idle;
mod record;
mod server;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use server::Kind;

/// dchat load client.
#[derive(Debug, Parser)]
#[command(name = "dchat-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Room fan-out over WebSockets: latency and delivered messages/s at rising send rates.
    Fanout(fanout::Args),
    /// Server memory per idle WebSocket connection.
    Idle(idle::Args),
    /// Latency from a client on one node to a client on a node two gossip hops away, three
    /// node processes on loopback.
    Cross(cross::Args),
}

/// Where the servers are.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Servers {
    /// The dchat-node binary (release build).
    #[arg(long, default_value = "target/release/dchat-node")]
    pub(crate) dchat_bin: PathBuf,
    /// The installed Socket.IO reference server.
    #[arg(long, default_value = "bench/socketio")]
    pub(crate) socketio_dir: PathBuf,
}

fn kinds(names: &[String]) -> eyre::Result<Vec<Kind>> {
    names
        .iter()
        .map(|n| match n.as_str() {
            "dchat" => Ok(Kind::Dchat),
            "socketio" | "socket.io" => Ok(Kind::SocketIo),
            other => Err(eyre::eyre!("unknown target {other:?} (dchat, socketio)")),
        })
        .collect()
}

/// The machine, for the record.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model =
        cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).map(|m| m.trim_start_matches([' ', '\t', ':']));
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    format!("{cores} cores, {}", model.unwrap_or("unknown CPU"))
}

fn main() -> eyre::Result<()> {
    let cli = Cli::parse();
    // Thousands of sockets: lift the soft limit on open files to the hard one.
    let nofile = rlimit::increase_nofile_limit(u64::MAX)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    println!("machine: {}; open-file limit {nofile}", machine());
    rt.block_on(async {
        match cli.command {
            Command::Fanout(args) => {
                let mut results = Vec::new();
                for kind in kinds(&args.targets)? {
                    results.push((kind, fanout::run(kind, &args).await?));
                }
                let find = |k: Kind| results.iter().find(|(kind, _)| *kind == k).map(|(_, r)| r.as_slice());
                if let (Some(s), Some(d)) = (find(Kind::SocketIo), find(Kind::Dchat)) {
                    fanout::summary(s, d);
                }
            }
            Command::Cross(args) => {
                let report = cross::run(&args).await?;
                cross::print(&args, &report);
            }
            Command::Idle(args) => {
                let mut results = Vec::new();
                for kind in kinds(&args.targets)? {
                    results.push((kind, idle::run(kind, &args).await?));
                }
                for (kind, r) in &results {
                    let verdict = match kind {
                        Kind::Dchat if r.per_conn <= 16_000.0 => " (target <= 16 kB: met)",
                        Kind::Dchat => " (target <= 16 kB: missed)",
                        Kind::SocketIo => "",
                    };
                    println!(
                        "idle: {}: {:.1} kB per connection (RSS {:.1} -> {:.1} MB){verdict}",
                        kind.name(),
                        r.per_conn / 1000.0,
                        r.before as f64 / 1e6,
                        r.after as f64 / 1e6
                    );
                }
                let find = |k: Kind| results.iter().find(|(kind, _)| *kind == k).map(|(_, r)| r.per_conn);
                if let (Some(s), Some(d)) = (find(Kind::SocketIo), find(Kind::Dchat)) {
                    println!("idle: ratio dchat/socket.io memory per connection {:.2}", d / s);
                }
            }
        }
        Ok(())
    })
}
