//! Posting client-signed envelopes and paging history.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode, header},
};
use dchat_protocol::{
    B256, Body, Envelope, Kind, RoomId,
    envelope::EnvelopeJson,
    ids::{from_hex, to_hex},
};
use prost::Message as _;
use serde::{Deserialize, Serialize};

use super::{
    AppState,
    error::ApiError,
    extract::{ApiQuery, Caller, payload_too_large, room_id},
    rooms::readable,
};
use crate::{
    ingest::{Ingested, Origin, ingest_verified},
    store::PageQuery,
};

/// A message as the API shows it: the envelope as received plus its decoded fields.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MessageView {
    /// Message id, keccak256 of the body.
    pub id: String,
    /// Room.
    pub room: RoomId,
    /// Sending wallet, EIP-55.
    pub sender: String,
    /// Signing device key.
    pub device_key: String,
    /// Sender's clock, ms.
    pub timestamp_ms: u64,
    /// Lamport clock.
    pub lamport: u64,
    /// Kind.
    pub kind: Kind,
    /// The payload as text, for text messages that are valid UTF-8. Other payloads are read
    /// from the envelope's body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Payload size in bytes.
    pub payload_len: usize,
    /// The payload is a sealed (end-to-end encrypted) message; `text` is then absent.
    #[serde(default)]
    pub encrypted: bool,
    /// Wallets the message mentions (`Body.mentions`), EIP-55; absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<String>,
    /// The message this one replies to (`Body.reply_to`), when it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// The signed envelope, for clients that verify it themselves.
    pub envelope: EnvelopeJson,
}

impl MessageView {
    /// Builds the view of a stored or verified envelope.
    pub fn from_parts(id: B256, envelope: &Envelope, body: &Body) -> Self {
        let kind = Kind::try_from(body.kind).unwrap_or(Kind::Unspecified);
        let encrypted = dchat_protocol::e2e::is_sealed_kind(kind)
            && <dchat_protocol::e2e::Sealed as prost::Message>::decode(body.payload.as_slice())
                .is_ok_and(|s| s.epoch.len() == 32 && s.nonce.len() == 24 && s.ciphertext.len() >= 16);
        let text = (kind == Kind::Text && !encrypted).then(|| String::from_utf8(body.payload.clone()).ok()).flatten();
        Self {
            id: to_hex(id),
            room: RoomId::from_slice(&body.room).unwrap_or(RoomId([0; 32])),
            sender: dchat_protocol::Address::try_from(body.sender.as_slice())
                .map(|a| a.to_checksum(None))
                .unwrap_or_default(),
            device_key: to_hex(&body.device_key),
            timestamp_ms: body.timestamp_ms,
            lamport: body.lamport,
            kind,
            text,
            payload_len: body.payload.len(),
            encrypted,
            mentions: body
                .mentions
                .iter()
                .filter_map(|m| dchat_protocol::Address::try_from(m.as_slice()).ok())
                .map(|a| a.to_checksum(None))
                .collect(),
            reply_to: (body.reply_to.len() == 32).then(|| to_hex(&body.reply_to)),
            envelope: EnvelopeJson::from(envelope),
        }
    }
}

/// A live event on the WebSocket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A new message in a subscribed room.
    Message {
        /// The message.
        message: MessageView,
    },
}

/// `POST /v1/rooms/{id}/messages` reply.
#[derive(Debug, Serialize, Deserialize)]
pub struct PostResponse {
    /// Message id.
    pub id: String,
    /// True when this exact message was already stored (the post is idempotent).
    pub duplicate: bool,
    /// False for ephemeral kinds, which are relayed but not stored.
    pub stored: bool,
}

fn decode_envelope(headers: &HeaderMap, body: &[u8]) -> Result<Envelope, ApiError> {
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let ctype = ctype.split(';').next().unwrap_or("").trim();
    match ctype {
        "application/json" => {
            let json: EnvelopeJson =
                serde_json::from_slice(body).map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?;
            Ok(Envelope::try_from(&json)?)
        }
        "application/x-protobuf" | "application/protobuf" => {
            Envelope::decode(body).map_err(|e| ApiError::bad_request("envelope_malformed", e.to_string()))
        }
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the envelope as application/json or application/x-protobuf",
        )),
    }
}

