// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {InvariantTest, Test} from "./utils/Test.sol";
import {NodeRegistry} from "../src/NodeRegistry.sol";
import {ProgrammableReceiver} from "./mocks/ProgrammableReceiver.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @dev Shared fixtures: a registry owned by `owner` with a 7-day unbonding delay.
abstract contract NodeRegistryFixture is Test {
    uint64 internal constant DELAY = 7 days;

    NodeRegistry internal registry;
    address internal owner;
    address internal alice;
    address internal bob;

    function setUp() public virtual {
        vm.warp(1_700_000_000);
        owner = makeAddr("owner");
        alice = makeAddr("alice");
        bob = makeAddr("bob");
        registry = new NodeRegistry(owner, DELAY);
        vm.deal(alice, 100 ether);
        vm.deal(bob, 100 ether);
    }

    function peerIdOf(string memory name) internal pure returns (bytes memory) {
        // An identity-multihash-shaped id: 0x00 0x24 then 36 bytes.
        return bytes.concat(hex"0024", bytes32(keccak256(bytes(name))), bytes4(0x08011220));
    }

    function addrs(string memory a) internal pure returns (string[] memory list) {
        list = new string[](1);
        list[0] = a;
    }

    function addrs(string memory a, string memory b, string memory c) internal pure returns (string[] memory list) {
        list = new string[](3);
        list[0] = a;
        list[1] = b;
        list[2] = c;
    }

    function registerAs(address operator, string memory name, uint256 stake) internal {
        vm.prank(operator);
        registry.register{value: stake}(
            peerIdOf(name), addrs(string.concat("/dns4/", name, ".example/tcp/4001")), "https://node.example"
        );
    }
}

