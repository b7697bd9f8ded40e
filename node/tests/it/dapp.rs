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
