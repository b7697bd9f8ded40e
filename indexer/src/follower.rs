//! The message follower: reads the node's log in `seq` order, mirrors the rooms it touches and
//! stores each page with the cursor in one transaction; every `reconcile_secs` it compares the
//! node's per-room counts with its own and refetches the rooms that come up short. Reconcile
//! runs in the same task, between two pages, so a room's member set is only ever written in log
//! order (a stale room snapshot never overwrites a newer one).
//!
//! The profile follower (optional) reads the gateway's profile feed into user names.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use dchat_protocol::{Bounds, Envelope, Kind, RoomId, ids::from_hex};
use prost::Message as _;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::{
    config::{FollowConfig, GatewayConfig},
    metrics::Metrics,
    now_ms,
    source::{LogEntry, LogPage, LogRoom, Source, SourceError},
    store::{NewMessage, Store},
};

/// Why a step of the follower failed (it retries with backoff).
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The node failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] sqlx::Error),
}

/// Whether a kind changes a room's members, roles or policy (create .. set policy).
fn is_room_control(kind: i32) -> bool {
    (Kind::CreateRoom as i32..=Kind::SetPolicy as i32).contains(&kind)
}

/// Decodes and checks one log entry (hash, signature, and that the node's columns match the
/// signed body). `None` for an entry that does not check: it is skipped and logged.
fn decode(entry: &LogEntry, public: bool) -> Option<NewMessage> {
    let bytes = from_hex(&entry.envelope).ok()?;
    let envelope = Envelope::decode(bytes.as_slice()).ok()?;
    let bounds = Bounds { max_envelope_bytes: usize::MAX, max_future_skew_ms: u64::MAX, max_lamport_jump: u64::MAX };
    let v = match envelope.open(&bounds, 0) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(target: "indexer::follow", seq = entry.seq, code = e.code(), "log entry does not verify; skipped");
            return None;
        }
    };
    if v.room != entry.room || from_hex(&entry.id).ok()? != v.id.as_slice() || v.kind as i32 != entry.kind {
        tracing::warn!(target: "indexer::follow", seq = entry.seq, "log entry disagrees with its envelope; skipped");
        return None;
    }
    let body = (public && v.kind == Kind::Text).then(|| String::from_utf8(v.body.payload.clone()).ok()).flatten();
    Some(NewMessage {
        id: v.id,
        seq: entry.seq,
        room: v.room,
        sender: v.sender,
        kind: entry.kind,
        lamport: i64::try_from(v.body.lamport).unwrap_or(i64::MAX),
        timestamp_ms: i64::try_from(v.body.timestamp_ms).unwrap_or(i64::MAX),
        received_at: entry.received_at,
        body,
    })
}

/// The follower's state.
#[derive(Debug)]
pub struct Follower {
    source: Source,
    store: Store,
    metrics: Arc<Metrics>,
    config: FollowConfig,
    /// The next page, requested while the current one is being stored: (its `after`, the
    /// request). Used only when the cursor turns out to be that `after`.
    prefetch: std::sync::Mutex<Option<(i64, Prefetch)>>,
}

type Prefetch = tokio::task::JoinHandle<Result<LogPage, SourceError>>;

/// Decodes entries, on every core when there are many (signature checks dominate).
async fn decode_all(entries: &[LogEntry], public: &HashMap<RoomId, bool>) -> Vec<NewMessage> {
    let work: Vec<(LogEntry, bool)> =
        entries.iter().map(|e| (e.clone(), public.get(&e.room).copied().unwrap_or(false))).collect();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if work.len() < 64 || cores == 1 {
        return work.iter().filter_map(|(e, p)| decode(e, *p)).collect();
    }
    let size = work.len().div_ceil(cores);
    let mut parts = Vec::new();
    let mut rest = work;
    while !rest.is_empty() {
        let tail = rest.split_off(size.min(rest.len()));
        let chunk = std::mem::replace(&mut rest, tail);
        parts.push(tokio::task::spawn_blocking(move || {
            chunk.iter().filter_map(|(e, p)| decode(e, *p)).collect::<Vec<_>>()
        }));
    }
    let mut out = Vec::with_capacity(entries.len());
    for part in parts {
        match part.await {
            Ok(v) => out.extend(v),
            Err(e) => tracing::error!(target: "indexer::follow", error = %e, "a decoding task failed"),
        }
    }
    out
}

