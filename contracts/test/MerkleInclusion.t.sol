// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {MerkleInclusion} from "../src/MerkleInclusion.sol";

contract MerkleInclusionTest is Test {
    MerkleInclusion internal merkle;

    function setUp() public {
        merkle = new MerkleInclusion();
    }

    /// @dev Inner node: keccak256 of the two children in ascending order (written here
    ///      independently of the implementation under test).
    function hashPair(bytes32 a, bytes32 b) internal pure returns (bytes32) {
        return a < b ? keccak256(abi.encodePacked(a, b)) : keccak256(abi.encodePacked(b, a));
    }

    function proofOf(bytes32 sibling) internal pure returns (bytes32[] memory proof) {
        proof = new bytes32[](1);
        proof[0] = sibling;
    }

    function proofOf(bytes32 sibling, bytes32 uncle) internal pure returns (bytes32[] memory proof) {
        proof = new bytes32[](2);
        proof[0] = sibling;
        proof[1] = uncle;
    }

    function test_LeafHashIsDoubleHashed() public view {
        bytes32 message = keccak256("hello dchat");
        bytes32 expected = keccak256(abi.encodePacked(keccak256(abi.encodePacked(message))));
        assertEq(merkle.leafHash(message), expected, "leaf hash");
    }

    function test_VerifiesTwoLeafTree() public view {
        bytes32 m1 = keccak256("message 1");
        bytes32 m2 = keccak256("message 2");
        bytes32 l1 = merkle.leafHash(m1);
        bytes32 l2 = merkle.leafHash(m2);
        bytes32 root = hashPair(l1, l2);

        assertTrue(merkle.verify(root, m1, proofOf(l2)), "first leaf");
        assertTrue(merkle.verify(root, m2, proofOf(l1)), "second leaf");
    }

    function test_RejectsWrongLeaf() public view {
        bytes32 m1 = keccak256("message 1");
        bytes32 m2 = keccak256("message 2");
        bytes32 l1 = merkle.leafHash(m1);
        bytes32 l2 = merkle.leafHash(m2);
        bytes32 root = hashPair(l1, l2);

        assertFalse(merkle.verify(root, keccak256("message 3"), proofOf(l2)), "message not in tree");
        // A raw (single-hashed) leaf value is not accepted as a message hash.
        assertFalse(merkle.verify(root, l1, proofOf(l2)), "leaf passed as message");
        assertFalse(merkle.verify(root, m1, proofOf(l1)), "wrong sibling");
        assertFalse(merkle.verify(bytes32(0), m1, proofOf(l2)), "wrong root");
    }

    function testFuzz_SingleLeafTreeIsItsOwnRoot(bytes32 message) public view {
        bytes32 root = merkle.leafHash(message);
        assertTrue(merkle.verify(root, message, new bytes32[](0)), "single leaf");
        assertFalse(merkle.verify(message, message, new bytes32[](0)), "message hash is not a root");
    }

    function testFuzz_FourLeafTree(bytes32 a, bytes32 b, bytes32 c, bytes32 d) public view {
        bytes32 la = merkle.leafHash(a);
        bytes32 lb = merkle.leafHash(b);
        bytes32 lc = merkle.leafHash(c);
        bytes32 ld = merkle.leafHash(d);
        bytes32 ab = hashPair(la, lb);
        bytes32 cd = hashPair(lc, ld);
        bytes32 root = hashPair(ab, cd);

        assertTrue(merkle.verify(root, a, proofOf(lb, cd)), "leaf a");
        assertTrue(merkle.verify(root, b, proofOf(la, cd)), "leaf b");
        assertTrue(merkle.verify(root, c, proofOf(ld, ab)), "leaf c");
        assertTrue(merkle.verify(root, d, proofOf(lc, ab)), "leaf d");
    }
}
