// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title ERC1271Wallet
/// @notice A minimal contract wallet whose valid signatures are its owner's ECDSA signatures.
/// @dev Used by the node's tests to sign in a contract account (ERC-1271) against a real chain.
contract ERC1271Wallet is IERC1271 {
    /// @notice The key that signs for this wallet.
    address public immutable owner;

    /// @param owner_ The externally owned account that signs for this wallet.
    constructor(address owner_) {
        owner = owner_;
    }

    /// @notice ERC-1271: whether `signature` is the owner's signature of `hash`.
    /// @param hash The signed digest.
    /// @param signature 65-byte ECDSA signature.
    /// @return magicValue `IERC1271.isValidSignature.selector` when valid, `0xffffffff` otherwise.
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4 magicValue) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
        if (err == ECDSA.RecoverError.NoError && signer == owner) {
            return IERC1271.isValidSignature.selector;
        }
        return bytes4(0xffffffff);
    }
}
