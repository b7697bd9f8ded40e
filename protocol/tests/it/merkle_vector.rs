//! The Merkle vector the contracts are tested with (`contracts/test/vectors/merkle.json`):
//! the Rust tree must produce exactly its leaves, root and proofs.

use std::path::PathBuf;

use dchat_protocol::{
    B256,
    merkle::{Tree, leaf, verify},
};
use serde_json::Value;

fn b256(v: &Value) -> B256 {
    v.as_str().expect("hex string").parse().expect("32-byte hex")
}

#[test]
fn rust_tree_reproduces_the_contract_vector() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../contracts/test/vectors/merkle.json");
    let vector: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("vector file")).expect("json");
    let messages = vector["messages"].as_array().expect("messages");
    let hashes: Vec<B256> = vector["messageHashes"].as_array().expect("hashes").iter().map(b256).collect();
    for (m, h) in messages.iter().zip(&hashes) {
        assert_eq!(alloy_primitives::keccak256(m.as_str().expect("text").as_bytes()), *h);
    }
    let tree = Tree::new(&hashes).expect("tree");
    let mut leaves: Vec<B256> = hashes.iter().map(leaf).collect();
    leaves.sort();
    let want_leaves: Vec<B256> = vector["leafHashes"].as_array().expect("leaves").iter().map(b256).collect();
    assert_eq!(leaves, want_leaves);
    assert_eq!(tree.root(), b256(&vector["root"]));
    for (h, want) in hashes.iter().zip(vector["proofs"].as_array().expect("proofs")) {
        let want: Vec<B256> = want.as_array().expect("proof").iter().map(b256).collect();
        assert_eq!(tree.proof(h).expect("member"), want);
        assert!(verify(&tree.root(), h, &want));
    }
}
