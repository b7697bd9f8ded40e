//! Social routes: contacts and blocks, the requests inbox, unread counts and read marks,
//! notifications, mutes, settings, presence and typing. Every change is the caller's signed
//! envelope (see `dchat_protocol::social`); reads are derived from the stored envelopes.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
};
use dchat_protocol::{
    Address, Kind, RoomId,
    ids::to_hex,
    social::{Link, Status},
};
use serde::{Deserialize, Serialize};

use super::{
    AppState,
    error::ApiError,
    extract::{ApiQuery, Caller, room_id},
    messages::{envelope_from_body, submit},
    rooms::{RoomView, readable, view},
};
use crate::{social, store::RoomKind};

/// A contact.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContactJson {
    /// The other wallet, EIP-55.
    pub address: String,
    /// Since when (contacts) or asked when (requests), ms.
    pub since_ms: u64,
}

/// `GET /v1/contacts` reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContactsReply {
    /// Contacts.
    pub contacts: Vec<ContactJson>,
    /// Requests others sent the caller, waiting for an answer.
    pub incoming: Vec<ContactJson>,
    /// Requests the caller sent, waiting for an answer.
    pub outgoing: Vec<ContactJson>,
    /// Wallets the caller blocked.
    pub blocked: Vec<String>,
    /// Lamport clock for the caller's next social envelope.
    pub next_lamport: u64,
}

/// The caller's contacts, pending requests both ways and blocks.
pub async fn contacts(State(state): State<AppState>, caller: Caller) -> Result<Json<ContactsReply>, ApiError> {
    let me = caller.address;
    let mut reply = ContactsReply {
        contacts: Vec::new(),
        incoming: Vec::new(),
        outgoing: Vec::new(),
        blocked: Vec::new(),
        next_lamport: state.store.next_social_lamport(&me).await?,
    };
    for (other, pair) in social::pairs_of(&state.store, &me).await? {
        let address = other.to_checksum(None);
        if pair.blocks(&me) {
            reply.blocked.push(address.clone());
        }
        match pair.link {
            Link::Friends { since_ms } => reply.contacts.push(ContactJson { address, since_ms }),
            Link::Pending { from, at_ms } if from == me => {
                reply.outgoing.push(ContactJson { address, since_ms: at_ms })
            }
            Link::Pending { at_ms, .. } => reply.incoming.push(ContactJson { address, since_ms: at_ms }),
            Link::None => {}
        }
    }
    Ok(Json(reply))
}

/// Reply to a social change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SocialReply {
    /// Id of the stored envelope (or of the relayed one, for presence).
    pub id: String,
    /// False when this exact envelope was already stored.
    pub fresh: bool,
    /// For contact changes: the relation afterwards (`none`, `incoming`, `outgoing`, `contact`
    /// or `blocked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// For read marks and notification marks: what is unread afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unread: Option<u64>,
}

/// Takes one signed social envelope of the kinds `allowed` lists (for a room when `room` is
/// given), ingests it and relays it.
async fn post_social(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    room: Option<&RoomId>,
    allowed: &'static [Kind],
) -> Result<(StatusCode, crate::ingest::Ingested), ApiError> {
    let envelope = envelope_from_body(headers, body)?;
    // Presence has its own, tighter limit.
    if allowed != [Kind::Presence] {
        state.limit_address(&caller.address)?;
    }
    let check = |k: Kind| allowed.contains(&k).then_some(()).ok_or("this endpoint takes another kind of envelope");
    let ing = submit(state, caller, envelope, room, check).await?;
    let status = match (ing.stored, ing.fresh) {
        (false, _) => StatusCode::ACCEPTED,
        (true, true) => StatusCode::CREATED,
        (true, false) => StatusCode::OK,
    };
    Ok((status, ing))
}

const CONTACT_KINDS: &[Kind] =
    &[Kind::FriendRequest, Kind::FriendAccept, Kind::FriendDecline, Kind::FriendRemove, Kind::Block, Kind::Unblock];

/// `POST /v1/contacts`: a request, accept, decline, removal, block or unblock.
pub async fn contact(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<SocialReply>), ApiError> {
    let (status, ing) = post_social(&state, &caller, &headers, body, None, CONTACT_KINDS).await?;
    let peer = match dchat_protocol::social::Op::decode(&ing.verified.body) {
        Ok(Some(dchat_protocol::social::Op::Contact(_, peer))) => peer,
        _ => return Err(ApiError::internal("contact envelope without a peer")),
    };
    let pair = dchat_protocol::social::Pair::replay(state.store.pair_events(&caller.address, &peer).await?);
    let relation = social::relation(&pair, &caller.address).to_string();
    tracing::info!(target: "node::social", by = %caller.address, %peer, state = relation, "contact changed");
    Ok((
        status,
        Json(SocialReply { id: to_hex(ing.verified.id), fresh: ing.fresh, state: Some(relation), unread: None }),
    ))
}