impl Follower {
    /// A follower of `source` into `store`.
    pub fn new(source: Source, store: Store, metrics: Arc<Metrics>, config: FollowConfig) -> Self {
        Self { source, store, metrics, config, prefetch: std::sync::Mutex::new(None) }
    }

    fn cursor_name(&self) -> String {
        format!("node:{}", self.source.base())
    }

    /// Decodes entries and stores them with the rooms they need (fetched when unknown or when
    /// the page changes them); moves the cursor to `cursor` when given. New rows.
    async fn store_entries(&self, entries: &[LogEntry], cursor: Option<i64>) -> Result<u64, FollowError> {
        let touched: BTreeSet<RoomId> = entries.iter().map(|e| e.room).collect();
        let touched: Vec<RoomId> = touched.into_iter().collect();
        let known = self.store.known_rooms(&touched).await?;
        let changed: BTreeSet<RoomId> = entries.iter().filter(|e| is_room_control(e.kind)).map(|e| e.room).collect();
        let mut rooms: Vec<LogRoom> = Vec::new();
        for id in touched.iter().filter(|r| !known.contains(r) || changed.contains(r)) {
            if let Some(room) = self.source.room(id).await? {
                rooms.push(room);
            }
        }
        let mut public: HashMap<RoomId, bool> = rooms.iter().map(|r| (r.id, r.kind == "channel")).collect();
        for id in &touched {
            if !public.contains_key(id) {
                let is_public = self.store.room(id).await?.is_some_and(|r| !r.is_private());
                public.insert(*id, is_public);
            }
        }
        let messages = decode_all(entries, &public).await;
        let name = self.cursor_name();
        let fresh = self.store.apply(cursor.map(|c| (name.as_str(), c)), &messages, &rooms, now_ms()).await?;
        Ok(fresh)
    }

    /// Reads and stores one page; whether more is waiting.
    pub async fn step(&self) -> Result<bool, FollowError> {
        let cursor = self.store.cursor(&self.cursor_name()).await?;
        let ready = self.prefetch.lock().ok().and_then(|mut p| p.take());
        let page = match ready {
            Some((after, request)) if after == cursor => match request.await {
                Ok(page) => page?,
                Err(_) => self.source.log(cursor, self.config.batch, None).await?,
            },
            other => {
                if let Some((_, request)) = other {
                    request.abort();
                }
                self.source.log(cursor, self.config.batch, None).await?
            }
        };
        if page.has_more {
            let (source, next, batch) = (self.source.clone(), page.next, self.config.batch);
            let request = tokio::spawn(async move { source.log(next, batch, None).await });
            if let Ok(mut p) = self.prefetch.lock() {
                *p = Some((next, request));
            }
        }
        let fresh = self.store_entries(&page.entries, Some(page.next)).await?;
        self.metrics.cursor.store(page.next, Ordering::Relaxed);
        self.metrics.node_max_seq.fetch_max(page.next, Ordering::Relaxed);
        self.metrics.add_rows(fresh);
        if !page.entries.is_empty() {
            tracing::debug!(target: "indexer::follow", after = cursor, next = page.next, fresh, "stored a page");
        }
        Ok(page.has_more)
    }

