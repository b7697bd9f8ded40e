//! `dchat`: a terminal client for a dchat node. Keeps a local wallet key (or takes one from
//! `DCHAT_WALLET_KEY`), a device key and the session under `--home`.

use std::path::{Path, PathBuf};

use alloy::signers::local::PrivateKeySigner;
use clap::{Parser, Subcommand};
use dchat_node::{
    client::{Client, Incoming, MediaInfo, MessageView, SignIn},
    store::RoomKind,
    write_private,
};
use dchat_protocol::{
    Address, Kind, RoomId,
    control::{Policy, Role},
    e2e::BoxSecret,
    social::{Action, Status},
};
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
    /// Send and fetch files.
    #[command(subcommand)]
    Media(MediaCmd),
    /// Contacts and blocks (lists them with no subcommand).
    Contacts {
        #[command(subcommand)]
        cmd: Option<ContactsCmd>,
    },
    /// Direct rooms strangers opened with you, until you answer.
    Requests,
    /// Unread counts of your rooms.
    Unread,
    /// Mark a room read up to its newest message.
    Read {
        /// Room id.
        room: String,
    },
    /// Notifications (lists them with no subcommand).
    Notifications {
        /// Only unread ones.
        #[arg(long)]
        unread: bool,
        #[command(subcommand)]
        cmd: Option<NotificationsCmd>,
    },
    /// Announce your presence, or show others'.
    Presence {
        #[command(subcommand)]
        cmd: PresenceCmd,
    },
}

#[derive(Debug, Subcommand)]
enum ContactsCmd {
    /// Ask a wallet to become contacts.
    Add {
        /// The wallet.
        address: String,
    },
    /// Accept a wallet's request.
    Accept {
        /// The wallet.
        address: String,
    },
    /// Decline a wallet's request (or withdraw yours).
    Decline {
        /// The wallet.
        address: String,
    },
    /// End a contact.
    Remove {
        /// The wallet.
        address: String,
    },
    /// Block a wallet: no rooms, invites, requests or messages from it reach you.
    Block {
        /// The wallet.
        address: String,
    },
    /// Lift a block.
    Unblock {
        /// The wallet.
        address: String,
    },
}