contract NodeRegistryTest is NodeRegistryFixture {
    function test_ConstructorSetsOwnerAndDelay() public view {
        assertEq(registry.owner(), owner, "owner");
        assertEq(registry.unbondingDelay(), DELAY, "delay");
        assertEq(registry.minStake(), 0, "min stake");
        assertEq(registry.activeCount(), 0, "no nodes");
    }

    function test_RevertWhen_ConstructedWithTooLongDelay() public {
        uint64 tooLong = registry.MAX_UNBONDING_DELAY() + 1;
        vm.expectRevert(
            abi.encodeWithSelector(NodeRegistry.UnbondingDelayTooLong.selector, tooLong, registry.MAX_UNBONDING_DELAY())
        );
        new NodeRegistry(owner, tooLong);
    }

    function test_RevertWhen_ConstructedWithoutOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        new NodeRegistry(address(0), DELAY);
    }

    function test_Register_StoresNodeAndEmits() public {
        bytes memory peerId = peerIdOf("alice");
        string[] memory multiaddrs = addrs("/ip4/10.0.0.1/tcp/4001", "/ip4/10.0.0.1/udp/4001/quic-v1", "/dns4/a/tcp/1");
        vm.expectEmit(address(registry));
        emit NodeRegistry.Registered(alice, peerId, multiaddrs, "https://alice.example", 1 ether);
        vm.prank(alice);
        registry.register{value: 1 ether}(peerId, multiaddrs, "https://alice.example");

        assertTrue(registry.isActive(alice), "active");
        assertEq(registry.activeCount(), 1, "count");
        NodeRegistry.Node memory n = registry.node(alice);
        assertEq(n.peerId, peerId, "peer id");
        assertEq(n.multiaddrs.length, 3, "multiaddr count");
        assertEq(n.multiaddrs[1], multiaddrs[1], "multiaddr");
        assertEq(n.url, "https://alice.example", "url");
        assertEq(n.stake, 1 ether, "stake");
        assertEq(n.registeredAt, block.timestamp, "registered at");
        assertEq(n.updatedAt, block.timestamp, "updated at");
        assertEq(address(registry).balance, 1 ether, "stake held");
    }

    function test_Register_WithoutStakeOrUrl() public {
        vm.prank(alice);
        registry.register(peerIdOf("alice"), new string[](0), "");
        assertTrue(registry.isActive(alice), "active");
        assertEq(registry.node(alice).stake, 0, "no stake");
    }

    function test_RevertWhen_RegisteringTwice() public {
        registerAs(alice, "alice", 0);
        vm.expectRevert(abi.encodeWithSelector(NodeRegistry.AlreadyRegistered.selector, alice));
        registerAs(alice, "alice", 0);
    }

    function test_RevertWhen_StakeBelowMinimum() public {
        vm.prank(owner);
        registry.setMinStake(1 ether);
        vm.expectRevert(abi.encodeWithSelector(NodeRegistry.InsufficientStake.selector, 0.5 ether, 1 ether));
        registerAs(alice, "alice", 0.5 ether);
    }

    function test_RevertWhen_PeerIdEmpty() public {
        vm.expectRevert(abi.encodeWithSelector(NodeRegistry.InvalidPeerId.selector, 0));
        vm.prank(alice);
        registry.register("", addrs("/ip4/1.2.3.4/tcp/1"), "");
    }

    function test_RevertWhen_PeerIdTooLong() public {
        bytes memory peerId = new bytes(registry.MAX_PEER_ID_LENGTH() + 1);
        vm.expectRevert(abi.encodeWithSelector(NodeRegistry.InvalidPeerId.selector, peerId.length));
        vm.prank(alice);
        registry.register(peerId, addrs("/ip4/1.2.3.4/tcp/1"), "");
    }

    function test_RevertWhen_TooManyMultiaddrs() public {
        string[] memory many = new string[](registry.MAX_MULTIADDRS() + 1);
        vm.expectRevert(
            abi.encodeWithSelector(NodeRegistry.TooManyMultiaddrs.selector, many.length, registry.MAX_MULTIADDRS())
        );
        vm.prank(alice);
        registry.register(peerIdOf("alice"), many, "");
    }

    function test_RevertWhen_MultiaddrTooLong() public {
        string memory long = string(new bytes(registry.MAX_STRING_LENGTH() + 1));
        vm.expectRevert(
            abi.encodeWithSelector(
                NodeRegistry.StringTooLong.selector, bytes(long).length, registry.MAX_STRING_LENGTH()
            )
        );
        vm.prank(alice);
        registry.register(peerIdOf("alice"), addrs("/ip4/1.2.3.4/tcp/1", long, "/ip4/1.2.3.4/tcp/2"), "");
    }

    function test_RevertWhen_UrlTooLong() public {
        string memory long = string(new bytes(registry.MAX_STRING_LENGTH() + 1));
        vm.expectRevert(
            abi.encodeWithSelector(
                NodeRegistry.StringTooLong.selector, bytes(long).length, registry.MAX_STRING_LENGTH()
            )
        );
        vm.prank(alice);
        registry.register(peerIdOf("alice"), addrs("/ip4/1.2.3.4/tcp/1"), long);
    }

    function test_Update_ReplacesDetailsKeepsStake() public {
        vm.prank(alice);
        registry.register{value: 1 ether}(peerIdOf("alice"), addrs("/a", "/b", "/c"), "https://old.example");
        vm.warp(block.timestamp + 100);

        bytes memory newPeer = peerIdOf("alice-2");
        vm.expectEmit(address(registry));
        emit NodeRegistry.Updated(alice, newPeer, addrs("/d"), "https://new.example");
        vm.prank(alice);
        registry.update(newPeer, addrs("/d"), "https://new.example");

        NodeRegistry.Node memory n = registry.node(alice);
        assertEq(n.peerId, newPeer, "peer id");
        assertEq(n.multiaddrs.length, 1, "old multiaddrs removed");
        assertEq(n.multiaddrs[0], "/d", "multiaddr");
        assertEq(n.url, "https://new.example", "url");
        assertEq(n.stake, 1 ether, "stake kept");
        assertEq(n.updatedAt, block.timestamp, "updated at");
        assertEq(n.registeredAt, block.timestamp - 100, "registered at kept");
    }

    function test_RevertWhen_UpdatingWithoutNode() public {
        vm.expectRevert(abi.encodeWithSelector(NodeRegistry.NotRegistered.selector, alice));
        vm.prank(alice);
        registry.update(peerIdOf("alice"), addrs("/a"), "");
    }

    function test_RevertWhen_UpdatingWithInvalidPeerId() public {
        registerAs(alice, "alice", 0);
        vm.expectRevert(abi.encodeWithSelector(NodeRegistry.InvalidPeerId.selector, 0));
        vm.prank(alice);
        registry.update("", addrs("/a"), "");
    }

    function test_Deregister_StartsUnbonding() public {
        registerAs(alice, "alice", 2 ether);
        uint64 releaseAt = uint64(block.timestamp) + DELAY;
        vm.expectEmit(address(registry));
        emit NodeRegistry.Deregistered(alice, 2 ether, releaseAt);
        vm.prank(alice);
        registry.deregister();

        assertFalse(registry.isActive(alice), "inactive");
        assertEq(registry.activeCount(), 0, "count");
        (uint128 amount, uint64 releaseTime) = registry.unbonding(alice);
        assertEq(amount, 2 ether, "unbonding amount");
        assertEq(releaseTime, releaseAt, "release time");
        vm.expectRevert(abi.encodeWithSelector(NodeRegistry.NotRegistered.selector, alice));
        registry.node(alice);
    }

    function test_Deregister_WithoutStakeLeavesNothingToWithdraw() public {
        registerAs(alice, "alice", 0);
        vm.expectEmit(address(registry));
        emit NodeRegistry.Deregistered(alice, 0, 0);
        vm.prank(alice);
        registry.deregister();
        vm.expectRevert(NodeRegistry.NothingToWithdraw.selector);
        vm.prank(alice);
        registry.withdraw();
    }

    function test_RevertWhen_DeregisteringWithoutNode() public {
        vm.expectRevert(abi.encodeWithSelector(NodeRegistry.NotRegistered.selector, alice));
        vm.prank(alice);
        registry.deregister();
    }

    function test_Withdraw_AfterUnbondingDelay() public {
        registerAs(alice, "alice", 2 ether);
        vm.prank(alice);
        registry.deregister();
        vm.warp(block.timestamp + DELAY);

        uint256 before = alice.balance;
        vm.expectEmit(address(registry));
        emit NodeRegistry.Withdrawn(alice, 2 ether);
        vm.prank(alice);
        registry.withdraw();
        assertEq(alice.balance, before + 2 ether, "stake returned");
        assertEq(address(registry).balance, 0, "registry empty");
        (uint128 amount,) = registry.unbonding(alice);
        assertEq(amount, 0, "nothing pending");
    }

    function test_RevertWhen_WithdrawingBeforeDelay() public {
        registerAs(alice, "alice", 1 ether);
        vm.prank(alice);
        registry.deregister();
        uint64 releaseAt = uint64(block.timestamp) + DELAY;
        vm.warp(releaseAt - 1);
        vm.expectRevert(abi.encodeWithSelector(NodeRegistry.StillUnbonding.selector, releaseAt));
        vm.prank(alice);
        registry.withdraw();
    }

    function test_RevertWhen_WithdrawingNothing() public {
        vm.expectRevert(NodeRegistry.NothingToWithdraw.selector);
        vm.prank(alice);
        registry.withdraw();
    }

    function test_RevertWhen_StakeTransferFails() public {
        ProgrammableReceiver operator = new ProgrammableReceiver();
        vm.deal(address(operator), 1 ether);
        operator.execute(
            address(registry), 1 ether, abi.encodeCall(NodeRegistry.register, (peerIdOf("contract"), addrs("/a"), ""))
        );
        operator.execute(address(registry), 0, abi.encodeCall(NodeRegistry.deregister, ()));
        vm.warp(block.timestamp + DELAY);
        operator.setMode(ProgrammableReceiver.Mode.Reject);

        vm.expectRevert(abi.encodeWithSelector(NodeRegistry.TransferFailed.selector, address(operator), 1 ether));
        operator.execute(address(registry), 0, abi.encodeCall(NodeRegistry.withdraw, ()));
        (uint128 amount,) = registry.unbonding(address(operator));
        assertEq(amount, 1 ether, "stake still pending after the failed transfer");
    }

    function test_Withdraw_ReentryIsRefused() public {
        ProgrammableReceiver operator = new ProgrammableReceiver();
        vm.deal(address(operator), 1 ether);
        operator.execute(
            address(registry), 1 ether, abi.encodeCall(NodeRegistry.register, (peerIdOf("contract"), addrs("/a"), ""))
        );
        operator.execute(address(registry), 0, abi.encodeCall(NodeRegistry.deregister, ()));
        vm.warp(block.timestamp + DELAY);
        operator.setMode(ProgrammableReceiver.Mode.Reenter);
        operator.setReentry(address(registry), abi.encodeCall(NodeRegistry.withdraw, ()), true);

        operator.execute(address(registry), 0, abi.encodeCall(NodeRegistry.withdraw, ()));
        assertEq(operator.reentries(), 1, "re-entered once");
        assertEq(
            operator.reentryError(),
            abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector),
            "re-entry refused"
        );
        assertEq(address(operator).balance, 1 ether, "paid once");
        assertEq(address(registry).balance, 0, "registry empty");
    }

    function test_Reregister_MergesUnbondingStake() public {
        registerAs(alice, "alice", 1 ether);
        vm.prank(alice);
        registry.deregister();
        vm.warp(block.timestamp + 1 days);
        registerAs(alice, "alice", 2 ether);
        vm.prank(alice);
        registry.deregister();

        (uint128 amount, uint64 releaseAt) = registry.unbonding(alice);
        assertEq(amount, 3 ether, "merged");
        assertEq(releaseAt, block.timestamp + DELAY, "later release");
    }

    function test_SetMinStake() public {
        vm.expectEmit(address(registry));
        emit NodeRegistry.MinStakeSet(0, 5 ether);
        vm.prank(owner);
        registry.setMinStake(5 ether);
        assertEq(registry.minStake(), 5 ether, "min stake");
    }

    function test_RevertWhen_SetMinStakeByStranger() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vm.prank(alice);
        registry.setMinStake(1);
    }

    function test_SetUnbondingDelay_AppliesToLaterDeregistrations() public {
        registerAs(alice, "alice", 1 ether);
        vm.expectEmit(address(registry));
        emit NodeRegistry.UnbondingDelaySet(DELAY, 1 days);
        vm.prank(owner);
        registry.setUnbondingDelay(1 days);
        vm.prank(alice);
        registry.deregister();
        (, uint64 releaseAt) = registry.unbonding(alice);
        assertEq(releaseAt, block.timestamp + 1 days, "new delay");
    }

    function test_RevertWhen_UnbondingDelayTooLong() public {
        uint64 max = registry.MAX_UNBONDING_DELAY();
        vm.expectRevert(abi.encodeWithSelector(NodeRegistry.UnbondingDelayTooLong.selector, max + 1, max));
        vm.prank(owner);
        registry.setUnbondingDelay(max + 1);
    }

    function test_RevertWhen_SetUnbondingDelayByStranger() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vm.prank(alice);
        registry.setUnbondingDelay(1);
    }

    function test_Nodes_Pages() public {
        address[] memory operators = new address[](5);
        for (uint256 i = 0; i < 5; ++i) {
            operators[i] = makeAddr(string.concat("op", vm.toString(i)));
            registerAs(operators[i], string.concat("op", vm.toString(i)), 0);
        }
        NodeRegistry.NodeInfo[] memory page = registry.nodes(0, 2);
        assertEq(page.length, 2, "first page");
        assertEq(page[0].operator, operators[0], "first");
        assertEq(page[1].operator, operators[1], "second");
        assertEq(page[1].node.peerId, peerIdOf("op1"), "details");
        page = registry.nodes(4, 2);
        assertEq(page.length, 1, "last page is short");
        assertEq(page[0].operator, operators[4], "last");
        assertEq(registry.nodes(5, 2).length, 0, "past the end");
        assertEq(registry.nodes(0, 0).length, 0, "zero limit");
        assertEq(registry.nodes(2, type(uint256).max).length, 3, "huge limit");
    }

    function test_Nodes_DeregisterMovesLastIntoGap() public {
        registerAs(alice, "alice", 0);
        registerAs(bob, "bob", 0);
        address carol = makeAddr("carol");
        registerAs(carol, "carol", 0);
        vm.prank(alice);
        registry.deregister();

        NodeRegistry.NodeInfo[] memory page = registry.nodes(0, 10);
        assertEq(page.length, 2, "two left");
        assertEq(page[0].operator, carol, "last moved into the gap");
        assertEq(page[1].operator, bob, "bob stays");
        assertTrue(registry.isActive(carol) && registry.isActive(bob), "still active");

        // The moved operator can still deregister cleanly.
        vm.prank(carol);
        registry.deregister();
        page = registry.nodes(0, 10);
        assertEq(page.length, 1, "one left");
        assertEq(page[0].operator, bob, "bob");
    }

    function testFuzz_NodesPaging(uint8 count, uint256 offset, uint256 limit) public {
        count = uint8(bound(count, 0, 20));
        for (uint256 i = 0; i < count; ++i) {
            registerAs(address(uint160(0x1000 + i)), vm.toString(i), 0);
        }
        NodeRegistry.NodeInfo[] memory page = registry.nodes(offset, limit);
        uint256 expected = offset >= count ? 0 : (count - offset < limit ? count - offset : limit);
        assertEq(page.length, expected, "page length");
        for (uint256 i = 0; i < page.length; ++i) {
            assertEq(page[i].operator, address(uint160(0x1000 + offset + i)), "order");
        }
    }

    function testFuzz_StakeRoundTrip(uint96 stake, uint64 delay, uint64 wait) public {
        delay = uint64(bound(delay, 0, registry.MAX_UNBONDING_DELAY()));
        vm.prank(owner);
        registry.setUnbondingDelay(delay);
        vm.deal(alice, stake);
        registerAs(alice, "alice", stake);
        vm.prank(alice);
        registry.deregister();

        wait = uint64(bound(wait, 0, 2 * uint256(registry.MAX_UNBONDING_DELAY())));
        vm.warp(block.timestamp + wait);
        if (stake == 0) {
            vm.expectRevert(NodeRegistry.NothingToWithdraw.selector);
        } else if (wait < delay) {
            vm.expectRevert(
                abi.encodeWithSelector(NodeRegistry.StillUnbonding.selector, block.timestamp - wait + delay)
            );
        }
        vm.prank(alice);
        registry.withdraw();
        if (stake != 0 && wait >= delay) assertEq(alice.balance, stake, "stake returned");
    }
}

