//! The `dchat` CLI against a real node: two wallets sign in, make an encrypted group, talk,
//! manage roles and open a direct room; bad input gets a message saying what to fix.

use std::{path::Path, process::Command};

use crate::common::TestNode;

/// Runs `dchat` with its own home; returns (success, stdout, stderr).
async fn dchat(node: &TestNode, home: &Path, args: &[&str]) -> (bool, String, String) {
    let (url, home, args) =
        (node.node.url(), home.to_path_buf(), args.iter().map(ToString::to_string).collect::<Vec<_>>());
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_dchat"))
            .args(["--node", &url, "--home"])
            .arg(&home)
            .args(&args)
            .env_remove("DCHAT_WALLET_KEY")
            .output()
            .expect("run dchat");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("join")
}

async fn ok(node: &TestNode, home: &Path, args: &[&str]) -> String {
    let (success, out, err) = dchat(node, home, args).await;
    assert!(success, "dchat {args:?} failed: {err}");
    out
}

/// The address `dchat login` printed.
fn address(login: &str) -> String {
    login.split_whitespace().find(|w| w.starts_with("0x") && w.len() == 42).expect("address").to_string()
}

#[tokio::test]
async fn two_wallets_chat_in_an_encrypted_group_from_the_terminal() {
    let node = TestNode::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    let alice_addr = address(&ok(&node, &alice, &["login"]).await);
    let bob_addr = address(&ok(&node, &bob, &["login"]).await);

    let room = ok(&node, &alice, &["rooms", "create", "ops", "--member", &bob_addr]).await.trim().to_string();
    ok(&node, &alice, &["send", &room, "deploy", "at", "noon"]).await;
    ok(&node, &bob, &["send", &room, "ack"]).await;
    let history = ok(&node, &bob, &["history", &room]).await;
    assert!(history.contains("deploy at noon") && history.contains("ack"), "{history}");
    assert!(history.contains("* started a new key epoch"), "{history}");

    ok(&node, &alice, &["rooms", "role", &room, &bob_addr, "admin"]).await;
    let members = ok(&node, &bob, &["rooms", "members", &room]).await;
    assert!(members.contains(&format!("{alice_addr}  owner")), "{members}");
    assert!(members.contains(&format!("{bob_addr}  admin")), "{members}");
    assert!(members.contains("key epoch"), "{members}");

    let dm = ok(&node, &bob, &["rooms", "dm", &alice_addr]).await.trim().to_string();
    ok(&node, &bob, &["send", &dm, "psst"]).await;
    assert_eq!(ok(&node, &alice, &["rooms", "dm", &bob_addr]).await.trim(), dm, "the same direct room");
    assert!(ok(&node, &alice, &["history", &dm]).await.contains("psst"));
    assert!(ok(&node, &alice, &["rooms", "channels"]).await.contains("team (default)"));

    // Bad input: each says what to fix, and the owner cannot leave.
    let (success, _, err) = dchat(&node, &alice, &["rooms", "invite", &room, "0x1234"]).await;
    assert!(!success && err.contains("is not an Ethereum address"), "{err}");
    let (success, _, err) = dchat(&node, &alice, &["rooms", "role", &room, &bob_addr, "king"]).await;
    assert!(!success && err.contains("role must be member, admin or owner"), "{err}");
    let (success, _, err) = dchat(&node, &alice, &["rooms", "leave", &room]).await;
    assert!(!success && err.contains("owner_stays"), "{err}");
    let (success, _, err) = dchat(&node, &alice, &["send", "not-a-room", "x"]).await;
    assert!(!success && err.contains("is not a room id"), "{err}");
}

#[tokio::test]
async fn contacts_requests_unread_notifications_and_presence_from_the_terminal() {
    let node = TestNode::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    let alice_addr = address(&ok(&node, &alice, &["login"]).await);
    let bob_addr = address(&ok(&node, &bob, &["login"]).await);

    // A stranger's direct message waits in the requests inbox and counts as unread there.
    let dm = ok(&node, &bob, &["rooms", "dm", &alice_addr]).await.trim().to_string();
    ok(&node, &bob, &["send", &dm, "hello"]).await;
    assert!(ok(&node, &alice, &["requests"]).await.contains(&format!("{dm}  from {bob_addr}  1 unread")));
    assert!(ok(&node, &alice, &["unread"]).await.contains(&format!("{dm}  1 (request)")));
    ok(&node, &alice, &["read", &dm]).await;
    assert!(ok(&node, &alice, &["unread"]).await.contains("0 unread messages"));

    assert!(ok(&node, &bob, &["contacts", "add", &alice_addr]).await.contains("outgoing"));
    assert!(ok(&node, &alice, &["contacts"]).await.contains(&format!("incoming {bob_addr}")));
    let notes = ok(&node, &alice, &["notifications"]).await;
    assert!(notes.contains(&format!("contact_request from {bob_addr}")) && notes.contains("1 unread"), "{notes}");
    assert!(ok(&node, &alice, &["contacts", "accept", &bob_addr]).await.contains("contact"));
    assert!(ok(&node, &bob, &["contacts"]).await.contains(&format!("contact  {alice_addr}")));
    assert!(ok(&node, &alice, &["requests"]).await.is_empty(), "contacts leave the requests inbox");
    assert!(ok(&node, &alice, &["notifications", "read"]).await.contains("0 unread"));

    ok(&node, &alice, &["presence", "set", "away"]).await;
    assert!(ok(&node, &bob, &["presence", "get", &alice_addr]).await.contains(&format!("{alice_addr}  away")));
    assert!(ok(&node, &alice, &["contacts", "block", &bob_addr]).await.contains("blocked"));
    assert!(ok(&node, &alice, &["contacts"]).await.contains(&format!("blocked  {bob_addr}")));

    let (success, _, err) = dchat(&node, &alice, &["presence", "set", "busy"]).await;
    assert!(!success && err.contains("online, away or offline"), "{err}");
    let (success, _, err) = dchat(&node, &alice, &["contacts", "block", &bob_addr]).await;
    assert!(!success && err.contains("already_blocked"), "{err}");
}
