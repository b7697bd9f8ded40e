// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "../test/utils/Test.sol";
import {MessageAnchor} from "../src/MessageAnchor.sol";
import {NodeRegistry} from "../src/NodeRegistry.sol";

/// @notice Gas of `MessageAnchor.anchor`, for `scripts/bench anchor` (not part of the test suite:
///         it runs with `FOUNDRY_TEST=contracts/bench forge test --gas-report`). Each test anchors
///         one batch per size after a first batch, so the cheapest call of a run is the steady
///         state (the first batch also pays for the batch counter's first write). The gas of
///         `anchor` does not depend on how many messages a batch holds; the script divides it by
///         each size.
contract MessageAnchorGasBench is Test {
    NodeRegistry internal registry;
    MessageAnchor internal anchors;
    address internal owner = address(0xA11CE);
    address internal operator = address(0xB0B);
    uint64[4] internal sizes = [uint64(1_000), 10_000, 50_000, 100_000];

    function setUp() public {
        registry = new NodeRegistry(owner, 7 days);
        anchors = new MessageAnchor(owner, registry);
        vm.prank(operator);
        registry.register(hex"00240102", new string[](0), "https://node.example");
    }

    /// @notice Batches anchored by the contract's owner.
    function test_AnchorByOwner() public {
        anchorAll(owner);
    }

    /// @notice Batches anchored by a registered, active operator (one more external call).
    function test_AnchorByOperator() public {
        anchorAll(operator);
    }

    function anchorAll(address by) internal {
        vm.startPrank(by);
        anchors.anchor(keccak256("first batch"), 1);
        for (uint256 i = 0; i < sizes.length; ++i) {
            anchors.anchor(keccak256(abi.encode("batch", i)), sizes[i]);
        }
        vm.stopPrank();
        assertEq(anchors.batchCount(), sizes.length + 1, "batches anchored");
    }
}
