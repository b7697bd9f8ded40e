// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @title Vm
/// @notice The few Foundry cheatcodes that dchat's Solidity tests use. Forge serves them from the
///         fixed cheatcode address `VM_ADDRESS`; declare more here only when a test needs them.
interface Vm {
    /// @notice A log recorded after `recordLogs`.
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    /// @notice Sets `msg.sender` for the next call only.
    function prank(address msgSender) external;

    /// @notice Sets `msg.sender` for every call until `stopPrank`.
    function startPrank(address msgSender) external;

    /// @notice Ends a `startPrank`.
    function stopPrank() external;

    /// @notice Expects the next call to revert, with any data.
    function expectRevert() external;

    /// @notice Expects the next call to revert with exactly this selector (e.g. a custom error without arguments).
    function expectRevert(bytes4 revertData) external;

    /// @notice Expects the next call to revert with exactly this data (e.g. `abi.encodeWithSelector(...)`).
    function expectRevert(bytes calldata revertData) external;

    /// @notice Expects the next emitted event to match the one emitted right after this call, checking
    ///         all topics and the data.
    function expectEmit() external;

    /// @notice Like `expectEmit()`, but also checks that the event is emitted by `emitter`.
    function expectEmit(address emitter) external;

    /// @notice Like `expectEmit()`, choosing which of topics 1 to 3 and the data to compare.
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData) external;

    /// @notice Starts recording every emitted log.
    function recordLogs() external;

    /// @notice The logs recorded since `recordLogs` (or the last call to this function), then clears them.
    function getRecordedLogs() external returns (Log[] memory logs);

    /// @notice Sets the ether balance of `account`.
    function deal(address account, uint256 newBalance) external;

    /// @notice Sets `block.timestamp`.
    function warp(uint256 newTimestamp) external;

    /// @notice Sets `block.number`.
    function roll(uint256 newHeight) external;

    /// @notice Names `account` in traces.
    function label(address account, string calldata newLabel) external;

    /// @notice Discards the current fuzz input when `condition` is false.
    function assume(bool condition) external pure;

    /// @notice Signs `digest` with the private key `privateKey`.
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);

    /// @notice The address of the private key `privateKey`.
    function addr(uint256 privateKey) external pure returns (address keyAddr);

    /// @notice Scripts: sends the following calls as transactions from the script's sender.
    function startBroadcast() external;

    /// @notice Scripts: sends the following calls as transactions signed with `privateKey`.
    function startBroadcast(uint256 privateKey) external;

    /// @notice Scripts: ends a `startBroadcast`.
    function stopBroadcast() external;

    /// @notice The environment variable `name` as an unsigned integer, or `defaultValue` if unset.
    function envOr(string calldata name, uint256 defaultValue) external view returns (uint256 value);

    /// @notice The environment variable `name` as an address, or `defaultValue` if unset.
    function envOr(string calldata name, address defaultValue) external view returns (address value);

    /// @notice The contents of a file (paths relative to the project root; needs read permission).
    function readFile(string calldata path) external view returns (string memory data);

    /// @notice The bytes32 at `key` (a JSONPath such as ".root") in `json`.
    function parseJsonBytes32(string calldata json, string calldata key) external pure returns (bytes32);

    /// @notice The bytes32 array at `key` in `json`.
    function parseJsonBytes32Array(string calldata json, string calldata key) external pure returns (bytes32[] memory);

    /// @notice The string array at `key` in `json`.
    function parseJsonStringArray(string calldata json, string calldata key) external pure returns (string[] memory);

    /// @notice Formats a value for assertion messages.
    function toString(uint256 value) external pure returns (string memory);

    /// @notice Formats a value for assertion messages.
    function toString(bytes32 value) external pure returns (string memory);

    /// @notice Formats a value for assertion messages.
    function toString(address value) external pure returns (string memory);

    /// @notice Formats a value for assertion messages.
    function toString(bool value) external pure returns (string memory);

    /// @notice Formats a value for assertion messages.
    function toString(bytes calldata value) external pure returns (string memory);
}

/// @dev Address of the cheatcode contract: the last 20 bytes of keccak256("hevm cheat code").
address constant VM_ADDRESS = address(uint160(uint256(keccak256("hevm cheat code"))));