#[derive(Debug, Subcommand)]
enum NotificationsCmd {
    /// Mark notifications read: the ids given, or all when none is given.
    Read {
        /// Notification ids.
        ids: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum PresenceCmd {
    /// Announce a status: online, away or offline.
    Set {
        /// online, away or offline.
        status: String,
    },
    /// Hide (or show again) your presence everywhere.
    Hide {
        /// false to show it again.
        #[arg(default_value_t = true, action = clap::ArgAction::Set)]
        hide: bool,
    },
    /// Show wallets' presence.
    Get {
        /// Wallets.
        #[arg(required = true)]
        addresses: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum MediaCmd {
    /// Upload a file and post it to a room (encrypted first in group and direct rooms).
    Put {
        /// Room id.
        room: String,
        /// The file.
        file: PathBuf,
        /// MIME type (default: guessed from the file name).
        #[arg(long)]
        mime: Option<String>,
    },
    /// Download the file of a media message (and decrypt it).
    Get {
        /// Room id.
        room: String,
        /// Id of the media message.
        message: String,
        /// Where to write the file.
        out: PathBuf,
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
        /// `group` (private, end-to-end encrypted) or `channel` (public).
        #[arg(long, default_value = "group")]
        kind: String,
        /// Initial members (addresses); repeat the flag.
        #[arg(long = "member")]
        members: Vec<String>,
    },
    /// Open (or create) the direct room with another wallet.
    Dm {
        /// Their address.
        address: String,
    },
    /// List public channels on the node.
    Channels,
    /// Join a public channel (or an open group).
    Join {
        /// Room id.
        room: String,
    },
    /// Show members, roles and the key epoch.
    Members {
        /// Room id.
        room: String,
    },
    /// Add members (admins and the owner).
    Invite {
        /// Room id.
        room: String,
        /// Addresses.
        #[arg(required = true, num_args = 1..)]
        addresses: Vec<String>,
    },
    /// Remove a member (admins remove members; the owner also admins).
    Remove {
        /// Room id.
        room: String,
        /// Address.
        address: String,
    },
    /// Set a member's role: member, admin, or owner (hands ownership over).
    Role {
        /// Room id.
        room: String,
        /// Address.
        address: String,
        /// member, admin or owner.
        role: String,
    },
    /// Set who may join: invite_only or open.
    Policy {
        /// Room id.
        room: String,
        /// invite_only or open.
        policy: String,
    },
    /// Leave a room.
    Leave {
        /// Room id.
        room: String,
    },
    /// Start a new key epoch for a private room now.
    Rotate {
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
            let box_secret = box_secret(&home)?;
            let mut client = Client::new(&args.node);
            let s = SignIn {
                wallet: &wallet,
                device: Some(&device),
                box_key: Some(box_secret.public()),
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
            let (w, d) = (wallet(&home)?, device(&home)?);
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
                        other => {
                            bail!("--kind must be group or channel, not {other:?} (for direct rooms: dchat rooms dm)")
                        }
                    };
                    let members = members.iter().map(|m| parse_address(m)).collect::<eyre::Result<Vec<_>>>()?;
                    let r = client.create_room(&w, &d, &name, kind, &members).await?;
                    println!("{}", r.id);
                }
                RoomsCmd::Dm { address } => {
                    let r = client.direct(&w, &d, &parse_address(&address)?).await?;
                    println!("{}", r.id);
                }
                RoomsCmd::Channels => {
                    for c in client.channels().await? {
                        let mark = if c.default { " (default)" } else { "" };
                        println!("{}  {:>5} members  {}{mark}", c.room.id, c.members, c.room.name);
                    }
                }
                RoomsCmd::Join { room } => {
                    let r = client.join(&parse_room(&room)?, &w, &d).await?;
                    println!("joined {} ({})", r.name, r.id);
                }
                RoomsCmd::Members { room } => {
                    let m = client.members(&parse_room(&room)?).await?;
                    println!("{} ({}, {})", m.room.name, m.room.kind_str(), m.room.policy);
                    for member in &m.members {
                        println!("{}  {:<6} {} device(s)", member.address, member.role, member.box_keys.len());
                    }
                    if let Some(e) = &m.epoch {
                        let due = if m.rotate { ", a new one is due" } else { "" };
                        println!("key epoch {} for {} device(s){due}", e.id, e.box_keys.len());
                    }
                }
                RoomsCmd::Invite { room, addresses } => {
                    let addresses = addresses.iter().map(|a| parse_address(a)).collect::<eyre::Result<Vec<_>>>()?;
                    client.invite(&parse_room(&room)?, &w, &d, &addresses).await?;
                    println!("invited {}", addresses.len());
                }
                RoomsCmd::Remove { room, address } => {
                    client.remove(&parse_room(&room)?, &w, &d, &parse_address(&address)?).await?;
                    println!("removed {address}");
                }
                RoomsCmd::Role { room, address, role } => {
                    let role = Role::parse(&role).ok_or_else(|| eyre!("role must be member, admin or owner"))?;
                    client.set_role(&parse_room(&room)?, &w, &d, &parse_address(&address)?, role).await?;
                    println!("{address} is now {}", role.as_str());
                }
                RoomsCmd::Policy { room, policy } => {
                    let p = Policy::parse(&policy).filter(|p| !p.is_gated()).ok_or_else(|| {
                        eyre!("policy must be invite_only or open (token-gated and paid rooms are set through the API)")
                    })?;
                    client.set_policy(&parse_room(&room)?, &w, &d, p, None).await?;
                    println!("policy is now {}", p.as_str());
                }
                RoomsCmd::Leave { room } => {
                    client.leave(&parse_room(&room)?, &w, &d).await?;
                    println!("left {room}");
                }
                RoomsCmd::Rotate { room } => {
                    let epoch = client.rotate(&parse_room(&room)?, &w, &d).await?;
                    println!("new key epoch {epoch}");
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
                print_message(&client, m).await;
            }
            if page.has_more
                && let Some(first) = page.messages.first()
            {
                println!("(older: dchat history {room} --before {})", first.id);
            }
        }
        Cmd::Media(MediaCmd::Put { room, file, mime }) => {
            let client = signed_in(&home, &args.node)?;
            let room = parse_room(&room)?;
            let head = read_head(&file)?;
            let info = MediaInfo {
                mime: mime.unwrap_or_else(|| guess_mime(&file, &head).to_string()),
                name: file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                width: image_size(&head).map_or(0, |s| s.0),
                height: image_size(&head).map_or(0, |s| s.1),
            };
            let (reply, r) = client
                .send_media(&room, &wallet(&home)?, &device(&home)?, &file, info)
                .await
                .wrap_err_with(|| format!("sending {}", file.display()))?;
            let how = if r.is_encrypted() { "encrypted, " } else { "" };
            println!("{} ({how}{} bytes, {}, cid {})", reply.id, r.size, r.mime, r.cid);
        }
        Cmd::Media(MediaCmd::Get { room, message, out }) => {
            let client = signed_in(&home, &args.node).unwrap_or_else(|_| Client::new(&args.node));
            let room = parse_room(&room)?;
            let m =
                client.find_message(&room, &message).await?.ok_or_else(|| eyre!("no message {message} in {room}"))?;
            let r = client
                .media_ref(&m)
                .await?
                .ok_or_else(|| eyre!("this device does not hold the key of message {message}"))?;
            let n = client.fetch_media(&r, &out).await.wrap_err_with(|| format!("fetching {}", r.cid))?;
            println!(
                "{} ({n} bytes, {}) -> {}",
                if r.name.is_empty() { &r.cid } else { &r.name },
                r.mime,
                out.display()
            );
        }
        Cmd::Contacts { cmd } => social_contacts(&args.node, &home, cmd).await?,
        Cmd::Requests => {
            for r in signed_in(&home, &args.node)?.requests().await? {
                println!("{}  from {}  {} unread", r.room.id, r.from, r.unread);
            }
        }
        Cmd::Unread => {
            let u = signed_in(&home, &args.node)?.unread().await?;
            for r in u.rooms.iter().filter(|r| r.unread > 0) {
                let tag = if r.muted {
                    " (muted)"
                } else if r.request {
                    " (request)"
                } else {
                    ""
                };
                println!("{}  {}{tag}", r.room, r.unread);
            }
            println!("{} unread messages, {} unread notifications", u.total, u.notifications);
        }
        Cmd::Read { room } => {
            let client = signed_in(&home, &args.node)?;
            let room = parse_room(&room)?;
            let newest = client.history(&room, None, None, Some(1)).await?.messages.last().map_or(0, |m| m.lamport);
            client.mark_read(&room, &wallet(&home)?, &device(&home)?, newest).await?;
            println!("read up to {newest}");
        }
        Cmd::Notifications { unread, cmd } => {
            let client = signed_in(&home, &args.node)?;
            match cmd {
                None => {
                    let n = client.notifications(unread).await?;
                    for n in &n.notifications {
                        let room = n.room.map(|r| format!(" in {r}")).unwrap_or_default();
                        let mark = if n.read { " " } else { "*" };
                        // A tip's amount, in the token's smallest unit (wei for ETH).
                        let paid = n.tip.as_ref().map_or_else(String::new, |t| {
                            let zero = alloy::primitives::Address::ZERO.to_checksum(None);
                            let unit =
                                if t.token == zero { "wei".to_string() } else { format!("of token {}", t.token) };
                            format!(": {} {unit} for message {}", t.amount, t.message)
                        });
                        println!("{mark} {}  {} from {}{room}{paid}", n.id, n.kind, n.actor);
                    }
                    println!("{} unread", n.unread);
                }
                Some(NotificationsCmd::Read { ids }) => {
                    let ids = ids
                        .iter()
                        .map(|i| i.parse().map_err(|_| eyre!("{i:?} is not a notification id")))
                        .collect::<eyre::Result<Vec<_>>>()?;
                    let now_ms = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)?;
                    let up_to = ids.is_empty().then_some(now_ms);
                    let r = client.mark_notifications(&wallet(&home)?, &device(&home)?, &ids, up_to).await?;
                    println!("{} unread", r.unread.unwrap_or_default());
                }
            }
        }
        Cmd::Presence { cmd } => {
            let client = signed_in(&home, &args.node)?;
            match cmd {
                PresenceCmd::Set { status } => {
                    let status = match status.as_str() {
                        "online" => Status::Online,
                        "away" => Status::Away,
                        "offline" => Status::Offline,
                        other => bail!("unknown status {other:?}: online, away or offline"),
                    };
                    client.announce_presence(&wallet(&home)?, &device(&home)?, status).await?;
                    println!("{}", status.as_str());
                }
                PresenceCmd::Hide { hide } => {
                    let s = client.hide_presence(&wallet(&home)?, &device(&home)?, hide).await?;
                    println!("presence {}", if s.hide_presence { "hidden" } else { "shown" });
                }
                PresenceCmd::Get { addresses } => {
                    let list = addresses.iter().map(|a| parse_address(a)).collect::<eyre::Result<Vec<_>>>()?;
                    for p in client.presence(&list).await? {
                        let seen = p.last_seen_ms.map(|s| format!(" (last seen {s} ms)")).unwrap_or_default();
                        println!("{}  {}{seen}", p.address, p.status);
                    }
                }
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
                    print_message(&client, &m).await;
                }
            }
            loop {
                match stream.next().await? {
                    Incoming::Message(m) => {
                        if seen.insert(m.id.clone()) {
                            print_message(&client, &m).await;
                        }
                    }
                    Incoming::Control(dchat_node::client::ServerFrame::Error { error, message, room }) => {
                        eprintln!("dchat: {error}: {message} {}", room.unwrap_or_default());
                    }
                    Incoming::Control(_) | Incoming::Social(_) => {}
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
            RoomKind::Direct => "direct",
        }
    }
}

async fn print_message(client: &Client, m: &MessageView) {
    let when = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(m.timestamp_ms) * 1_000_000)
        .map(dchat_protocol::siwe::format_time)
        .unwrap_or_default();
    let text = match (&m.text, m.kind) {
        (Some(text), _) => text.clone(),
        (None, Kind::Text) if m.encrypted => match client.open_text(m).await {
            Ok(Some(text)) => text,
            Ok(None) => "<encrypted for a key this device does not hold>".into(),
            Err(e) => format!("<cannot decrypt: {e}>"),
        },
        (None, Kind::Media) => match client.media_ref(m).await {
            Ok(Some(r)) => format!(
                "[file {:?}, {} bytes, {}] (dchat media get {} {} <file>)",
                r.name, r.size, r.mime, m.room, m.id
            ),
            Ok(None) => "<encrypted file for a key this device does not hold>".into(),
            Err(e) => format!("<unreadable file: {e}>"),
        },
        (None, Kind::CreateRoom) => "* created the room".into(),
        (None, Kind::Join) => "* joined".into(),
        (None, Kind::Invite) => "* invited members".into(),
        (None, Kind::Leave) => "* left".into(),
        (None, Kind::Remove) => "* removed a member".into(),
        (None, Kind::SetRole) => "* changed a role".into(),
        (None, Kind::SetPolicy) => "* changed the join policy".into(),
        (None, Kind::RotateKey) => "* started a new key epoch".into(),
        (None, kind) => format!("<{kind:?}, {} bytes>", m.payload_len),
    };
    println!("{when} {}: {text}", m.sender);
}

/// The first bytes of a file (to guess its type and image size).
fn read_head(path: &Path) -> eyre::Result<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(32);
    std::fs::File::open(path)
        .wrap_err_with(|| format!("opening {}", path.display()))?
        .take(32)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// A MIME type from the file's first bytes or, failing that, its extension.
fn guess_mime(path: &Path, head: &[u8]) -> &'static str {
    match head {
        [0x89, b'P', b'N', b'G', ..] => return "image/png",
        [0xff, 0xd8, 0xff, ..] => return "image/jpeg",
        [b'G', b'I', b'F', b'8', ..] => return "image/gif",
        [b'%', b'P', b'D', b'F', ..] => return "application/pdf",
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => return "image/webp",
        _ => {}
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "pdf" => "application/pdf",
        "txt" | "md" => "text/plain",
        _ => "application/octet-stream",
    }
}

