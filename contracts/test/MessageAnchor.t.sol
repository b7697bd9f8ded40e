// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Test} from "./utils/Test.sol";
import {MessageAnchor} from "../src/MessageAnchor.sol";
import {NodeRegistry} from "../src/NodeRegistry.sol";

/// @dev The dchat message tree, written here independently of the contracts: leaves are the
///      double-hashed message hashes sorted ascending; each level pairs adjacent nodes with the
///      keccak256 of (smaller, larger); an odd node at the end of a level is carried up unchanged.
abstract contract MerkleTreeBuilder {
    struct Tree {
        bytes32[] leaves; // sorted
        bytes32 root;
        bytes32[][] proofs; // proofs[i] proves messageHashes[i]
    }

    function leafOf(bytes32 messageHash) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(keccak256(abi.encodePacked(messageHash))));
    }

    function hashPair(bytes32 a, bytes32 b) internal pure returns (bytes32) {
        return a < b ? keccak256(abi.encodePacked(a, b)) : keccak256(abi.encodePacked(b, a));
    }

    function buildTree(bytes32[] memory messageHashes) internal pure returns (Tree memory tree) {
        uint256 n = messageHashes.length;
        require(n > 0, "empty tree");
        bytes32[] memory leaves = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            leaves[i] = leafOf(messageHashes[i]);
        }
        sort(leaves);

        // levels[0] = leaves, levels[depth - 1] = [root]
        bytes32[][] memory levels = new bytes32[][](64);
        levels[0] = leaves;
        uint256 depth = 1;
        while (levels[depth - 1].length > 1) {
            bytes32[] memory below = levels[depth - 1];
            bytes32[] memory above = new bytes32[]((below.length + 1) / 2);
            for (uint256 i = 0; i < below.length; i += 2) {
                above[i / 2] = i + 1 < below.length ? hashPair(below[i], below[i + 1]) : below[i];
            }
            levels[depth++] = above;
        }

        tree.leaves = leaves;
        tree.root = levels[depth - 1][0];
        tree.proofs = new bytes32[][](n);
        for (uint256 m = 0; m < n; ++m) {
            uint256 position = indexOf(leaves, leafOf(messageHashes[m]));
            bytes32[] memory proof = new bytes32[](depth);
            uint256 length = 0;
            for (uint256 d = 0; d + 1 < depth; ++d) {
                uint256 sibling = position ^ 1;
                if (sibling < levels[d].length) proof[length++] = levels[d][sibling];
                position >>= 1;
            }
            assembly ("memory-safe") {
                mstore(proof, length)
            }
            tree.proofs[m] = proof;
        }
    }

    function sort(bytes32[] memory values) internal pure {
        for (uint256 i = 1; i < values.length; ++i) {
            bytes32 value = values[i];
            uint256 j = i;
            while (j > 0 && values[j - 1] > value) {
                values[j] = values[j - 1];
                --j;
            }
            values[j] = value;
        }
    }

    function indexOf(bytes32[] memory values, bytes32 value) internal pure returns (uint256) {
        for (uint256 i = 0; i < values.length; ++i) {
            if (values[i] == value) return i;
        }
        revert("not found");
    }

    function hashesOf(uint256 count, string memory prefix) internal pure returns (bytes32[] memory hashes) {
        hashes = new bytes32[](count);
        for (uint256 i = 0; i < count; ++i) {
            hashes[i] = keccak256(abi.encodePacked(prefix, i));
        }
    }
}

