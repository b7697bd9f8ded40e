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
