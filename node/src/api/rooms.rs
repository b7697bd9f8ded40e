//! Rooms: create (the caller is owner), list mine, read one, join a public channel.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use dchat_protocol::{Address, RoomId};
use serde::{Deserialize, Serialize};

use super::{
    AppState,
    error::ApiError,
    extract::{ApiJson, Caller, room_id},
};
use crate::store::{Room, RoomKind};

/// `POST /v1/rooms` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateRoom {
    /// Display name, 1 to 100 characters.
    pub name: String,
    /// `group` (private, default) or `channel` (public).
    #[serde(default = "default_kind")]
    pub kind: RoomKind,
    /// Initial members besides the caller.
    #[serde(default)]
    pub members: Vec<String>,
}

fn default_kind() -> RoomKind {
    RoomKind::Group
}

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
}

/// `GET /v1/rooms` reply.
#[derive(Debug, Serialize, Deserialize)]
pub struct RoomList {
    /// Rooms the caller belongs to.
    pub rooms: Vec<RoomView>,
}

fn view(room: &Room, role: Option<String>) -> RoomView {
    RoomView {
        id: room.id,
        name: room.name.clone(),
        kind: room.kind,
        owner: room.owner.to_checksum(None),
        created_at: room.created_at,
        role,
    }
}

/// Parses an address in any hex case; refuses mixed case with a bad checksum.
pub(crate) fn parse_address(raw: &str) -> Result<Address, ApiError> {
    let bad = || ApiError::bad_request("invalid_address", format!("{raw:?} is not an Ethereum address"));
    let hex = raw.strip_prefix("0x").ok_or_else(bad)?;
    let mixed = hex.bytes().any(|b| b.is_ascii_uppercase()) && hex.bytes().any(|b| b.is_ascii_lowercase());
    if mixed { Address::parse_checksummed(raw, None).map_err(|_| bad()) } else { raw.parse().map_err(|_| bad()) }
}

/// Creates a room with the caller as owner and any initial members.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateRoom>,
) -> Result<(StatusCode, Json<RoomView>), ApiError> {
    state.limit_address(&caller.address)?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request("invalid_name", "room name must be 1 to 100 printable characters"));
    }
    if req.members.len() > state.config.limits.max_initial_members {
        return Err(ApiError::bad_request(
            "too_many_members",
            format!("at most {} initial members", state.config.limits.max_initial_members),
        ));
    }
    let members = req.members.iter().map(|m| parse_address(m)).collect::<Result<Vec<_>, _>>()?;
    let room = Room {
        id: RoomId::random(),
        kind: req.kind,
        name: name.to_string(),
        owner: caller.address,
        created_at: state.now(),
        max_lamport: 0,
    };
    state.store.create_room(&room, &members).await?;
    tracing::info!(target: "node::rooms", room = %room.id, owner = %caller.address, "room created");
    Ok((StatusCode::CREATED, Json(view(&room, Some("owner".into())))))
}

/// Lists the caller's rooms.
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<RoomList>, ApiError> {
    let rooms = state.store.rooms_of(&caller.address).await?;
    Ok(Json(RoomList { rooms: rooms.iter().map(|(r, role)| view(r, Some(role.clone()))).collect() }))
}

/// Reads one room, if the caller may.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Option<Caller>,
) -> Result<Json<RoomView>, ApiError> {
    let (room, role) = readable(&state, &room_id(&id)?, caller.as_ref()).await?;
    Ok(Json(view(&room, role)))
}

/// Joins a public channel.
pub async fn join(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Json<RoomView>, ApiError> {
    state.limit_address(&caller.address)?;
    let id = room_id(&id)?;
    let room = state.store.room(&id).await?.ok_or_else(room_not_found)?;
    if let Some(role) = state.store.role(&id, &caller.address).await? {
        return Ok(Json(view(&room, Some(role))));
    }
    if room.kind != RoomKind::Channel {
        return Err(ApiError::forbidden("invite_required", "this room is private; ask a member to invite you"));
    }
    state.store.add_member(&id, &caller.address, state.now()).await?;
    Ok(Json(view(&room, Some("member".into()))))
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
    match (room.kind, &role, caller) {
        (RoomKind::Channel, _, _) | (_, Some(_), _) => Ok((room, role)),
        (_, None, None) => Err(ApiError::unauthorized("unauthorized", "sign in to read this room")),
        (_, None, Some(_)) => Err(ApiError::forbidden("not_a_member", "you are not a member of this room")),
    }
}
