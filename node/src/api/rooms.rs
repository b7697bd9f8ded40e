//! Rooms: create (the caller is owner; direct rooms belong to both), list mine, read one, the
//! public channel directory, and every membership change — join, invite, leave, remove, set
//! role, set policy, rotate the key — each as the caller's signed control envelope. Members,
//! roles and keys are what replaying those envelopes gives (see `dchat_protocol::control`).

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
};
use dchat_protocol::{
    Kind, RoomId,
    ids::{from_hex, to_hex},
    room::{CreateRoom, RoomKind as ProtoKind},
};
use prost::Message as _;
use serde::{Deserialize, Serialize};

use super::{
    AppState,
    error::ApiError,
    extract::{ApiQuery, Caller, room_id},
    messages::{envelope_from_body, submit},
};
use crate::store::{Room, RoomKind};

/// A room as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RoomView {
    /// Id.
    pub id: RoomId,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: RoomKind,
    /// Owner, EIP-55.
    pub owner: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// The caller's role, when a member.
    pub role: Option<String>,
    /// Join policy: `invite_only` or `open`.
    #[serde(default)]
    pub policy: String,
    /// Lamport clock for the next message (one past the newest stored).
    #[serde(default)]
    pub next_lamport: u64,
}

/// `GET /v1/rooms` reply.
#[derive(Debug, Serialize, Deserialize)]
pub struct RoomList {
    /// Rooms the caller belongs to.
    pub rooms: Vec<RoomView>,
}

pub(crate) fn view(room: &Room, role: Option<String>) -> RoomView {
    RoomView {
        id: room.id,
        name: room.name.clone(),
        kind: room.kind,
        owner: room.owner.to_checksum(None),
        created_at: room.created_at,
        role,
        policy: room.policy.clone(),
        next_lamport: room.max_lamport + 1,
    }
}

/// Creates a room from the caller's signed `CreateRoom` envelope; the caller becomes owner.
/// 201 when created, 200 when this exact creation was already stored.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<RoomView>), ApiError> {
    let envelope = envelope_from_body(&headers, body)?;
    state.limit_address(&caller.address)?;
    // Either side may "create" a direct room the other already made: it is the same room.
    if let Ok(body) = dchat_protocol::Body::decode(envelope.body.as_slice())
        && body.kind == Kind::CreateRoom as i32
        && CreateRoom::decode(body.payload.as_slice()).is_ok_and(|p| p.kind == ProtoKind::Direct as i32)
        && let Ok(id) = RoomId::from_slice(&body.room)
        && let Some(room) = state.store.room(&id).await?
        && let Some(role) = state.store.role(&id, &caller.address).await?
    {
        return Ok((StatusCode::OK, Json(view(&room, Some(role)))));
    }
    let allowed = |k: Kind| (k == Kind::CreateRoom).then_some(()).ok_or("this endpoint takes a CreateRoom envelope");
    let ing = submit(&state, &caller, envelope, None, allowed).await?;
    let room =
        state.store.room(&ing.verified.room).await?.ok_or_else(|| ApiError::internal("room missing after create"))?;
    tracing::info!(target: "node::rooms", room = %room.id, owner = %caller.address, "room created");
    let status = if ing.fresh { StatusCode::CREATED } else { StatusCode::OK };
    let role = state.store.role(&room.id, &caller.address).await?;
    Ok((status, Json(view(&room, role))))
}

/// `GET /v1/rooms` query.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// `all` (the default), `main` (without the requests inbox) or `requests` (only it).
    pub inbox: Option<String>,
}

/// Lists the caller's rooms.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<RoomList>, ApiError> {
    let rooms = state.store.rooms_of(&caller.address).await?;
    let keep_requests = match q.inbox.as_deref() {
        None | Some("all") => None,
        Some("main") => Some(false),
        Some("requests") => Some(true),
        Some(_) => return Err(ApiError::bad_request("invalid_inbox", "inbox is all, main or requests")),
    };
    let requests: Vec<RoomId> = match keep_requests {
        None => Vec::new(),
        Some(_) => {
            super::social::request_rooms(&state, &caller.address).await?.into_iter().map(|r| r.room.id).collect()
        }
    };
    Ok(Json(RoomList {
        rooms: rooms
            .iter()
            .filter(|(r, _)| keep_requests.is_none_or(|want| requests.contains(&r.id) == want))
            .map(|(r, role)| view(r, Some(role.clone())))
            .collect(),
    }))
}

