// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @title Vm
/// @notice The few Foundry cheatcodes that dchat's Solidity tests use. Forge serves them from the
///         fixed cheatcode address `VM_ADDRESS`; declare more here only when a test needs them.
interface Vm {
    /// @notice Sets `msg.sender` for the next call only.
    function prank(address msgSender) external;

    /// @notice Expects the next call to revert, with any data.
    function expectRevert() external;

    /// @notice Expects the next call to revert with exactly this selector (e.g. a custom error without arguments).
    function expectRevert(bytes4 revertData) external;

    /// @notice Expects the next call to revert with exactly this data (e.g. `abi.encodeWithSelector(...)`).
    function expectRevert(bytes calldata revertData) external;

    /// @notice Sets the ether balance of `account`.
    function deal(address account, uint256 newBalance) external;

    /// @notice Sets `block.timestamp`.
    function warp(uint256 newTimestamp) external;

    /// @notice Discards the current fuzz input when `condition` is false.
    function assume(bool condition) external pure;

    /// @notice Signs `digest` with the private key `privateKey`.
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);

    /// @notice The address of the private key `privateKey`.
    function addr(uint256 privateKey) external pure returns (address keyAddr);

    /// @notice Formats a value for assertion messages.
    function toString(uint256 value) external pure returns (string memory);

    /// @notice Formats a value for assertion messages.
    function toString(bytes32 value) external pure returns (string memory);

    /// @notice Formats a value for assertion messages.
    function toString(address value) external pure returns (string memory);

    /// @notice Formats a value for assertion messages.
    function toString(bool value) external pure returns (string memory);
}

/// @dev Address of the cheatcode contract: the last 20 bytes of keccak256("hevm cheat code").
address constant VM_ADDRESS = address(uint160(uint256(keccak256("hevm cheat code"))));