    /// One reconcile pass: mirrors every room with its members, then refetches each room the
    /// node holds more messages of than the index does. Returns the messages it added.
    pub async fn reconcile(&self) -> Result<u64, FollowError> {
        let summary = self.source.summary().await?;
        self.metrics.node_max_seq.store(summary.max_seq, Ordering::Relaxed);
        let mut node_counts = Vec::new();
        let mut after: Option<RoomId> = None;
        loop {
            let page = self.source.rooms(after.as_ref(), 200).await?;
            for room in &page.rooms {
                self.store.put_room(room, now_ms()).await?;
                node_counts.push((room.id, room.count));
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let local = self.store.room_counts().await?;
        let mut added = 0;
        for (room, count) in node_counts {
            let have = local.get(&room).copied().unwrap_or(0);
            if have >= count {
                continue;
            }
            tracing::info!(target: "indexer::reconcile", %room, node = count, index = have, "room is short; refetching");
            let mut after = 0;
            loop {
                let page = self.source.log(after, self.config.batch, Some(&room)).await?;
                added += self.store_entries(&page.entries, None).await?;
                after = page.next;
                if !page.has_more {
                    break;
                }
            }
        }
        self.metrics.reconciled_total.fetch_add(added, Ordering::Relaxed);
        self.metrics.reconcile_passes.fetch_add(1, Ordering::Relaxed);
        Ok(added)
    }

    /// Follows until `shutdown`: pages as fast as the log has them, polls when caught up,
    /// backs off on errors and reconciles every `reconcile_secs` (and once at start).
    pub async fn run(self, shutdown: CancellationToken) {
        let reconcile_every = Duration::from_secs(self.config.reconcile_secs);
        let mut last_reconcile: Option<Instant> = None;
        let mut last_summary = Instant::now();
        let mut backoff = Duration::from_millis(self.config.retry_ms);
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let due = last_reconcile.is_none_or(|at| at.elapsed() >= reconcile_every);
            let result = if due {
                last_reconcile = Some(Instant::now());
                self.reconcile().await.map(|added| {
                    if added > 0 {
                        tracing::info!(target: "indexer::reconcile", added, "reconcile stored missing messages");
                    }
                    true
                })
            } else {
                self.step().await
            };
            let pause = match result {
                Ok(more) => {
                    backoff = Duration::from_millis(self.config.retry_ms);
                    if more {
                        if last_summary.elapsed() >= Duration::from_secs(2)
                            && let Ok(s) = self.source.summary().await
                        {
                            self.metrics.node_max_seq.store(s.max_seq, Ordering::Relaxed);
                            last_summary = Instant::now();
                        }
                        Duration::ZERO
                    } else {
                        Duration::from_millis(self.config.poll_ms)
                    }
                }
                Err(e) => {
                    self.metrics.errors_total.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(target: "indexer::follow", error = %e, retry_in_ms = backoff.as_millis() as u64, "follow step failed");
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    wait
                }
            };
            if !pause.is_zero() {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct Feed {
    profiles: Vec<FeedProfile>,
    next_updated_after: i64,
    has_more: bool,
}

#[derive(Debug, Deserialize)]
struct FeedProfile {
    address: String,
    linked: bool,
    profile: Option<FeedName>,
}

#[derive(Debug, Deserialize)]
struct FeedName {
    name: Option<String>,
}

/// Follows the gateway's profile feed into user names until `shutdown`.
pub async fn follow_profiles(config: GatewayConfig, store: Store, http: reqwest::Client, shutdown: CancellationToken) {
    let base = config.url.trim_end_matches('/').to_string();
    let source = format!("gateway:{base}");
    loop {
        let more = match profiles_page(&base, &source, &store, &http).await {
            Ok(more) => more,
            Err(e) => {
                tracing::warn!(target: "indexer::profiles", error = %e, "reading the gateway's profile feed failed");
                false
            }
        };
        if !more {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(config.poll_secs)) => {}
            }
        } else if shutdown.is_cancelled() {
            return;
        }
    }
}

async fn profiles_page(base: &str, source: &str, store: &Store, http: &reqwest::Client) -> eyre::Result<bool> {
    let after = store.cursor(source).await?;
    let feed: Feed = http
        .get(format!("{base}/v1/profiles?updated_after={after}&limit=500"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let profiles: Vec<_> = feed
        .profiles
        .iter()
        .filter_map(|p| {
            let who = p.address.parse().ok()?;
            let name = p.profile.as_ref().and_then(|n| n.name.clone()).filter(|_| p.linked);
            Some((who, name))
        })
        .collect();
    store.put_profiles(source, &profiles, feed.next_updated_after, now_ms()).await?;
    Ok(feed.has_more)
}
