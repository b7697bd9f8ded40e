//! The peer-to-peer network: one event loop owns the libp2p `Swarm` ([`event_loop`]); the rest
//! of the node talks to it through a cloneable [`client::P2p`] over bounded channels. Envelopes
//! spread by gossipsub over a fixed number of shard topics; [`sync`] reconciles rooms between
//! peers after restarts, partitions and late joins.

pub mod behaviour;
pub mod client;
pub mod event_loop;
pub mod sync;

use dchat_protocol::RoomId;
use libp2p::gossipsub::IdentTopic;
use serde::Deserialize;

pub use client::P2p;

/// Network settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct P2pConfig {
    /// Run the network at all.
    pub enabled: bool,
    /// Multiaddrs to listen on (TCP and QUIC).
    pub listen: Vec<String>,
    /// Peers to dial at start (multiaddrs ending in `/p2p/<peer id>`).
    pub bootstrap: Vec<String>,
    /// Gossip shard topics rooms are spread over.
    pub shards: u16,
    /// Seconds between history-sync rounds with every connected peer.
    pub sync_interval_secs: u64,
    /// Gossip messages being validated at once; more are ignored (sync fetches them later).
    pub max_pending_validations: usize,
    /// Deployments file whose `NodeRegistry` (on the `rpc_url`'s chain) lists more peers to dial
    /// at start.
    pub registry: Option<std::path::PathBuf>,
}

impl Default for P2pConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: vec!["/ip4/127.0.0.1/tcp/8481".into(), "/ip4/127.0.0.1/udp/8481/quic-v1".into()],
            bootstrap: Vec::new(),
            shards: 64,
            sync_interval_secs: 10,
            max_pending_validations: 512,
            registry: None,
        }
    }
}

/// The shard topic a room's envelopes travel on. Many rooms share a topic, so subscriptions
/// reveal nothing about which rooms a node serves.
pub fn shard_topic(room: &RoomId, shards: u16) -> IdentTopic {
    let n = u16::from_be_bytes([room.0[0], room.0[1]]) % shards.max(1);
    IdentTopic::new(format!("/dchat/1/shard/{n}"))
}