/// Width and height of a PNG or GIF, from its header.
fn image_size(head: &[u8]) -> Option<(u32, u32)> {
    match head {
        [
            0x89,
            b'P',
            b'N',
            b'G',
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            _,
            b'I',
            b'H',
            b'D',
            b'R',
            w0,
            w1,
            w2,
            w3,
            h0,
            h1,
            h2,
            h3,
            ..,
        ] => Some((u32::from_be_bytes([*w0, *w1, *w2, *w3]), u32::from_be_bytes([*h0, *h1, *h2, *h3]))),
        [b'G', b'I', b'F', b'8', _, _, w0, w1, h0, h1, ..] => {
            Some((u32::from(u16::from_le_bytes([*w0, *w1])), u32::from(u16::from_le_bytes([*h0, *h1]))))
        }
        _ => None,
    }
}

async fn social_contacts(node: &str, home: &Path, cmd: Option<ContactsCmd>) -> eyre::Result<()> {
    let client = signed_in(home, node)?;
    let Some(cmd) = cmd else {
        let c = client.contacts().await?;
        for (label, list) in [("contact", &c.contacts), ("incoming", &c.incoming), ("outgoing", &c.outgoing)] {
            for x in list {
                println!("{:<8} {}", label, x.address);
            }
        }
        for b in &c.blocked {
            println!("blocked  {b}");
        }
        return Ok(());
    };
    let (action, address) = match cmd {
        ContactsCmd::Add { address } => (Action::Request, address),
        ContactsCmd::Accept { address } => (Action::Accept, address),
        ContactsCmd::Decline { address } => (Action::Decline, address),
        ContactsCmd::Remove { address } => (Action::Remove, address),
        ContactsCmd::Block { address } => (Action::Block, address),
        ContactsCmd::Unblock { address } => (Action::Unblock, address),
    };
    let peer = parse_address(&address)?;
    let r = client.contact(&wallet(home)?, &device(home)?, action, &peer).await?;
    println!("{}  {}", peer.to_checksum(None), r.state.unwrap_or_default());
    Ok(())
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
    Ok(Client::new(node).with_token(s.token).with_box_secret(box_secret(home)?))
}

fn parse_address(raw: &str) -> eyre::Result<Address> {
    raw.parse().map_err(|_| eyre!("{raw:?} is not an Ethereum address (0x followed by 40 hex digits)"))
}

/// The device's X25519 key for encrypted rooms.
fn box_secret(home: &Path) -> eyre::Result<BoxSecret> {
    let path = home.join("box.key");
    if let Ok(bytes) = std::fs::read(&path) {
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| eyre!("{} is not a 32-byte key", path.display()))?;
        return Ok(BoxSecret::from_bytes(bytes));
    }
    let key = BoxSecret::random();
    std::fs::create_dir_all(home)?;
    write_private(&path, &key.to_bytes())?;
    Ok(key)
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