/// Reads one room, if the caller may.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Option<Caller>,
) -> Result<Json<RoomView>, ApiError> {
    let id = room_id(&id)?;
    match readable(&state, &id, caller.as_ref()).await {
        Ok((room, role)) => Ok(Json(view(&room, role))),
        // Anyone signed in may look at a room open to joins (open, token-gated, paid) before
        // joining it; its messages stay members-only.
        Err(e) => match state.store.room(&id).await? {
            Some(room) if room.policy != "invite_only" && caller.is_some() => Ok(Json(view(&room, None))),
            _ => Err(e),
        },
    }
}

/// Joins a public channel with the caller's signed `Join` envelope.
pub async fn join(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<RoomView>, ApiError> {
    let id = room_id(&id)?;
    let envelope = envelope_from_body(&headers, body)?;
    state.limit_address(&caller.address)?;
    let room = state.store.room(&id).await?.ok_or_else(room_not_found)?;
    if let Some(role) = state.store.role(&id, &caller.address).await? {
        return Ok(Json(view(&room, Some(role))));
    }
    let allowed = |k: Kind| (k == Kind::Join).then_some(()).ok_or("this endpoint takes a Join envelope");
    submit(&state, &caller, envelope, Some(&id), allowed).await?;
    Ok(Json(view(&room, Some("member".into()))))
}

/// Reply to a membership change.
#[derive(Debug, Serialize, Deserialize)]
pub struct ControlReply {
    /// Id of the stored control envelope.
    pub id: String,
    /// The room afterwards, with the caller's role (none after leaving).
    pub room: RoomView,
}

/// `POST /v1/rooms/{id}/{invites,leave,removals,roles,policy,keys}`: one signed control
/// envelope of the kind the path names. A change the caller's role does not allow is refused
/// (403 `role_forbidden`, `owner_stays`, ...) and not stored.
pub async fn control(
    state: AppState,
    id: String,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    kind: Kind,
) -> Result<(StatusCode, Json<ControlReply>), ApiError> {
    let id = room_id(&id)?;
    let envelope = envelope_from_body(&headers, body)?;
    state.limit_address(&caller.address)?;
    let allowed = move |k: Kind| (k == kind).then_some(()).ok_or("this endpoint takes another control kind");
    let ing = submit(&state, &caller, envelope, Some(&id), allowed).await?;
    let room = state.store.room(&id).await?.ok_or_else(room_not_found)?;
    let role = state.store.role(&id, &caller.address).await?;
    tracing::info!(target: "node::rooms", room = %id, by = %caller.address, kind = ?kind, "room changed");
    let status = if ing.fresh { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(ControlReply { id: to_hex(ing.verified.id), room: view(&room, role) })))
}

/// A member in `GET /v1/rooms/{id}/members`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberJson {
    /// EIP-55 address.
    pub address: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// X25519 keys of the member's live devices (private rooms wrap their key for these).
    pub box_keys: Vec<String>,
}

/// The current key epoch of a private room.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EpochJson {
    /// Epoch id (its `RotateKey` envelope's id).
    pub id: String,
    /// Its lamport clock.
    pub lamport: u64,
    /// Devices its key was wrapped for.
    pub box_keys: Vec<String>,
}

/// `GET /v1/rooms/{id}/members` reply.
#[derive(Debug, Serialize, Deserialize)]
pub struct MembersReply {
    /// The room.
    pub room: RoomView,
    /// Members, by address.
    pub members: Vec<MemberJson>,
    /// Current key epoch (private rooms).
    pub epoch: Option<EpochJson>,
    /// Whether a sender should start a new epoch first: there is none yet, someone left since
    /// it started, or the member devices differ from those it was wrapped for.
    pub rotate: bool,
}

/// Members, roles, their devices' box keys and the current key epoch.
pub async fn members(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Option<Caller>,
) -> Result<Json<MembersReply>, ApiError> {
    let (room, role) = readable(&state, &room_id(&id)?, caller.as_ref()).await?;
    let members = state.store.members(&room.id, state.now()).await?;
    let epoch = state.store.current_epoch(&room.id).await?;
    let rotate = if room.kind.is_private() {
        let devices: std::collections::BTreeSet<[u8; 32]> =
            members.iter().flat_map(|m| m.box_keys.iter().copied()).collect();
        match &epoch {
            None => true,
            Some((epoch_id, lamport, keys)) => {
                let departed = state.store.room_state(&room.id).await?.last_departure;
                departed.is_some_and(|d| d > (*lamport, *epoch_id))
                    || devices != keys.iter().copied().collect::<std::collections::BTreeSet<_>>()
            }
        }
    } else {
        false
    };
    Ok(Json(MembersReply {
        room: view(&room, role),
        members: members
            .into_iter()
            .map(|m| MemberJson {
                address: m.address.to_checksum(None),
                role: m.role,
                box_keys: m.box_keys.iter().map(to_hex).collect(),
            })
            .collect(),
        epoch: epoch.map(|(id, lamport, keys)| EpochJson {
            id: to_hex(id),
            lamport,
            box_keys: keys.iter().map(to_hex).collect(),
        }),
        rotate,
    }))
}

