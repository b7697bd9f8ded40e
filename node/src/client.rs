//! A small client of the node API: sign-in with a local wallet key and a device key, rooms,
//! sending signed envelopes, history and live streams. The `dchat` CLI and the tests use it.

use alloy::signers::{SignerSync, local::PrivateKeySigner};
use dchat_protocol::{
    Address, Body, Envelope, Kind, RoomId,
    delegation::{BOX_PREFIX, SIGN_PREFIX},
    envelope::{EnvelopeJson, VERSION},
    ids::to_hex,
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
    rooms::{RoomList, RoomView},
    ws::{ClientFrame, ServerFrame},
};
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
        Self { http: reqwest::Client::new(), base: base.into().trim_end_matches('/').to_string(), token: None }
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
        // A private room's history is not readable before joining; the node answers for it then.
        let lamport = self.next_lamport(room).await.unwrap_or(1);
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

    /// Signs and posts a text message with lamport one past the newest in the room.
    pub async fn send_text(
        &self,
        room: &RoomId,
        sender: &PrivateKeySigner,
        device: &SigningKey,
        text: &str,
    ) -> Result<PostResponse, ClientError> {
        let lamport = self.next_lamport(room).await?;
        let env = seal_text(room, sender, device, lamport, text);
        Ok(self.post_envelope(room, &env).await?.1)
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
