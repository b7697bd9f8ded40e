//! `GET /v1/info`: what a client needs to know about this node and the services around it
//! (configured under `[dapp]`): sign-in domain and chains, the search indexer, the LinkedIn
//! gateway and the contracts per chain.

use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};

use super::{AppState, error::ApiError};

/// The contracts of one chain, from the deployments file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContractsInfo {
    /// Chain id.
    pub chain_id: u64,
    /// `Payments` (tips, paid rooms), EIP-55.
    pub payments: String,
    /// `MessageAnchor` (anchored batches), EIP-55.
    pub message_anchor: String,
    /// `NodeRegistry`, EIP-55.
    pub node_registry: String,
}

/// `GET /v1/info` reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InfoResponse {
    /// SIWE domain of this node.
    pub domain: String,
    /// Public origin of this node.
    pub uri: String,
    /// Chain ids accepted in sign-ins.
    pub chain_ids: Vec<u64>,
    /// Search indexer URL, when configured.
    pub indexer_url: Option<String>,
    /// LinkedIn gateway URL, when configured.
    pub gateway_url: Option<String>,
    /// Contracts by chain, from `[dapp] deployments` (empty when unset).
    pub contracts: Vec<ContractsInfo>,
}

/// Describes this node and the services configured for its dApp. No authentication.
pub async fn info(State(state): State<AppState>) -> Result<Json<InfoResponse>, ApiError> {
    let dapp = &state.config.dapp;
    let contracts = match &dapp.deployments {
        None => Vec::new(),
        Some(path) => crate::deploy::read(path)
            .map_err(|e| ApiError::internal(format!("reading the deployments file: {e:#}")))?
            .into_values()
            .map(|d| ContractsInfo {
                chain_id: d.chain_id,
                payments: d.payments.to_checksum(None),
                message_anchor: d.message_anchor.to_checksum(None),
                node_registry: d.node_registry.to_checksum(None),
            })
            .collect(),
    };
    Ok(Json(InfoResponse {
        domain: state.domain.clone(),
        uri: state.public_url.clone(),
        chain_ids: state.config.chain_ids.clone(),
        indexer_url: dapp.indexer_url.as_ref().map(|u| u.trim_end_matches('/').to_string()),
        gateway_url: dapp.gateway_url.as_ref().map(|u| u.trim_end_matches('/').to_string()),
        contracts,
    }))
}