/// `GET /v1/rooms/{id}/keys` query.
#[derive(Debug, Deserialize)]
pub struct KeysQuery {
    /// The device's X25519 public key.
    pub box_key: String,
}

/// One wrapped epoch key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyJson {
    /// Epoch id.
    pub epoch: String,
    /// Who rotated (the HPKE `aad`), EIP-55.
    pub sender: String,
    /// The rotation's lamport clock.
    pub lamport: u64,
    /// HPKE encapsulated key.
    pub enc: String,
    /// HPKE ciphertext of the epoch key.
    pub ciphertext: String,
}

/// `GET /v1/rooms/{id}/keys` reply.
#[derive(Debug, Serialize, Deserialize)]
pub struct KeysReply {
    /// The epoch keys wrapped for the device, oldest first.
    pub keys: Vec<KeyJson>,
}

/// The room's epoch keys wrapped for one device; members of private rooms only.
pub async fn keys(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    ApiQuery(q): ApiQuery<KeysQuery>,
) -> Result<Json<KeysReply>, ApiError> {
    let (room, role) = readable(&state, &room_id(&id)?, Some(&caller)).await?;
    if role.is_none() || !room.kind.is_private() {
        return Err(ApiError::forbidden("not_a_member", "only members of a private room hold its keys"));
    }
    let box_key: [u8; 32] = from_hex(&q.box_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ApiError::bad_request("invalid_box_key", "box_key must be 0x + 64 hex digits"))?;
    let keys = state.store.epoch_keys(&room.id, &box_key).await?;
    Ok(Json(KeysReply {
        keys: keys
            .into_iter()
            .map(|k| KeyJson {
                epoch: to_hex(k.epoch),
                sender: k.sender.to_checksum(None),
                lamport: k.lamport,
                enc: to_hex(&k.enc),
                ciphertext: to_hex(&k.ciphertext),
            })
            .collect(),
    }))
}

/// A public channel in the directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelJson {
    /// The channel.
    #[serde(flatten)]
    pub room: RoomView,
    /// Member count.
    pub members: i64,
    /// Whether this is the node's default channel.
    pub default: bool,
}

/// `GET /v1/channels` reply.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChannelList {
    /// Public channels, newest first.
    pub channels: Vec<ChannelJson>,
}

/// The public channel directory (no sign-in needed).
pub async fn channels(State(state): State<AppState>) -> Result<Json<ChannelList>, ApiError> {
    let default = state.store.meta(crate::rooms::DEFAULT_CHANNEL_KEY).await?;
    let list = state.store.channels(200).await?;
    Ok(Json(ChannelList {
        channels: list
            .into_iter()
            .map(|(r, members)| ChannelJson {
                default: default.as_deref() == Some(r.id.to_string().as_str()),
                room: view(&r, None),
                members,
            })
            .collect(),
    }))
}

pub(crate) fn room_not_found() -> ApiError {
    ApiError::not_found("room_not_found", "no such room")
}

/// The room and the caller's role, when the caller may read it: members always, anyone for a
/// public channel. 404 for an unknown room, 401 without a session, 403 for a non-member.
pub(crate) async fn readable(
    state: &AppState,
    id: &RoomId,
    caller: Option<&Caller>,
) -> Result<(Room, Option<String>), ApiError> {
    let room = state.store.room(id).await?.ok_or_else(room_not_found)?;
    let role = match caller {
        Some(c) => state.store.role(id, &c.address).await?,
        None => None,
    };
    // A gated private room closes to a member whose pass lapsed; a channel stays readable by
    // anyone (its gate applies to posting).
    if let (Some(c), Some(r)) = (caller, &role)
        && room.kind.is_private()
    {
        crate::gates::admit(state, &room, &c.address, Some(r)).await?;
    }
    match (room.kind, &role, caller) {
        (RoomKind::Channel, _, _) | (_, Some(_), _) => Ok((room, role)),
        (_, None, None) => Err(ApiError::unauthorized("unauthorized", "sign in to read this room")),
        (_, None, Some(_)) => Err(ApiError::forbidden("not_a_member", "you are not a member of this room")),
    }
}
