//! Deploying the contracts to a real chain (anvil) from forge's artifacts.

use std::process::Command;

use alloy::{
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
    sol,
};
use dchat_node::deploy::{self, Options};

use crate::common::{Anvil, DEV_KEY, repo};

sol! {
    #[sol(rpc)]
    interface Views {
        function registry() external view returns (address);
        function feeBps() external view returns (uint16);
        function owner() external view returns (address);
    }
}

#[tokio::test]
async fn deploys_all_contracts_wired_together_and_records_them() {
    let anvil = Anvil::start();
    let deployer: PrivateKeySigner = DEV_KEY.parse().expect("key");
    let owner = deployer.address();
    let options = Options { artifacts: repo().join("out"), fee_bps: 250, ..Options::default() };
    let d = deploy::deploy(&anvil.url, deployer, &options).await.expect("deploys");
    assert_eq!(d.chain_id, 31337);

    let provider = ProviderBuilder::new().connect_http(anvil.url.parse().expect("url"));
    for addr in [d.node_registry, d.message_anchor, d.payments] {
        assert!(!provider.get_code_at(addr).await.expect("code").is_empty(), "{addr} has code");
    }
    assert_eq!(Views::new(d.message_anchor, &provider).registry().call().await.expect("registry"), d.node_registry);
    assert_eq!(Views::new(d.payments, &provider).feeBps().call().await.expect("fee"), 250);
    assert_eq!(Views::new(d.node_registry, &provider).owner().call().await.expect("owner"), owner);

    // The deployments file keeps one entry per chain and survives rewrites.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("deployments.json");
    deploy::record(&file, &d).expect("record");
    let other = deploy::Deployment { chain_id: 1, ..d.clone() };
    deploy::record(&file, &other).expect("record another chain");
    let all = deploy::read(&file).expect("read");
    assert_eq!(all.get(&31337), Some(&d));
    assert_eq!(all.get(&1), Some(&other));
}

#[tokio::test]
async fn deploy_command_writes_the_file_and_explains_a_missing_key() {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("deployments.json");
    let run = |key: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dchat-deploy"));
        cmd.args(["--rpc-url", &anvil.url, "--artifacts"]).arg(repo().join("out")).arg("--out").arg(&file);
        cmd.env_remove("DCHAT_DEPLOYER_KEY");
        if let Some(k) = key {
            cmd.env("DCHAT_DEPLOYER_KEY", k);
        }
        cmd.output().expect("run dchat-deploy")
    };
    let missing = run(None);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("DCHAT_DEPLOYER_KEY"), "says which variable to set");
    let ok = run(Some(DEV_KEY));
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(deploy::read(&file).expect("read").contains_key(&31337));
}
