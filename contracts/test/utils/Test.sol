// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Vm, VM_ADDRESS} from "./Vm.sol";

/// @title Test
/// @notice Base contract for dchat's Solidity tests: the cheatcode handle `vm` and assertion
///         helpers. A failed assertion reverts with "<message>: expected <b>, got <a>", which
///         forge reports as a test failure.
abstract contract Test {
    Vm internal constant vm = Vm(VM_ADDRESS);

    function assertTrue(bool condition, string memory message) internal pure {
        if (!condition) revert(string.concat(message, ": expected true"));
    }

    function assertFalse(bool condition, string memory message) internal pure {
        if (condition) revert(string.concat(message, ": expected false"));
    }

    function assertEq(bool actual, bool expected, string memory message) internal pure {
        if (actual != expected) fail(message, vm.toString(expected), vm.toString(actual));
    }

    function assertEq(uint256 actual, uint256 expected, string memory message) internal pure {
        if (actual != expected) fail(message, vm.toString(expected), vm.toString(actual));
    }

    function assertEq(bytes32 actual, bytes32 expected, string memory message) internal pure {
        if (actual != expected) fail(message, vm.toString(expected), vm.toString(actual));
    }

    function assertEq(address actual, address expected, string memory message) internal pure {
        if (actual != expected) fail(message, vm.toString(expected), vm.toString(actual));
    }

    function assertEq(string memory actual, string memory expected, string memory message) internal pure {
        if (keccak256(bytes(actual)) != keccak256(bytes(expected))) fail(message, expected, actual);
    }

    function assertEq(bytes memory actual, bytes memory expected, string memory message) internal pure {
        if (keccak256(actual) != keccak256(expected)) fail(message, vm.toString(expected), vm.toString(actual));
    }

    function assertEq(bytes32[] memory actual, bytes32[] memory expected, string memory message) internal pure {
        assertEq(actual.length, expected.length, string.concat(message, " (length)"));
        for (uint256 i = 0; i < actual.length; ++i) {
            assertEq(actual[i], expected[i], string.concat(message, " [", vm.toString(i), "]"));
        }
    }

    function assertGt(uint256 a, uint256 b, string memory message) internal pure {
        if (a <= b) fail(message, string.concat("> ", vm.toString(b)), vm.toString(a));
    }

    function assertGe(uint256 a, uint256 b, string memory message) internal pure {
        if (a < b) fail(message, string.concat(">= ", vm.toString(b)), vm.toString(a));
    }

    function assertLt(uint256 a, uint256 b, string memory message) internal pure {
        if (a >= b) fail(message, string.concat("< ", vm.toString(b)), vm.toString(a));
    }

    function assertLe(uint256 a, uint256 b, string memory message) internal pure {
        if (a > b) fail(message, string.concat("<= ", vm.toString(b)), vm.toString(a));
    }

    function assertNotEq(bytes32 actual, bytes32 unexpected, string memory message) internal pure {
        if (actual == unexpected) {
            revert(string.concat(message, ": expected a value other than ", vm.toString(unexpected)));
        }
    }

    /// @dev Maps any `x` into [min, max] (inclusive), keeping small values unchanged where possible
    ///      so that the fuzzer's edge cases survive.
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        require(min <= max, "bound: min > max");
        if (x >= min && x <= max) return x;
        uint256 size = max - min;
        if (size == type(uint256).max) return x;
        return min + x % (size + 1);
    }

    /// @dev A deterministic address named `name` in traces.
    function makeAddr(string memory name) internal returns (address account) {
        account = vm.addr(uint256(keccak256(bytes(name))));
        vm.label(account, name);
    }

    function fail(string memory message, string memory expected, string memory actual) private pure {
        revert(string.concat(message, ": expected ", expected, ", got ", actual));
    }
}

/// @title InvariantTest
/// @notice Invariant-test configuration that forge reads from the test contract: the contracts
///         (and optionally selectors) the fuzzer calls, and senders it must not use.
abstract contract InvariantTest is Test {
    /// @notice Selectors of one target contract, in the shape forge expects.
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    address[] private _targetContracts;
    FuzzSelector[] private _targetSelectors;
    address[] private _excludeSenders;

    /// @dev Makes `target` a contract the fuzzer calls (when any are set, only those).
    function targetContract(address target) internal {
        _targetContracts.push(target);
    }

    /// @dev Restricts the calls to `target` to `selectors`.
    function targetSelector(address target, bytes4[] memory selectors) internal {
        _targetSelectors.push(FuzzSelector({addr: target, selectors: selectors}));
    }

    /// @dev Keeps the fuzzer from calling as `sender`.
    function excludeSender(address sender) internal {
        _excludeSenders.push(sender);
    }

    /// @notice Read by forge: the contracts to fuzz.
    function targetContracts() public view returns (address[] memory) {
        return _targetContracts;
    }

    /// @notice Read by forge: the selectors to fuzz per contract.
    function targetSelectors() public view returns (FuzzSelector[] memory) {
        return _targetSelectors;
    }

    /// @notice Read by forge: senders the fuzzer must not use.
    function excludeSenders() public view returns (address[] memory) {
        return _excludeSenders;
    }
}
