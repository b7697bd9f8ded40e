//! Chain calls the node makes: for now ERC-1271 contract-wallet signature checks.

use alloy::{
    primitives::{Bytes, FixedBytes},
    providers::{Provider, ProviderBuilder},
    rpc::types::TransactionRequest,
    sol,
    sol_types::SolCall,
};
use dchat_protocol::SiweMessage;
use eyre::WrapErr;

sol! {
    /// ERC-1271 standard signature validation for contract accounts.
    interface IERC1271 {
        function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4 magicValue);
    }
}

/// The value `isValidSignature` returns for a valid signature.
pub const ERC1271_MAGIC: [u8; 4] = [0x16, 0x26, 0xba, 0x7e];

/// Asks the wallet contract whether `signature` is its signature of the message. The RPC must
/// serve the chain the message names; `Ok(false)` when it does not, when the address has no code,
/// or when the contract says no.
pub async fn erc1271_valid(rpc_url: &str, msg: &SiweMessage, signature: &[u8]) -> eyre::Result<bool> {
    let url = rpc_url.parse().wrap_err("rpc_url is not a URL")?;
    let provider = ProviderBuilder::new().connect_http(url);
    let chain_id = provider.get_chain_id().await.wrap_err("eth_chainId")?;
    if chain_id != msg.chain_id() {
        return Ok(false);
    }
    let address = msg.address();
    if provider.get_code_at(address).await.wrap_err("eth_getCode")?.is_empty() {
        return Ok(false);
    }
    let call = IERC1271::isValidSignatureCall { hash: msg.eip191_hash(), signature: Bytes::copy_from_slice(signature) };
    let tx = TransactionRequest::default().to(address).input(call.abi_encode().into());
    let Ok(out) = provider.call(tx).await else { return Ok(false) };
    let Ok(magic) = IERC1271::isValidSignatureCall::abi_decode_returns(&out) else { return Ok(false) };
    Ok(magic == FixedBytes::from(ERC1271_MAGIC))
}

sol! {
    /// What token gates read.
    interface IBalances {
        function balanceOf(address owner) external view returns (uint256);
    }
    /// ERC-1155 balances.
    interface IBalances1155 {
        function balanceOf(address account, uint256 id) external view returns (uint256);
    }
    /// The parts of `Payments` a paid room reads.
    interface IPaymentsGate {
        struct Room { address owner; uint64 periodSeconds; address token; uint256 pricePerPeriod; }
        function roomInfo(bytes32 room) external view returns (Room memory);
        function subscriptionExpiry(bytes32 room, address subscriber) external view returns (uint64);
    }
}

/// The outcome of checking a member against a room's gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateCheck {
    /// Passed; holds until this Unix time (a subscription's expiry, or the next re-check).
    Pass(i64),
    /// Not met.
    Fail,
}

/// Checks `member` against `gate` for `room` (owned by `owner`) on the chain at `rpc_url`.
/// Balances are re-checked after `recheck_secs`; subscriptions hold until they expire.
pub async fn check_gate(
    rpc_url: &str,
    gate: &dchat_protocol::control::Gate,
    room: &dchat_protocol::RoomId,
    owner: &alloy::primitives::Address,
    member: &alloy::primitives::Address,
    now: i64,
    recheck_secs: i64,
) -> eyre::Result<GateCheck> {
    use alloy::primitives::{Address, U256};
    use dchat_protocol::control::GateKind;
    let url = rpc_url.parse().wrap_err("rpc_url is not a URL")?;
    let provider = ProviderBuilder::new().connect_http(url);
    let chain_id = provider.get_chain_id().await.wrap_err("eth_chainId")?;
    if chain_id != gate.chain_id {
        eyre::bail!("the room's gate is on chain {} but rpc_url serves chain {chain_id}", gate.chain_id);
    }
    let contract = Address::try_from(gate.contract.as_slice()).wrap_err("gate contract")?;
    let min = if gate.min_balance.is_empty() { U256::from(1) } else { U256::from_be_slice(&gate.min_balance) };
    let call = |input: Vec<u8>| TransactionRequest::default().to(contract).input(input.into());
    let balance = match GateKind::try_from(gate.kind).unwrap_or(GateKind::Unspecified) {
        GateKind::Erc20 | GateKind::Erc721 => {
            let out = provider.call(call(IBalances::balanceOfCall { owner: *member }.abi_encode())).await?;
            IBalances::balanceOfCall::abi_decode_returns(&out)?
        }
        GateKind::Erc1155 => {
            let id = U256::from_be_slice(&gate.token_id);
            let out = provider.call(call(IBalances1155::balanceOfCall { account: *member, id }.abi_encode())).await?;
            IBalances1155::balanceOfCall::abi_decode_returns(&out)?
        }
        GateKind::Subscription => {
            let room_b = FixedBytes::from(*room.as_bytes());
            let out = provider.call(call(IPaymentsGate::roomInfoCall { room: room_b }.abi_encode())).await?;
            let info = IPaymentsGate::roomInfoCall::abi_decode_returns(&out)?;
            // Someone else registering the room id on chain must not sell access to it.
            if info.owner != *owner {
                return Ok(GateCheck::Fail);
            }
            let out = provider
                .call(call(IPaymentsGate::subscriptionExpiryCall { room: room_b, subscriber: *member }.abi_encode()))
                .await?;
            let expiry = i64::try_from(IPaymentsGate::subscriptionExpiryCall::abi_decode_returns(&out)?).unwrap_or(0);
            return Ok(if expiry > now { GateCheck::Pass(expiry) } else { GateCheck::Fail });
        }
        GateKind::Unspecified => eyre::bail!("the room's gate has no kind"),
    };
    Ok(if balance >= min { GateCheck::Pass(now + recheck_secs) } else { GateCheck::Fail })
}

/// Test support: what forge built, to hold the node's `sol!` interfaces against.
#[cfg(test)]
pub(crate) mod artifacts {
    use std::collections::BTreeMap;

    /// `signature -> selector hex` of a contract's forge artifact (`out/<Name>.sol/<Name>.json`).
    pub(crate) fn selectors(file: &str, name: &str) -> BTreeMap<String, String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../out/{file}.sol/{name}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; build the contracts first (scripts/forge-test)", path.display()));
        let json: serde_json::Value = serde_json::from_str(&text).expect("artifact json");
        json["methodIdentifiers"]
            .as_object()
            .expect("methodIdentifiers")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect()
    }

    /// Asserts that the contract has each call with the same signature and selector.
    pub(crate) fn assert_has<C: alloy::sol_types::SolCall>(file: &str, name: &str) {
        let all = selectors(file, name);
        let got = all.get(C::SIGNATURE).unwrap_or_else(|| panic!("{name} has no {}", C::SIGNATURE));
        assert_eq!(got, &hex::encode(C::SELECTOR), "{name}.{}", C::SIGNATURE);
    }
}

#[cfg(test)]
mod tests {
    use super::{artifacts::assert_has, *};

    /// The calls the node makes match what forge built (a renamed or retyped function fails here,
    /// not on a live chain).
    #[test]
    fn interfaces_match_the_contracts() {
        assert_has::<IPaymentsGate::roomInfoCall>("Payments", "Payments");
        assert_has::<IPaymentsGate::subscriptionExpiryCall>("Payments", "Payments");
        assert_has::<IBalances::balanceOfCall>("MockERC20", "MockERC20");
        assert_has::<IERC1271::isValidSignatureCall>("ERC1271Wallet", "ERC1271Wallet");
    }
}
