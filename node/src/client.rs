//! A small client of the node API: sign-in with a local wallet key and a device key, rooms,
//! sending signed envelopes, history and live streams. The `dchat` CLI and the tests use it.

use alloy::signers::{SignerSync, local::PrivateKeySigner};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use dchat_protocol::{
    Address, B256, Body, Envelope, Kind, RoomId,
    control::{Gate, Invite, Policy, Remove, Role, SetPolicy, SetRole, Wrap},
    delegation::{BOX_PREFIX, SIGN_PREFIX},
    e2e::{self, BoxSecret, Sealed},
    envelope::{EnvelopeJson, VERSION},
    ids::{from_hex, to_hex},
    room::{self, CreateRoom},
    siwe::{Fields, format_time},
};
use ed25519_dalek::SigningKey;
use futures::{SinkExt, StreamExt};
use prost::Message as _;
use serde::{Serialize, de::DeserializeOwned};
use time::OffsetDateTime;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};

pub use crate::api::{
    auth::{NonceResponse, SessionResponse, SiweRequest},
    messages::{Event, MessageView, Page, PostResponse},
    rooms::{
        ChannelJson, ChannelList, ControlReply, EpochJson, KeysReply, MemberJson, MembersReply, RoomList, RoomView,
    },
    social::{
        ContactJson, ContactsReply, MutesReply, NotificationsReply, PresenceJson, PresenceReply, ReceiptJson,
        ReceiptsReply, RequestJson, RequestsReply, SettingsReply, SocialReply, TypingJson, TypingReply, UnreadJson,
        UnreadReply,
    },
    ws::{ClientFrame, ServerFrame},
};
pub use crate::social::{NotificationView, SocialEvent};
use crate::store::RoomKind;

/// What went wrong talking to a node.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node answered with an error.
    #[error("{status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable error code.
        code: String,
        /// Message.
        message: String,
    },
    /// Transport failure.
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// WebSocket failure.
    #[error("websocket: {0}")]
    Ws(#[from] Box<tungstenite::Error>),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl ClientError {
    /// The error code, when the node sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status, when the node answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A connection to one node, optionally signed in.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    /// The device's X25519 key, to open and make room keys of private rooms.
    box_secret: Option<BoxSecret>,
    /// Epoch keys opened so far, by epoch id.
    epoch_keys: Arc<Mutex<HashMap<B256, [u8; 32]>>>,
}

/// How to build a sign-in message.
#[derive(Debug, Clone)]
pub struct SignIn<'a> {
    /// The wallet.
    pub wallet: &'a PrivateKeySigner,
    /// Device key to delegate.
    pub device: Option<&'a SigningKey>,
    /// Device X25519 public key to publish.
    pub box_key: Option<[u8; 32]>,
    /// Delegation / session lifetime, seconds.
    pub ttl_secs: i64,
    /// Chain id (default: the node's first).
    pub chain_id: Option<u64>,
}

