//! The `dchat-gateway` binary refuses to start without LinkedIn credentials, naming what is
//! missing.

use std::process::Command;

fn run(env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dchat-gateway"));
    cmd.env_clear().args(["--http", "127.0.0.1:0"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run dchat-gateway");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn names_the_missing_linkedin_credentials() {
    let (ok, err) = run(&[]);
    assert!(!ok && err.contains("DCHAT_LINKEDIN_CLIENT_ID"), "{err}");
    let id = ("DCHAT_LINKEDIN_CLIENT_ID", "abc");
    let (ok, err) = run(&[id]);
    assert!(!ok && err.contains("DCHAT_GATEWAY_KEY is not set"), "{err}");
    let key = ("DCHAT_GATEWAY_KEY", crate::common::GATEWAY_KEY);
    let (ok, err) = run(&[id, key]);
    assert!(!ok && err.contains("DCHAT_LINKEDIN_CLIENT_SECRET is not set"), "{err}");
    let (ok, err) = run(&[id, ("DCHAT_GATEWAY_KEY", "not-a-key"), ("DCHAT_LINKEDIN_CLIENT_SECRET", "s")]);
    assert!(!ok && err.contains("DCHAT_GATEWAY_KEY is not a hex secp256k1 private key"), "{err}");
    assert!(!err.contains("not-a-key"), "the value is not echoed");
}