/// @dev Drives the registry with a few operators; tracks what it holds for them.
contract NodeRegistryHandler is Test {
    NodeRegistry internal immutable registry;
    address[] public operators;

    constructor(NodeRegistry registry_) {
        registry = registry_;
        for (uint256 i = 0; i < 4; ++i) {
            operators.push(address(uint160(0xA0000 + i)));
        }
    }

    function operatorCount() external view returns (uint256) {
        return operators.length;
    }

    function register(uint256 who, uint96 stake) external {
        address operator = operators[who % operators.length];
        if (registry.isActive(operator)) return;
        stake = uint96(bound(stake, registry.minStake(), 100 ether));
        vm.deal(operator, stake);
        vm.prank(operator);
        registry.register{value: stake}(hex"0024aa", new string[](0), "");
    }

    function update(uint256 who, bytes32 seed) external {
        address operator = operators[who % operators.length];
        if (!registry.isActive(operator)) return;
        vm.prank(operator);
        registry.update(abi.encodePacked(seed), new string[](1), "https://n.example");
    }

    function deregister(uint256 who) external {
        address operator = operators[who % operators.length];
        if (!registry.isActive(operator)) return;
        vm.prank(operator);
        registry.deregister();
    }

    function withdraw(uint256 who) external {
        address operator = operators[who % operators.length];
        (uint128 amount, uint64 releaseAt) = registry.unbonding(operator);
        if (amount == 0 || block.timestamp < releaseAt) return;
        vm.prank(operator);
        registry.withdraw();
    }

    function wait(uint32 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 0, 10 days));
    }
}

