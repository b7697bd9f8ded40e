// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @title ProgrammableReceiver
/// @notice A contract account for tests: it makes calls on the test's behalf and, when it receives
///         ETH, accepts it, rejects it, or re-enters a contract once.
contract ProgrammableReceiver {
    /// @notice What to do on receiving ETH.
    enum Mode {
        Accept,
        Reject,
        Reenter
    }

    Mode public mode;
    address public reentryTarget;
    bytes public reentryData;
    /// @notice Whether a failed re-entry is swallowed (and recorded) rather than bubbled up.
    bool public catchReentry;
    /// @notice Revert data of the last swallowed re-entry.
    bytes public reentryError;
    /// @notice Number of re-entries attempted.
    uint256 public reentries;

    /// @notice Sets the behaviour on receiving ETH.
    /// @param newMode Accept, reject or re-enter.
    function setMode(Mode newMode) external {
        mode = newMode;
    }

    /// @notice Sets the re-entrant call made (once) on receiving ETH in `Reenter` mode.
    /// @param target Contract re-entered.
    /// @param data Calldata.
    /// @param swallow Whether to record a failing re-entry instead of reverting.
    function setReentry(address target, bytes calldata data, bool swallow) external {
        reentryTarget = target;
        reentryData = data;
        catchReentry = swallow;
    }

    /// @notice Calls `target` with `value` and `data`, bubbling up a revert.
    /// @param target Contract called.
    /// @param value Wei sent.
    /// @param data Calldata.
    /// @return result Return data.
    function execute(address target, uint256 value, bytes calldata data)
        external
        payable
        returns (bytes memory result)
    {
        bool ok;
        (ok, result) = target.call{value: value}(data);
        if (!ok) _bubble(result);
    }

    receive() external payable {
        if (mode == Mode.Reject) revert("ProgrammableReceiver: rejected");
        if (mode == Mode.Reenter && reentries == 0) {
            reentries = 1;
            (bool ok, bytes memory ret) = reentryTarget.call(reentryData);
            if (!ok) {
                if (!catchReentry) _bubble(ret);
                reentryError = ret;
            }
        }
    }

    function _bubble(bytes memory ret) private pure {
        assembly ("memory-safe") {
            revert(add(ret, 0x20), mload(ret))
        }
    }
}
