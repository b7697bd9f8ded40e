// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {Vm} from "./utils/Vm.sol";
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
    address internal operator;
    address internal stranger;

    function setUp() public {
        vm.warp(1_700_000_000);
        vm.roll(1000);
        operator = makeAddr("operator");
        stranger = makeAddr("stranger");
        registry = new NodeRegistry(makeAddr("registry owner"), 7 days);
        anchors = new MessageAnchor(registry);
        vm.prank(operator);
        registry.register(hex"00240102", new string[](0), "https://node.example");
    }

    function anchorAs(address who, bytes32 root, uint64 count) internal {
        vm.prank(who);
        anchors.anchor(root, count);
    }

    // ------------------------------------------------------------------------------------
    // anchor
    // ------------------------------------------------------------------------------------

    function test_Constructor() public view {
        assertEq(address(anchors.registry()), address(registry), "registry");
    }

    function test_Anchor_StoresRecordUnderTheAnchorer() public {
        bytes32 root = keccak256("root");
        vm.expectEmit(address(anchors));
        emit MessageAnchor.Anchored(operator, root, 42);
        anchorAs(operator, root, 42);

        MessageAnchor.Anchor memory a = anchors.anchorOf(operator, root);
        assertEq(a.count, 42, "count");
        assertEq(a.timestamp, block.timestamp, "timestamp");
        assertEq(a.blockNumber, block.number, "block");
        // Nobody else anchored it.
        assertEq(anchors.anchorOf(stranger, root).count, 0, "other anchorer");
        assertEq(anchors.anchorOf(operator, keccak256("other")).count, 0, "other root");
    }

    function test_Anchor_EmitsOneEventAndNothingElse() public {
        vm.recordLogs();
        anchorAs(stranger, keccak256("a"), 7);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1, "one log");
        assertEq(logs[0].emitter, address(anchors), "emitter");
        assertEq(logs[0].topics.length, 3, "signature, anchorer, root");
        assertEq(logs[0].topics[0], MessageAnchor.Anchored.selector, "signature");
        assertEq(logs[0].topics[1], bytes32(uint256(uint160(stranger))), "anchorer topic");
        assertEq(logs[0].topics[2], keccak256("a"), "root topic");
        assertEq(logs[0].data, abi.encode(uint64(7)), "count");
    }

    function test_Anchor_IsPermissionless() public {
        // An account that is no node anchors just the same; its anchors are its own.
        anchorAs(stranger, keccak256("a"), 1);
        assertEq(anchors.anchorOf(stranger, keccak256("a")).count, 1, "stranger anchored");
        vm.prank(operator);
        registry.deregister();
        anchorAs(operator, keccak256("b"), 2);
        assertEq(anchors.anchorOf(operator, keccak256("b")).count, 2, "deregistered operator anchored");
    }

    function test_Anchor_TwoAnchorersAnchorTheSameRootIndependently() public {
        bytes32 root = keccak256("shared");
        anchorAs(stranger, root, 3);
        vm.warp(block.timestamp + 60);
        vm.roll(block.number + 5);
        // The stranger got there first; the operator's own anchor is unaffected.
        anchorAs(operator, root, 9);
        MessageAnchor.Anchor memory s = anchors.anchorOf(stranger, root);
        MessageAnchor.Anchor memory o = anchors.anchorOf(operator, root);
        assertEq(s.count, 3, "stranger count");
        assertEq(o.count, 9, "operator count");
        assertEq(o.timestamp, s.timestamp + 60, "own timestamp");
        assertEq(o.blockNumber, s.blockNumber + 5, "own block");
        // Each can still not anchor it twice.
        vm.expectRevert(abi.encodeWithSelector(MessageAnchor.AlreadyAnchored.selector, stranger, root));
        anchorAs(stranger, root, 3);
    }

    function test_RevertWhen_RootIsZero() public {
        vm.expectRevert(MessageAnchor.ZeroRoot.selector);
        anchorAs(operator, bytes32(0), 1);
    }

    function test_RevertWhen_CountIsZero() public {
        vm.expectRevert(MessageAnchor.ZeroCount.selector);
        anchorAs(operator, keccak256("a"), 0);
    }

    function test_RevertWhen_RootAlreadyAnchoredByTheSameAnchorer() public {
        bytes32 root = keccak256("a");
        anchorAs(operator, root, 1);
        vm.warp(block.timestamp + 1);
        vm.expectRevert(abi.encodeWithSelector(MessageAnchor.AlreadyAnchored.selector, operator, root));
        anchorAs(operator, root, 5);
        // The first record stands.
        MessageAnchor.Anchor memory a = anchors.anchorOf(operator, root);
        assertEq(a.count, 1, "count kept");
        assertEq(a.timestamp, block.timestamp - 1, "timestamp kept");
    }

    /// @dev The packed slot round-trips every count, timestamp and block number a uint64 holds.
    function testFuzz_AnchorRecordRoundTrips(address anchorer, bytes32 root, uint64 count, uint64 time, uint64 height)
        public
    {
        vm.assume(root != bytes32(0) && count != 0);
        vm.warp(time);
        vm.roll(height);
        anchorAs(anchorer, root, count);
        MessageAnchor.Anchor memory a = anchors.anchorOf(anchorer, root);
        assertEq(a.count, count, "count");
        assertEq(a.timestamp, time, "timestamp");
        assertEq(a.blockNumber, height, "block");
        assertEq(anchors.anchorOf(address(uint160(anchorer) ^ 1), root).count, 0, "no other anchorer");
    }

    // ------------------------------------------------------------------------------------
    // verify
    // ------------------------------------------------------------------------------------

    function checkEveryProof(address anchorer, bytes32[] memory hashes) internal {
        Tree memory tree = buildTree(hashes);
        anchorAs(anchorer, tree.root, uint64(hashes.length));
        for (uint256 i = 0; i < hashes.length; ++i) {
            assertTrue(
                anchors.verify(anchorer, tree.root, hashes[i], tree.proofs[i]), string.concat("leaf ", vm.toString(i))
            );
            // Any other message hash with this proof fails.
            assertFalse(
                anchors.verify(anchorer, tree.root, keccak256(abi.encode(hashes[i])), tree.proofs[i]), "other message"
            );
            // The leaf value itself is not accepted as a message hash.
            assertFalse(anchors.verify(anchorer, tree.root, leafOf(hashes[i]), tree.proofs[i]), "leaf as message");
            // A valid proof under a root this account never anchored does not count.
            assertFalse(anchors.verify(address(0xdead), tree.root, hashes[i], tree.proofs[i]), "other anchorer");
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
        checkEveryProof(operator, hashes);
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
        checkEveryProof(operator, hashes);
    }

    function indexOfMessage(bytes32[] memory hashes, bytes32 leaf) internal pure returns (uint256) {
        for (uint256 i = 0; i < hashes.length; ++i) {
            if (leafOf(hashes[i]) == leaf) return i;
        }
        revert("not found");
    }

    function test_Verify_SingleMessageBatch() public {
        bytes32 message = keccak256("only");
        anchorAs(operator, leafOf(message), 1);
        assertTrue(anchors.verify(operator, leafOf(message), message, new bytes32[](0)), "root is the leaf");
    }

    function test_Verify_FalseForARootNeverAnchored() public {
        bytes32[] memory hashes = hashesOf(4, "unanchored");
        Tree memory tree = buildTree(hashes);
        // The proof is valid for the tree, but nobody anchored its root.
        assertFalse(anchors.verify(operator, tree.root, hashes[0], tree.proofs[0]), "not anchored");
        assertFalse(anchors.verifyFromActiveNode(operator, tree.root, hashes[0], tree.proofs[0]), "not anchored");
    }

    function test_Verify_RejectsProofForAnotherBatch() public {
        bytes32[] memory first = hashesOf(4, "first");
        bytes32[] memory second = hashesOf(4, "second");
        Tree memory a = buildTree(first);
        Tree memory b = buildTree(second);
        anchorAs(operator, a.root, 4);
        anchorAs(operator, b.root, 4);
        assertTrue(anchors.verify(operator, a.root, first[0], a.proofs[0]), "own batch");
        assertFalse(anchors.verify(operator, b.root, first[0], a.proofs[0]), "other batch");
    }

    function test_VerifyFromActiveNode_TrustsOnlyActiveNodesAtReadTime() public {
        bytes32[] memory hashes = hashesOf(5, "trusted");
        Tree memory tree = buildTree(hashes);
        anchorAs(operator, tree.root, 5);
        anchorAs(stranger, tree.root, 5);
        // Both anchored the root; only the registered node's anchor counts.
        assertTrue(anchors.verify(stranger, tree.root, hashes[2], tree.proofs[2]), "stranger's anchor is real");
        assertFalse(
            anchors.verifyFromActiveNode(stranger, tree.root, hashes[2], tree.proofs[2]), "stranger not trusted"
        );
        assertTrue(anchors.verifyFromActiveNode(operator, tree.root, hashes[2], tree.proofs[2]), "active node");
        // Trust is decided when read: a node that leaves the registry stops counting, and one
        // that joins starts.
        vm.prank(operator);
        registry.deregister();
        assertFalse(anchors.verifyFromActiveNode(operator, tree.root, hashes[2], tree.proofs[2]), "deregistered");
        assertTrue(anchors.verify(operator, tree.root, hashes[2], tree.proofs[2]), "the anchor itself stays");
        vm.prank(stranger);
        registry.register(hex"00240103", new string[](0), "");
        assertTrue(anchors.verifyFromActiveNode(stranger, tree.root, hashes[2], tree.proofs[2]), "newly registered");
    }

    function testFuzz_VerifyEveryLeaf(uint8 count, bytes32 salt) public {
        count = uint8(bound(count, 1, 33));
        bytes32[] memory hashes = new bytes32[](count);
        for (uint256 i = 0; i < count; ++i) {
            hashes[i] = keccak256(abi.encode(salt, i));
        }
        checkEveryProof(operator, hashes);
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

        anchorAs(operator, root, 5);
        for (uint256 i = 0; i < 5; ++i) {
            bytes32[] memory proof = vm.parseJsonBytes32Array(json, string.concat(".proofs[", vm.toString(i), "]"));
            assertEq(proof, tree.proofs[i], "proof matches");
            assertTrue(anchors.verify(operator, root, hashes[i], proof), string.concat("vector proof ", vm.toString(i)));
            assertTrue(anchors.verifyFromActiveNode(operator, root, hashes[i], proof), "from an active node");
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
        anchorAs(operator, node, uint64(1) << uint64(depth));
        assertTrue(anchors.verify(operator, node, message, proof), "deep proof");
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
