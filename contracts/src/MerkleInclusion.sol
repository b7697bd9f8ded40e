// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title MerkleInclusionLib
/// @notice Proofs that a dchat message hash is a leaf of a Merkle tree with a given root.
/// @dev Leaves are double-hashed (OpenZeppelin's convention) so that a leaf can never be
///      confused with an inner node; inner nodes are commutative keccak256 hashes of their
///      children (sorted pair), as in OpenZeppelin's `StandardMerkleTree`. The shape of dchat's
///      batch trees (sorted leaves, odd node carried up) is described in docs/contracts.md;
///      any shape built with this hashing verifies here.
library MerkleInclusionLib {
    /// @notice Leaf value committed in the tree for a message hash.
    /// @param messageHash Hash identifying the message.
    /// @return The leaf: keccak256(bytes.concat(keccak256(abi.encode(messageHash)))).
    function leafHash(bytes32 messageHash) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(messageHash))));
    }

    /// @notice Whether `proof` shows that `messageHash` is included under `root`.
    /// @param root Merkle root.
    /// @param messageHash Hash identifying the message.
    /// @param proof Sibling hashes from the leaf up to the root.
    /// @return True if the proof is valid for this root and message.
    function verify(bytes32 root, bytes32 messageHash, bytes32[] calldata proof) internal pure returns (bool) {
        return MerkleProof.verifyCalldata(proof, root, leafHash(messageHash));
    }
}

/// @title MerkleInclusion
/// @notice Stateless contract exposing `MerkleInclusionLib` so off-chain code (and other
///         contracts) can compute leaves and check inclusion proofs of dchat messages.
contract MerkleInclusion {
    /// @notice Leaf value committed in the tree for a message hash.
    /// @param messageHash Hash identifying the message.
    /// @return The double-hashed leaf.
    function leafHash(bytes32 messageHash) public pure returns (bytes32) {
        return MerkleInclusionLib.leafHash(messageHash);
    }

    /// @notice Whether `proof` shows that `messageHash` is included under `root`.
    /// @param root Merkle root.
    /// @param messageHash Hash identifying the message.
    /// @param proof Sibling hashes from the leaf up to the root.
    /// @return True if the proof is valid for this root and message.
    function verify(bytes32 root, bytes32 messageHash, bytes32[] calldata proof) public pure returns (bool) {
        return MerkleInclusionLib.verify(root, messageHash, proof);
    }
}