impl Client {
    /// A client of the node at `base` (e.g. `http://127.0.0.1:8480`).
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.into().trim_end_matches('/').to_string(),
            token: None,
            box_secret: None,
            epoch_keys: Arc::default(),
        }
    }

    /// Uses this device box key for private rooms (its public half must be delegated at
    /// sign-in with `urn:dchat:box:`).
    pub fn with_box_secret(mut self, secret: BoxSecret) -> Self {
        self.box_secret = Some(secret);
        self
    }

    /// Sets the device box key (see [`Client::with_box_secret`]).
    pub fn set_box_secret(&mut self, secret: BoxSecret) {
        self.box_secret = Some(secret);
    }

    /// Uses an existing access token.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The access token, once signed in.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<(u16, T), ClientError> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            let v: serde_json::Value = resp.json().await.unwrap_or_default();
            return Err(ClientError::Api {
                status,
                code: v["error"].as_str().unwrap_or("unknown").to_string(),
                message: v["message"].as_str().unwrap_or_default().to_string(),
            });
        }
        Ok((status, resp.json().await?))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        Ok(self.send(self.http.get(format!("{}{path}", self.base))).await?.1)
    }

    async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<(u16, T), ClientError> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body)).await
    }

    /// `GET /v1/auth/nonce`.
    pub async fn nonce(&self) -> Result<NonceResponse, ClientError> {
        self.get("/v1/auth/nonce").await
    }

    /// Builds the SIWE text a wallet would sign for this node.
    pub fn siwe_text(n: &NonceResponse, s: &SignIn<'_>) -> String {
        let now = OffsetDateTime::now_utc();
        let mut resources = Vec::new();
        if let Some(d) = s.device {
            resources.push(format!("{SIGN_PREFIX}{}", hex::encode(d.verifying_key().as_bytes())));
        }
        if let Some(b) = s.box_key {
            resources.push(format!("{BOX_PREFIX}{}", hex::encode(b)));
        }
        Fields {
            domain: n.domain.clone(),
            address: s.wallet.address().to_checksum(None),
            statement: Some("Sign in to dchat".into()),
            uri: n.uri.clone(),
            version: "1".into(),
            chain_id: s.chain_id.or_else(|| n.chain_ids.first().copied()).unwrap_or(1),
            nonce: n.nonce.clone(),
            issued_at: format_time(now),
            expiration_time: Some(format_time(now + time::Duration::seconds(s.ttl_secs))),
            resources,
            ..Fields::default()
        }
        .to_text()
    }

    /// Posts a signed SIWE message; keeps the token on success.
    pub async fn submit_siwe(&mut self, message: String, signature: &[u8]) -> Result<SessionResponse, ClientError> {
        let req = SiweRequest { message, signature: to_hex(signature) };
        let (_, session): (_, SessionResponse) = self.post("/v1/auth/siwe", &req).await?;
        self.token = Some(session.token.clone());
        Ok(session)
    }

    /// Signs in: fetches a nonce, signs the SIWE message with the wallet, submits it.
    pub async fn sign_in(&mut self, s: &SignIn<'_>) -> Result<SessionResponse, ClientError> {
        let n = self.nonce().await?;
        let text = Self::siwe_text(&n, s);
        let sig = s.wallet.sign_message_sync(text.as_bytes()).map_err(|e| ClientError::Other(e.to_string()))?;
        self.submit_siwe(text, &sig.as_bytes()).await
    }

    /// Creates a room signed by `sender`'s device; `members` join it from the start.
    pub async fn create_room(
        &self,
        sender: &PrivateKeySigner,
        device: &SigningKey,
        name: &str,
        kind: RoomKind,
        members: &[Address],
    ) -> Result<RoomView, ClientError> {
        let kind = match kind {
            RoomKind::Group => room::RoomKind::Group,
            RoomKind::Channel => room::RoomKind::Channel,
            RoomKind::Direct => {
                let [peer] = members else {
                    return Err(ClientError::Other("a direct room has exactly one other member".into()));
                };
                let (id, payload) = CreateRoom::direct(&sender.address(), peer);
                let env = seal(&id, sender, device, 0, Kind::CreateRoom, payload.encode_to_vec());
                return Ok(self.post("/v1/rooms", &EnvelopeJson::from(&env)).await?.1);
            }
        };
        let (id, payload) = CreateRoom::new(&sender.address(), name, kind, members);
        let env = seal(&id, sender, device, 0, Kind::CreateRoom, payload.encode_to_vec());
        Ok(self.post("/v1/rooms", &EnvelopeJson::from(&env)).await?.1)
    }

    /// Rooms the caller belongs to.
    pub async fn rooms(&self) -> Result<Vec<RoomView>, ClientError> {
        Ok(self.get::<RoomList>("/v1/rooms").await?.rooms)
    }

    /// Joins a public channel with a signed `Join`.
    pub async fn join(
        &self,
        room: &RoomId,
        sender: &PrivateKeySigner,
        device: &SigningKey,
    ) -> Result<RoomView, ClientError> {
        // An open room shows its clock to anyone signed in; an invite-only one is refused anyway.
        let lamport = match self.room(room).await {
            Ok(r) => r.next_lamport,
            Err(_) => self.next_lamport(room).await.unwrap_or(1),
        };
        let env = seal(room, sender, device, lamport, Kind::Join, Vec::new());
        Ok(self.post(&format!("/v1/rooms/{room}/join"), &EnvelopeJson::from(&env)).await?.1)
    }

    /// One past the newest lamport clock in the room.
    pub async fn next_lamport(&self, room: &RoomId) -> Result<u64, ClientError> {
        let latest = self.history(room, None, None, Some(1)).await?;
        Ok(latest.messages.last().map_or(1, |m| m.lamport + 1))
    }

    /// Posts an envelope; returns the HTTP status and reply.
    pub async fn post_envelope(&self, room: &RoomId, env: &Envelope) -> Result<(u16, PostResponse), ClientError> {
        self.post(&format!("/v1/rooms/{room}/messages"), &EnvelopeJson::from(env)).await
    }

    /// Signs and posts a text message with lamport one past the newest in the room. In group and
    /// direct rooms the text is sealed under the room's current key epoch, after starting a new
    /// epoch when the node says one is due (see [`Client::ensure_epoch`]).
    pub async fn send_text(
        &self,
        room: &RoomId,
        sender: &PrivateKeySigner,
        device: &SigningKey,
        text: &str,
    ) -> Result<PostResponse, ClientError> {
        self.send_payload(room, sender, device, Kind::Text, text.as_bytes()).await
    }

    /// [`Client::send_text`] for any content kind.
    pub async fn send_payload(
        &self,
        room: &RoomId,
        sender: &PrivateKeySigner,
        device: &SigningKey,
        kind: Kind,
        plaintext: &[u8],
    ) -> Result<PostResponse, ClientError> {
        let info = self.room(room).await?;
        let payload = if info.kind.is_private() && e2e::is_sealed_kind(kind) {
            let (epoch, key) = self.ensure_epoch(room, sender, device).await?;
            e2e::seal(&key, &epoch, room, &sender.address(), kind, plaintext, &mut rand::thread_rng()).encode_to_vec()
        } else {
            plaintext.to_vec()
        };
        let lamport = self.next_lamport(room).await?;
        let env = seal(room, sender, device, lamport, kind, payload);
        Ok(self.post_envelope(room, &env).await?.1)
    }

    /// One room.
    pub async fn room(&self, room: &RoomId) -> Result<RoomView, ClientError> {
        self.get(&format!("/v1/rooms/{room}")).await
    }

    /// Members, roles, device box keys and the current epoch.
    pub async fn members(&self, room: &RoomId) -> Result<MembersReply, ClientError> {
        self.get(&format!("/v1/rooms/{room}/members")).await
    }

    /// The public channel directory.
    pub async fn channels(&self) -> Result<Vec<ChannelJson>, ClientError> {
        Ok(self.get::<ChannelList>("/v1/channels").await?.channels)
    }

    /// Opens (or creates) the direct room with `peer`.
    pub async fn direct(
        &self,
        sender: &PrivateKeySigner,
        device: &SigningKey,
        peer: &Address,
    ) -> Result<RoomView, ClientError> {
        self.create_room(sender, device, "direct", RoomKind::Direct, &[*peer]).await
    }

    /// Signs and posts one control envelope to the endpoint of its kind.
    pub async fn control(
        &self,
        room: &RoomId,
        sender: &PrivateKeySigner,
        device: &SigningKey,
        kind: Kind,
        payload: Vec<u8>,
    ) -> Result<ControlReply, ClientError> {
        let path = match kind {
            Kind::Invite => "invites",
            Kind::Leave => "leave",
            Kind::Remove => "removals",
            Kind::SetRole => "roles",
            Kind::SetPolicy => "policy",
            Kind::RotateKey => "keys",
            other => return Err(ClientError::Other(format!("{other:?} is not a room change"))),
        };
        let lamport = self.next_lamport(room).await?;
        let env = seal(room, sender, device, lamport, kind, payload);
        Ok(self.post(&format!("/v1/rooms/{room}/{path}"), &EnvelopeJson::from(&env)).await?.1)
    }

    /// Adds members (admins and the owner).
    pub async fn invite(
        &self,
        room: &RoomId,
        sender: &PrivateKeySigner,
        device: &SigningKey,
        members: &[Address],
    ) -> Result<ControlReply, ClientError> {
        let p = Invite { members: members.iter().map(|m| m.to_vec()).collect() };
        self.control(room, sender, device, Kind::Invite, p.encode_to_vec()).await
    }

    /// Removes a member; the next message sent starts a new key epoch without them.
    pub async fn remove(
        &self,
        room: &RoomId,
        sender: &PrivateKeySigner,
        device: &SigningKey,
        member: &Address,
    ) -> Result<ControlReply, ClientError> {
        let p = Remove { member: member.to_vec() };
        self.control(room, sender, device, Kind::Remove, p.encode_to_vec()).await
    }

    /// Sets a member's role (the owner only; `Role::Owner` hands ownership over).
    pub async fn set_role(
        &self,
        room: &RoomId,
        sender: &PrivateKeySigner,
        device: &SigningKey,
        member: &Address,
        role: Role,
    ) -> Result<ControlReply, ClientError> {
        let p = SetRole { member: member.to_vec(), role: role as i32 };
        self.control(room, sender, device, Kind::SetRole, p.encode_to_vec()).await
    }

    /// Sets who may join without an invite.
    pub async fn set_policy(
        &self,
        room: &RoomId,
        sender: &PrivateKeySigner,
        device: &SigningKey,
        policy: Policy,
        gate: Option<Gate>,
    ) -> Result<ControlReply, ClientError> {
        let p = SetPolicy { policy: policy as i32, gate };
        self.control(room, sender, device, Kind::SetPolicy, p.encode_to_vec()).await
    }

    /// Leaves a room.
    pub async fn leave(
        &self,
        room: &RoomId,
        sender: &PrivateKeySigner,
        device: &SigningKey,
    ) -> Result<ControlReply, ClientError> {
        self.control(room, sender, device, Kind::Leave, Vec::new()).await
    }

    /// Starts a new key epoch wrapped for every live device of every member; returns its id.
    pub async fn rotate(
        &self,
        room: &RoomId,
        sender: &PrivateKeySigner,
        device: &SigningKey,
    ) -> Result<B256, ClientError> {
        let members = self.members(room).await?;
        let mut devices: Vec<[u8; 32]> = members
            .members
            .iter()
            .flat_map(|m| m.box_keys.iter())
            .filter_map(|k| from_hex(k).ok().and_then(|b| b.try_into().ok()))
            .collect();
        if let Some(mine) = &self.box_secret {
            devices.push(mine.public());
        }
        if devices.is_empty() {
            return Err(ClientError::Other("no member device has a box key to encrypt for".into()));
        }
        let (key, rotate) = e2e::new_epoch(room, &sender.address(), &devices, &mut rand::thread_rng())
            .map_err(|e| ClientError::Other(e.to_string()))?;
        let reply = self.control(room, sender, device, Kind::RotateKey, rotate.encode_to_vec()).await?;
        let epoch = reply.id.parse::<B256>().map_err(|e| ClientError::Other(e.to_string()))?;
        self.epoch_keys.lock().map_err(|_| ClientError::Other("key cache poisoned".into()))?.insert(epoch, key);
        Ok(epoch)
    }

    /// The epoch to send under: the current one when this device holds its key and the node
    /// says none is due, otherwise a new one (after a departure, a device change, or at first).
    pub async fn ensure_epoch(
        &self,
        room: &RoomId,
        sender: &PrivateKeySigner,
        device: &SigningKey,
    ) -> Result<(B256, [u8; 32]), ClientError> {
        let members = self.members(room).await?;
        if let Some(EpochJson { id, .. }) = &members.epoch
            && !members.rotate
        {
            let epoch = id.parse::<B256>().map_err(|e| ClientError::Other(e.to_string()))?;
            if let Some(key) = self.epoch_key(room, &epoch).await? {
                return Ok((epoch, key));
            }
        }
        let epoch = self.rotate(room, sender, device).await?;
        let key = self.epoch_key(room, &epoch).await?.ok_or_else(|| ClientError::Other("new epoch key lost".into()))?;
        Ok((epoch, key))
    }

    /// This device's key for `epoch`, fetched and opened on first use; `None` when the epoch
    /// was not wrapped for this device.
    pub async fn epoch_key(&self, room: &RoomId, epoch: &B256) -> Result<Option<[u8; 32]>, ClientError> {
        if let Some(k) = self.epoch_keys.lock().map_err(|_| ClientError::Other("key cache poisoned".into()))?.get(epoch)
        {
            return Ok(Some(*k));
        }
        let Some(secret) = &self.box_secret else { return Ok(None) };
        let reply: KeysReply = self.get(&format!("/v1/rooms/{room}/keys?box_key={}", to_hex(secret.public()))).await?;
        let mut cache = self.epoch_keys.lock().map_err(|_| ClientError::Other("key cache poisoned".into()))?;
        for k in reply.keys {
            let (Ok(id), Ok(sender)) = (k.epoch.parse::<B256>(), k.sender.parse::<Address>()) else { continue };
            let wrap = Wrap {
                box_key: secret.public().to_vec(),
                enc: from_hex(&k.enc).unwrap_or_default(),
                ciphertext: from_hex(&k.ciphertext).unwrap_or_default(),
            };
            if let Ok(key) = e2e::unwrap_key(room, &sender, &wrap, secret) {
                cache.insert(id, key);
            }
        }
        Ok(cache.get(epoch).copied())
    }

    /// The plaintext of a message: as is in channels, opened with this device's epoch key when
    /// sealed. `Ok(None)` when this device does not hold the message's epoch key.
    pub async fn open_payload(&self, m: &MessageView) -> Result<Option<Vec<u8>>, ClientError> {
        let env = Envelope::try_from(&m.envelope).map_err(|e| ClientError::Other(e.to_string()))?;
        let body = Body::decode(env.body.as_slice()).map_err(|e| ClientError::Other(e.to_string()))?;
        if !m.encrypted {
            return Ok(Some(body.payload));
        }
        let sealed = Sealed::decode(body.payload.as_slice()).map_err(|e| ClientError::Other(e.to_string()))?;
        let epoch = sealed.epoch_id().ok_or_else(|| ClientError::Other("sealed payload without epoch".into()))?;
        let Some(key) = self.epoch_key(&m.room, &epoch).await? else { return Ok(None) };
        let sender = Address::try_from(body.sender.as_slice()).map_err(|e| ClientError::Other(e.to_string()))?;
        match e2e::open(&key, &sealed, &m.room, &sender, m.kind) {
            Ok(p) => Ok(Some(p)),
            Err(e) => Err(ClientError::Other(e.to_string())),
        }
    }

    /// [`Client::open_payload`] as text.
    pub async fn open_text(&self, m: &MessageView) -> Result<Option<String>, ClientError> {
        Ok(self.open_payload(m).await?.map(|p| String::from_utf8_lossy(&p).into_owned()))
    }

    /// A page of history.
    pub async fn history(
        &self,
        room: &RoomId,
        after: Option<&str>,
        before: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page, ClientError> {
        let mut q = Vec::new();
        if let Some(a) = after {
            q.push(format!("after={a}"));
        }
        if let Some(b) = before {
            q.push(format!("before={b}"));
        }
        if let Some(l) = limit {
            q.push(format!("limit={l}"));
        }
        self.get(&format!("/v1/rooms/{room}/messages?{}", q.join("&"))).await
    }

    /// Opens a WebSocket (token passed as a subprotocol, as browsers do) and subscribes.
    pub async fn stream(&self, rooms: &[RoomId]) -> Result<Stream, ClientError> {
        let url = format!("{}/v1/ws", self.base.replacen("http", "ws", 1));
        let mut req = url.into_client_request().map_err(Box::new)?;
        let protocols = match &self.token {
            Some(t) => format!("dchat.v1, bearer.{t}"),
            None => "dchat.v1".into(),
        };
        let value = HeaderValue::from_str(&protocols).map_err(|e| ClientError::Other(e.to_string()))?;
        req.headers_mut().insert("sec-websocket-protocol", value);
        let (ws, _) = tokio_tungstenite::connect_async(req).await.map_err(Box::new)?;
        let mut stream = Stream { ws };
        if !rooms.is_empty() {
            stream.send(&ClientFrame::Subscribe { rooms: rooms.iter().map(ToString::to_string).collect() }).await?;
        }
        Ok(stream)
    }
}

