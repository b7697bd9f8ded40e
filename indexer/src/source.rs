//! A client of the followed node's log API (`/v1/log*`), authenticated with the indexer key.

use std::time::Duration;

use dchat_protocol::RoomId;
use serde::{Deserialize, de::DeserializeOwned};

/// Why a log request failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The node could not be reached, or timed out.
    #[error("node unreachable: {0}")]
    Unreachable(String),
    /// The node refused the indexer key (401/403).
    #[error("the node refused the indexer key: {0}")]
    Refused(String),
    /// Any other error status.
    #[error("node answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Body, cut short.
        body: String,
    },
    /// An answer that does not parse.
    #[error("node answer does not parse: {0}")]
    Invalid(String),
}

/// One stored message of the node's log.
#[derive(Debug, Clone, Deserialize)]
pub struct LogEntry {
    /// Position in the node's log.
    pub seq: i64,
    /// Message id, `0x` hex.
    pub id: String,
    /// Room.
    pub room: RoomId,
    /// Kind number.
    pub kind: i32,
    /// When the node stored it, Unix ms.
    pub received_at: i64,
    /// The envelope (protobuf), `0x` hex.
    pub envelope: String,
}

/// A page of the log.
#[derive(Debug, Clone, Deserialize)]
pub struct LogPage {
    /// Entries in `seq` order.
    pub entries: Vec<LogEntry>,
    /// The `after` for the next page.
    pub next: i64,
    /// Whether more follow.
    pub has_more: bool,
}

/// A member and role.
#[derive(Debug, Clone, Deserialize)]
pub struct LogMember {
    /// Wallet, EIP-55.
    pub address: String,
    /// Role.
    pub role: String,
}

/// A room with its members.
#[derive(Debug, Clone, Deserialize)]
pub struct LogRoom {
    /// Id.
    pub id: RoomId,
    /// `group`, `channel` or `direct`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Policy.
    pub policy: String,
    /// Messages the node stores in it.
    pub count: i64,
    /// Members.
    pub members: Vec<LogMember>,
}

/// A page of rooms.
#[derive(Debug, Clone, Deserialize)]
pub struct LogRooms {
    /// Rooms in id order.
    pub rooms: Vec<LogRoom>,
    /// Next `after`, when more follow.
    pub next: Option<RoomId>,
}

/// The node's summary.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct LogSummary {
    /// Highest `seq`.
    pub max_seq: i64,
    /// Messages stored.
    pub count: i64,
    /// Rooms stored.
    pub rooms: i64,
}

/// The followed node.
#[derive(Debug, Clone)]
pub struct Source {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Source {
    /// The node at `base`, read with `key`.
    pub fn new(base: &str, key: String, timeout: Duration) -> Result<Self, SourceError> {
        let http =
            reqwest::Client::builder().timeout(timeout).build().map_err(|e| SourceError::Unreachable(e.to_string()))?;
        Ok(Self { http, base: base.trim_end_matches('/').to_string(), key })
    }

    /// The node's base URL (names this source in the cursor table).
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, SourceError> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .map_err(|e| SourceError::Unreachable(e.without_url().to_string()))?;
        let status = resp.status();
        if status.is_success() {
            return resp.json().await.map_err(|e| SourceError::Invalid(e.without_url().to_string()));
        }
        let body: String = resp.text().await.unwrap_or_default().chars().take(300).collect();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(SourceError::Refused(body));
        }
        Err(SourceError::Status { status: status.as_u16(), body })
    }

    /// Entries after `after`, at most `limit`, optionally of one room only.
    pub async fn log(&self, after: i64, limit: u32, room: Option<&RoomId>) -> Result<LogPage, SourceError> {
        let room = room.map(|r| format!("&room={r}")).unwrap_or_default();
        self.get(&format!("/v1/log?after={after}&limit={limit}{room}")).await
    }

    /// Highest `seq` and counts.
    pub async fn summary(&self) -> Result<LogSummary, SourceError> {
        self.get("/v1/log/summary").await
    }

    /// One room, `None` when the node does not have it.
    pub async fn room(&self, id: &RoomId) -> Result<Option<LogRoom>, SourceError> {
        match self.get(&format!("/v1/log/rooms/{id}")).await {
            Err(SourceError::Status { status: 404, .. }) => Ok(None),
            other => other.map(Some),
        }
    }

    /// A page of rooms after `after`.
    pub async fn rooms(&self, after: Option<&RoomId>, limit: u32) -> Result<LogRooms, SourceError> {
        let after = after.map(|r| format!("&after={r}")).unwrap_or_default();
        self.get(&format!("/v1/log/rooms?limit={limit}{after}")).await
    }
}
