//! Merkle trees over message ids, in the convention `MessageAnchor` verifies on chain
//! (OpenZeppelin `MerkleProof` with double-hashed leaves):
//!
//! - leaf = `keccak256(keccak256(abi.encode(message_id)))`, which for a 32-byte id is
//!   `keccak256(keccak256(id))`;
//! - leaves are sorted ascending, then each level pairs adjacent nodes with
//!   `keccak256(min(a, b) || max(a, b))`; an odd last node is carried up unchanged;
//! - a proof is the list of siblings from the leaf up.
//!
//! `contracts/test/vectors/merkle.json` pins the convention; both test suites check it.

use alloy_primitives::{B256, keccak256};

/// The leaf for a message id.
pub fn leaf(message_id: &B256) -> B256 {
    keccak256(keccak256(message_id.as_slice()))
}

/// Hash of a pair, in sorted order (commutative).
pub fn hash_pair(a: &B256, b: &B256) -> B256 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(lo.as_slice());
    buf[32..].copy_from_slice(hi.as_slice());
    keccak256(buf)
}

/// A tree over a batch of message ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    /// Levels from the sorted leaves (index 0) up to the root (a single node).
    levels: Vec<Vec<B256>>,
}

impl Tree {
    /// Builds the tree; `None` for an empty batch.
    pub fn new(message_ids: &[B256]) -> Option<Self> {
        let mut level: Vec<B256> = message_ids.iter().map(leaf).collect();
        if level.is_empty() {
            return None;
        }
        level.sort_unstable();
        level.dedup();
        let mut levels = vec![level];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().map(Vec::as_slice).unwrap_or_default();
            let up = below.chunks(2).map(|pair| if let [a, b] = pair { hash_pair(a, b) } else { pair[0] }).collect();
            levels.push(up);
        }
        Some(Self { levels })
    }

    /// The root.
    pub fn root(&self) -> B256 {
        self.levels.last().and_then(|l| l.first()).copied().unwrap_or_default()
    }

    /// Number of leaves.
    pub fn len(&self) -> usize {
        self.levels[0].len()
    }

    /// Whether the tree has no leaves (never true for a built tree).
    pub fn is_empty(&self) -> bool {
        self.levels[0].is_empty()
    }

    /// The proof for a message id, or `None` when it is not in the batch.
    pub fn proof(&self, message_id: &B256) -> Option<Vec<B256>> {
        let mut index = self.levels[0].binary_search(&leaf(message_id)).ok()?;
        let mut proof = Vec::new();
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = index ^ 1;
            if let Some(node) = level.get(sibling) {
                proof.push(*node);
            }
            index /= 2;
        }
        Some(proof)
    }
}

/// Checks a proof the way `MerkleProof.verify` does.
pub fn verify(root: &B256, message_id: &B256, proof: &[B256]) -> bool {
    proof.iter().fold(leaf(message_id), |node, sibling| hash_pair(&node, sibling)) == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u8) -> Vec<B256> {
        (0..n).map(|i| keccak256([i])).collect()
    }

    #[test]
    fn every_proof_verifies_for_many_sizes() {
        for n in 1..=33u8 {
            let ids = ids(n);
            let tree = Tree::new(&ids).expect("non-empty");
            assert_eq!(tree.len(), n as usize);
            for id in &ids {
                let proof = tree.proof(id).expect("member");
                assert!(verify(&tree.root(), id, &proof), "size {n}");
            }
            assert!(tree.proof(&keccak256(b"absent")).is_none());
            let wrong = keccak256(b"wrong");
            assert!(!verify(&tree.root(), &wrong, &tree.proof(&ids[0]).expect("member")));
        }
        assert!(Tree::new(&[]).is_none());
    }

    #[test]
    fn single_leaf_tree_is_its_own_root() {
        let id = keccak256(b"only");
        let tree = Tree::new(&[id]).expect("tree");
        assert_eq!(tree.root(), leaf(&id));
        assert_eq!(tree.proof(&id), Some(vec![]));
    }
}