/// Builds and signs a text envelope.
pub fn seal_text(room: &RoomId, sender: &PrivateKeySigner, device: &SigningKey, lamport: u64, text: &str) -> Envelope {
    seal(room, sender, device, lamport, Kind::Text, text.as_bytes().to_vec())
}

/// Builds and signs an envelope of any kind, stamped now.
pub fn seal(
    room: &RoomId,
    sender: &PrivateKeySigner,
    device: &SigningKey,
    lamport: u64,
    kind: Kind,
    payload: Vec<u8>,
) -> Envelope {
    let now_ms = u64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or_default();
    let body = Body {
        version: VERSION,
        room: room.as_bytes().to_vec(),
        sender: sender.address().to_vec(),
        device_key: device.verifying_key().to_bytes().to_vec(),
        timestamp_ms: now_ms,
        lamport,
        kind: kind as i32,
        payload,
        ..Body::default()
    };
    Envelope::seal(&body, device)
}

/// A live WebSocket stream.
#[derive(Debug)]
pub struct Stream {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

/// What the stream yields.
#[derive(Debug)]
pub enum Incoming {
    /// A new message.
    Message(Box<MessageView>),
    /// A control frame.
    Control(ServerFrame),
    /// A contact, notification, presence or read-mark event.
    Social(Box<SocialEvent>),
    /// The node closed the stream with this code and reason.
    Closed(Option<(u16, String)>),
}

impl Stream {
    /// Sends a client frame.
    pub async fn send(&mut self, frame: &ClientFrame) -> Result<(), ClientError> {
        let text = serde_json::to_string(frame).map_err(|e| ClientError::Other(e.to_string()))?;
        self.ws.send(tungstenite::Message::text(text)).await.map_err(Box::new)?;
        Ok(())
    }

