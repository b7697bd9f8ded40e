//! Token-gated and paid rooms: a plain member's access goes through an on-chain check when they
//! join through this node and again whenever that check lapses (a subscription expiring, or the
//! re-check interval of a balance). Owners and admins are never gated. The check is this node's:
//! membership itself is the replay of the room's control envelopes, the same on every node.

use dchat_protocol::Address;

use crate::{
    api::{ApiError, AppState},
    chain::{GateCheck, check_gate},
    store::Room,
};

/// Seconds a passed balance check holds before it is made again.
pub const RECHECK_SECS: i64 = 600;

/// Whether `address` may join or use gated `room` now; Ok for ungated rooms, owners and admins.
/// A cached pass is used until it lapses, then the chain is asked again.
pub async fn admit(state: &AppState, room: &Room, address: &Address, role: Option<&str>) -> Result<(), ApiError> {
    if !matches!(room.policy.as_str(), "token_gated" | "paid") || matches!(role, Some("owner" | "admin")) {
        return Ok(());
    }
    let now = state.now();
    if state.store.gate_pass(&room.id, address).await?.is_some_and(|until| until > now) {
        return Ok(());
    }
    let gate = state.store.gate(&room.id).await?.ok_or_else(|| ApiError::internal("gated room without a gate"))?;
    let Some(rpc) = &state.config.rpc_url else {
        return Err(chain_unavailable("this node has no rpc_url to check the room's gate"));
    };
    match check_gate(rpc, &gate, &room.id, &room.owner, address, now, RECHECK_SECS).await {
        Ok(GateCheck::Pass(until)) => {
            state.store.set_gate_pass(&room.id, address, until, now).await?;
            Ok(())
        }
        Ok(GateCheck::Fail) => Err(ApiError::new(
            axum::http::StatusCode::PAYMENT_REQUIRED,
            "gate_not_met",
            if room.policy == "paid" {
                "this room needs a live subscription in the Payments contract"
            } else {
                "this room needs a balance of its token that this wallet does not hold"
            },
        )),
        Err(e) => Err(chain_unavailable(&format!("checking the room's gate: {e}"))),
    }
}

fn chain_unavailable(why: &str) -> ApiError {
    ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "chain_unavailable", why.to_string())
}
