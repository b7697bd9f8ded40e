//! The node serves the built dApp at `/` when `dapp_dir` is set, without shadowing the API.

use crate::common::TestNode;

#[tokio::test]
async fn serves_the_dapp_with_index_fallback_and_keeps_api_errors() {
    let site = tempfile::tempdir().expect("tempdir");
    std::fs::write(site.path().join("index.html"), "<!doctype html><title>dchat</title>").expect("write");
    std::fs::create_dir(site.path().join("assets")).expect("mkdir");
    std::fs::write(site.path().join("assets/app.js"), "console.log('dchat')").expect("write");
    let dir = site.path().to_path_buf();
    let node = TestNode::with(move |c| {
        c.dapp_dir = Some(dir);
        c.p2p.enabled = false;
    })
    .await;
    let url = node.node.url();
    let http = reqwest::Client::new();

    let index = http.get(format!("{url}/")).send().await.expect("get /");
    assert_eq!(index.status(), 200);
    assert!(index.text().await.expect("body").contains("<title>dchat</title>"));
    let js = http.get(format!("{url}/assets/app.js")).send().await.expect("get js");
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"].to_str().expect("ascii").contains("javascript"));
    // A client-side route gets the app.
    let deep = http.get(format!("{url}/rooms/0x12")).send().await.expect("get deep link");
    assert_eq!(deep.status(), 200);
    assert!(deep.text().await.expect("body").contains("<title>dchat</title>"));
    // A missing file is a 404, not the app (a stale bundle must fail loudly).
    let stale = http.get(format!("{url}/assets/old-1234.js")).send().await.expect("get stale");
    assert_eq!(stale.status(), 404);
    // Unknown API paths stay JSON 404s.
    let api = http.get(format!("{url}/v1/nope")).send().await.expect("get api");
    assert_eq!(api.status(), 404);
    let body: serde_json::Value = api.json().await.expect("json");
    assert_eq!(body["error"], "not_found");
    node.stop().await;
}

#[tokio::test]
async fn info_names_the_services_configured_for_the_dapp() {
    let http = reqwest::Client::new();

    // Nothing configured: the dApp is told there is nothing to use.
    let bare = TestNode::with(|c| c.p2p.enabled = false).await;
    let info: serde_json::Value =
        http.get(format!("{}/v1/info", bare.node.url())).send().await.expect("get").json().await.expect("json");
    assert_eq!(info["indexer_url"], serde_json::Value::Null);
    assert_eq!(info["gateway_url"], serde_json::Value::Null);
    assert_eq!(info["contracts"], serde_json::json!([]));
    assert!(info["chain_ids"].as_array().is_some_and(|c| !c.is_empty()));
    bare.stop().await;

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("deployments.json");
    let address = |b: u8| dchat_protocol::Address::repeat_byte(b);
    dchat_node::deploy::record(
        &file,
        &dchat_node::deploy::Deployment {
            chain_id: 31337,
            node_registry: address(1),
            message_anchor: address(2),
            payments: address(0xab),
            block: 3,
        },
    )
    .expect("record");
    let path = file.clone();
    let node = TestNode::with(move |c| {
        c.p2p.enabled = false;
        c.dapp.indexer_url = Some("http://127.0.0.1:8470/".into());
        c.dapp.gateway_url = Some("https://id.example.org".into());
        c.dapp.deployments = Some(path);
    })
    .await;
    let url = node.node.url();
    let info: serde_json::Value =
        http.get(format!("{url}/v1/info")).send().await.expect("get").json().await.expect("json");
    assert_eq!(info["indexer_url"], "http://127.0.0.1:8470");
    assert_eq!(info["gateway_url"], "https://id.example.org");
    assert_eq!(info["contracts"][0]["chain_id"], 31337);
    assert_eq!(info["contracts"][0]["payments"], address(0xab).to_checksum(None));
    assert_eq!(info["contracts"][0]["message_anchor"], address(2).to_checksum(None));

    // A broken deployments file is the operator's problem: a plain 500, logged.
    std::fs::write(&file, "not json").expect("write");
    let broken = http.get(format!("{url}/v1/info")).send().await.expect("get");
    assert_eq!(broken.status(), 500);
    let body: serde_json::Value = broken.json().await.expect("json");
    assert_eq!(body["error"], "internal");
    node.stop().await;
}

#[test]
fn dapp_urls_must_be_http() {
    let mut c = dchat_node::config::Config::default();
    c.dapp.indexer_url = Some("ftp://search".into());
    assert!(c.validate().is_err());
    c.dapp.indexer_url = Some("https://search.example.org".into());
    c.validate().expect("valid");
}