    /// Next event; `Closed` once the node closes.
    pub async fn next(&mut self) -> Result<Incoming, ClientError> {
        loop {
            let Some(msg) = self.ws.next().await else { return Ok(Incoming::Closed(None)) };
            match msg {
                Ok(tungstenite::Message::Text(t)) => {
                    if let Ok(Event::Message { message }) = serde_json::from_str::<Event>(&t) {
                        return Ok(Incoming::Message(Box::new(message)));
                    }
                    if let Ok(e) = serde_json::from_str::<SocialEvent>(&t) {
                        return Ok(Incoming::Social(Box::new(e)));
                    }
                    let frame: ServerFrame = serde_json::from_str(&t).map_err(|e| ClientError::Other(e.to_string()))?;
                    return Ok(Incoming::Control(frame));
                }
                Ok(tungstenite::Message::Close(c)) => {
                    return Ok(Incoming::Closed(c.map(|c| (u16::from(c.code), c.reason.to_string()))));
                }
                Ok(_) => continue,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(Incoming::Closed(None));
                }
                Err(e) => return Err(Box::new(e).into()),
            }
        }
    }
}

pub use crate::media::api::{Deleted as MediaDeleted, Uploaded as MediaUploaded};

/// What the sender says about a file it sends to a room (see [`Client::send_media`]).
#[derive(Debug, Clone, Default)]
pub struct MediaInfo {
    /// MIME type (`application/octet-stream` when empty).
    pub mime: String,
    /// File name shown to readers.
    pub name: String,
    /// Pixels, for images and video (0 when unknown).
    pub width: u32,
    /// Pixels, for images and video (0 when unknown).
    pub height: u32,
}

