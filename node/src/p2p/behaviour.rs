//! The composed libp2p behaviour.

// The `NetworkBehaviour` derive generates an event enum whose variants carry no docs.
#![allow(missing_docs)]

use std::time::Duration;

use libp2p::{
    StreamProtocol, allow_block_list, gossipsub, identify,
    identity::Keypair,
    kad, ping,
    request_response::{self, ProtocolSupport},
    swarm::NetworkBehaviour,
};

use super::sync::{SyncRequest, SyncResponse};

/// Protocol name of history sync.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/dchat/sync/1");

/// Everything the node speaks to peers.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Peers banned for misbehaving (or cut off in tests).
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Envelope propagation.
    pub gossipsub: gossipsub::Behaviour,
    /// Exchange of listen addresses and protocols.
    pub identify: identify::Behaviour,
    /// Liveness.
    pub ping: ping::Behaviour,
    /// Peer discovery.
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    /// History sync.
    pub sync: request_response::cbor::Behaviour<SyncRequest, SyncResponse>,
}

impl Behaviour {
    /// Builds the behaviour; `max_transmit` bounds one gossip message, `shards` names the topics
    /// scored.
    pub fn new(key: &Keypair, max_transmit: usize, shards: u16) -> Result<Self, String> {
        let config = gossipsub::ConfigBuilder::default()
            .heartbeat_interval(Duration::from_millis(500))
            .validation_mode(gossipsub::ValidationMode::Strict)
            .validate_messages()
            .max_transmit_size(max_transmit)
            .message_id_fn(|m: &gossipsub::Message| {
                gossipsub::MessageId::from(alloy::primitives::keccak256(&m.data).to_vec())
            })
            .build()
            .map_err(|e| e.to_string())?;
        let mut gossipsub = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), config)?;
        // Invalid messages cost score; a peer under the graylist threshold is ignored.
        let thresholds = gossipsub::PeerScoreThresholds {
            gossip_threshold: -10.0,
            publish_threshold: -50.0,
            graylist_threshold: -80.0,
            accept_px_threshold: 10.0,
            opportunistic_graft_threshold: 20.0,
        };
        // Only invalid messages cost score: quiet rooms deliver little, and that is no fault.
        let topic_params = gossipsub::TopicScoreParams {
            topic_weight: 1.0,
            invalid_message_deliveries_weight: -10.0,
            invalid_message_deliveries_decay: 0.9,
            mesh_message_deliveries_weight: 0.0,
            mesh_failure_penalty_weight: 0.0,
            // No credit for time in mesh or first deliveries either: it would let a
            // long-connected peer absorb many invalid messages before its score turns negative.
            time_in_mesh_weight: 0.0,
            first_message_deliveries_weight: 0.0,
            ..gossipsub::TopicScoreParams::default()
        };
        let mut params = gossipsub::PeerScoreParams::default();
        for shard in 0..shards.max(1) {
            let topic = gossipsub::IdentTopic::new(format!("/dchat/1/shard/{shard}"));
            params.topics.insert(topic.hash(), topic_params.clone());
        }
        gossipsub.with_peer_score(params, thresholds)?;
        let peer_id = key.public().to_peer_id();
        let mut kad = kad::Behaviour::new(peer_id, kad::store::MemoryStore::new(peer_id));
        kad.set_mode(Some(kad::Mode::Server));
        let sync = request_response::cbor::Behaviour::new(
            [(SYNC_PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
        );
        Ok(Self {
            blocked: allow_block_list::Behaviour::default(),
            gossipsub,
            identify: identify::Behaviour::new(identify::Config::new("/dchat/1".into(), key.public())),
            ping: ping::Behaviour::default(),
            kad,
            sync,
        })
    }
}
