//! Deploys dchat's contracts (NodeRegistry, MessageAnchor, Payments) from forge's build
//! artifacts and records their addresses in a deployments file, one entry per chain id, that
//! nodes, the indexer and the dApp read.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use alloy::{
    network::{EthereumWallet, TransactionBuilder},
    primitives::Address,
    providers::{Provider, ProviderBuilder},
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
    sol_types::SolValue,
};
use eyre::{WrapErr, eyre};
use serde::{Deserialize, Serialize};

/// Constructor settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// forge's `out` directory.
    pub artifacts: PathBuf,
    /// Operator fee on payments, basis points.
    pub fee_bps: u16,
    /// Who receives the fee (default: the deployer).
    pub fee_recipient: Option<Address>,
    /// Seconds a deregistered node's stake stays locked.
    pub unbonding_delay: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self { artifacts: PathBuf::from("out"), fee_bps: 100, fee_recipient: None, unbonding_delay: 7 * 24 * 3600 }
    }
}

/// Where the contracts of one chain live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// Chain id.
    pub chain_id: u64,
    /// `NodeRegistry`.
    pub node_registry: Address,
    /// `MessageAnchor`.
    pub message_anchor: Address,
    /// `Payments`.
    pub payments: Address,
    /// Block of the last deployment transaction (where event followers start).
    pub block: u64,
}

/// Creation bytecode of a contract from its forge artifact (`<out>/<Name>.sol/<Name>.json`).
pub fn bytecode(artifacts: &Path, name: &str) -> eyre::Result<Vec<u8>> {
    let path = artifacts.join(format!("{name}.sol")).join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .wrap_err_with(|| format!("reading {}; build the contracts first (scripts/forge-test)", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).wrap_err_with(|| format!("{} is not JSON", path.display()))?;
    let hex_code = json["bytecode"]["object"].as_str().ok_or_else(|| eyre!("{} has no bytecode", path.display()))?;
    hex::decode(hex_code.trim_start_matches("0x")).wrap_err_with(|| format!("{} bytecode is not hex", path.display()))
}

/// Deploys the three contracts in dependency order, with `deployer` as owner of `NodeRegistry`
/// and `Payments` (`MessageAnchor` has no owner: anyone anchors under their own address).
pub async fn deploy(rpc_url: &str, deployer: PrivateKeySigner, options: &Options) -> eyre::Result<Deployment> {
    let owner = deployer.address();
    let url = rpc_url.parse().wrap_err_with(|| format!("{rpc_url:?} is not a URL"))?;
    let provider = ProviderBuilder::new().wallet(EthereumWallet::from(deployer)).connect_http(url);
    let chain_id = provider.get_chain_id().await.wrap_err("asking the chain id (is the RPC up?)")?;
    let mut block = 0;
    let mut create = async |name: &str, args: Vec<u8>| -> eyre::Result<Address> {
        let mut code = bytecode(&options.artifacts, name)?;
        code.extend(args);
        let tx = TransactionRequest::default().with_deploy_code(code);
        let receipt = provider
            .send_transaction(tx)
            .await
            .wrap_err_with(|| format!("sending the {name} deployment"))?
            .get_receipt()
            .await
            .wrap_err_with(|| format!("waiting for the {name} deployment"))?;
        if !receipt.status() {
            return Err(eyre!("the {name} deployment reverted"));
        }
        block = block.max(receipt.block_number.unwrap_or_default());
        receipt.contract_address.ok_or_else(|| eyre!("the {name} deployment created no contract"))
    };
    let node_registry = create("NodeRegistry", (owner, options.unbonding_delay).abi_encode_params()).await?;
    let message_anchor = create("MessageAnchor", (node_registry,).abi_encode_params()).await?;
    let fee_recipient = options.fee_recipient.unwrap_or(owner);
    let payments = create("Payments", (owner, fee_recipient, options.fee_bps).abi_encode_params()).await?;
    Ok(Deployment { chain_id, node_registry, message_anchor, payments, block })
}

/// Reads a deployments file (chain id → deployment); an absent file is empty.
pub fn read(path: &Path) -> eyre::Result<BTreeMap<u64, Deployment>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            serde_json::from_str(&text).wrap_err_with(|| format!("{} is not a deployments file", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).wrap_err_with(|| format!("reading {}", path.display())),
    }
}

/// Records a deployment, replacing any earlier one for the same chain; written to a temporary
/// file and renamed, so readers never see half a file.
pub fn record(path: &Path, deployment: &Deployment) -> eyre::Result<()> {
    let mut all = read(path)?;
    all.insert(deployment.chain_id, deployment.clone());
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&all)?).wrap_err_with(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).wrap_err_with(|| format!("replacing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use alloy::{primitives::Address, sol_types::SolType};

    /// `(type,...)` of a contract's constructor in its forge artifact.
    fn constructor(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../out/{name}.sol/{name}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; build the contracts first (scripts/forge-test)", path.display()));
        let json: serde_json::Value = serde_json::from_str(&text).expect("artifact json");
        let abi = json["abi"].as_array().expect("abi");
        let ctor = abi.iter().find(|e| e["type"] == "constructor").expect("constructor");
        let types: Vec<&str> =
            ctor["inputs"].as_array().expect("inputs").iter().map(|i| i["type"].as_str().expect("type")).collect();
        format!("({})", types.join(","))
    }

    /// The arguments `deploy` encodes are what each constructor takes.
    #[test]
    fn constructor_arguments_match_the_contracts() {
        type Registry = (alloy::sol_types::sol_data::Address, alloy::sol_types::sol_data::Uint<64>);
        type Anchor = (alloy::sol_types::sol_data::Address,);
        type Payments = (
            alloy::sol_types::sol_data::Address,
            alloy::sol_types::sol_data::Address,
            alloy::sol_types::sol_data::Uint<16>,
        );
        assert_eq!(constructor("NodeRegistry"), Registry::SOL_NAME);
        assert_eq!(constructor("MessageAnchor"), Anchor::SOL_NAME);
        assert_eq!(constructor("Payments"), Payments::SOL_NAME);
        // And the Rust values deploy passes have those types.
        let _: <Registry as SolType>::RustType = (Address::ZERO, 0u64);
        let _: <Anchor as SolType>::RustType = (Address::ZERO,);
        let _: <Payments as SolType>::RustType = (Address::ZERO, Address::ZERO, 0u16);
    }
}