/// Media: upload, download, delete, and media messages (encrypted in private rooms).
impl Client {
    /// Turns an error reply into [`ClientError::Api`].
    async fn checked(resp: reqwest::Response) -> Result<reqwest::Response, ClientError> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let v: serde_json::Value = resp.json().await.unwrap_or_default();
        Err(ClientError::Api {
            status,
            code: v["error"].as_str().unwrap_or("unknown").to_string(),
            message: v["message"].as_str().unwrap_or_default().to_string(),
        })
    }

    fn authed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// `POST /v1/media?room=`: uploads `body` as it streams; `len` is sent as `Content-Length`
    /// when known. Returns the HTTP status (201 new, 200 already uploaded by the caller) and
    /// the reply.
    pub async fn upload_media(
        &self,
        room: &RoomId,
        body: reqwest::Body,
        len: Option<u64>,
        mime: &str,
    ) -> Result<(u16, MediaUploaded), ClientError> {
        let mut req = self
            .http
            .post(format!("{}/v1/media?room={room}", self.base))
            .header(reqwest::header::CONTENT_TYPE, mime)
            .body(body);
        if let Some(len) = len {
            req = req.header(reqwest::header::CONTENT_LENGTH, len);
        }
        let resp = Self::checked(self.authed(req).send().await?).await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await?))
    }

    /// Uploads a file from disk, streamed.
    pub async fn upload_media_file(
        &self,
        room: &RoomId,
        path: &std::path::Path,
        mime: &str,
    ) -> Result<MediaUploaded, ClientError> {
        let file =
            tokio::fs::File::open(path).await.map_err(|e| ClientError::Other(format!("{}: {e}", path.display())))?;
        let len = file.metadata().await.map_err(|e| ClientError::Other(e.to_string()))?.len();
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024));
        Ok(self.upload_media(room, body, Some(len), mime).await?.1)
    }

    /// `GET /v1/media/{cid}`, with an optional `Range` header value; the response streams.
    pub async fn media_response(&self, cid: &str, range: Option<&str>) -> Result<reqwest::Response, ClientError> {
        let mut req = self.http.get(format!("{}/v1/media/{cid}", self.base));
        if let Some(r) = range {
            req = req.header(reqwest::header::RANGE, r);
        }
        Self::checked(self.authed(req).send().await?).await
    }

    /// A whole file, in memory (small files; see [`Client::fetch_media`] for large ones).
    pub async fn download_media(&self, cid: &str) -> Result<Vec<u8>, ClientError> {
        Ok(self.media_response(cid, None).await?.bytes().await?.to_vec())
    }

    /// `DELETE /v1/media/{cid}?room=`.
    pub async fn delete_media(&self, cid: &str, room: &RoomId) -> Result<MediaDeleted, ClientError> {
        let req = self.http.delete(format!("{}/v1/media/{cid}?room={room}", self.base));
        Ok(Self::checked(self.authed(req).send().await?).await?.json().await?)
    }

    /// Sends a file to a room as a `KIND_MEDIA` message. In group and direct rooms the file is
    /// encrypted under a fresh content key as it uploads, and the [`MediaRef`] carrying that key
    /// is sealed in the message like any private payload.
    ///
    /// [`MediaRef`]: dchat_protocol::media::MediaRef
    pub async fn send_media(
        &self,
        room: &RoomId,
        sender: &PrivateKeySigner,
        device: &SigningKey,
        path: &std::path::Path,
        info: MediaInfo,
    ) -> Result<(PostResponse, dchat_protocol::media::MediaRef), ClientError> {
        use dchat_protocol::media::{self, ContentKey, MediaRef};

        let io = |e: std::io::Error| ClientError::Other(format!("{}: {e}", path.display()));
        let private = self.room(room).await?.kind.is_private();
        let mime = if info.mime.is_empty() { "application/octet-stream".to_string() } else { info.mime.clone() };
        let file = tokio::fs::File::open(path).await.map_err(io)?;
        let size = file.metadata().await.map_err(io)?.len();
        let (uploaded, key) = if private {
            let key = ContentKey::random(&mut rand::thread_rng());
            let body = reqwest::Body::wrap_stream(encrypting(file, &key));
            let (_, up) =
                self.upload_media(room, body, Some(media::encrypted_len(size)), "application/octet-stream").await?;
            (up, Some(key))
        } else {
            let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024));
            (self.upload_media(room, body, Some(size), &mime).await?.1, None)
        };
        let r = MediaRef {
            cid: uploaded.cid,
            size,
            mime,
            width: info.width,
            height: info.height,
            name: info.name,
            key: key.as_ref().map(|k| k.key.to_vec()).unwrap_or_default(),
            nonce_prefix: key.as_ref().map(|k| k.prefix.to_vec()).unwrap_or_default(),
        };
        let reply = self.send_payload(room, sender, device, Kind::Media, &r.encode_to_vec()).await?;
        Ok((reply, r))
    }

    /// The [`MediaRef`] of a media message, opened with this device's key in private rooms;
    /// `Ok(None)` when this device does not hold the message's epoch key.
    ///
    /// [`MediaRef`]: dchat_protocol::media::MediaRef
    pub async fn media_ref(&self, m: &MessageView) -> Result<Option<dchat_protocol::media::MediaRef>, ClientError> {
        if m.kind != Kind::Media {
            return Err(ClientError::Other(format!("message {} is not a media message ({:?})", m.id, m.kind)));
        }
        let Some(payload) = self.open_payload(m).await? else { return Ok(None) };
        dchat_protocol::media::MediaRef::decode(payload.as_slice())
            .map(Some)
            .map_err(|e| ClientError::Other(format!("media message {} does not decode: {e}", m.id)))
    }

    /// Downloads the file a [`MediaRef`] names into `out`, decrypting it as it streams when it is
    /// encrypted, and checks its size. Returns the bytes written. On failure `out` is removed.
    ///
    /// [`MediaRef`]: dchat_protocol::media::MediaRef
    pub async fn fetch_media(
        &self,
        r: &dchat_protocol::media::MediaRef,
        out: &std::path::Path,
    ) -> Result<u64, ClientError> {
        let written = self.fetch_media_inner(r, out).await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(out).await;
        }
        written
    }

    async fn fetch_media_inner(
        &self,
        r: &dchat_protocol::media::MediaRef,
        out: &std::path::Path,
    ) -> Result<u64, ClientError> {
        use tokio::io::AsyncWriteExt;
        let key = r.content_key().map_err(|e| ClientError::Other(e.to_string()))?;
        let io = |e: std::io::Error| ClientError::Other(format!("{}: {e}", out.display()));
        let mut file = tokio::fs::File::create(out).await.map_err(io)?;
        let mut dec = key.as_ref().map(dchat_protocol::media::Decryptor::new);
        let mut body = self.media_response(&r.cid, None).await?.bytes_stream();
        let mut written: u64 = 0;
        let bad = |e: dchat_protocol::media::MediaError| ClientError::Other(format!("media {}: {e}", r.cid));
        while let Some(piece) = body.next().await {
            let piece = piece?;
            let plain = match &mut dec {
                Some(d) => d.push(&piece).map_err(bad)?,
                None => piece.to_vec(),
            };
            written += plain.len() as u64;
            file.write_all(&plain).await.map_err(io)?;
        }
        if let Some(d) = dec {
            let last = d.finish().map_err(bad)?;
            written += last.len() as u64;
            file.write_all(&last).await.map_err(io)?;
        }
        file.sync_all().await.map_err(io)?;
        if written != r.size {
            return Err(ClientError::Other(format!(
                "media {}: got {written} bytes, the message says {}",
                r.cid, r.size
            )));
        }
        Ok(written)
    }

    /// A message of a room by id, searching history from the newest.
    pub async fn find_message(&self, room: &RoomId, id: &str) -> Result<Option<MessageView>, ClientError> {
        let want = id.trim_start_matches("0x").to_ascii_lowercase();
        let mut before: Option<String> = None;
        loop {
            let page = self.history(room, None, before.as_deref(), Some(200)).await?;
            if let Some(m) = page.messages.iter().find(|m| m.id.trim_start_matches("0x") == want) {
                return Ok(Some(m.clone()));
            }
            match page.messages.first() {
                Some(first) if page.has_more => before = Some(first.id.clone()),
                _ => return Ok(None),
            }
        }
    }
}

