// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {MerkleInclusionLib} from "./MerkleInclusion.sol";
import {NodeRegistry} from "./NodeRegistry.sol";

/// @title MessageAnchor
/// @notice Anchors the Merkle roots of batches of dchat message hashes, so that anyone can check
///         on-chain that a message was part of an anchored batch.
/// @dev Who may anchor: any operator whose node is active in `registry`, and the owner of this
///      contract (for a deployment without registered nodes, or a hosted node). Anchoring is
///      restricted so that batch ids and storage are not spent on anyone's junk; anchoring never
///      lends a message more credibility than the anchorer's address, which every batch records.
///      Leaves are `MerkleInclusionLib.leafHash(messageHash)` (double keccak256) and inner nodes
///      sorted-pair keccak256, so proofs are checked with OpenZeppelin's `MerkleProof`.
contract MessageAnchor is Ownable2Step {
    /// @notice An anchored batch.
    /// @param root Merkle root of the batch.
    /// @param count Number of message hashes (leaves) in the batch, as declared by the anchorer.
    /// @param anchorer Account that anchored the batch.
    /// @param timestamp Block timestamp of the anchoring.
    /// @param blockNumber Block number of the anchoring.
    struct Batch {
        bytes32 root;
        uint64 count;
        address anchorer;
        uint64 timestamp;
        uint64 blockNumber;
    }

    /// @notice Registry whose active operators may anchor.
    NodeRegistry public immutable registry;

    /// @notice Number of batches anchored; also the id of the latest batch (ids start at 1).
    uint256 public batchCount;

    /// @dev Storage layout of a batch, keyed by root: two slots (anchorer and count; batch id,
    ///      timestamp and block number), plus one slot for the root keyed by batch id.
    struct Record {
        address anchorer;
        uint64 count;
        uint64 batchId;
        uint64 timestamp;
        uint64 blockNumber;
    }

    mapping(uint256 batchId => bytes32 root) private _roots;
    mapping(bytes32 root => Record) private _records;

    /// @notice A batch of message hashes was anchored.
    /// @param batchId Id of the new batch.
    /// @param root Merkle root of the batch.
    /// @param anchorer Account that anchored it.
    /// @param count Number of message hashes in the batch.
    event Anchored(uint256 indexed batchId, bytes32 indexed root, address indexed anchorer, uint64 count);

    /// @notice The caller is neither an active operator nor the owner.
    error NotAnchorer(address caller);
    /// @notice The root is zero.
    error ZeroRoot();
    /// @notice The batch is declared empty.
    error ZeroCount();
    /// @notice This root was already anchored as batch `batchId`.
    error RootAlreadyAnchored(bytes32 root, uint256 batchId);
    /// @notice No batch has this id.
    error UnknownBatch(uint256 batchId);

    /// @param initialOwner Account that may anchor besides active operators.
    /// @param nodeRegistry Registry whose active operators may anchor.
    constructor(address initialOwner, NodeRegistry nodeRegistry) Ownable(initialOwner) {
        registry = nodeRegistry;
    }

    /// @notice Anchors a batch root. Only an active operator of `registry` or the owner.
    /// @param root Merkle root of the batch (non-zero, never anchored before).
    /// @param count Number of message hashes in the batch (non-zero).
    /// @return batchId Id of the new batch.
    function anchor(bytes32 root, uint64 count) external returns (uint256 batchId) {
        if (msg.sender != owner() && !registry.isActive(msg.sender)) revert NotAnchorer(msg.sender);
        if (root == bytes32(0)) revert ZeroRoot();
        if (count == 0) revert ZeroCount();
        uint256 existing = _records[root].batchId;
        if (existing != 0) revert RootAlreadyAnchored(root, existing);

        batchId = ++batchCount;
        _roots[batchId] = root;
        _records[root] = Record({
            anchorer: msg.sender,
            count: count,
            batchId: uint64(batchId),
            timestamp: uint64(block.timestamp),
            blockNumber: uint64(block.number)
        });
        emit Anchored(batchId, root, msg.sender, count);
    }

    /// @notice Whether `proof` shows that `messageHash` is in batch `batchId`.
    ///         Reverts with `UnknownBatch` if the batch does not exist.
    /// @param batchId Id of an anchored batch.
    /// @param messageHash Hash identifying the message (the leaf is its double keccak256).
    /// @param proof Sibling hashes from the leaf up to the root.
    /// @return True if the message is included in the batch.
    function verify(uint256 batchId, bytes32 messageHash, bytes32[] calldata proof) external view returns (bool) {
        return MerkleInclusionLib.verify(_rootOf(batchId), messageHash, proof);
    }

    /// @notice The id of the batch anchored with `root`, or 0 if none.
    /// @param root A Merkle root.
    /// @return batchId The batch id, 0 if the root was never anchored.
    function batchOf(bytes32 root) external view returns (uint256 batchId) {
        return _records[root].batchId;
    }

    /// @notice An anchored batch. Reverts with `UnknownBatch` if the batch does not exist.
    /// @param batchId Id of the batch.
    /// @return The batch.
    function batch(uint256 batchId) external view returns (Batch memory) {
        bytes32 root = _rootOf(batchId);
        Record memory r = _records[root];
        return
            Batch({
                root: root, count: r.count, anchorer: r.anchorer, timestamp: r.timestamp, blockNumber: r.blockNumber
            });
    }

    /// @notice Whether `account` may currently anchor.
    /// @param account Account to check.
    /// @return True for the owner and for active operators of `registry`.
    function canAnchor(address account) external view returns (bool) {
        return account == owner() || registry.isActive(account);
    }

    function _rootOf(uint256 batchId) private view returns (bytes32 root) {
        root = _roots[batchId];
        if (root == bytes32(0)) revert UnknownBatch(batchId);
    }
}
