//! History sync between two nodes over request-response.
//!
//! Each round, a node asks every connected peer for the count and XOR fingerprint of each room
//! it holds. For every room whose pair differs from its own, it pages through the peer's ids
//! (in display order, so a room's creation and joins come before what depends on them), fetches
//! the ones it lacks in small batches, and ingests them exactly as gossip would. Pulling only
//! what is missing means no duplicates; both sides pulling means both end with the union.
//! Every request and answer is bounded; a peer that answers with something it was not asked
//! for, or with an envelope that fails verification, is cut off.

use std::{sync::Arc, time::Duration};

use dchat_protocol::{B256, Envelope, RoomId, wire::Relay};
use libp2p::PeerId;
use prost::Message as _;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::P2p;
use crate::{
    api::AppState,
    ingest::{Origin, ingest, is_misbehaviour, relay_of},
    store::Summary,
};

/// Most room summaries in one answer.
pub const MAX_ROOMS: u32 = 1000;
/// Most ids in one answer.
pub const MAX_IDS: u32 = 1000;
/// Most envelopes fetched in one request (64 KiB each at most: 4 MiB per answer).
pub const MAX_FETCH: usize = 64;

/// A sync request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SyncRequest {
    /// Count and fingerprint of the peer's rooms in id order, a page at a time.
    Summaries {
        /// Start after this room (from the first when absent).
        after: Option<RoomId>,
        /// At most this many ([`MAX_ROOMS`] at most).
        limit: u32,
    },
    /// A page of a room's message ids in display order.
    Ids {
        /// Room.
        room: RoomId,
        /// Start after this id (from the beginning when absent).
        after: Option<B256>,
        /// At most this many ([`MAX_IDS`] at most).
        limit: u32,
    },
    /// Envelopes by id, each with its signer's certificate.
    Fetch {
        /// Ids ([`MAX_FETCH`] at most).
        ids: Vec<B256>,
    },
    /// Count and fingerprint of the peer's social envelopes (contacts, blocks, marks).
    SocialSummary,
    /// A page of the peer's social envelope ids in id order.
    SocialIds {
        /// Start after this id (from the first when absent).
        after: Option<B256>,
        /// At most this many ([`MAX_IDS`] at most).
        limit: u32,
    },
}

/// A sync answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SyncResponse {
    /// Room summaries.
    Summaries(Vec<Summary>),
    /// Message ids.
    Ids(Vec<B256>),
    /// Encoded [`Relay`] frames.
    Relays(Vec<Vec<u8>>),
    /// Count and XOR fingerprint of the social envelopes.
    SocialSummary {
        /// Envelopes held.
        count: u64,
        /// XOR of their ids.
        fingerprint: [u8; 32],
    },
    /// The request was refused.
    Refused(String),
}

/// Answers a peer's request from the store.
pub async fn serve(state: &AppState, request: SyncRequest) -> SyncResponse {
    let answer = async {
        Ok::<_, sqlx::Error>(match request {
            SyncRequest::Summaries { after, limit } => {
                SyncResponse::Summaries(state.store.summaries(after.as_ref(), limit.min(MAX_ROOMS)).await?)
            }
            SyncRequest::Ids { room, after, limit } => match state.store.ids(&room, after, limit.min(MAX_IDS)).await? {
                Some(ids) => SyncResponse::Ids(ids),
                None => SyncResponse::Refused("unknown cursor".into()),
            },
            SyncRequest::SocialSummary => {
                let (count, fingerprint) = state.store.social_summary().await?;
                SyncResponse::SocialSummary { count, fingerprint }
            }
            SyncRequest::SocialIds { after, limit } => {
                SyncResponse::Ids(state.store.social_ids(after, limit.min(MAX_IDS)).await?)
            }
            SyncRequest::Fetch { ids } if ids.len() > MAX_FETCH => {
                SyncResponse::Refused(format!("at most {MAX_FETCH} ids per fetch"))
            }
            SyncRequest::Fetch { ids } => {
                let mut relays = Vec::with_capacity(ids.len());
                for (raw, _) in state.store.envelopes(&ids).await? {
                    let envelope = Envelope::decode(raw.as_slice()).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                    relays.push(relay_of(state, envelope).await?.encode_to_vec());
                }
                SyncResponse::Relays(relays)
            }
        })
    };
    answer.await.unwrap_or_else(|e| {
        tracing::warn!(target: "node::sync", error = %e, "serving a sync request failed");
        SyncResponse::Refused("internal error".into())
    })
}