/// A direct room in the requests inbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RequestJson {
    /// The room.
    pub room: RoomView,
    /// Who opened it, EIP-55.
    pub from: String,
    /// Messages from them the caller has not read.
    pub unread: u64,
}

/// `GET /v1/requests` reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RequestsReply {
    /// Direct rooms strangers opened with the caller, until the caller answers there or they
    /// become contacts.
    pub requests: Vec<RequestJson>,
}

/// The requests inbox: direct rooms opened by wallets that are not the caller's contacts, where
/// the caller has not written yet. Blocked wallets' rooms are not listed.
pub async fn requests(State(state): State<AppState>, caller: Caller) -> Result<Json<RequestsReply>, ApiError> {
    Ok(Json(RequestsReply { requests: request_rooms(&state, &caller.address).await? }))
}

pub(crate) async fn request_rooms(state: &AppState, me: &Address) -> Result<Vec<RequestJson>, ApiError> {
    let contacts = social::contacts_of(&state.store, me).await?;
    let mut out = Vec::new();
    for (room, role) in state.store.rooms_of(me).await? {
        if room.kind != RoomKind::Direct || room.owner == *me {
            continue;
        }
        let from = room.owner;
        if contacts.contains(&from) || state.social.blocks(me, &from) || state.store.posted_in(&room.id, me).await? {
            continue;
        }
        let unread = unread_in(state, me, &room.id).await?;
        out.push(RequestJson { room: view(&room, Some(role)), from: from.to_checksum(None), unread });
    }
    Ok(out)
}

/// Readable messages of others after the caller's read mark, blocked senders left out.
async fn unread_in(state: &AppState, me: &Address, room: &RoomId) -> Result<u64, ApiError> {
    let mark = state.store.read_mark(me, room).await?;
    Ok(state
        .store
        .unread_by_sender(room, mark)
        .await?
        .into_iter()
        .filter(|(sender, _)| sender != me && !state.social.blocks(me, sender))
        .map(|(_, n)| n)
        .sum())
}

/// Unread count of one room.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UnreadJson {
    /// Room.
    pub room: RoomId,
    /// Text and media messages from others after the read mark.
    pub unread: u64,
    /// The caller's read mark (lamport clock), 0 when none.
    pub read_lamport: u64,
    /// The caller muted the room.
    pub muted: bool,
    /// A direct room in the requests inbox.
    pub request: bool,
}

/// `GET /v1/unread` reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UnreadReply {
    /// Every room of the caller.
    pub rooms: Vec<UnreadJson>,
    /// Sum over rooms not muted and not in the requests inbox.
    pub total: u64,
    /// Unread notifications.
    pub notifications: u64,
}

/// Unread counts of the caller's rooms; the same on every device and node of the wallet, since
/// they follow from the read-mark envelopes.
pub async fn unread(State(state): State<AppState>, caller: Caller) -> Result<Json<UnreadReply>, ApiError> {
    let me = caller.address;
    let muted = social::mutes_of(&state.store, &me).await?;
    let requests: Vec<RoomId> = request_rooms(&state, &me).await?.into_iter().map(|r| r.room.id).collect();
    let mut rooms = Vec::new();
    let mut total = 0;
    for (room, _) in state.store.rooms_of(&me).await? {
        let unread = unread_in(&state, &me, &room.id).await?;
        let (is_muted, request) = (muted.contains(&room.id), requests.contains(&room.id));
        if !is_muted && !request {
            total += unread;
        }
        let read_lamport = state.store.read_mark(&me, &room.id).await?;
        rooms.push(UnreadJson { room: room.id, unread, read_lamport, muted: is_muted, request });
    }
    let notifications = social::unread_notifications(&state, &me).await?;
    Ok(Json(UnreadReply { rooms, total, notifications }))
}

/// `POST /v1/rooms/{id}/read`: the caller's signed read mark (`KIND_RECEIPT`).
pub async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<SocialReply>), ApiError> {
    let room = room_id(&id)?;
    let (status, ing) = post_social(&state, &caller, &headers, body, Some(&room), &[Kind::Receipt]).await?;
    let unread = unread_in(&state, &caller.address, &room).await?;
    Ok((status, Json(SocialReply { id: to_hex(ing.verified.id), fresh: ing.fresh, state: None, unread: Some(unread) })))
}

/// One member's read mark.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReceiptJson {
    /// Member, EIP-55.
    pub address: String,
    /// Read up to this lamport clock.
    pub lamport: u64,
}

/// `GET /v1/rooms/{id}/receipts` reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReceiptsReply {
    /// Read marks of current members.
    pub receipts: Vec<ReceiptJson>,
}