/// A file's ciphertext as it is read and encrypted, chunk by chunk (the file is never held
/// whole).
fn encrypting(
    file: tokio::fs::File,
    key: &dchat_protocol::media::ContentKey,
) -> impl futures::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static {
    use dchat_protocol::media::{CHUNK, Encryptor};
    use tokio::io::AsyncReadExt;
    let state = Some((file, Encryptor::new(key), vec![0u8; CHUNK]));
    futures::stream::try_unfold(state, |state| async move {
        let Some((mut file, mut enc, mut buf)) = state else { return Ok(None) };
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                let last = enc.finish().map_err(std::io::Error::other)?;
                return Ok(Some((last, None)));
            }
            let out = enc.push(&buf[..n]).map_err(std::io::Error::other)?;
            if !out.is_empty() {
                return Ok(Some((out, Some((file, enc, buf)))));
            }
        }
    })
}

/// The social layer: contacts, blocks, read marks, notifications, mutes, settings, presence and
/// typing. Each change is an envelope signed by the device, as the node requires.
impl Client {
    /// A social envelope of the wallet (on its social id), stamped with its next social clock.
    async fn seal_social(
        &self,
        sender: &PrivateKeySigner,
        device: &SigningKey,
        kind: Kind,
        payload: Vec<u8>,
    ) -> Result<Envelope, ClientError> {
        let lamport = self.contacts().await?.next_lamport;
        let room = dchat_protocol::social::social_room(&sender.address());
        Ok(seal(&room, sender, device, lamport, kind, payload))
    }