/// forge-config: default.fs_permissions = [{ access = "read", path = "contracts/test/vectors" }]
contract MessageAnchorTest is Test, MerkleTreeBuilder {
    NodeRegistry internal registry;
    MessageAnchor internal anchors;
    address internal owner;
    address internal operator;
    address internal stranger;

    function setUp() public {
        vm.warp(1_700_000_000);
        vm.roll(1000);
        owner = makeAddr("owner");
        operator = makeAddr("operator");
        stranger = makeAddr("stranger");
        registry = new NodeRegistry(owner, 7 days);
        anchors = new MessageAnchor(owner, registry);
        vm.prank(operator);
        registry.register(hex"00240102", new string[](0), "https://node.example");
    }

    function anchorAs(address who, bytes32 root, uint64 count) internal returns (uint256) {
        vm.prank(who);
        return anchors.anchor(root, count);
    }

    // ------------------------------------------------------------------------------------
    // anchor
    // ------------------------------------------------------------------------------------

    function test_Constructor() public view {
        assertEq(anchors.owner(), owner, "owner");
        assertEq(address(anchors.registry()), address(registry), "registry");
        assertEq(anchors.batchCount(), 0, "no batches");
    }

    function test_Anchor_ByOperatorStoresBatch() public {
        bytes32 root = keccak256("root");
        vm.expectEmit(address(anchors));
        emit MessageAnchor.Anchored(1, root, operator, 42);
        uint256 id = anchorAs(operator, root, 42);

        assertEq(id, 1, "first id");
        assertEq(anchors.batchCount(), 1, "count");
        assertEq(anchors.batchOf(root), 1, "batch of root");
        MessageAnchor.Batch memory b = anchors.batch(1);
        assertEq(b.root, root, "root");
        assertEq(b.count, 42, "count");
        assertEq(b.anchorer, operator, "anchorer");
        assertEq(b.timestamp, block.timestamp, "timestamp");
        assertEq(b.blockNumber, block.number, "block");
    }

    function test_Anchor_ByOwner() public {
        uint256 id = anchorAs(owner, keccak256("a"), 1);
        assertEq(anchors.batch(id).anchorer, owner, "owner anchored");
    }

    function test_Anchor_IdsIncrease() public {
        assertEq(anchorAs(operator, keccak256("a"), 1), 1, "first");
        assertEq(anchorAs(owner, keccak256("b"), 2), 2, "second");
        assertEq(anchorAs(operator, keccak256("c"), 3), 3, "third");
        assertEq(anchors.batchOf(keccak256("b")), 2, "lookup");
        assertEq(anchors.batchOf(keccak256("never")), 0, "unknown root");
    }

    function test_CanAnchor() public {
        assertTrue(anchors.canAnchor(owner), "owner");
        assertTrue(anchors.canAnchor(operator), "operator");
        assertFalse(anchors.canAnchor(stranger), "stranger");
        vm.prank(operator);
        registry.deregister();
        assertFalse(anchors.canAnchor(operator), "deregistered operator");
    }

    function test_RevertWhen_AnchoredByStranger() public {
        vm.expectRevert(abi.encodeWithSelector(MessageAnchor.NotAnchorer.selector, stranger));
        anchorAs(stranger, keccak256("a"), 1);
    }

    function test_RevertWhen_AnchoredByDeregisteredOperator() public {
        vm.prank(operator);
        registry.deregister();
        vm.expectRevert(abi.encodeWithSelector(MessageAnchor.NotAnchorer.selector, operator));
        anchorAs(operator, keccak256("a"), 1);
    }

    function test_RevertWhen_RootIsZero() public {
        vm.expectRevert(MessageAnchor.ZeroRoot.selector);
        anchorAs(operator, bytes32(0), 1);
    }

    function test_RevertWhen_CountIsZero() public {
        vm.expectRevert(MessageAnchor.ZeroCount.selector);
        anchorAs(operator, keccak256("a"), 0);
    }

    function test_RevertWhen_RootAlreadyAnchored() public {
        bytes32 root = keccak256("a");
        anchorAs(operator, root, 1);
        vm.expectRevert(abi.encodeWithSelector(MessageAnchor.RootAlreadyAnchored.selector, root, 1));
        anchorAs(owner, root, 5);
    }

    function test_RevertWhen_BatchUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(MessageAnchor.UnknownBatch.selector, 0));
        anchors.batch(0);
        anchorAs(operator, keccak256("a"), 1);
        vm.expectRevert(abi.encodeWithSelector(MessageAnchor.UnknownBatch.selector, 2));
        anchors.batch(2);
    }

    function test_RevertWhen_VerifyingUnknownBatch() public {
        vm.expectRevert(abi.encodeWithSelector(MessageAnchor.UnknownBatch.selector, 7));
        anchors.verify(7, keccak256("m"), new bytes32[](0));
    }

    function test_RevertWhen_OwnerActionByStranger() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        anchors.transferOwnership(stranger);
    }

    function testFuzz_Anchor(bytes32 root, uint64 count) public {
        vm.assume(root != bytes32(0) && count != 0);
        uint256 id = anchorAs(operator, root, count);
        assertEq(anchors.batchOf(root), id, "batch of root");
        assertEq(anchors.batch(id).count, count, "count");
    }

    // ------------------------------------------------------------------------------------
    // verify
    // ------------------------------------------------------------------------------------

    function checkEveryProof(bytes32[] memory hashes) internal {
        Tree memory tree = buildTree(hashes);
        uint256 id = anchorAs(operator, tree.root, uint64(hashes.length));
        for (uint256 i = 0; i < hashes.length; ++i) {
            assertTrue(anchors.verify(id, hashes[i], tree.proofs[i]), string.concat("leaf ", vm.toString(i)));
            // Any other message hash with this proof fails.
            assertFalse(anchors.verify(id, keccak256(abi.encode(hashes[i])), tree.proofs[i]), "other message");
            // The leaf value itself is not accepted as a message hash.
            assertFalse(anchors.verify(id, leafOf(hashes[i]), tree.proofs[i]), "leaf as message");
        }
    }

    function test_Verify_FourLeafTree() public {
        bytes32[] memory hashes = hashesOf(4, "four");
        Tree memory tree = buildTree(hashes);
        // A full tree: every proof has two siblings.
        for (uint256 i = 0; i < 4; ++i) {
            assertEq(tree.proofs[i].length, 2, "proof length");
        }
        assertEq(
            tree.root,
            hashPair(hashPair(tree.leaves[0], tree.leaves[1]), hashPair(tree.leaves[2], tree.leaves[3])),
            "root"
        );
        checkEveryProof(hashes);
    }

    function test_Verify_SevenLeafTree() public {
        bytes32[] memory hashes = hashesOf(7, "seven");
        Tree memory tree = buildTree(hashes);
        bytes32[] memory l = tree.leaves;
        bytes32 expected =
            hashPair(hashPair(hashPair(l[0], l[1]), hashPair(l[2], l[3])), hashPair(hashPair(l[4], l[5]), l[6]));
        assertEq(tree.root, expected, "root");
        // The carried-up seventh leaf has a two-element proof.
        assertEq(tree.proofs[indexOfMessage(hashes, l[6])].length, 2, "carried leaf proof");
        checkEveryProof(hashes);
    }

    function indexOfMessage(bytes32[] memory hashes, bytes32 leaf) internal pure returns (uint256) {
        for (uint256 i = 0; i < hashes.length; ++i) {
            if (leafOf(hashes[i]) == leaf) return i;
        }
        revert("not found");
    }

    function test_Verify_SingleMessageBatch() public {
        bytes32 message = keccak256("only");
        uint256 id = anchorAs(operator, leafOf(message), 1);
        assertTrue(anchors.verify(id, message, new bytes32[](0)), "root is the leaf");
    }

    function test_Verify_RejectsProofForAnotherBatch() public {
        bytes32[] memory first = hashesOf(4, "first");
        bytes32[] memory second = hashesOf(4, "second");
        Tree memory a = buildTree(first);
        Tree memory b = buildTree(second);
        uint256 idA = anchorAs(operator, a.root, 4);
        uint256 idB = anchorAs(operator, b.root, 4);
        assertTrue(anchors.verify(idA, first[0], a.proofs[0]), "own batch");
        assertFalse(anchors.verify(idB, first[0], a.proofs[0]), "other batch");
    }

    function testFuzz_VerifyEveryLeaf(uint8 count, bytes32 salt) public {
        count = uint8(bound(count, 1, 33));
        bytes32[] memory hashes = new bytes32[](count);
        for (uint256 i = 0; i < count; ++i) {
            hashes[i] = keccak256(abi.encode(salt, i));
        }
        checkEveryProof(hashes);
    }

    /// @dev The cross-check vector the Rust tree must reproduce: contracts/test/vectors/merkle.json.
    function test_Verify_CrossCheckVector() public {
        string memory json = vm.readFile("contracts/test/vectors/merkle.json");
        string[] memory messages = vm.parseJsonStringArray(json, ".messages");
        bytes32[] memory hashes = vm.parseJsonBytes32Array(json, ".messageHashes");
        bytes32[] memory leaves = vm.parseJsonBytes32Array(json, ".leafHashes");
        bytes32 root = vm.parseJsonBytes32(json, ".root");
        assertEq(messages.length, 5, "five messages");
        assertEq(hashes.length, 5, "five hashes");

        // The vector agrees with this file's independent tree.
        for (uint256 i = 0; i < 5; ++i) {
            assertEq(messages[i], string.concat("m", vm.toString(i)), "message text");
            assertEq(hashes[i], keccak256(bytes(messages[i])), "message hash");
        }
        Tree memory tree = buildTree(hashes);
        assertEq(leaves, tree.leaves, "sorted leaves");
        assertEq(root, tree.root, "root");
        assertEq(root, 0x090f737c8cd17bfeee443665440c3ecbf8bbc635adb784f7759d48bc0fb50f30, "pinned root");

        uint256 id = anchorAs(operator, root, 5);
        for (uint256 i = 0; i < 5; ++i) {
            bytes32[] memory proof = vm.parseJsonBytes32Array(json, string.concat(".proofs[", vm.toString(i), "]"));
            assertEq(proof, tree.proofs[i], "proof matches");
            assertTrue(anchors.verify(id, hashes[i], proof), string.concat("vector proof ", vm.toString(i)));
        }
    }

    // ------------------------------------------------------------------------------------
    // Gas: proof verification at the depths of 1k- and 100k-message batches
    // ------------------------------------------------------------------------------------

    function verifyAtDepth(uint256 depth) internal {
        bytes32 message = keccak256("deep");
        bytes32[] memory proof = new bytes32[](depth);
        bytes32 node = leafOf(message);
        for (uint256 i = 0; i < depth; ++i) {
            proof[i] = keccak256(abi.encode("sibling", i));
            node = hashPair(node, proof[i]);
        }
        uint256 id = anchorAs(operator, node, uint64(1) << uint64(depth));
        assertTrue(anchors.verify(id, message, proof), "deep proof");
    }

    /// @dev 1,024 messages: 10 siblings.
    function test_Verify_Depth10() public {
        verifyAtDepth(10);
    }

    /// @dev 100,000 messages: 17 siblings.
    function test_Verify_Depth17() public {
        verifyAtDepth(17);
    }
}