/// Reads an envelope from a JSON (`EnvelopeJson`) or protobuf body.
pub(crate) fn envelope_from_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Envelope, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            payload_too_large()
        } else {
            ApiError::bad_request("invalid_body", e.body_text())
        }
    })?;
    decode_envelope(headers, &body)
}

/// Accepts a client-signed envelope into a room. 201 when stored, 200 for a repeat of a stored
/// message, 202 for ephemeral kinds. The 2xx comes only after the write has committed.
pub async fn post(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<PostResponse>), ApiError> {
    let room_id = room_id(&id)?;
    let envelope = envelope_from_body(&headers, body)?;
    state.limit_address(&caller.address)?;
    // Room existence and membership are checked once, in ingest.
    let allowed = |k: Kind| {
        (!k.is_control()).then_some(()).ok_or(
            "room control messages go to POST /v1/rooms, /join, /invites, /leave, /removals, /roles, /policy or /keys",
        )
    };
    let ing = submit(&state, &caller, envelope, Some(&room_id), allowed).await?;
    let status = match (ing.stored, ing.fresh) {
        (false, _) => StatusCode::ACCEPTED,
        (true, true) => StatusCode::CREATED,
        (true, false) => StatusCode::OK,
    };
    Ok((
        status,
        Json(PostResponse { id: to_hex(ing.verified.id), duplicate: ing.stored && !ing.fresh, stored: ing.stored }),
    ))
}

/// A client's envelope: checks it is of a kind this endpoint takes (`allowed` says why not),
/// names the URL's room and the caller; ingests it, and relays it to peers when it is new.
pub(crate) async fn submit(
    state: &AppState,
    caller: &Caller,
    envelope: Envelope,
    room: Option<&RoomId>,
    allowed: impl Fn(Kind) -> Result<(), &'static str>,
) -> Result<Ingested, ApiError> {
    let v = envelope.open(&state.config.limits.envelope, state.now_ms())?;
    allowed(v.kind).map_err(|why| ApiError::bad_request("unsupported_kind", why))?;
    if room.is_some_and(|r| *r != v.room) {
        return Err(ApiError::bad_request("room_mismatch", "the envelope is for another room than the URL names"));
    }
    if v.sender != caller.address {
        return Err(ApiError::forbidden("sender_not_caller", "the envelope's sender is not the signed-in wallet"));
    }
    let ing = ingest_verified(state, v, None, Origin::Client).await?;
    if ing.fresh || !ing.stored {
        state.relay(&ing.verified.room, &ing.verified.envelope).await;
    }
    Ok(ing)
}

/// `GET /v1/messages/{id}/proof` reply: everything needed to check on chain that the message
/// was anchored (`MessageAnchor.verify(anchorer, root, id, proof)`).
#[derive(Debug, Serialize, Deserialize)]
pub struct ProofResponse {
    /// Message id (the contract's `messageHash`).
    pub id: String,
    /// Chain id.
    pub chain_id: u64,
    /// `MessageAnchor` address.
    pub contract: String,
    /// Account the batch is anchored under (EIP-55); readers decide whether they trust it, for
    /// example whether it runs an active node in `NodeRegistry`.
    pub anchorer: String,
    /// Merkle root of the batch.
    pub root: String,
    /// Sibling hashes from the leaf up.
    pub proof: Vec<String>,
    /// Anchoring transaction, when known.
    pub tx_hash: Option<String>,
    /// Its block, when known.
    pub block: Option<u64>,
}

