//! The one path every envelope takes into the store, whether a client posted it, a peer
//! gossiped it or history sync fetched it: verify, check the delegation and the room rules,
//! store atomically with its effect on the room, then fan out to live subscribers.

use dchat_protocol::{
    Delegation, DelegationError, Envelope, SiweError, SiweMessage,
    control::{Control, Op, Void},
    e2e::Sealed,
    envelope::Verified,
    wire::{Certificate, Relay},
};
use prost::Message as _;

use crate::{
    api::{
        ApiError, AppState,
        messages::{Event, MessageView},
    },
    hub::Frame,
    store::{Effect, RoomKind},
};

/// Where an envelope comes from; the checks differ a little.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Posted by a signed-in client: the delegation must be live now, the timestamp fresh.
    Client,
    /// Relayed or synced by a peer: the delegation must cover the message's own timestamp.
    Peer,
}

/// What happened to an accepted envelope.
#[derive(Debug, Clone)]
pub struct Ingested {
    /// The checked envelope.
    pub verified: Verified,
    /// Newly stored (false for a repeat, or for ephemeral kinds).
    pub fresh: bool,
    /// Kept in the store (false for ephemeral kinds).
    pub stored: bool,
}

/// Checks and stores one envelope. `certificate` is the signer's delegation when it travels
/// with the envelope (from peers); clients' delegations are already stored at sign-in.
pub async fn ingest(
    state: &AppState,
    envelope: Envelope,
    certificate: Option<&Certificate>,
    origin: Origin,
) -> Result<Ingested, ApiError> {
    let v = envelope.open(&state.config.limits.envelope, state.now_ms())?;
    ingest_verified(state, v, certificate, origin).await
}

/// [`ingest`] for an envelope already opened (hash, signature and bounds checked).
pub async fn ingest_verified(
    state: &AppState,
    v: Verified,
    certificate: Option<&Certificate>,
    origin: Origin,
) -> Result<Ingested, ApiError> {
    let raw = v.envelope.encode_to_vec();
    let limits = &state.config.limits;
    let now_ms = state.now_ms();
    if origin == Origin::Client && v.body.timestamp_ms + limits.max_past_ms < now_ms {
        return Err(ApiError::bad_request(
            "envelope_too_old",
            format!("timestamp is more than {} ms in the past", limits.max_past_ms),
        ));
    }
    if let Some(cert) = certificate {
        accept_certificate(state, &v, cert).await?;
    }
    check_delegation(state, &v, now_ms, origin).await?;
    if crate::social::handles(v.kind) {
        return crate::social::ingest(state, v, &raw, origin).await;
    }

    let effect_create;
    let mut effect = Effect::None;
    let position = (v.body.lamport, v.id);
    if v.kind.is_control() {
        if origin == Origin::Client {
            crate::social::refuse_blocked(state, &v)?;
        }
        let control = Control::decode(v.id, &v.body)
            .map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?
            .ok_or_else(|| ApiError::bad_request("unsupported_kind", "unknown room control kind"))?;
        if let Op::Create(creation) = &control.op {
            // A room's first message: its lamport clock starts the room's.
            limits.envelope.check_lamport(v.body.lamport, 0)?;
            if let Some(existing) = state.store.room(&v.room).await? {
                // Only the creator can make a group or channel id, and either party a direct
                // room's; a second, different creation changes nothing.
                let second_direct = existing.kind == RoomKind::Direct
                    && creation.kind == dchat_protocol::room::RoomKind::Direct
                    && origin == Origin::Peer;
                if !second_direct && (existing.owner != v.sender || !state.store.has_message(&v.id).await?) {
                    return Err(ApiError::new(
                        axum::http::StatusCode::CONFLICT,
                        "room_exists",
                        "a room with this id already exists",
                    ));
                }
            }
            effect_create = creation.clone();
            effect = Effect::Create(&effect_create);
        } else {
            let room = state.store.room(&v.room).await?.ok_or_else(crate::api::rooms::room_not_found)?;
            limits.envelope.check_lamport(v.body.lamport, room.max_lamport)?;
            match origin {
                // Refuse a client's operation that would be void at its place in the room's
                // order, so the caller learns why and nothing is stored.
                Origin::Client => {
                    state.store.check_control(&v.room, &control).await?.map_err(void_error)?;
                    if matches!(control.op, Op::Join) {
                        crate::gates::admit(state, &room, &v.sender, None).await?;
                    }
                }
                // A peer's may be void here and now yet stand in the room's order (it is kept and
                // the replay decides); strangers' operations other than joins are not kept.
                Origin::Peer => {
                    let room_state = state.store.room_state(&v.room).await?;
                    let standing = room_state.members.contains_key(&v.sender)
                        || room_state.former.contains_key(&v.sender)
                        || matches!(control.op, Op::Join);
                    if !standing {
                        return Err(ApiError::forbidden("not_a_member", "you are not a member of this room"));
                    }
                }
            }
        }
    } else {
        let room = state.store.room(&v.room).await?.ok_or_else(crate::api::rooms::room_not_found)?;
        let role = state.store.role(&v.room, &v.sender).await?;
        let member = role.is_some();
        // A peer may relay what a former member posted before leaving.
        let was_member = origin == Origin::Peer
            && !member
            && state.store.departure(&v.room, &v.sender).await?.is_some_and(|left| position < left);
        if !member && !was_member {
            return Err(ApiError::forbidden("not_a_member", "join or be invited to this room before posting"));
        }
        if origin == Origin::Client {
            crate::gates::admit(state, &room, &v.sender, role.as_deref()).await?;
        }
        limits.envelope.check_lamport(v.body.lamport, room.max_lamport)?;
        if room.kind.is_private() && dchat_protocol::e2e::is_sealed_kind(v.kind) {
            let epoch = Sealed::decode(v.body.payload.as_slice()).ok().and_then(|s| s.epoch_id()).ok_or_else(|| {
                ApiError::bad_request(
                    "not_encrypted",
                    "messages in group and direct rooms must be sealed (protobuf Sealed) under a room key epoch",
                )
            })?;
            if !state.store.has_epoch(&v.room, &epoch).await? {
                return Err(ApiError::new(
                    axum::http::StatusCode::CONFLICT,
                    "unknown_epoch",
                    "the message is sealed under a key epoch this room does not have (rotate the key first)",
                ));
            }
        }
    }

    // Whoever blocked the sender does not get its messages live (room changes still go out).
    let (sender, content) = (v.sender, !v.kind.is_control());
    let blocked = |a: &dchat_protocol::Address| content && state.social.blocks(a, &sender);
    if v.kind.is_ephemeral() {
        crate::social::typing(state, &v)?;
        state.hub.publish_except(&v.room, &frame(&v), blocked);
        return Ok(Ingested { verified: v, fresh: false, stored: false });
    }
    let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
    let fresh = state.store.insert_message(&v, &raw, now, effect, origin == Origin::Client).await?;
    if fresh {
        state.hub.publish_except(&v.room, &frame(&v), blocked);
        if v.kind.is_control() {
            evict_non_members(state, &v.room).await?;
        }
        crate::social::after_message(state, &v).await;
    }
    Ok(Ingested { verified: v, fresh, stored: true })
}