/// Why a round with a peer stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Transport or timeout; try again next round.
    #[error("request failed: {0}")]
    Request(String),
    /// The peer broke the protocol or sent invalid data; it gets cut off.
    #[error("peer misbehaved: {0}")]
    Misbehaved(String),
    /// Local store failure.
    #[error("store: {0}")]
    Store(#[from] sqlx::Error),
}

/// What a round fetched.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Rooms that differed.
    pub rooms: usize,
    /// Envelopes newly stored.
    pub stored: usize,
    /// Envelopes this node could not place yet (room or membership not synced); retried.
    pub deferred: usize,
}

/// Runs sync rounds until shutdown: every `interval`, and right after a new connection.
pub async fn run(state: AppState, p2p: P2p, wake: Arc<Notify>, interval: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
            _ = wake.notified() => {}
        }
        for peer in p2p.peers().await {
            match with_peer(&state, &p2p, peer).await {
                Ok(stats) if stats.stored > 0 || stats.deferred > 0 => {
                    tracing::info!(target: "node::sync", %peer, rooms = stats.rooms, stored = stats.stored, deferred = stats.deferred, "synced");
                }
                Ok(_) => {}
                Err(SyncError::Misbehaved(why)) => {
                    tracing::warn!(target: "node::sync", %peer, %why, "cutting off peer");
                    p2p.block(peer).await;
                }
                Err(e) => tracing::debug!(target: "node::sync", %peer, error = %e, "sync round failed"),
            }
        }
    }
}

/// One round with one peer.
pub async fn with_peer(state: &AppState, p2p: &P2p, peer: PeerId) -> Result<Stats, SyncError> {
    let mut stats = Stats::default();
    let mut after = None;
    loop {
        let request = SyncRequest::Summaries { after, limit: MAX_ROOMS };
        let theirs = match p2p.request(peer, request).await.map_err(SyncError::Request)? {
            SyncResponse::Summaries(s) if s.len() <= MAX_ROOMS as usize => s,
            SyncResponse::Summaries(_) => return Err(SyncError::Misbehaved("answered more rooms than asked".into())),
            other => return Err(unexpected(&other)),
        };
        for s in &theirs {
            let mine = state.store.summary(&s.room).await?;
            if mine.is_some_and(|m| (m.count, m.fingerprint) == (s.count, s.fingerprint)) {
                continue;
            }
            stats.rooms += 1;
            room(state, p2p, peer, &s.room, &mut stats).await?;
        }
        match theirs.last() {
            Some(last) if theirs.len() == MAX_ROOMS as usize => after = Some(last.room),
            _ => break,
        }
    }
    social(state, p2p, peer, &mut stats).await?;
    Ok(stats)
}

/// Reconciles social envelopes (contacts, blocks, notification and read marks) the same way as
/// a room: compare count and fingerprint, then page through the peer's ids and fetch what is
/// missing. Read marks of a room not synced yet are deferred to a later round.
async fn social(state: &AppState, p2p: &P2p, peer: PeerId, stats: &mut Stats) -> Result<(), SyncError> {
    let theirs = match p2p.request(peer, SyncRequest::SocialSummary).await.map_err(SyncError::Request)? {
        SyncResponse::SocialSummary { count, fingerprint } => (count, fingerprint),
        other => return Err(unexpected(&other)),
    };
    if state.store.social_summary().await? == theirs {
        return Ok(());
    }
    let mut after = None;
    loop {
        let request = SyncRequest::SocialIds { after, limit: MAX_IDS };
        let ids = match p2p.request(peer, request).await.map_err(SyncError::Request)? {
            SyncResponse::Ids(ids) if ids.len() <= MAX_IDS as usize => ids,
            SyncResponse::Ids(_) => return Err(SyncError::Misbehaved("answered more ids than asked".into())),
            other => return Err(unexpected(&other)),
        };
        let missing = state.store.missing_social(&ids).await?;
        for chunk in missing.chunks(MAX_FETCH) {
            fetch(state, p2p, peer, chunk, stats).await?;
        }
        if ids.len() < MAX_IDS as usize {
            return Ok(());
        }
        after = ids.last().copied();
    }
}

