//! `dchat`: a terminal client for a dchat node. Keeps a local wallet key (or takes one from
//! `DCHAT_WALLET_KEY`), a device key and the session under `--home`.

use std::path::{Path, PathBuf};

use alloy::signers::local::PrivateKeySigner;
use clap::{Parser, Subcommand};
use dchat_node::{
    client::{Client, Incoming, MessageView, SignIn},
    store::RoomKind,
    write_private,
};
use dchat_protocol::{Kind, RoomId};
use ed25519_dalek::SigningKey;
use eyre::{WrapErr, bail, eyre};
use serde::{Deserialize, Serialize};

#[derive(Debug, Parser)]
#[command(name = "dchat", version, about = "Chat through a dchat node from the terminal")]
struct Args {
    /// Node API URL.
    #[arg(long, env = "DCHAT_NODE", default_value = "http://127.0.0.1:8480", global = true)]
    node: String,
    /// Where keys and the session are kept.
    #[arg(long, env = "DCHAT_HOME", default_value = ".dchat/client", global = true)]
    home: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Sign in with Ethereum, delegating this device's key (creates keys on first use).
    Login {
        /// Hours the device delegation lasts (the node caps the session token at its own TTL).
        #[arg(long, default_value_t = 24)]
        hours: i64,
    },
    /// Show the signed-in wallet and device.
    Whoami,
    /// Rooms.
    #[command(subcommand)]
    Rooms(RoomsCmd),
    /// Send a text message.
    Send {
        /// Room id.
        room: String,
        /// The text.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Print a page of history.
    History {
        /// Room id.
        room: String,
        /// Messages to show.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Show messages before this message id.
        #[arg(long)]
        before: Option<String>,
    },
    /// Print recent messages, then new ones as they arrive (Ctrl-C to stop).
    Tail {
        /// Room ids.
        #[arg(required = true)]
        rooms: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum RoomsCmd {
    /// List my rooms.
    List,
    /// Create a room; you become its owner.
    Create {
        /// Name.
        name: String,
        /// `group` (private) or `channel` (public).
        #[arg(long, default_value = "group")]
        kind: String,
        /// Initial members (addresses); repeat the flag.
        #[arg(long = "member")]
        members: Vec<String>,
    },
    /// Join a public channel.
    Join {
        /// Room id.
        room: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Session {
    node: String,
    token: String,
    address: String,
    expires_at: i64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("dchat: {e:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> eyre::Result<()> {
    let home = args.home.clone();
    match args.cmd {
        Cmd::Login { hours } => {
            std::fs::create_dir_all(&home).wrap_err_with(|| format!("creating {}", home.display()))?;
            let wallet = wallet(&home)?;
            let device = device(&home)?;
            let mut client = Client::new(&args.node);
            let s = SignIn {
                wallet: &wallet,
                device: Some(&device),
                box_key: None,
                ttl_secs: hours * 3600,
                chain_id: None,
            };
            let session = client.sign_in(&s).await.wrap_err_with(|| format!("signing in at {}", args.node))?;
            let saved = Session {
                node: args.node.clone(),
                token: session.token,
                address: session.address.clone(),
                expires_at: session.expires_at,
            };
            let path = home.join("session.json");
            let _ = std::fs::remove_file(&path);
            write_private(&path, &serde_json::to_vec_pretty(&saved)?)?;
            println!("signed in as {} at {}", session.address, args.node);
            println!("device key {}", session.device_key.unwrap_or_default());
        }
        Cmd::Whoami => {
            let s = session(&home)?;
            println!("{} at {} (session until {})", s.address, s.node, s.expires_at);
        }
        Cmd::Rooms(cmd) => {
            let client = signed_in(&home, &args.node)?;
            match cmd {
                RoomsCmd::List => {
                    for r in client.rooms().await? {
                        println!("{}  {:<8} {:<7} {}", r.id, r.kind_str(), r.role.unwrap_or_default(), r.name);
                    }
                }
                RoomsCmd::Create { name, kind, members } => {
                    let kind = match kind.as_str() {
                        "group" => RoomKind::Group,
                        "channel" => RoomKind::Channel,
                        other => bail!("--kind must be group or channel, not {other:?}"),
                    };
                    let members = members
                        .iter()
                        .map(|m| m.parse().map_err(|_| eyre!("--member {m:?} is not an Ethereum address")))
                        .collect::<eyre::Result<Vec<_>>>()?;
                    let r = client.create_room(&wallet(&home)?, &device(&home)?, &name, kind, &members).await?;
                    println!("{}", r.id);
                }
                RoomsCmd::Join { room } => {
                    let r = client.join(&parse_room(&room)?, &wallet(&home)?, &device(&home)?).await?;
                    println!("joined {} ({})", r.name, r.id);
                }
            }
        }
        Cmd::Send { room, text } => {
            let client = signed_in(&home, &args.node)?;
            let reply =
                client.send_text(&parse_room(&room)?, &wallet(&home)?, &device(&home)?, &text.join(" ")).await?;
            println!("{}", reply.id);
        }
        Cmd::History { room, limit, before } => {
            let client = signed_in(&home, &args.node).unwrap_or_else(|_| Client::new(&args.node));
            let page = client.history(&parse_room(&room)?, None, before.as_deref(), Some(limit)).await?;
            for m in &page.messages {
                print_message(m);
            }
            if page.has_more
                && let Some(first) = page.messages.first()
            {
                println!("(older: dchat history {room} --before {})", first.id);
            }
        }
        Cmd::Tail { rooms } => {
            let client = signed_in(&home, &args.node).unwrap_or_else(|_| Client::new(&args.node));
            let ids = rooms.iter().map(|r| parse_room(r)).collect::<eyre::Result<Vec<_>>>()?;
            // Subscribe first, then print history, so nothing falls between the two.
            let mut stream = client.stream(&ids).await?;
            let mut seen = std::collections::HashSet::new();
            for id in &ids {
                for m in client.history(id, None, None, Some(20)).await?.messages {
                    seen.insert(m.id.clone());
                    print_message(&m);
                }
            }
            loop {
                match stream.next().await? {
                    Incoming::Message(m) => {
                        if seen.insert(m.id.clone()) {
                            print_message(&m);
                        }
                    }
                    Incoming::Control(dchat_node::client::ServerFrame::Error { error, message, room }) => {
                        eprintln!("dchat: {error}: {message} {}", room.unwrap_or_default());
                    }
                    Incoming::Control(_) => {}
                    Incoming::Closed(reason) => bail!("stream closed by the node: {reason:?}"),
                }
            }
        }
    }
    Ok(())
}

trait KindStr {
    fn kind_str(&self) -> &'static str;
}

impl KindStr for dchat_node::client::RoomView {
    fn kind_str(&self) -> &'static str {
        match self.kind {
            RoomKind::Group => "group",
            RoomKind::Channel => "channel",
        }
    }
}

fn print_message(m: &MessageView) {
    let when = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(m.timestamp_ms) * 1_000_000)
        .map(dchat_protocol::siwe::format_time)
        .unwrap_or_default();
    let text = match (&m.text, m.kind) {
        (Some(text), _) => text.clone(),
        (None, Kind::CreateRoom) => "* created the room".into(),
        (None, Kind::Join) => "* joined".into(),
        (None, kind) => format!("<{kind:?}, {} bytes>", m.payload_len),
    };
    println!("{when} {}: {text}", m.sender);
}

fn parse_room(raw: &str) -> eyre::Result<RoomId> {
    raw.parse().map_err(|_| eyre!("{raw:?} is not a room id; room ids look like 0x followed by 64 hex digits"))
}

fn session(home: &Path) -> eyre::Result<Session> {
    let path = home.join("session.json");
    let text = std::fs::read_to_string(&path).map_err(|_| eyre!("not signed in: run `dchat login` first"))?;
    let s: Session = serde_json::from_str(&text)
        .wrap_err_with(|| format!("{} is damaged; run `dchat login` again", path.display()))?;
    if s.expires_at <= time::OffsetDateTime::now_utc().unix_timestamp() {
        bail!("session expired: run `dchat login` again");
    }
    Ok(s)
}

fn signed_in(home: &Path, node: &str) -> eyre::Result<Client> {
    let s = session(home)?;
    if s.node != node {
        bail!("signed in at {} but --node is {node}; run `dchat login` for this node", s.node);
    }
    Ok(Client::new(node).with_token(s.token))
}

fn wallet(home: &Path) -> eyre::Result<PrivateKeySigner> {
    if let Ok(hex) = std::env::var("DCHAT_WALLET_KEY") {
        return hex.trim().parse().map_err(|_| eyre!("DCHAT_WALLET_KEY is not a 32-byte hex private key"));
    }
    let path = home.join("wallet.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return text.trim().parse().map_err(|_| eyre!("{} is not a hex private key", path.display()));
    }
    let signer = PrivateKeySigner::random();
    std::fs::create_dir_all(home)?;
    write_private(&path, hex::encode(signer.to_bytes()).as_bytes())?;
    eprintln!("dchat: created a local wallet {} in {}", signer.address(), path.display());
    Ok(signer)
}

fn device(home: &Path) -> eyre::Result<SigningKey> {
    let path = home.join("device.key");
    if let Ok(bytes) = std::fs::read(&path) {
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| eyre!("{} is not a 32-byte key", path.display()))?;
        return Ok(SigningKey::from_bytes(&bytes));
    }
    let key = SigningKey::from_bytes(&rand::random());
    std::fs::create_dir_all(home)?;
    write_private(&path, key.as_bytes())?;
    Ok(key)
}
