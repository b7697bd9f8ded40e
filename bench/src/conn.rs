//! One WebSocket client: connects, follows one room (dchat `subscribe`, or Socket.IO `join` over
//! Engine.IO v4), then records the arrival of every benchmark message and sends what it is
//! given. Every socket has Nagle's algorithm off (small frames go out at once).
//!
//! Engine.IO v4 over its WebSocket transport is plain text frames: the server opens with
//! `0{"sid":..}`, the client connects to the default namespace with `40` and gets `40{..}`,
//! events are `42["name",data]`, and the server's ping `2` is answered with pong `3`.

use std::{sync::Arc, time::Instant};

use eyre::{WrapErr, bail, eyre};
use futures::{SinkExt, StreamExt};
use tokio::{net::TcpStream, sync::mpsc, task::JoinHandle};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async_with_config,
    tungstenite::{Message, Utf8Bytes, client::IntoClientRequest, http::HeaderValue},
};
use tokio_util::sync::CancellationToken;

use crate::record::Recorder;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a client follows its room.
#[derive(Debug, Clone)]
pub(crate) enum Follow {
    /// dchat: an access token and a room id.
    Dchat {
        /// Bearer token, passed as a WebSocket subprotocol as browsers do.
        token: String,
        /// Room id (hex).
        room: String,
    },
    /// Socket.IO: a room name.
    SocketIo {
        /// Room name.
        room: String,
    },
}

/// Where a benchmark message's sequence number starts in a text frame.
fn marker(follow: &Follow) -> &'static str {
    match follow {
        // A message event is `{"type":"message","message":{..,"text":"<seq> ..",..}}`.
        Follow::Dchat { .. } => "\"text\":\"",
        Follow::SocketIo { .. } => "42[\"msg\",\"",
    }
}

/// A connected client.
pub(crate) struct Conn {
    /// Text frames to send (Socket.IO senders emit through their own socket).
    pub(crate) tx: mpsc::Sender<Utf8Bytes>,
    /// The client's task; ends at `stop` or when the server closes.
    pub(crate) task: JoinHandle<()>,
}

/// Connects to `base` (`http://host:port`), follows the room, and spawns the client's task.
pub(crate) async fn open(
    base: &str,
    follow: Follow,
    recorder: Option<Arc<Recorder>>,
    stop: CancellationToken,
) -> eyre::Result<Conn> {
    let ws_base = base.replacen("http", "ws", 1);
    let mut ws = match &follow {
        Follow::Dchat { token, room } => {
            let mut req = format!("{ws_base}/v1/ws").into_client_request()?;
            req.headers_mut()
                .insert("sec-websocket-protocol", HeaderValue::from_str(&format!("dchat.v1, bearer.{token}"))?);
            let (mut ws, _) = connect_async_with_config(req, None, true).await.wrap_err("dchat WebSocket")?;
            ws.send(Message::text(format!("{{\"type\":\"subscribe\",\"rooms\":[\"{room}\"]}}"))).await?;
            wait_for(&mut ws, |t| t.starts_with("{\"type\":\"subscribed\"") && t.contains(room.as_str())).await?;
            ws
        }
        Follow::SocketIo { room } => {
            let url = format!("{ws_base}/socket.io/?EIO=4&transport=websocket");
            let (mut ws, _) = connect_async_with_config(url, None, true).await.wrap_err("Socket.IO WebSocket")?;
            wait_for(&mut ws, |t| t.starts_with("0{")).await?;
            ws.send(Message::text("40")).await?;
            wait_for(&mut ws, |t| t.starts_with("40")).await?;
            ws.send(Message::text(format!("42[\"join\",\"{room}\"]"))).await?;
            wait_for(&mut ws, |t| t.starts_with("42[\"joined\"")).await?;
            ws
        }
    };
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(4096);
    let marker = marker(&follow);
    let task = tokio::spawn(async move {
        let mut local = Vec::with_capacity(256);
        let mut flush = tokio::time::interval(std::time::Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                incoming = ws.next() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        if text.as_str() == "2" {
                            if ws.send(Message::text("3")).await.is_err() {
                                break;
                            }
                        } else if let Some(seq) = seq_of(&text, marker) {
                            local.push((seq, Instant::now()));
                            if local.len() >= 256
                                && let Some(r) = &recorder
                            {
                                r.flush(&mut local);
                            }
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
                Some(out) = rx.recv() => {
                    if ws.send(Message::Text(out)).await.is_err() {
                        break;
                    }
                }
                _ = flush.tick() => {
                    if let Some(r) = &recorder {
                        r.flush(&mut local);
                    }
                }
            }
        }
        if let Some(r) = &recorder {
            r.flush(&mut local);
            if !stop.is_cancelled() {
                r.disconnected();
            }
        }
        let _ = ws.close(None).await;
    });
    Ok(Conn { tx, task })
}

/// Reads text frames until one satisfies `done` (Socket.IO pings are answered meanwhile).
async fn wait_for(ws: &mut Ws, done: impl Fn(&str) -> bool) -> eyre::Result<()> {
    let deadline = tokio::time::sleep(std::time::Duration::from_secs(60));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => bail!("no answer within 60 s"),
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) if done(t.as_str()) => return Ok(()),
                Some(Ok(Message::Text(t))) if t.as_str() == "2" => ws.send(Message::text("3")).await?,
                Some(Ok(Message::Text(t))) if t.contains("\"error\"") => bail!("refused: {t}"),
                Some(Ok(Message::Close(c))) => bail!("closed: {c:?}"),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(eyre!(e)),
                None => bail!("connection ended"),
            }
        }
    }
}

/// The sequence number at the start of a benchmark message's text (`"<seq> ..."`).
fn seq_of(frame: &str, marker: &str) -> Option<u64> {
    let at = frame.find(marker)? + marker.len();
    let digits = frame[at..].bytes().take_while(u8::is_ascii_digit).count();
    frame[at..at + digits].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::seq_of;

    #[test]
    fn finds_the_sequence_number_in_both_protocols() {
        assert_eq!(seq_of(r#"42["msg","1234 xxxx"]"#, "42[\"msg\",\""), Some(1234));
        let dchat = r#"{"type":"message","message":{"id":"0x12","kind":"text","text":"77 abc","payload_len":6}}"#;
        assert_eq!(seq_of(dchat, "\"text\":\""), Some(77));
        assert_eq!(seq_of(r#"42["joined","r1"]"#, "42[\"msg\",\""), None);
    }
}