/// After a membership change in a private room, live subscriptions of those no longer members
/// end (they get an `unsubscribed` frame).
async fn evict_non_members(state: &AppState, room: &dchat_protocol::RoomId) -> Result<(), ApiError> {
    let Some(r) = state.store.room(room).await? else { return Ok(()) };
    if !r.kind.is_private() {
        return Ok(());
    }
    let members: std::collections::HashSet<dchat_protocol::Address> =
        state.store.members(room, 0).await?.into_iter().map(|m| m.address).collect();
    let frame: Frame = serde_json::to_string(&crate::api::ws::ServerFrame::Unsubscribed { rooms: vec![*room] })
        .unwrap_or_default()
        .into();
    state.hub.evict(room, |a| !members.contains(a), &frame);
    Ok(())
}

/// A void operation from a client, as an API error.
fn void_error(v: Void) -> ApiError {
    use axum::http::StatusCode;
    let status = match v {
        Void::NoRoom | Void::TargetNotMember => StatusCode::NOT_FOUND,
        Void::Exists | Void::AlreadyMember => StatusCode::CONFLICT,
        Void::NotEncrypted => StatusCode::BAD_REQUEST,
        Void::NotMember | Void::Forbidden | Void::InviteRequired | Void::OwnerStays | Void::DirectRoom => {
            StatusCode::FORBIDDEN
        }
    };
    ApiError::new(status, v.code(), v.to_string())
}

/// The serialized live event for a message.
fn frame(v: &Verified) -> Frame {
    let event = Event::Message { message: MessageView::from_parts(v.id, &v.envelope, &v.body) };
    serde_json::to_string(&event).unwrap_or_default().into()
}