/// Read receipts: how far each member has read (members, and anyone for a public channel).
pub async fn receipts(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Option<Caller>,
) -> Result<Json<ReceiptsReply>, ApiError> {
    let (room, _) = readable(&state, &room_id(&id)?, caller.as_ref()).await?;
    let mut receipts = Vec::new();
    for (address, lamport) in state.store.read_marks(&room.id).await? {
        if state.store.role(&room.id, &address).await?.is_some() {
            receipts.push(ReceiptJson { address: address.to_checksum(None), lamport });
        }
    }
    Ok(Json(ReceiptsReply { receipts }))
}

/// `GET /v1/notifications` query.
#[derive(Debug, Deserialize)]
pub struct NotificationsQuery {
    /// Only unread ones.
    #[serde(default)]
    pub unread: bool,
    /// At most this many (default 50, at most the node's page limit).
    pub limit: Option<u32>,
    /// Only this kind (`mention`, `reply`, `invite`, `contact_request`, `contact_accepted`, `tip`).
    pub kind: Option<String>,
    /// The next page: those after this notification id (a reply's `next`), newest first.
    pub before: Option<String>,
}

/// Notification kinds.
const NOTIFICATION_KINDS: &[&str] = &["mention", "reply", "invite", "contact_request", "contact_accepted", "tip"];

/// `GET /v1/notifications` reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NotificationsReply {
    /// Newest first; muted rooms left out.
    pub notifications: Vec<social::NotificationView>,
    /// Unread notifications in all.
    pub unread: u64,
    /// When the page is full: the id to pass as `before` for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The caller's notifications: mentions, replies, invites, contact requests and acceptances, tips.
pub async fn notifications(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<NotificationsQuery>,
) -> Result<Json<NotificationsReply>, ApiError> {
    let max = state.config.limits.max_page;
    let limit = q.limit.unwrap_or(50.min(max));
    if limit == 0 || limit > max {
        return Err(ApiError::bad_request("invalid_limit", format!("limit must be between 1 and {max}")));
    }
    if let Some(kind) = &q.kind
        && !NOTIFICATION_KINDS.contains(&kind.as_str())
    {
        return Err(ApiError::bad_request(
            "invalid_kind",
            format!("kind must be one of {}", NOTIFICATION_KINDS.join(", ")),
        ));
    }
    let me = caller.address;
    let rs = social::read_state(&state.store, &me).await?;
    let muted = social::mutes_of(&state.store, &me).await?;
    let after = if q.unread { rs.up_to_ms } else { 0 };
    let mut cursor = match &q.before {
        None => None,
        Some(before) => {
            let id = before.parse::<dchat_protocol::B256>().map_err(|_| {
                ApiError::bad_request("invalid_before", format!("before {before:?} is not a notification id"))
            })?;
            let n = state.store.notification(&me, &id).await?.ok_or_else(|| {
                ApiError::not_found("notification_not_found", "before names no notification of this wallet")
            })?;
            Some((n.created_ms, n.id))
        }
    };
    let mut out = Vec::new();
    // Read in pages until `limit` fit the filters (muted rooms, read ones, kind) or none are left.
    let chunk = limit.max(50);
    'pages: loop {
        let page = state.store.notifications(&me, after, cursor, chunk).await?;
        let Some(last) = page.last() else { break };
        cursor = Some((last.created_ms, last.id));
        let full = page.len() == chunk as usize;
        for n in &page {
            let read = rs.is_read(n);
            if (q.unread && read)
                || n.room.is_some_and(|r| muted.contains(&r))
                || q.kind.as_ref().is_some_and(|k| *k != n.kind)
            {
                continue;
            }
            let mut view = social::view(n, read);
            // A tipped message this node did not hold when the tip came may have arrived since.
            if let Some(tip) = view.tip.as_ref().filter(|_| view.room.is_none())
                && let Ok(message) = tip.message.parse::<dchat_protocol::B256>()
            {
                view.room = social::tip_room(&state.store, &me, &message).await?;
            }
            out.push(view);
            if out.len() >= limit as usize {
                break 'pages;
            }
        }
        if !full {
            break;
        }
    }
    let unread = social::unread_notifications(&state, &me).await?;
    let next = (out.len() >= limit as usize).then(|| out.last().map(|n| n.id.clone())).flatten();
    Ok(Json(NotificationsReply { notifications: out, unread, next }))
}

/// `POST /v1/notifications/read`: the caller's signed `NotificationsRead` (one, some, or all up
/// to a time). Every device of the wallet hears the new unread count.
pub async fn mark_notifications(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<SocialReply>), ApiError> {
    let (status, ing) = post_social(&state, &caller, &headers, body, None, &[Kind::NotificationsRead]).await?;
    let unread = social::unread_notifications(&state, &caller.address).await?;
    Ok((status, Json(SocialReply { id: to_hex(ing.verified.id), fresh: ing.fresh, state: None, unread: Some(unread) })))
}