    /// Contacts, pending requests and blocks.
    pub async fn contacts(&self) -> Result<ContactsReply, ClientError> {
        self.get("/v1/contacts").await
    }

    /// Sends a contact action (request, accept, decline, remove, block, unblock) about `peer`.
    pub async fn contact(
        &self,
        sender: &PrivateKeySigner,
        device: &SigningKey,
        action: dchat_protocol::social::Action,
        peer: &Address,
    ) -> Result<SocialReply, ClientError> {
        let payload = dchat_protocol::social::Peer { address: peer.to_vec() }.encode_to_vec();
        let env = self.seal_social(sender, device, action.kind(), payload).await?;
        self.post_contact(&env).await
    }

    /// Posts a signed contact envelope as it is.
    pub async fn post_contact(&self, env: &Envelope) -> Result<SocialReply, ClientError> {
        Ok(self.post("/v1/contacts", &EnvelopeJson::from(env)).await?.1)
    }

    /// The requests inbox.
    pub async fn requests(&self) -> Result<Vec<RequestJson>, ClientError> {
        Ok(self.get::<RequestsReply>("/v1/requests").await?.requests)
    }

    /// Unread counts of every room.
    pub async fn unread(&self) -> Result<UnreadReply, ClientError> {
        self.get("/v1/unread").await
    }

    /// Marks `room` read up to `lamport`.
    pub async fn mark_read(
        &self,
        room: &RoomId,
        sender: &PrivateKeySigner,
        device: &SigningKey,
        lamport: u64,
    ) -> Result<SocialReply, ClientError> {
        let payload = dchat_protocol::social::ReadMark { lamport, message: Vec::new() }.encode_to_vec();
        let env = seal(room, sender, device, lamport, Kind::Receipt, payload);
        Ok(self.post(&format!("/v1/rooms/{room}/read"), &EnvelopeJson::from(&env)).await?.1)
    }