/// Checks a delegation certificate that travelled with an envelope and stores it.
async fn accept_certificate(state: &AppState, v: &Verified, cert: &Certificate) -> Result<(), ApiError> {
    // Every gossiped envelope carries its signer's certificate; one already stored was checked
    // when it was stored (the delegation's time window is checked against this message next).
    if state.store.has_certificate(v.device_key.as_slice(), &v.sender, &cert.message, &cert.signature).await? {
        return Ok(());
    }
    let at = time::OffsetDateTime::from_unix_timestamp(i64::try_from(v.body.timestamp_ms / 1000).unwrap_or(0))
        .map_err(|_| ApiError::bad_request("envelope_malformed", "timestamp out of range"))?;
    let skew = time::Duration::seconds(state.config.auth.clock_skew_secs);
    let d = match Delegation::verify(&cert.message, &cert.signature, at, skew) {
        Ok(d) => d,
        // A contract wallet's certificate needs the chain; without it this node cannot tell.
        Err(DelegationError::Siwe(SiweError::SignatureInvalid { .. } | SiweError::SignatureMalformed(_))) => {
            let msg = SiweMessage::parse(&cert.message)?;
            msg.check(&dchat_protocol::VerifyOpts { skew, ..dchat_protocol::VerifyOpts::at(at) })?;
            let valid = match &state.config.rpc_url {
                Some(rpc) => crate::chain::erc1271_valid(rpc, &msg, &cert.signature).await.unwrap_or(false),
                None => false,
            };
            if !valid {
                return Err(ApiError::forbidden(
                    "delegation_unverifiable",
                    "the certificate is not signed by the wallet's key and no chain confirms it",
                ));
            }
            Delegation::from_verified(&msg, &cert.signature)?.ok_or(DelegationError::NoDeviceKey)?
        }
        Err(e) => return Err(e.into()),
    };
    if d.wallet != v.sender || d.device_key != v.device_key {
        return Err(ApiError::forbidden("certificate_mismatch", "the certificate delegates another key or wallet"));
    }
    if !state.store.put_delegation(&d, state.now()).await? {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "device_key_taken",
            "the signing device key belongs to another wallet",
        ));
    }
    Ok(())
}

/// A device announcement from a peer: a wallet's delegation, valid now and listing a box key,
/// stored so private rooms can wrap their keys for the device before it sends anything.
pub async fn accept_announcement(state: &AppState, cert: &Certificate) -> Result<(), ApiError> {
    let skew = time::Duration::seconds(state.config.auth.clock_skew_secs);
    let d = Delegation::verify(&cert.message, &cert.signature, state_now(state), skew)?;
    if d.box_key.is_none() {
        return Err(ApiError::bad_request("announcement_without_box_key", "a device announcement lists a box key"));
    }
    if d.expires_at - d.not_before > state.config.auth.max_delegation_secs {
        return Err(ApiError::bad_request("delegation_too_long", "the delegation lasts longer than this node accepts"));
    }
    if !state.store.put_delegation(&d, state.now()).await? {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "device_key_taken",
            "the signing device key belongs to another wallet",
        ));
    }
    Ok(())
}

fn state_now(state: &AppState) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(state.now()).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// The device key must be delegated by the sender, and the delegation must cover the
/// message's timestamp (and, for clients, now).
async fn check_delegation(state: &AppState, v: &Verified, now_ms: u64, origin: Origin) -> Result<(), ApiError> {
    let delegations = state.store.delegations(&v.device_key).await?;
    let Some((wallet, _, _)) = delegations.first() else {
        return Err(ApiError::forbidden(
            "device_not_delegated",
            "the signing device key is not delegated by any wallet; sign in with it listed in the SIWE resources",
        ));
    };
    if *wallet != v.sender {
        return Err(ApiError::forbidden(
            "device_not_delegated",
            "the signing device key is delegated by another wallet",
        ));
    }
    let skew = state.config.auth.clock_skew_secs;
    let now = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
    let at = i64::try_from(v.body.timestamp_ms / 1000).unwrap_or(i64::MAX);
    // Any of the device's delegations may cover the message; clients also need one live now.
    let valid = delegations.iter().any(|(_, not_before, expires_at)| {
        let covers_at = at + skew >= *not_before && at - skew < *expires_at;
        let live_now = origin == Origin::Peer || now - skew < *expires_at;
        covers_at && live_now
    });
    if !valid {
        return Err(ApiError::forbidden("delegation_expired", "the device key's delegation is not valid at this time"));
    }
    Ok(())
}

/// An envelope with its signer's certificate, ready to send to peers.
pub async fn relay_of(state: &AppState, envelope: Envelope) -> Result<Relay, sqlx::Error> {
    let at = dchat_protocol::Body::decode(envelope.body.as_slice())
        .map(|b| i64::try_from(b.timestamp_ms / 1000).unwrap_or(i64::MAX))
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let certificate = state.store.certificate(&envelope.signer, at, state.config.auth.clock_skew_secs).await?;
    Ok(Relay { envelope: Some(envelope), certificate })
}

/// Whether a refusal means the sender misbehaved (as opposed to this node lacking context,
/// such as a room or membership it has not synced yet).
pub fn is_misbehaviour(err: &ApiError) -> bool {
    // Clock differences, keys taken on one node and not another, and certificates this node
    // cannot check are not the sender's fault either.
    !matches!(
        err.code,
        "room_not_found"
            | "not_a_member"
            | "invite_required"
            | "room_exists"
            | "internal"
            | "envelope_lamport_jump"
            | "envelope_clock_skew"
            | "delegation_expired"
            | "device_key_taken"
            | "delegation_unverifiable"
            | "chain_unavailable"
            | "unknown_epoch"
            | "gate_not_met"
            | "delegation_too_long"
            | "siwe_expired"
            | "siwe_not_yet_valid"
            | "rate_limited"
            | "blocked"
            | "presence_hidden"
            | "presence_stale"
            | "presence_full"
            | "typing_full"
    ) && err.status.is_client_error()
}
