// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "../test/utils/Test.sol";
import {MessageAnchor} from "../src/MessageAnchor.sol";
import {NodeRegistry} from "../src/NodeRegistry.sol";

/// @notice Gas of `MessageAnchor.anchor` per batch size, for `scripts/bench anchor` (not part of
///         the test suite). The script runs one test per size with
///         `FOUNDRY_TEST=contracts/bench forge test --isolate --gas-report`: with `--isolate`
///         every top-level call is its own transaction, so the reported gas is what a receipt
///         shows — the 21,000 base, the calldata and execution. Each test anchors one batch, by
///         an account that is an active node in the registry (the write path never reads the
///         registry, so any account pays the same). The contract's work does not depend on the
///         batch size; only the calldata of `count` (one more non-zero byte above 65,535) does.
contract MessageAnchorGasBench is Test {
    NodeRegistry internal registry;
    MessageAnchor internal anchors;
    address internal operator = address(0xB0B);

    function setUp() public {
        registry = new NodeRegistry(address(0xA11CE), 7 days);
        anchors = new MessageAnchor(registry);
        vm.prank(operator);
        registry.register(hex"00240102", new string[](0), "https://node.example");
    }

    function anchorBatch(uint64 size) internal {
        bytes32 root = keccak256(abi.encode("batch", size));
        vm.prank(operator);
        anchors.anchor(root, size);
        assertEq(anchors.anchorOf(operator, root).count, size, "anchored");
    }

    /// @notice A batch of 1,000 messages.
    function test_AnchorBatchOf1000Messages() public {
        anchorBatch(1_000);
    }

    /// @notice A batch of 10,000 messages.
    function test_AnchorBatchOf10000Messages() public {
        anchorBatch(10_000);
    }

    /// @notice A batch of 50,000 messages.
    function test_AnchorBatchOf50000Messages() public {
        anchorBatch(50_000);
    }

    /// @notice A batch of 100,000 messages.
    function test_AnchorBatchOf100000Messages() public {
        anchorBatch(100_000);
    }
}
