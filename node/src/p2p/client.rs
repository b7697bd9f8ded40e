//! The handle the rest of the node uses to reach the network. Every call is a command sent over
//! a bounded channel to the event loop; a full channel makes the caller wait, never grow a queue.

use libp2p::{Multiaddr, PeerId, gossipsub::IdentTopic};
use tokio::sync::{mpsc, oneshot};

use super::sync::{SyncRequest, SyncResponse};

/// Commands the event loop carries out.
#[derive(Debug)]
pub enum Command {
    /// Publish on a topic.
    Publish {
        /// Topic.
        topic: IdentTopic,
        /// Bytes.
        data: Vec<u8>,
    },
    /// Report the validation verdict of a gossip message.
    Validated {
        /// Message id.
        id: libp2p::gossipsub::MessageId,
        /// Peer it came from.
        source: PeerId,
        /// Verdict.
        acceptance: libp2p::gossipsub::MessageAcceptance,
    },
    /// Send a sync request and wait for the answer.
    Request {
        /// Peer.
        peer: PeerId,
        /// Request.
        request: SyncRequest,
        /// Answer.
        reply: oneshot::Sender<Result<SyncResponse, String>>,
    },
    /// Answer an inbound sync request.
    Respond {
        /// Channel of the request.
        channel: libp2p::request_response::ResponseChannel<SyncResponse>,
        /// Answer.
        response: SyncResponse,
    },
    /// Connected peers.
    Peers {
        /// Answer.
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    /// Listen addresses with the peer id appended.
    Addresses {
        /// Answer.
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    /// A peer's gossip score, as this node sees it.
    PeerScore {
        /// Peer.
        peer: PeerId,
        /// Answer.
        reply: oneshot::Sender<Option<f64>>,
    },
    /// Dial an address.
    Dial(Multiaddr),
    /// Refuse and drop every connection with a peer (misbehaviour, or a partition in tests).
    Block(PeerId),
    /// Allow a blocked peer again.
    Unblock(PeerId),
}

/// A cloneable handle to the network.
#[derive(Debug, Clone)]
pub struct P2p {
    tx: mpsc::Sender<Command>,
    peer_id: PeerId,
}

impl P2p {
    /// A handle sending commands over `tx`.
    pub fn new(tx: mpsc::Sender<Command>, peer_id: PeerId) -> Self {
        Self { tx, peer_id }
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Sends a command; `false` once the event loop is gone (shutdown).
    pub async fn send(&self, cmd: Command) -> bool {
        self.tx.send(cmd).await.is_ok()
    }

    /// Publishes bytes on a topic.
    pub async fn publish(&self, topic: IdentTopic, data: Vec<u8>) {
        self.send(Command::Publish { topic, data }).await;
    }

    /// Sends a sync request and waits for the answer.
    pub async fn request(&self, peer: PeerId, request: SyncRequest) -> Result<SyncResponse, String> {
        let (reply, rx) = oneshot::channel();
        if !self.send(Command::Request { peer, request, reply }).await {
            return Err("network stopped".into());
        }
        rx.await.map_err(|_| "network stopped".to_string())?
    }

    /// Connected peers.
    pub async fn peers(&self) -> Vec<PeerId> {
        let (reply, rx) = oneshot::channel();
        if !self.send(Command::Peers { reply }).await {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Addresses other nodes can dial, each ending in `/p2p/<peer id>`.
    pub async fn addresses(&self) -> Vec<Multiaddr> {
        let (reply, rx) = oneshot::channel();
        if !self.send(Command::Addresses { reply }).await {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// A peer's gossip score: it falls when the peer forwards invalid messages.
    pub async fn peer_score(&self, peer: PeerId) -> Option<f64> {
        let (reply, rx) = oneshot::channel();
        if !self.send(Command::PeerScore { peer, reply }).await {
            return None;
        }
        rx.await.ok().flatten()
    }

    /// Dials an address.
    pub async fn dial(&self, addr: Multiaddr) {
        self.send(Command::Dial(addr)).await;
    }

    /// Cuts a peer off.
    pub async fn block(&self, peer: PeerId) {
        self.send(Command::Block(peer)).await;
    }

    /// Lets a peer back in.
    pub async fn unblock(&self, peer: PeerId) {
        self.send(Command::Unblock(peer)).await;
    }
}