async fn room(state: &AppState, p2p: &P2p, peer: PeerId, room: &RoomId, stats: &mut Stats) -> Result<(), SyncError> {
    let mut after = None;
    loop {
        let request = SyncRequest::Ids { room: *room, after, limit: MAX_IDS };
        let ids = match p2p.request(peer, request).await.map_err(SyncError::Request)? {
            SyncResponse::Ids(ids) if ids.len() <= MAX_IDS as usize => ids,
            SyncResponse::Ids(_) => return Err(SyncError::Misbehaved("answered more ids than asked".into())),
            other => return Err(unexpected(&other)),
        };
        let missing = state.store.missing(&ids).await?;
        for chunk in missing.chunks(MAX_FETCH) {
            fetch(state, p2p, peer, chunk, stats).await?;
        }
        if ids.len() < MAX_IDS as usize {
            return Ok(());
        }
        after = ids.last().copied();
    }
}

async fn fetch(state: &AppState, p2p: &P2p, peer: PeerId, ids: &[B256], stats: &mut Stats) -> Result<(), SyncError> {
    let relays = match p2p.request(peer, SyncRequest::Fetch { ids: ids.to_vec() }).await.map_err(SyncError::Request)? {
        SyncResponse::Relays(r) if r.len() <= ids.len() => r,
        SyncResponse::Relays(_) => return Err(SyncError::Misbehaved("answered more envelopes than asked".into())),
        other => return Err(unexpected(&other)),
    };
    let mut control = Vec::new();
    let mut plain = Vec::new();
    for raw in relays {
        let relay =
            Relay::decode(raw.as_slice()).map_err(|e| SyncError::Misbehaved(format!("undecodable relay: {e}")))?;
        let envelope = relay.envelope.ok_or_else(|| SyncError::Misbehaved("relay without envelope".into()))?;
        let id = alloy::primitives::keccak256(&envelope.body);
        if !ids.contains(&id) {
            return Err(SyncError::Misbehaved("sent an envelope that was not asked for".into()));
        }
        let is_control = dchat_protocol::Body::decode(envelope.body.as_slice())
            .ok()
            .and_then(|b| dchat_protocol::Kind::try_from(b.kind).ok())
            .is_some_and(dchat_protocol::Kind::is_control);
        if is_control { control.push((envelope, relay.certificate)) } else { plain.push((envelope, relay.certificate)) }
    }
    // Room changes first and in order (a join must precede its member's messages); the rest of
    // the batch together, so the store commits it in one go.
    let mut outcomes = Vec::new();
    for (envelope, cert) in control {
        outcomes.push(ingest(state, envelope, cert.as_ref(), Origin::Peer).await);
    }
    outcomes.extend(
        futures::future::join_all(
            plain.iter().map(|(envelope, cert)| ingest(state, envelope.clone(), cert.as_ref(), Origin::Peer)),
        )
        .await,
    );
    for outcome in outcomes {
        match outcome {
            Ok(ing) if ing.fresh => stats.stored += 1,
            Ok(_) => {}
            Err(e) if is_misbehaviour(&e) => return Err(SyncError::Misbehaved(format!("{}: {}", e.code, e.message))),
            Err(_) => stats.deferred += 1,
        }
    }
    Ok(())
}

fn unexpected(r: &SyncResponse) -> SyncError {
    match r {
        SyncResponse::Refused(why) => SyncError::Request(format!("refused: {why}")),
        _ => SyncError::Misbehaved("answered a different request".into()),
    }
}
