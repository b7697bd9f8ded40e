//! `GET /v1/ws`: live room streams.
//!
//! Client frames: `{"type":"subscribe","rooms":[..]}`, `{"type":"unsubscribe","rooms":[..]}`,
//! `{"type":"ping"}`. Server frames: `subscribed`, `unsubscribed`, `message`, `error`, `pong`.
//! Close codes: 4001 session expired, 4008 too slow (outbound queue full), 1001 node shutting
//! down, 1003 binary frame received.

use axum::{
    extract::{
        State,
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection},
    },
    response::{IntoResponse, Response},
};
use dchat_protocol::RoomId;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::time::Duration;

use tokio::{sync::mpsc, time::timeout};

use super::{AppState, error::ApiError, extract::Caller, rooms::readable};
use crate::hub::Frame;

/// Subprotocol the server speaks; browsers pass the token as a second `bearer.<token>` entry.
pub const SUBPROTOCOL: &str = "dchat.v1";
/// Close code: the session's token expired.
pub const CLOSE_EXPIRED: u16 = 4001;
/// Close code: the client did not read fast enough.
pub const CLOSE_SLOW: u16 = 4008;
/// A write that makes no progress for this long means the peer is gone: drop it.
const WRITE_STALL: Duration = Duration::from_secs(60);
/// How long the close frame may wait behind data the client has not read yet.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Read buffer of a connection. Clients send only small control frames; a larger one grows the
/// buffer as needed. (tungstenite's default, 128 KiB, is allocated and zeroed per connection, and
/// zeroed again on every poll: an idle connection held 141 kB.)
const READ_BUFFER: usize = 4 * 1024;
/// Most queued frames written together before one flush.
const WRITE_BATCH: usize = 64;

/// A frame from the client.
#[derive(Debug, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Follow rooms.
    Subscribe {
        /// Room ids.
        rooms: Vec<String>,
    },
    /// Stop following rooms.
    Unsubscribe {
        /// Room ids.
        rooms: Vec<String>,
    },
    /// Keep-alive.
    Ping,
}

/// A control frame from the server (messages are [`super::messages::Event`]).
#[derive(Debug, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Rooms now followed.
    Subscribed {
        /// Room ids.
        rooms: Vec<RoomId>,
    },
    /// Rooms no longer followed.
    Unsubscribed {
        /// Room ids.
        rooms: Vec<RoomId>,
    },
    /// A refused request; the connection stays open.
    Error {
        /// Stable code.
        error: String,
        /// Human message.
        message: String,
        /// The room concerned, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
    },
    /// Reply to ping.
    Pong,
}

/// Upgrades to a WebSocket. Anonymous connections may follow public channels only.
pub async fn upgrade(
    State(state): State<AppState>,
    caller: Option<Caller>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return ApiError::bad_request("websocket_upgrade_required", e.body_text()).into_response(),
    };
    let queue = state.config.limits.ws_queue;
    ws.protocols([SUBPROTOCOL])
        .max_message_size(64 * 1024)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| serve(state, caller, socket, queue))
}

async fn serve(state: AppState, caller: Option<Caller>, socket: WebSocket, queue: usize) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Frame>(queue);
    let reg = state.hub.register(tx.clone(), caller.as_ref().map(|c| c.address));
    let expires_in = caller.as_ref().map(|c| c.claims.exp - state.now()).unwrap_or(i64::MAX / 4).max(0);
    let expiry = tokio::time::sleep(Duration::from_secs(expires_in.unsigned_abs()));
    tokio::pin!(expiry);

    let close = loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => break Some((1001, "node shutting down")),
            _ = reg.overflow.cancelled() => break Some((CLOSE_SLOW, "too slow: outbound queue full")),
            _ = &mut expiry => break Some((CLOSE_EXPIRED, "session expired")),
            Some(frame) = rx.recv() => {
                // A send blocks while the client's socket is full; overflow and shutdown still win.
                tokio::select! {
                    sent = timeout(WRITE_STALL, write_queued(&mut sink, &frame, &mut rx)) => {
                        if !matches!(sent, Ok(Ok(()))) {
                            break None;
                        }
                    }
                    _ = reg.overflow.cancelled() => break Some((CLOSE_SLOW, "too slow: outbound queue full")),
                    _ = state.shutdown.cancelled() => break Some((1001, "node shutting down")),
                }
            }
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let reply = handle(&state, caller.as_ref(), &reg, &text).await;
                    for frame in reply {
                        // Replies share the bounded queue with messages.
                        if tx.try_send(frame).is_err() {
                            reg.overflowed();
                        }
                    }
                }
                Some(Ok(Message::Binary(_))) => break Some((1003, "binary frames are not supported")),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                Some(Ok(_)) => {}
            }
        }
    };
    if let Some((code, reason)) = close {
        let frame = CloseFrame { code, reason: reason.into() };
        let _ = timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
    }
    drop(reg);
}

/// Writes `first` and the frames already queued behind it (up to [`WRITE_BATCH`]), then flushes
/// once: a burst costs one write to the socket instead of one per frame.
async fn write_queued(
    sink: &mut futures::stream::SplitSink<WebSocket, Message>,
    first: &Frame,
    rx: &mut mpsc::Receiver<Frame>,
) -> Result<(), axum::Error> {
    sink.feed(Message::Text(first.clone())).await?;
    for _ in 1..WRITE_BATCH {
        let Ok(next) = rx.try_recv() else { break };
        sink.feed(Message::Text(next)).await?;
    }
    sink.flush().await
}

fn frame(f: &ServerFrame) -> Frame {
    serde_json::to_string(f).unwrap_or_default().into()
}

fn error_frame(e: &ApiError, room: Option<&str>) -> Frame {
    frame(&ServerFrame::Error { error: e.code.into(), message: e.message.clone(), room: room.map(str::to_string) })
}

async fn handle(state: &AppState, caller: Option<&Caller>, reg: &crate::hub::Registration, text: &str) -> Vec<Frame> {
    let parsed: ClientFrame = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => return vec![error_frame(&ApiError::bad_request("invalid_frame", e.to_string()), None)],
    };
    match parsed {
        ClientFrame::Ping => vec![frame(&ServerFrame::Pong)],
        ClientFrame::Subscribe { rooms } => {
            let mut out = Vec::new();
            let mut ok = Vec::new();
            for raw in &rooms {
                let result = async {
                    let id = super::extract::room_id(raw)?;
                    // The wallet's own social id is no room: following it brings the wallet's
                    // contact, notification, presence and read-mark events.
                    if caller.is_none_or(|c| dchat_protocol::social::social_room(&c.address) != id) {
                        readable(state, &id, caller).await?;
                    }
                    if !reg.is_subscribed(&id) && reg.count() >= state.config.limits.ws_max_subscriptions {
                        return Err(ApiError::bad_request("too_many_subscriptions", "subscription limit reached"));
                    }
                    Ok(id)
                }
                .await;
                match result {
                    Ok(id) => {
                        reg.subscribe(id);
                        ok.push(id);
                    }
                    Err(e) => out.push(error_frame(&e, Some(raw))),
                }
            }
            if !ok.is_empty() || out.is_empty() {
                out.insert(0, frame(&ServerFrame::Subscribed { rooms: ok }));
            }
            out
        }
        ClientFrame::Unsubscribe { rooms } => {
            let ids: Vec<RoomId> = rooms.iter().filter_map(|r| r.parse().ok()).collect();
            for id in &ids {
                reg.unsubscribe(id);
            }
            vec![frame(&ServerFrame::Unsubscribed { rooms: ids })]
        }
    }
}
