// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {MerkleInclusionLib} from "./MerkleInclusion.sol";
import {NodeRegistry} from "./NodeRegistry.sol";

/// @title MessageAnchor
/// @notice Anchors the Merkle roots of batches of dchat message hashes, so that anyone can check
///         on-chain that a message was part of a batch some account anchored by a given time.
/// @dev Anchoring is permissionless and keyed by `(anchorer, root)`: every account has its own
///      namespace of roots, so an anchor spends nothing but its sender's gas, and nobody can
///      squat, overwrite or pre-empt another account's root. Which anchorers to trust is the
///      reader's decision: dchat counts an anchor when its anchorer is an active node in
///      `registry` at read time (`verifyFromActiveNode`, or `registry.isActive(anchorer)`).
///      An anchor costs one new storage slot (the packed record) and one event; there is no
///      counter, no batch id and no registry call on the write path, so a batch costs the same
///      whatever its size (docs/benchmarks.md). Leaves are `MerkleInclusionLib.leafHash(messageHash)`
///      (double keccak256) and inner nodes sorted-pair keccak256, so proofs are checked with
///      OpenZeppelin's `MerkleProof`.
contract MessageAnchor {
    /// @notice What is recorded for an anchored root.
    /// @param count Number of message hashes (leaves) in the batch, as declared by the anchorer
    ///        (0 if `anchorer` never anchored this root).
    /// @param timestamp Block timestamp of the anchoring.
    /// @param blockNumber Block number of the anchoring.
    struct Anchor {
        uint64 count;
        uint64 timestamp;
        uint64 blockNumber;
    }

    /// @notice Registry whose active nodes `verifyFromActiveNode` trusts. Not consulted by
    ///         `anchor`.
    NodeRegistry public immutable registry;

    /// @dev anchorer => root => `count | timestamp << 64 | blockNumber << 128`. `count` is never
    ///      zero for an anchored root, so a zero slot means "not anchored by this account".
    mapping(address anchorer => mapping(bytes32 root => uint256 packed)) private _anchors;

    /// @notice `anchorer` anchored the batch with Merkle root `root`.
    /// @param anchorer Account that sent the anchoring transaction.
    /// @param root Merkle root of the batch.
    /// @param count Number of message hashes in the batch, as declared by the anchorer.
    event Anchored(address indexed anchorer, bytes32 indexed root, uint64 count);

    /// @notice The root is zero.
    error ZeroRoot();
    /// @notice The batch is declared empty.
    error ZeroCount();
    /// @notice `anchorer` already anchored `root`.
    error AlreadyAnchored(address anchorer, bytes32 root);

    /// @param nodeRegistry Registry whose active nodes `verifyFromActiveNode` trusts.
    constructor(NodeRegistry nodeRegistry) {
        registry = nodeRegistry;
    }

    /// @notice Anchors a batch root under the caller's address. Anyone may anchor; readers
    ///         decide whose anchors they trust.
    /// @param root Merkle root of the batch (non-zero, not anchored by the caller before).
    /// @param count Number of message hashes in the batch (non-zero).
    function anchor(bytes32 root, uint64 count) external {
        if (root == bytes32(0)) revert ZeroRoot();
        if (count == 0) revert ZeroCount();
        mapping(bytes32 => uint256) storage mine = _anchors[msg.sender];
        if (mine[root] != 0) revert AlreadyAnchored(msg.sender, root);
        mine[root] = _pack(count, uint64(block.timestamp), uint64(block.number));
        emit Anchored(msg.sender, root, count);
    }

    /// @notice What `anchorer` recorded for `root`; all zero if it never anchored that root.
    /// @param anchorer Account that anchored.
    /// @param root A Merkle root.
    /// @return record Count, timestamp and block number of the anchoring.
    function anchorOf(address anchorer, bytes32 root) external view returns (Anchor memory record) {
        return _unpack(_anchors[anchorer][root]);
    }

    /// @notice Whether `anchorer` anchored `root` and `proof` shows that `messageHash` is in
    ///         that batch. False (never a revert) when the root was not anchored by `anchorer`.
    /// @dev Says nothing about whether `anchorer` is trustworthy; see `verifyFromActiveNode`.
    /// @param anchorer Account that anchored the batch.
    /// @param root Merkle root of the batch.
    /// @param messageHash Hash identifying the message (the leaf is its double keccak256).
    /// @param proof Sibling hashes from the leaf up to the root.
    /// @return True if the root is anchored by `anchorer` and includes the message.
    function verify(address anchorer, bytes32 root, bytes32 messageHash, bytes32[] calldata proof)
        public
        view
        returns (bool)
    {
        return _anchors[anchorer][root] != 0 && MerkleInclusionLib.verify(root, messageHash, proof);
    }

    /// @notice `verify`, and `anchorer` is an active node in `registry` now (at read time, not
    ///         at anchoring time: a node deregistered since no longer counts).
    /// @param anchorer Account that anchored the batch.
    /// @param root Merkle root of the batch.
    /// @param messageHash Hash identifying the message.
    /// @param proof Sibling hashes from the leaf up to the root.
    /// @return True if `verify` holds and `registry.isActive(anchorer)`.
    function verifyFromActiveNode(address anchorer, bytes32 root, bytes32 messageHash, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        return verify(anchorer, root, messageHash, proof) && registry.isActive(anchorer);
    }

    /// @dev The packed record of an anchoring.
    function _pack(uint64 count, uint64 timestamp, uint64 blockNumber) internal pure returns (uint256) {
        return uint256(count) | (uint256(timestamp) << 64) | (uint256(blockNumber) << 128);
    }

    /// @dev The record of a packed slot.
    function _unpack(uint256 packed) internal pure returns (Anchor memory) {
        return Anchor({count: uint64(packed), timestamp: uint64(packed >> 64), blockNumber: uint64(packed >> 128)});
    }
}