/// `GET /v1/mutes` reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MutesReply {
    /// Rooms the caller muted.
    pub rooms: Vec<RoomId>,
}

/// Rooms the caller muted.
pub async fn mutes(State(state): State<AppState>, caller: Caller) -> Result<Json<MutesReply>, ApiError> {
    let mut rooms: Vec<RoomId> = social::mutes_of(&state.store, &caller.address).await?.into_iter().collect();
    rooms.sort_by_key(|r| r.0);
    Ok(Json(MutesReply { rooms }))
}

/// `POST /v1/mutes`: the caller's signed `Mute` of a room.
pub async fn mute(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<MutesReply>), ApiError> {
    let (status, _) = post_social(&state, &caller, &headers, body, None, &[Kind::Mute]).await?;
    let Json(m) = mutes(State(state), caller).await?;
    Ok((status, Json(m)))
}

/// `GET /v1/settings` reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SettingsReply {
    /// Nobody sees the caller's presence.
    pub hide_presence: bool,
}

/// The caller's social settings.
pub async fn settings(State(state): State<AppState>, caller: Caller) -> Result<Json<SettingsReply>, ApiError> {
    let s = social::settings_of(&state.store, &caller.address).await?;
    Ok(Json(SettingsReply { hide_presence: s.hide_presence }))
}

/// `POST /v1/settings`: the caller's signed `Settings`.
pub async fn set_settings(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<SettingsReply>), ApiError> {
    let (status, _) = post_social(&state, &caller, &headers, body, None, &[Kind::Settings]).await?;
    let Json(s) = settings(State(state), caller).await?;
    Ok((status, Json(s)))
}

/// `POST /v1/presence`: the caller's signed presence; relayed, never stored. 202.
pub async fn set_presence(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<SocialReply>), ApiError> {
    let (status, ing) = post_social(&state, &caller, &headers, body, None, &[Kind::Presence]).await?;
    Ok((status, Json(SocialReply { id: to_hex(ing.verified.id), fresh: false, state: None, unread: None })))
}

/// `GET /v1/presence` query.
#[derive(Debug, Deserialize)]
pub struct PresenceQuery {
    /// Comma-separated addresses (at most 100).
    pub addresses: String,
}

/// One wallet's presence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PresenceJson {
    /// Wallet, EIP-55.
    pub address: String,
    /// `online`, `away` or `offline`.
    pub status: String,
    /// Its last presence, ms (absent when hidden or never seen by this node).
    pub last_seen_ms: Option<u64>,
}

/// `GET /v1/presence` reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PresenceReply {
    /// In the order asked.
    pub presence: Vec<PresenceJson>,
}

/// Presence of some wallets (signed-in callers).
pub async fn presence(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(q): ApiQuery<PresenceQuery>,
) -> Result<Json<PresenceReply>, ApiError> {
    let list: Vec<&str> = q.addresses.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if list.is_empty() || list.len() > 100 {
        return Err(ApiError::bad_request("invalid_addresses", "give 1 to 100 comma-separated addresses"));
    }
    let now_ms = state.now_ms();
    let mut presence = Vec::with_capacity(list.len());
    for raw in list {
        let a: Address =
            raw.parse().map_err(|_| ApiError::bad_request("invalid_address", format!("{raw:?} is not an address")))?;
        let (status, last_seen_ms) = state.social.presence_of(&a, now_ms);
        presence.push(PresenceJson { address: a.to_checksum(None), status: status_str(status), last_seen_ms });
    }
    Ok(Json(PresenceReply { presence }))
}

fn status_str(s: Status) -> String {
    s.as_str().to_string()
}

/// Someone typing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TypingJson {
    /// Wallet, EIP-55.
    pub address: String,
    /// When the indicator lapses unless refreshed, ms.
    pub expires_ms: u64,
}

/// `GET /v1/rooms/{id}/typing` reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TypingReply {
    /// Wallets typing now (blocked ones left out).
    pub typing: Vec<TypingJson>,
}

/// Who is typing in a room now.
pub async fn typing(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Option<Caller>,
) -> Result<Json<TypingReply>, ApiError> {
    let (room, _) = readable(&state, &room_id(&id)?, caller.as_ref()).await?;
    let typing = state
        .social
        .typing_in(&room.id, state.now_ms())
        .into_iter()
        .filter(|(a, _)| caller.as_ref().is_none_or(|c| !state.social.blocks(&c.address, a)))
        .map(|(a, expires_ms)| TypingJson { address: a.to_checksum(None), expires_ms })
        .collect();
    Ok(Json(TypingReply { typing }))
}
