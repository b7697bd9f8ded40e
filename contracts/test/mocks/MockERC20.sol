// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title MockERC20
/// @notice An ERC-20 anyone can mint, for tests.
contract MockERC20 is ERC20 {
    /// @param name_ Token name.
    /// @param symbol_ Token symbol.
    constructor(string memory name_, string memory symbol_) ERC20(name_, symbol_) {}

    /// @notice Creates `amount` tokens for `to`.
    /// @param to Receiver.
    /// @param amount Amount minted.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}

/// @title FeeOnTransferToken
/// @notice An ERC-20 that burns 1% of every transfer between accounts, for tests of tokens that
///         deliver less than the amount sent.
contract FeeOnTransferToken is ERC20 {
    constructor() ERC20("Fee on transfer", "FOT") {}

    /// @notice Creates `amount` tokens for `to`.
    /// @param to Receiver.
    /// @param amount Amount minted.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && to != address(0)) {
            uint256 burned = value / 100;
            super._update(from, address(0), burned);
            value -= burned;
        }
        super._update(from, to, value);
    }
}

/// @title CallbackToken
/// @notice An ERC-20 that calls an arbitrary contract during every transfer (as a token with
///         transfer hooks could), for reentrancy tests. Reverts of the callback are bubbled up.
contract CallbackToken is ERC20 {
    address public callbackTarget;
    bytes public callbackData;

    constructor() ERC20("Callback", "CBK") {}

    /// @notice Creates `amount` tokens for `to`.
    /// @param to Receiver.
    /// @param amount Amount minted.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Sets the call made during transfers (`target` zero: none).
    /// @param target Contract called.
    /// @param data Calldata.
    function setCallback(address target, bytes calldata data) external {
        callbackTarget = target;
        callbackData = data;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (callbackTarget != address(0) && from != address(0)) {
            (bool ok, bytes memory ret) = callbackTarget.call(callbackData);
            if (!ok) {
                assembly ("memory-safe") {
                    revert(add(ret, 0x20), mload(ret))
                }
            }
        }
    }
}
