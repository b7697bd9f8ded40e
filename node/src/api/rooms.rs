//! Rooms: create (the caller is owner), list mine, read one, join a public channel.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
};
use dchat_protocol::{Kind, RoomId};
use serde::{Deserialize, Serialize};

use super::{
    AppState,
    error::ApiError,
    extract::{Caller, room_id},
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
    let allowed = |k: Kind| (k == Kind::CreateRoom).then_some(()).ok_or("this endpoint takes a CreateRoom envelope");
    let ing = submit(&state, &caller, envelope, None, allowed).await?;
    let room =
        state.store.room(&ing.verified.room).await?.ok_or_else(|| ApiError::internal("room missing after create"))?;
    tracing::info!(target: "node::rooms", room = %room.id, owner = %caller.address, "room created");
    let status = if ing.fresh { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(view(&room, Some("owner".into())))))
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