    /// Read marks of a room's members.
    pub async fn receipts(&self, room: &RoomId) -> Result<Vec<ReceiptJson>, ClientError> {
        Ok(self.get::<ReceiptsReply>(&format!("/v1/rooms/{room}/receipts")).await?.receipts)
    }

    /// Notifications, newest first.
    pub async fn notifications(&self, unread_only: bool) -> Result<NotificationsReply, ClientError> {
        self.get(&format!("/v1/notifications?unread={unread_only}")).await
    }

    /// One page of notifications, newest first: at most `limit`, after the id `before` (a
    /// previous page's `next`).
    pub async fn notifications_page(
        &self,
        limit: u32,
        before: Option<&str>,
    ) -> Result<NotificationsReply, ClientError> {
        let before = before.map(|b| format!("&before={b}")).unwrap_or_default();
        self.get(&format!("/v1/notifications?limit={limit}{before}")).await
    }

    /// Marks notifications read: those in `ids`, and all up to `up_to_ms` when given.
    pub async fn mark_notifications(
        &self,
        sender: &PrivateKeySigner,
        device: &SigningKey,
        ids: &[B256],
        up_to_ms: Option<u64>,
    ) -> Result<SocialReply, ClientError> {
        let payload = dchat_protocol::social::NotificationsRead {
            up_to_ms: up_to_ms.unwrap_or(0),
            ids: ids.iter().map(|i| i.to_vec()).collect(),
        }
        .encode_to_vec();
        let env = self.seal_social(sender, device, Kind::NotificationsRead, payload).await?;
        Ok(self.post("/v1/notifications/read", &EnvelopeJson::from(&env)).await?.1)
    }

    /// Mutes or unmutes a room's notifications.
    pub async fn mute(
        &self,
        sender: &PrivateKeySigner,
        device: &SigningKey,
        room: &RoomId,
        muted: bool,
    ) -> Result<Vec<RoomId>, ClientError> {
        let payload = dchat_protocol::social::Mute { room: room.as_bytes().to_vec(), muted }.encode_to_vec();
        let env = self.seal_social(sender, device, Kind::Mute, payload).await?;
        Ok(self.post::<_, MutesReply>("/v1/mutes", &EnvelopeJson::from(&env)).await?.1.rooms)
    }

    /// Social settings.
    pub async fn settings(&self) -> Result<SettingsReply, ClientError> {
        self.get("/v1/settings").await
    }

    /// Hides (or shows) the wallet's presence everywhere.
    pub async fn hide_presence(
        &self,
        sender: &PrivateKeySigner,
        device: &SigningKey,
        hide: bool,
    ) -> Result<SettingsReply, ClientError> {
        let payload = dchat_protocol::social::Settings { hide_presence: hide }.encode_to_vec();
        let env = self.seal_social(sender, device, Kind::Settings, payload).await?;
        Ok(self.post("/v1/settings", &EnvelopeJson::from(&env)).await?.1)
    }

    /// Announces the wallet's presence.
    pub async fn announce_presence(
        &self,
        sender: &PrivateKeySigner,
        device: &SigningKey,
        status: dchat_protocol::social::Status,
    ) -> Result<SocialReply, ClientError> {
        let payload = dchat_protocol::social::Presence { status: status as i32 }.encode_to_vec();
        let room = dchat_protocol::social::social_room(&sender.address());
        let env = seal(&room, sender, device, 0, Kind::Presence, payload);
        Ok(self.post("/v1/presence", &EnvelopeJson::from(&env)).await?.1)
    }

    /// Presence of some wallets.
    pub async fn presence(&self, addresses: &[Address]) -> Result<Vec<PresenceJson>, ClientError> {
        let list: Vec<String> = addresses.iter().map(|a| a.to_checksum(None)).collect();
        Ok(self.get::<PresenceReply>(&format!("/v1/presence?addresses={}", list.join(","))).await?.presence)
    }

    /// Says the wallet is typing in `room` (or stopped).
    pub async fn typing(
        &self,
        room: &RoomId,
        sender: &PrivateKeySigner,
        device: &SigningKey,
        on: bool,
    ) -> Result<PostResponse, ClientError> {
        let payload = dchat_protocol::social::Typing { stopped: !on }.encode_to_vec();
        let lamport = self.room(room).await?.next_lamport;
        let env = seal(room, sender, device, lamport, Kind::Typing, payload);
        Ok(self.post_envelope(room, &env).await?.1)
    }

    /// A live stream of the wallet's social events (contacts, notifications, presence of
    /// contacts, read marks), following `rooms` besides.
    pub async fn social_stream(&self, wallet: &Address, rooms: &[RoomId]) -> Result<Stream, ClientError> {
        let mut all = vec![dchat_protocol::social::social_room(wallet)];
        all.extend_from_slice(rooms);
        self.stream(&all).await
    }

    /// Who is typing in `room`.
    pub async fn typing_in(&self, room: &RoomId) -> Result<Vec<TypingJson>, ClientError> {
        Ok(self.get::<TypingReply>(&format!("/v1/rooms/{room}/typing")).await?.typing)
    }
}