/// The inclusion proof of an anchored message, for whoever may read its room.
pub async fn proof(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Option<Caller>,
) -> Result<Json<ProofResponse>, ApiError> {
    let message_id = from_hex(&id)
        .ok()
        .filter(|b| b.len() == 32)
        .map(|b| B256::from_slice(&b))
        .ok_or_else(|| ApiError::bad_request("invalid_message_id", format!("{id:?} is not a message id")))?;
    // Whoever may not read the room learns nothing, not even that the message exists.
    let not_found = || ApiError::not_found("message_not_found", "no such message (or not yours to see)");
    let room = state.store.message_room(&message_id).await?.ok_or_else(not_found)?;
    readable(&state, &room, caller.as_ref()).await.map_err(|_| not_found())?;
    if state.anchor.is_none() {
        return Err(ApiError::not_found("anchoring_disabled", "this node does not anchor messages"));
    }
    let batch = state.store.batch_of(&message_id).await?;
    let Some((batch, anchorer)) = batch.and_then(|b| b.anchorer.map(|a| (b, a))) else {
        return Err(ApiError::not_found(
            "not_anchored_yet",
            "the message is not anchored yet; try again after the next round",
        ));
    };
    let tree = dchat_protocol::merkle::Tree::new(&batch.members).ok_or_else(|| ApiError::internal("empty batch"))?;
    let proof = tree.proof(&message_id).ok_or_else(|| ApiError::internal("message missing from its batch"))?;
    Ok(Json(ProofResponse {
        id: to_hex(message_id),
        chain_id: batch.chain_id,
        contract: batch.contract.to_checksum(None),
        anchorer: anchorer.to_checksum(None),
        root: to_hex(batch.root),
        proof: proof.iter().map(to_hex).collect(),
        tx_hash: batch.tx_hash.map(to_hex),
        block: batch.block,
    }))
}

/// History query: `after` / `before` are message ids; `limit` defaults to 50.
#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    /// Messages after this id.
    pub after: Option<String>,
    /// Messages before this id.
    pub before: Option<String>,
    /// Page size.
    pub limit: Option<u32>,
}

/// A page of history in display order (lamport, timestamp, id).
#[derive(Debug, Serialize, Deserialize)]
pub struct Page {
    /// Messages, oldest first.
    pub messages: Vec<MessageView>,
    /// Whether more messages lie beyond this page in the direction paged (older when paging
    /// back, newer when paging forward with `after`).
    pub has_more: bool,
}

/// Pages a room's history.
pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Option<Caller>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<Page>, ApiError> {
    let room_id = room_id(&id)?;
    readable(&state, &room_id, caller.as_ref()).await?;
    let max = state.config.limits.max_page;
    let limit = q.limit.unwrap_or(50.min(max));
    if limit == 0 || limit > max {
        return Err(ApiError::bad_request("invalid_limit", format!("limit must be between 1 and {max}")));
    }
    let cursor = |raw: &Option<String>| -> Result<Option<B256>, ApiError> {
        raw.as_deref()
            .map(|s| {
                from_hex(s)
                    .ok()
                    .filter(|b| b.len() == 32)
                    .map(|b| B256::from_slice(&b))
                    .ok_or_else(|| ApiError::bad_request("invalid_cursor", format!("{s:?} is not a message id")))
            })
            .transpose()
    };
    let query = PageQuery { after: cursor(&q.after)?, before: cursor(&q.before)?, limit };
    let (rows, has_more) = state
        .store
        .page(&room_id, query)
        .await?
        .ok_or_else(|| ApiError::bad_request("invalid_cursor", "the cursor names no message of this room"))?;
    // Messages of wallets the caller blocked are not delivered to it.
    let blocked = caller.as_ref().map(|c| state.social.blocked_by(&c.address)).unwrap_or_default();
    let messages = rows
        .iter()
        .map(|m| {
            let env = Envelope::decode(m.envelope.as_slice()).map_err(ApiError::internal)?;
            let body = Body::decode(env.body.as_slice()).map_err(ApiError::internal)?;
            let content = Kind::try_from(body.kind).is_ok_and(|k| !k.is_control());
            let hidden = content && blocked.iter().any(|b| b.as_slice() == body.sender.as_slice());
            Ok((!hidden).then(|| MessageView::from_parts(m.id, &env, &body)))
        })
        .filter_map(Result::transpose)
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Json(Page { messages, has_more }))
}
