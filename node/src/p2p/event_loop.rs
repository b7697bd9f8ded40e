//! The task that owns the `Swarm`: carries out [`Command`]s and turns swarm events into work.
//! Nothing here awaits the store: gossip validation and sync answers run in their own tasks and
//! report back with commands, so the swarm is always polled.

use std::{collections::HashMap, sync::Arc};

use dchat_protocol::wire::Relay;
use futures::StreamExt;
use libp2p::{
    Multiaddr, Swarm, gossipsub, identify, kad,
    multiaddr::Protocol,
    request_response::{self, OutboundRequestId},
    swarm::SwarmEvent,
};
use prost::Message as _;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{
    P2p,
    behaviour::{Behaviour, BehaviourEvent},
    client::Command,
    sync::{self, SyncResponse},
};
use crate::{
    api::AppState,
    ingest::{Origin, ingest, is_misbehaviour},
};

/// The swarm's owner.
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    p2p: P2p,
    state: AppState,
    pending: HashMap<OutboundRequestId, oneshot::Sender<Result<SyncResponse, String>>>,
    validations: Arc<Semaphore>,
    connected: Arc<Notify>,
}

impl EventLoop {
    /// Wraps a built swarm.
    pub fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        p2p: P2p,
        state: AppState,
        connected: Arc<Notify>,
    ) -> Self {
        let validations = Arc::new(Semaphore::new(state.config.p2p.max_pending_validations.max(1)));
        Self { swarm, commands, p2p, state, pending: HashMap::new(), validations, connected }
    }

    /// Runs until shutdown.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                Some(cmd) = self.commands.recv() => self.command(cmd),
                event = self.swarm.select_next_some() => self.event(event),
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        let swarm = &mut self.swarm;
        match cmd {
            Command::Publish { topic, data } => {
                if let Err(e) = swarm.behaviour_mut().gossipsub.publish(topic, data) {
                    // No peers yet is normal; sync delivers the message later.
                    tracing::debug!(target: "node::p2p", error = %e, "publish");
                }
            }
            Command::Validated { id, source, acceptance } => {
                let known = swarm.behaviour_mut().gossipsub.report_message_validation_result(&id, &source, acceptance);
                tracing::debug!(target: "node::p2p", %source, ?acceptance, known, "validated");
            }
            Command::Request { peer, request, reply } => {
                let id = swarm.behaviour_mut().sync.send_request(&peer, request);
                self.pending.insert(id, reply);
            }
            Command::Respond { channel, response } => {
                let _ = swarm.behaviour_mut().sync.send_response(channel, response);
            }
            Command::Peers { reply } => {
                let _ = reply.send(swarm.connected_peers().copied().collect());
            }
            Command::Addresses { reply } => {
                let me = *swarm.local_peer_id();
                let addrs = swarm.listeners().map(|a| a.clone().with(Protocol::P2p(me))).collect();
                let _ = reply.send(addrs);
            }
            Command::PeerScore { peer, reply } => {
                let _ = reply.send(swarm.behaviour().gossipsub.peer_score(&peer));
            }
            Command::Dial(addr) => {
                if let Err(e) = swarm.dial(addr.clone()) {
                    tracing::warn!(target: "node::p2p", %addr, error = %e, "dial failed");
                }
            }
            // Connections only. gossipsub's blacklist would also drop every message the peer
            // originally published when honest peers forward it; envelopes are judged on their
            // own content instead.
            Command::Block(peer) => {
                swarm.behaviour_mut().blocked.block_peer(peer);
            }
            Command::Unblock(peer) => {
                swarm.behaviour_mut().blocked.unblock_peer(peer);
            }
        }
    }

    fn event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(target: "node::p2p", %address, "listening");
            }
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                tracing::debug!(target: "node::p2p", peer = %peer_id, addr = %endpoint.get_remote_address(), "connected");
                self.connected.notify_one();
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.validate(propagation_source, message_id, message.data),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.sync_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::RoutingUpdated { peer, .. })) => {
                tracing::debug!(target: "node::p2p", %peer, "routing updated");
            }
            _ => {}
        }
    }

    /// Checks a gossip message off the swarm task; the verdict comes back as a command.
    fn validate(&mut self, source: libp2p::PeerId, id: gossipsub::MessageId, data: Vec<u8>) {
        let Ok(permit) = self.validations.clone().try_acquire_owned() else {
            // Too many in flight: ignore without penalty; sync will fetch it if it matters.
            self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                &id,
                &source,
                gossipsub::MessageAcceptance::Ignore,
            );
            return;
        };
        let (state, p2p) = (self.state.clone(), self.p2p.clone());
        tokio::spawn(async move {
            let acceptance = match Relay::decode(data.as_slice()) {
                Ok(Relay { envelope: Some(envelope), certificate }) => {
                    match ingest(&state, envelope, certificate.as_ref(), Origin::Peer).await {
                        Ok(_) => gossipsub::MessageAcceptance::Accept,
                        Err(e) if is_misbehaviour(&e) => {
                            tracing::debug!(target: "node::p2p", peer = %source, code = e.code, "rejected gossip");
                            gossipsub::MessageAcceptance::Reject
                        }
                        Err(e) => {
                            tracing::debug!(target: "node::p2p", peer = %source, code = e.code, "ignored gossip");
                            gossipsub::MessageAcceptance::Ignore
                        }
                    }
                }
                Ok(Relay { envelope: None, certificate: Some(cert) }) => {
                    // Not penalised when refused: a contract wallet's announcement needs a chain
                    // this node may not have.
                    match crate::ingest::accept_announcement(&state, &cert).await {
                        Ok(()) => gossipsub::MessageAcceptance::Accept,
                        Err(_) => gossipsub::MessageAcceptance::Ignore,
                    }
                }
                _ => gossipsub::MessageAcceptance::Reject,
            };
            p2p.send(Command::Validated { id, source, acceptance }).await;
            drop(permit);
        });
    }

    fn sync_event(&mut self, event: request_response::Event<sync::SyncRequest, SyncResponse>) {
        match event {
            request_response::Event::Message { message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    let (state, p2p) = (self.state.clone(), self.p2p.clone());
                    tokio::spawn(async move {
                        let response = sync::serve(&state, request).await;
                        p2p.send(Command::Respond { channel, response }).await;
                    });
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some(reply) = self.pending.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure { request_id, error, .. } => {
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(Err(error.to_string()));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(target: "node::sync", %peer, %error, "inbound sync request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }
}

/// Parses configured multiaddrs, saying which one is wrong.
pub fn parse_addrs(list: &[String], what: &str) -> eyre::Result<Vec<Multiaddr>> {
    list.iter().map(|a| a.parse().map_err(|e| eyre::eyre!("{what} address {a:?} is not a multiaddr: {e}"))).collect()
}
