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

    function assertNotEq(bytes32 actual, bytes32 unexpected, string memory message) internal pure {
        if (actual == unexpected) {
            revert(string.concat(message, ": expected a value other than ", vm.toString(unexpected)));
        }
    }

    function fail(string memory message, string memory expected, string memory actual) private pure {
        revert(string.concat(message, ": expected ", expected, ", got ", actual));
    }
}
