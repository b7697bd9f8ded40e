// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Vm, VM_ADDRESS} from "../test/utils/Vm.sol";
import {MessageAnchor} from "../src/MessageAnchor.sol";
import {NodeRegistry} from "../src/NodeRegistry.sol";
import {Payments} from "../src/Payments.sol";

/// @title Deploy
/// @notice Deploys dchat's contracts: NodeRegistry, MessageAnchor (permissionless anchoring; its
///         readers trust the registry's active nodes) and Payments (fees to the deployer at 1%).
/// @dev The deployer (the broadcasting account) owns NodeRegistry and Payments; MessageAnchor
///      has no owner. Environment overrides:
///      `DCHAT_DEPLOYER_KEY` (private key to broadcast with; otherwise forge's `--private-key`,
///      `--account` or `--sender`), `DCHAT_FEE_RECIPIENT` (default: the deployer),
///      `DCHAT_FEE_BPS` (default 100) and `DCHAT_UNBONDING_DELAY` (seconds, default 7 days).
///      Forge prints the addresses `run` returns and records the transactions under its
///      broadcast directory; the script itself writes nothing.
contract Deploy {
    Vm internal constant vm = Vm(VM_ADDRESS);

    /// @notice Default operator fee: 1%.
    uint256 public constant DEFAULT_FEE_BPS = 100;
    /// @notice Default unbonding delay of node stakes.
    uint256 public constant DEFAULT_UNBONDING_DELAY = 7 days;

    /// @notice Deploys the three contracts.
    /// @return registry The NodeRegistry.
    /// @return anchor The MessageAnchor.
    /// @return payments The Payments contract.
    function run() external returns (NodeRegistry registry, MessageAnchor anchor, Payments payments) {
        uint256 key = vm.envOr("DCHAT_DEPLOYER_KEY", uint256(0));
        address deployer;
        if (key != 0) {
            deployer = vm.addr(key);
            vm.startBroadcast(key);
        } else {
            deployer = msg.sender;
            vm.startBroadcast();
        }
        address feeRecipient = vm.envOr("DCHAT_FEE_RECIPIENT", deployer);
        uint16 feeBps = uint16(vm.envOr("DCHAT_FEE_BPS", DEFAULT_FEE_BPS));
        uint64 unbondingDelay = uint64(vm.envOr("DCHAT_UNBONDING_DELAY", DEFAULT_UNBONDING_DELAY));

        registry = new NodeRegistry(deployer, unbondingDelay);
        anchor = new MessageAnchor(registry);
        payments = new Payments(deployer, feeRecipient, feeBps);
        vm.stopBroadcast();
    }
}