contract NodeRegistryInvariantTest is NodeRegistryFixture, InvariantTest {
    NodeRegistryHandler internal handler;

    function setUp() public override {
        super.setUp();
        handler = new NodeRegistryHandler(registry);
        targetContract(address(handler));
    }

    /// @dev The registry holds exactly the stakes of active nodes plus unbonding stakes.
    /// forge-config: default.invariant.runs = 64
    /// forge-config: default.invariant.depth = 64
    /// forge-config: default.invariant.fail_on_revert = true
    function invariant_EtherEqualsStakes() public view {
        uint256 owed = 0;
        uint256 active = 0;
        for (uint256 i = 0; i < handler.operatorCount(); ++i) {
            address operator = handler.operators(i);
            (uint128 pending,) = registry.unbonding(operator);
            owed += pending;
            if (registry.isActive(operator)) {
                owed += registry.node(operator).stake;
                ++active;
            }
        }
        assertEq(address(registry).balance, owed, "ether held");
        assertEq(registry.activeCount(), active, "active count");
    }

    /// @dev Every listed node is active and listed once.
    /// forge-config: default.invariant.runs = 64
    /// forge-config: default.invariant.depth = 64
    /// forge-config: default.invariant.fail_on_revert = true
    function invariant_ListingMatchesActiveSet() public view {
        NodeRegistry.NodeInfo[] memory page = registry.nodes(0, type(uint256).max);
        assertEq(page.length, registry.activeCount(), "listing length");
        for (uint256 i = 0; i < page.length; ++i) {
            assertTrue(registry.isActive(page[i].operator), "listed node is active");
            for (uint256 j = 0; j < i; ++j) {
                assertTrue(page[i].operator != page[j].operator, "listed once");
            }
        }
    }
}
