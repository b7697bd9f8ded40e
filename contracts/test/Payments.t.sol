// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {InvariantTest, Test} from "./utils/Test.sol";
import {Payments} from "../src/Payments.sol";
import {CallbackToken, FeeOnTransferToken, MockERC20} from "./mocks/MockERC20.sol";
import {ProgrammableReceiver} from "./mocks/ProgrammableReceiver.sol";

/// @dev Shared fixtures: Payments with a 1% fee, a token, and funded accounts.
abstract contract PaymentsFixture is Test {
    uint16 internal constant FEE_BPS = 100;
    bytes32 internal constant ROOM = keccak256("dchat room");
    bytes32 internal constant MESSAGE = keccak256("dchat message");
    address internal constant ETH = address(0);

    Payments internal payments;
    MockERC20 internal token;
    address internal owner;
    address internal fees;
    address internal alice;
    address internal bob;
    address internal carol;

    function setUp() public virtual {
        vm.warp(1_700_000_000);
        owner = makeAddr("owner");
        fees = makeAddr("fees");
        alice = makeAddr("alice");
        bob = makeAddr("bob");
        carol = makeAddr("carol");
        payments = new Payments(owner, fees, FEE_BPS);
        token = new MockERC20("Token", "TOK");
        address[3] memory users = [alice, bob, carol];
        for (uint256 i = 0; i < users.length; ++i) {
            vm.deal(users[i], 1000 ether);
            token.mint(users[i], 1000 ether);
            vm.prank(users[i]);
            token.approve(address(payments), type(uint256).max);
        }
    }

    function feeOf(uint256 amount) internal pure returns (uint256) {
        return amount * FEE_BPS / 10_000;
    }

    function openRoom(address roomOwner, address payToken, uint256 price, uint64 period) internal {
        vm.startPrank(roomOwner);
        payments.registerRoom(ROOM);
        payments.setRoomPrice(ROOM, payToken, price, period);
        vm.stopPrank();
    }
}

contract PaymentsTest is PaymentsFixture {
    // ------------------------------------------------------------------------------------
    // Construction and administration
    // ------------------------------------------------------------------------------------

    function test_Constructor() public view {
        assertEq(payments.owner(), owner, "owner");
        assertEq(payments.feeRecipient(), fees, "fee recipient");
        assertEq(payments.feeBps(), FEE_BPS, "fee");
        assertEq(payments.postageCount(), 0, "no postage");
    }

    function test_RevertWhen_ConstructedWithTooHighFee() public {
        vm.expectRevert(abi.encodeWithSelector(Payments.FeeTooHigh.selector, 1001, 1000));
        new Payments(owner, fees, 1001);
    }

    function test_RevertWhen_ConstructedWithoutFeeRecipient() public {
        vm.expectRevert(Payments.ZeroAddress.selector);
        new Payments(owner, address(0), 100);
    }

    function test_SetFeeBps() public {
        vm.expectEmit(address(payments));
        emit Payments.FeeBpsSet(FEE_BPS, 1000);
        vm.prank(owner);
        payments.setFeeBps(1000);
        assertEq(payments.feeBps(), 1000, "fee");
    }

    function test_RevertWhen_FeeTooHigh() public {
        vm.expectRevert(abi.encodeWithSelector(Payments.FeeTooHigh.selector, 1001, 1000));
        vm.prank(owner);
        payments.setFeeBps(1001);
    }

    function test_RevertWhen_SetFeeBpsByStranger() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vm.prank(alice);
        payments.setFeeBps(0);
    }

    function test_SetFeeRecipient() public {
        vm.expectEmit(address(payments));
        emit Payments.FeeRecipientSet(fees, carol);
        vm.prank(owner);
        payments.setFeeRecipient(carol);
        vm.prank(alice);
        payments.tip{value: 1 ether}(bob, MESSAGE);
        assertEq(payments.balances(carol, ETH), feeOf(1 ether), "new recipient credited");
        assertEq(payments.balances(fees, ETH), 0, "old recipient not credited");
    }

    function test_RevertWhen_FeeRecipientIsZero() public {
        vm.expectRevert(Payments.ZeroAddress.selector);
        vm.prank(owner);
        payments.setFeeRecipient(address(0));
    }

    function test_RevertWhen_SetFeeRecipientByStranger() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vm.prank(alice);
        payments.setFeeRecipient(alice);
    }

    function test_OwnershipTransferIsTwoStep() public {
        vm.prank(owner);
        payments.transferOwnership(carol);
        assertEq(payments.owner(), owner, "unchanged until accepted");
        assertEq(payments.pendingOwner(), carol, "pending");
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, bob));
        vm.prank(bob);
        payments.acceptOwnership();
        vm.prank(carol);
        payments.acceptOwnership();
        assertEq(payments.owner(), carol, "accepted");
    }

    // ------------------------------------------------------------------------------------
    // Tips
    // ------------------------------------------------------------------------------------

    function test_Tip_CreditsRecipientAndFee() public {
        vm.expectEmit(address(payments));
        emit Payments.Tipped(alice, bob, ETH, 1 ether, 0.01 ether, MESSAGE);
        vm.prank(alice);
        payments.tip{value: 1 ether}(bob, MESSAGE);

        assertEq(payments.balances(bob, ETH), 0.99 ether, "recipient");
        assertEq(payments.balances(fees, ETH), 0.01 ether, "fee");
        assertEq(address(payments).balance, 1 ether, "held");
    }

    function test_Tip_WithoutFee() public {
        vm.prank(owner);
        payments.setFeeBps(0);
        vm.prank(alice);
        payments.tip{value: 1 ether}(bob, MESSAGE);
        assertEq(payments.balances(bob, ETH), 1 ether, "whole tip");
        assertEq(payments.balances(fees, ETH), 0, "no fee");
    }

    function test_RevertWhen_TipToZeroAddress() public {
        vm.expectRevert(Payments.ZeroAddress.selector);
        vm.prank(alice);
        payments.tip{value: 1}(address(0), MESSAGE);
    }

    function test_RevertWhen_TipIsZero() public {
        vm.expectRevert(Payments.ZeroAmount.selector);
        vm.prank(alice);
        payments.tip(bob, MESSAGE);
    }

    function test_TipToken_CreditsRecipientAndFee() public {
        vm.expectEmit(address(payments));
        emit Payments.Tipped(alice, bob, address(token), 200 ether, 2 ether, MESSAGE);
        vm.prank(alice);
        payments.tipToken(token, bob, 200 ether, MESSAGE);

        assertEq(payments.balances(bob, address(token)), 198 ether, "recipient");
        assertEq(payments.balances(fees, address(token)), 2 ether, "fee");
        assertEq(token.balanceOf(address(payments)), 200 ether, "held");
        assertEq(token.balanceOf(alice), 800 ether, "paid");
    }

    function test_RevertWhen_TipTokenIsZeroAddress() public {
        vm.expectRevert(Payments.ZeroAddress.selector);
        vm.prank(alice);
        payments.tipToken(IERC20(address(0)), bob, 1, MESSAGE);
    }

    function test_RevertWhen_TipTokenToZeroAddress() public {
        vm.expectRevert(Payments.ZeroAddress.selector);
        vm.prank(alice);
        payments.tipToken(token, address(0), 1, MESSAGE);
    }

    function test_RevertWhen_TipTokenIsZero() public {
        vm.expectRevert(Payments.ZeroAmount.selector);
        vm.prank(alice);
        payments.tipToken(token, bob, 0, MESSAGE);
    }

    function test_RevertWhen_TipTokenWithoutAllowance() public {
        vm.prank(alice);
        token.approve(address(payments), 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(payments), 1 ether, 2 ether
            )
        );
        vm.prank(alice);
        payments.tipToken(token, bob, 2 ether, MESSAGE);
    }

    function test_RevertWhen_TokenTakesATransferFee() public {
        FeeOnTransferToken fot = new FeeOnTransferToken();
        fot.mint(alice, 100 ether);
        vm.startPrank(alice);
        fot.approve(address(payments), type(uint256).max);
        vm.expectRevert(abi.encodeWithSelector(Payments.TokenAmountMismatch.selector, 100 ether, 99 ether));
        payments.tipToken(IERC20(address(fot)), bob, 100 ether, MESSAGE);
        vm.stopPrank();
    }

    function testFuzz_TipSplitsExactly(uint256 amount, uint16 bps) public {
        amount = bound(amount, 1, 1000 ether);
        bps = uint16(bound(bps, 0, payments.MAX_FEE_BPS()));
        vm.prank(owner);
        payments.setFeeBps(bps);
        vm.prank(alice);
        payments.tip{value: amount}(bob, MESSAGE);
        uint256 fee = amount * bps / 10_000;
        assertEq(payments.balances(fees, ETH), fee, "fee");
        assertEq(payments.balances(bob, ETH), amount - fee, "recipient");
        assertLe(fee * 10_000, amount * payments.MAX_FEE_BPS(), "fee within the cap");
    }

    // ------------------------------------------------------------------------------------
    // Paid rooms
    // ------------------------------------------------------------------------------------

    function test_RegisterRoom() public {
        vm.expectEmit(address(payments));
        emit Payments.RoomRegistered(ROOM, alice);
        vm.prank(alice);
        payments.registerRoom(ROOM);
        Payments.Room memory r = payments.roomInfo(ROOM);
        assertEq(r.owner, alice, "owner");
        assertEq(r.pricePerPeriod, 0, "not on sale yet");
    }

    function test_RevertWhen_RoomIdIsZero() public {
        vm.expectRevert(Payments.InvalidRoom.selector);
        vm.prank(alice);
        payments.registerRoom(bytes32(0));
    }

    function test_RevertWhen_RoomAlreadyRegistered() public {
        vm.prank(alice);
        payments.registerRoom(ROOM);
        vm.expectRevert(abi.encodeWithSelector(Payments.RoomAlreadyRegistered.selector, ROOM, alice));
        vm.prank(bob);
        payments.registerRoom(ROOM);
    }

    function test_TransferRoomOwnership() public {
        openRoom(alice, ETH, 1 ether, 30 days);
        vm.expectEmit(address(payments));
        emit Payments.RoomOwnershipTransferred(ROOM, alice, bob);
        vm.prank(alice);
        payments.transferRoomOwnership(ROOM, bob);
        assertEq(payments.roomInfo(ROOM).owner, bob, "new owner");

        vm.expectRevert(abi.encodeWithSelector(Payments.NotRoomOwner.selector, ROOM, alice));
        vm.prank(alice);
        payments.setRoomPrice(ROOM, ETH, 2 ether, 30 days);

        vm.prank(carol);
        payments.subscribe{value: 1 ether}(ROOM, 1);
        assertEq(payments.balances(bob, ETH), 0.99 ether, "new owner credited");
        assertEq(payments.balances(alice, ETH), 0, "old owner not credited");
    }

    function test_RevertWhen_TransferRoomByStranger() public {
        vm.prank(alice);
        payments.registerRoom(ROOM);
        vm.expectRevert(abi.encodeWithSelector(Payments.NotRoomOwner.selector, ROOM, bob));
        vm.prank(bob);
        payments.transferRoomOwnership(ROOM, bob);
    }

    function test_RevertWhen_TransferRoomToZeroAddress() public {
        vm.prank(alice);
        payments.registerRoom(ROOM);
        vm.expectRevert(Payments.ZeroAddress.selector);
        vm.prank(alice);
        payments.transferRoomOwnership(ROOM, address(0));
    }

    function test_SetRoomPrice() public {
        vm.prank(alice);
        payments.registerRoom(ROOM);
        vm.expectEmit(address(payments));
        emit Payments.RoomPriceSet(ROOM, address(token), 5 ether, 7 days);
        vm.prank(alice);
        payments.setRoomPrice(ROOM, address(token), 5 ether, 7 days);
        Payments.Room memory r = payments.roomInfo(ROOM);
        assertEq(r.token, address(token), "token");
        assertEq(r.pricePerPeriod, 5 ether, "price");
        assertEq(r.periodSeconds, 7 days, "period");
    }

    function test_RevertWhen_SetRoomPriceByStranger() public {
        vm.prank(alice);
        payments.registerRoom(ROOM);
        vm.expectRevert(abi.encodeWithSelector(Payments.NotRoomOwner.selector, ROOM, bob));
        vm.prank(bob);
        payments.setRoomPrice(ROOM, ETH, 1, 1);
    }

    function test_RevertWhen_SetRoomPriceOfUnregisteredRoom() public {
        vm.expectRevert(abi.encodeWithSelector(Payments.NotRoomOwner.selector, ROOM, alice));
        vm.prank(alice);
        payments.setRoomPrice(ROOM, ETH, 1, 1);
    }

    function test_RevertWhen_PeriodIsZero() public {
        vm.prank(alice);
        payments.registerRoom(ROOM);
        vm.expectRevert(Payments.ZeroPeriod.selector);
        vm.prank(alice);
        payments.setRoomPrice(ROOM, ETH, 1, 0);
    }

    function test_Subscribe_Eth() public {
        openRoom(alice, ETH, 1 ether, 30 days);
        uint64 expiry = uint64(block.timestamp + 90 days);
        vm.expectEmit(address(payments));
        emit Payments.Subscribed(ROOM, bob, ETH, 3, 3 ether, 0.03 ether, expiry);
        vm.prank(bob);
        uint64 returned = payments.subscribe{value: 3 ether}(ROOM, 3);

        assertEq(returned, expiry, "returned expiry");
        assertEq(payments.subscriptionExpiry(ROOM, bob), expiry, "stored expiry");
        assertTrue(payments.isSubscribed(ROOM, bob), "subscribed");
        assertFalse(payments.isSubscribed(ROOM, carol), "carol is not");
        assertEq(payments.balances(alice, ETH), 2.97 ether, "room owner");
        assertEq(payments.balances(fees, ETH), 0.03 ether, "fee");
    }

    function test_Subscribe_Token() public {
        openRoom(alice, address(token), 10 ether, 7 days);
        vm.prank(bob);
        payments.subscribe(ROOM, 2);
        assertEq(payments.subscriptionExpiry(ROOM, bob), block.timestamp + 14 days, "expiry");
        assertEq(token.balanceOf(address(payments)), 20 ether, "held");
        assertEq(payments.balances(alice, address(token)), 19.8 ether, "room owner");
        assertEq(payments.balances(fees, address(token)), 0.2 ether, "fee");
    }

    function test_Subscribe_ExtendsFromCurrentExpiry() public {
        openRoom(alice, ETH, 1 ether, 30 days);
        vm.prank(bob);
        payments.subscribe{value: 1 ether}(ROOM, 1);
        vm.warp(block.timestamp + 10 days);
        vm.prank(bob);
        payments.subscribe{value: 1 ether}(ROOM, 1);
        assertEq(payments.subscriptionExpiry(ROOM, bob), block.timestamp - 10 days + 60 days, "extended");
    }

    function test_Subscribe_AfterExpiryStartsFromNow() public {
        openRoom(alice, ETH, 1 ether, 30 days);
        vm.prank(bob);
        payments.subscribe{value: 1 ether}(ROOM, 1);
        vm.warp(block.timestamp + 30 days);
        assertFalse(payments.isSubscribed(ROOM, bob), "expired at the expiry second");
        vm.warp(block.timestamp + 5 days);
        vm.prank(bob);
        payments.subscribe{value: 1 ether}(ROOM, 1);
        assertEq(payments.subscriptionExpiry(ROOM, bob), block.timestamp + 30 days, "from now");
    }

    function test_Subscribe_PriceChangeKeepsExpiry() public {
        openRoom(alice, ETH, 1 ether, 30 days);
        vm.prank(bob);
        payments.subscribe{value: 1 ether}(ROOM, 1);
        uint64 expiry = payments.subscriptionExpiry(ROOM, bob);
        vm.prank(alice);
        payments.setRoomPrice(ROOM, address(token), 0, 1 days);
        assertEq(payments.subscriptionExpiry(ROOM, bob), expiry, "kept");
        assertTrue(payments.isSubscribed(ROOM, bob), "still subscribed");
    }

    function test_RevertWhen_SubscribingToUnregisteredRoom() public {
        vm.expectRevert(abi.encodeWithSelector(Payments.RoomNotRegistered.selector, ROOM));
        vm.prank(bob);
        payments.subscribe{value: 1 ether}(ROOM, 1);
    }

    function test_RevertWhen_RoomNotForSale() public {
        vm.prank(alice);
        payments.registerRoom(ROOM);
        vm.expectRevert(abi.encodeWithSelector(Payments.RoomNotForSale.selector, ROOM));
        vm.prank(bob);
        payments.subscribe(ROOM, 1);
    }

    function test_RevertWhen_SubscribingForZeroPeriods() public {
        openRoom(alice, ETH, 1 ether, 30 days);
        vm.expectRevert(Payments.ZeroPeriods.selector);
        vm.prank(bob);
        payments.subscribe(ROOM, 0);
    }

    function test_RevertWhen_SubscriptionUnderpaid() public {
        openRoom(alice, ETH, 1 ether, 30 days);
        vm.expectRevert(abi.encodeWithSelector(Payments.IncorrectPayment.selector, 2 ether, 1 ether));
        vm.prank(bob);
        payments.subscribe{value: 1 ether}(ROOM, 2);
    }

    function test_RevertWhen_SubscriptionOverpaid() public {
        openRoom(alice, ETH, 1 ether, 30 days);
        vm.expectRevert(abi.encodeWithSelector(Payments.IncorrectPayment.selector, 1 ether, 2 ether));
        vm.prank(bob);
        payments.subscribe{value: 2 ether}(ROOM, 1);
    }

    function test_RevertWhen_EtherSentToTokenRoom() public {
        openRoom(alice, address(token), 1 ether, 30 days);
        vm.expectRevert(abi.encodeWithSelector(Payments.IncorrectPayment.selector, 0, 1));
        vm.prank(bob);
        payments.subscribe{value: 1}(ROOM, 1);
    }

    function test_RevertWhen_ExpiryOverflows() public {
        openRoom(alice, ETH, 1, type(uint64).max / 2);
        vm.expectRevert(Payments.ExpiryOverflow.selector);
        vm.prank(bob);
        payments.subscribe{value: 2}(ROOM, 2);
    }

    function testFuzz_SubscriptionExpiry(uint32 periods, uint64 period, uint32 firstWait, uint32 secondWait) public {
        periods = uint32(bound(periods, 1, 1000));
        period = uint64(bound(period, 1, 365 days));
        openRoom(alice, ETH, 1 gwei, period);
        vm.warp(block.timestamp + firstWait);
        vm.prank(bob);
        uint64 first = payments.subscribe{value: uint256(periods) * 1 gwei}(ROOM, periods);
        assertEq(first, block.timestamp + uint256(period) * periods, "first expiry");

        vm.warp(block.timestamp + secondWait);
        vm.prank(bob);
        uint64 second = payments.subscribe{value: 1 gwei}(ROOM, 1);
        uint256 start = first > block.timestamp ? first : block.timestamp;
        assertEq(second, start + period, "second expiry");
        assertEq(payments.isSubscribed(ROOM, bob), true, "subscribed right after paying");
    }

    // ------------------------------------------------------------------------------------
    // Postage
    // ------------------------------------------------------------------------------------

    function sendEthPostage(uint256 amount, uint64 timeout) internal returns (uint256 id) {
        vm.prank(alice);
        id = payments.sendPostage{value: amount}(bob, MESSAGE, ETH, amount, timeout);
    }

    function test_SendPostage_Eth() public {
        uint64 deadline = uint64(block.timestamp + 1 days);
        vm.expectEmit(address(payments));
        emit Payments.PostageSent(1, alice, bob, ETH, 1 ether, deadline, MESSAGE);
        uint256 id = sendEthPostage(1 ether, 1 days);

        assertEq(id, 1, "id");
        assertEq(payments.postageCount(), 1, "count");
        Payments.Postage memory p = payments.postage(id);
        assertEq(p.sender, alice, "sender");
        assertEq(p.recipient, bob, "recipient");
        assertEq(p.token, ETH, "token");
        assertEq(p.amount, 1 ether, "amount");
        assertEq(p.deadline, deadline, "deadline");
        assertEq(p.messageHash, MESSAGE, "message");
        assertEq(p.feeBps, FEE_BPS, "fee rate");
        assertTrue(p.status == Payments.PostageStatus.Pending, "pending");
        assertEq(address(payments).balance, 1 ether, "escrowed");
        assertEq(payments.balances(bob, ETH), 0, "nothing credited yet");
    }

    function test_SendPostage_Token() public {
        vm.prank(alice);
        uint256 id = payments.sendPostage(bob, MESSAGE, address(token), 5 ether, 1 days);
        assertEq(token.balanceOf(address(payments)), 5 ether, "escrowed");
        assertEq(payments.postage(id).token, address(token), "token");
    }

    function test_ClaimPostage() public {
        uint256 id = sendEthPostage(1 ether, 1 days);
        vm.warp(block.timestamp + 1 days - 1);
        vm.expectEmit(address(payments));
        emit Payments.PostageClaimed(id, bob, 1 ether, 0.01 ether);
        vm.prank(bob);
        payments.claimPostage(id);

        assertTrue(payments.postage(id).status == Payments.PostageStatus.Claimed, "claimed");
        assertEq(payments.balances(bob, ETH), 0.99 ether, "recipient");
        assertEq(payments.balances(fees, ETH), 0.01 ether, "fee");
    }

    function test_ClaimPostage_UsesFeeRateAtSending() public {
        uint256 id = sendEthPostage(1 ether, 1 days);
        vm.prank(owner);
        payments.setFeeBps(1000);
        vm.prank(bob);
        payments.claimPostage(id);
        assertEq(payments.balances(bob, ETH), 0.99 ether, "1% kept");
    }

    function test_RefundPostage() public {
        uint256 id = sendEthPostage(1 ether, 1 days);
        vm.warp(block.timestamp + 1 days);
        vm.expectEmit(address(payments));
        emit Payments.PostageRefunded(id, alice, 1 ether);
        vm.prank(alice);
        payments.refundPostage(id);

        assertTrue(payments.postage(id).status == Payments.PostageStatus.Refunded, "refunded");
        assertEq(payments.balances(alice, ETH), 1 ether, "full refund, no fee");
        assertEq(payments.balances(fees, ETH), 0, "no fee");
    }

    function test_TokenPostage_ClaimAndRefundThenWithdraw() public {
        vm.startPrank(alice);
        uint256 claimed = payments.sendPostage(bob, MESSAGE, address(token), 10 ether, 1 days);
        uint256 refunded = payments.sendPostage(carol, MESSAGE, address(token), 4 ether, 1 days);
        vm.stopPrank();
        vm.prank(bob);
        payments.claimPostage(claimed);
        vm.warp(block.timestamp + 1 days);
        vm.prank(alice);
        payments.refundPostage(refunded);

        assertEq(payments.balances(bob, address(token)), 9.9 ether, "claimed less fee");
        assertEq(payments.balances(fees, address(token)), 0.1 ether, "fee");
        assertEq(payments.balances(alice, address(token)), 4 ether, "refunded");
        vm.prank(alice);
        payments.withdraw(address(token));
        assertEq(token.balanceOf(alice), 1000 ether - 10 ether, "alice paid only the claimed postage");
        assertEq(token.balanceOf(address(payments)), 10 ether, "claimed amount awaits withdrawal");
    }

    function test_RevertWhen_PostageToZeroAddress() public {
        vm.expectRevert(Payments.ZeroAddress.selector);
        vm.prank(alice);
        payments.sendPostage{value: 1}(address(0), MESSAGE, ETH, 1, 1 days);
    }

    function test_RevertWhen_PostageIsZero() public {
        vm.expectRevert(Payments.ZeroAmount.selector);
        vm.prank(alice);
        payments.sendPostage(bob, MESSAGE, ETH, 0, 1 days);
    }

    function test_RevertWhen_PostageTimeoutIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(Payments.InvalidTimeout.selector, 0, 365 days));
        vm.prank(alice);
        payments.sendPostage{value: 1}(bob, MESSAGE, ETH, 1, 0);
    }

    function test_RevertWhen_PostageTimeoutTooLong() public {
        vm.expectRevert(abi.encodeWithSelector(Payments.InvalidTimeout.selector, 365 days + 1, 365 days));
        vm.prank(alice);
        payments.sendPostage{value: 1}(bob, MESSAGE, ETH, 1, 365 days + 1);
    }

    function test_RevertWhen_PostageValueMismatch() public {
        vm.expectRevert(abi.encodeWithSelector(Payments.IncorrectPayment.selector, 2, 1));
        vm.prank(alice);
        payments.sendPostage{value: 1}(bob, MESSAGE, ETH, 2, 1 days);
    }

    function test_RevertWhen_EtherSentWithTokenPostage() public {
        vm.expectRevert(abi.encodeWithSelector(Payments.IncorrectPayment.selector, 0, 1));
        vm.prank(alice);
        payments.sendPostage{value: 1}(bob, MESSAGE, address(token), 1, 1 days);
    }

    function test_RevertWhen_PostageUnknown() public {
        vm.expectRevert(abi.encodeWithSelector(Payments.UnknownPostage.selector, 1));
        payments.postage(1);
        vm.expectRevert(abi.encodeWithSelector(Payments.UnknownPostage.selector, 1));
        vm.prank(bob);
        payments.claimPostage(1);
        vm.expectRevert(abi.encodeWithSelector(Payments.UnknownPostage.selector, 1));
        vm.prank(alice);
        payments.refundPostage(1);
    }

    function test_RevertWhen_PostageClaimedByStranger() public {
        uint256 id = sendEthPostage(1 ether, 1 days);
        vm.expectRevert(abi.encodeWithSelector(Payments.NotPostageRecipient.selector, id, carol));
        vm.prank(carol);
        payments.claimPostage(id);
    }

    function test_RevertWhen_PostageClaimedAtDeadline() public {
        uint256 id = sendEthPostage(1 ether, 1 days);
        uint64 deadline = uint64(block.timestamp + 1 days);
        vm.warp(deadline);
        vm.expectRevert(abi.encodeWithSelector(Payments.PostageExpired.selector, id, deadline));
        vm.prank(bob);
        payments.claimPostage(id);
    }

    function test_RevertWhen_PostageClaimedTwice() public {
        uint256 id = sendEthPostage(1 ether, 1 days);
        vm.prank(bob);
        payments.claimPostage(id);
        vm.expectRevert(abi.encodeWithSelector(Payments.PostageSettled.selector, id));
        vm.prank(bob);
        payments.claimPostage(id);
    }

    function test_RevertWhen_RefundingClaimedPostage() public {
        uint256 id = sendEthPostage(1 ether, 1 days);
        vm.prank(bob);
        payments.claimPostage(id);
        vm.warp(block.timestamp + 2 days);
        vm.expectRevert(abi.encodeWithSelector(Payments.PostageSettled.selector, id));
        vm.prank(alice);
        payments.refundPostage(id);
    }

    function test_RevertWhen_ClaimingRefundedPostage() public {
        uint256 id = sendEthPostage(1 ether, 1 days);
        vm.warp(block.timestamp + 1 days);
        vm.prank(alice);
        payments.refundPostage(id);
        vm.expectRevert(abi.encodeWithSelector(Payments.PostageSettled.selector, id));
        vm.prank(bob);
        payments.claimPostage(id);
    }

    function test_RevertWhen_PostageRefundedByStranger() public {
        uint256 id = sendEthPostage(1 ether, 1 days);
        vm.warp(block.timestamp + 1 days);
        vm.expectRevert(abi.encodeWithSelector(Payments.NotPostageSender.selector, id, bob));
        vm.prank(bob);
        payments.refundPostage(id);
    }

    function test_RevertWhen_PostageRefundedBeforeDeadline() public {
        uint256 id = sendEthPostage(1 ether, 1 days);
        uint64 deadline = uint64(block.timestamp + 1 days);
        vm.warp(deadline - 1);
        vm.expectRevert(abi.encodeWithSelector(Payments.PostageNotExpired.selector, id, deadline));
        vm.prank(alice);
        payments.refundPostage(id);
    }

    function testFuzz_PostageSettlesExactlyOnce(uint256 amount, uint64 timeout, uint64 wait, bool tryClaim) public {
        amount = bound(amount, 1, 100 ether);
        timeout = uint64(bound(timeout, 1, payments.MAX_POSTAGE_TIMEOUT()));
        wait = uint64(bound(wait, 0, 2 * uint256(payments.MAX_POSTAGE_TIMEOUT())));
        uint256 id = sendEthPostage(amount, timeout);
        vm.warp(block.timestamp + wait);
        bool claimable = wait < timeout;
        if (tryClaim == claimable) {
            vm.prank(tryClaim ? bob : alice);
            if (tryClaim) payments.claimPostage(id);
            else payments.refundPostage(id);
        } else if (claimable) {
            vm.prank(bob);
            payments.claimPostage(id);
        } else {
            vm.prank(alice);
            payments.refundPostage(id);
        }
        uint256 credited = payments.balances(alice, ETH) + payments.balances(bob, ETH) + payments.balances(fees, ETH);
        assertEq(credited, amount, "escrow fully credited once");
        if (claimable) {
            assertEq(payments.balances(fees, ETH), feeOf(amount), "fee on claim");
        } else {
            assertEq(payments.balances(alice, ETH), amount, "refund");
        }
    }

    // ------------------------------------------------------------------------------------
    // Withdrawals and reentrancy
    // ------------------------------------------------------------------------------------

    function test_Withdraw_Eth() public {
        vm.prank(alice);
        payments.tip{value: 1 ether}(bob, MESSAGE);
        uint256 before = bob.balance;
        vm.expectEmit(address(payments));
        emit Payments.Withdrawn(bob, ETH, 0.99 ether);
        vm.prank(bob);
        payments.withdraw(ETH);
        assertEq(bob.balance, before + 0.99 ether, "paid");
        assertEq(payments.balances(bob, ETH), 0, "balance cleared");
        assertEq(address(payments).balance, 0.01 ether, "fee remains");
    }

    function test_Withdraw_Token() public {
        vm.prank(alice);
        payments.tipToken(token, bob, 100 ether, MESSAGE);
        vm.expectEmit(address(payments));
        emit Payments.Withdrawn(bob, address(token), 99 ether);
        vm.prank(bob);
        payments.withdraw(address(token));
        assertEq(token.balanceOf(bob), 1099 ether, "paid");
        vm.prank(fees);
        payments.withdraw(address(token));
        assertEq(token.balanceOf(fees), 1 ether, "fee paid");
        assertEq(token.balanceOf(address(payments)), 0, "empty");
    }

    function test_RevertWhen_NothingToWithdraw() public {
        vm.expectRevert(abi.encodeWithSelector(Payments.NothingToWithdraw.selector, ETH));
        vm.prank(bob);
        payments.withdraw(ETH);
        vm.expectRevert(abi.encodeWithSelector(Payments.NothingToWithdraw.selector, address(token)));
        vm.prank(bob);
        payments.withdraw(address(token));
    }

    function test_RevertWhen_EtherTransferFails() public {
        ProgrammableReceiver receiver = new ProgrammableReceiver();
        vm.prank(alice);
        payments.tip{value: 1 ether}(address(receiver), MESSAGE);
        receiver.setMode(ProgrammableReceiver.Mode.Reject);
        vm.expectRevert(abi.encodeWithSelector(Payments.TransferFailed.selector, address(receiver), 0.99 ether));
        receiver.execute(address(payments), 0, abi.encodeCall(Payments.withdraw, (ETH)));
        assertEq(payments.balances(address(receiver), ETH), 0.99 ether, "balance kept");
    }

    /// @dev A receiver that re-enters `withdraw` from its `receive` is refused, and is paid once.
    function test_Withdraw_ReentrantReceiverIsPaidOnce() public {
        ProgrammableReceiver attacker = new ProgrammableReceiver();
        vm.prank(alice);
        payments.tip{value: 1 ether}(address(attacker), MESSAGE);
        vm.prank(bob);
        payments.tip{value: 5 ether}(carol, MESSAGE); // other funds the attacker would like to drain
        attacker.setMode(ProgrammableReceiver.Mode.Reenter);
        attacker.setReentry(address(payments), abi.encodeCall(Payments.withdraw, (ETH)), true);

        attacker.execute(address(payments), 0, abi.encodeCall(Payments.withdraw, (ETH)));

        assertEq(attacker.reentries(), 1, "re-entry attempted");
        assertEq(
            attacker.reentryError(),
            abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector),
            "re-entry refused by the guard"
        );
        assertEq(address(attacker).balance, 0.99 ether, "paid exactly its balance");
        assertEq(address(payments).balance, 5 ether + 0.01 ether, "others' funds untouched");
    }

    /// @dev If the receiver lets the refused re-entry revert, the whole withdrawal reverts.
    function test_RevertWhen_ReentrantReceiverBubblesRefusal() public {
        ProgrammableReceiver attacker = new ProgrammableReceiver();
        vm.prank(alice);
        payments.tip{value: 1 ether}(address(attacker), MESSAGE);
        attacker.setMode(ProgrammableReceiver.Mode.Reenter);
        attacker.setReentry(address(payments), abi.encodeCall(Payments.tip, (address(attacker), MESSAGE)), false);
        vm.expectRevert(abi.encodeWithSelector(Payments.TransferFailed.selector, address(attacker), 0.99 ether));
        attacker.execute(address(payments), 0, abi.encodeCall(Payments.withdraw, (ETH)));
    }

    /// @dev A token that calls back into Payments during `transferFrom` cannot re-enter.
    function test_RevertWhen_TokenReentersDuringTransfer() public {
        CallbackToken hooked = new CallbackToken();
        hooked.mint(alice, 10 ether);
        vm.prank(alice);
        hooked.approve(address(payments), type(uint256).max);
        hooked.setCallback(address(payments), abi.encodeCall(Payments.withdraw, (address(hooked))));
        vm.expectRevert(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector);
        vm.prank(alice);
        payments.tipToken(IERC20(address(hooked)), bob, 1 ether, MESSAGE);
    }

    function test_EtherSentDirectlyIsRefused() public {
        vm.prank(alice);
        (bool ok,) = address(payments).call{value: 1 ether}("");
        assertFalse(ok, "plain transfer refused");
        assertEq(address(payments).balance, 0, "nothing held");
    }
}

/// @dev Drives Payments with a few actors in ETH and one token, and keeps a model of what each
///      account is owed; the invariants compare the contract with the model and with its holdings.
contract PaymentsHandler is Test {
    bytes32 internal constant ETH_ROOM = keccak256("eth room");
    bytes32 internal constant TOKEN_ROOM = keccak256("token room");

    Payments internal immutable payments;
    MockERC20 internal immutable token;
    address internal immutable feeAccount;
    address[] internal actors;

    /// @dev Model: credited[account][token] and withdrawn[account][token], accumulated.
    mapping(address => mapping(address => uint256)) public credited;
    mapping(address => mapping(address => uint256)) public withdrawn;

    constructor(Payments payments_, MockERC20 token_, address feeAccount_) {
        payments = payments_;
        token = token_;
        feeAccount = feeAccount_;
        for (uint256 i = 0; i < 4; ++i) {
            actors.push(address(uint160(0xB0000 + i)));
        }
        vm.prank(actors[0]);
        payments_.registerRoom(ETH_ROOM);
        vm.prank(actors[0]);
        payments_.setRoomPrice(ETH_ROOM, address(0), 0.1 ether, 1 days);
        vm.prank(actors[1]);
        payments_.registerRoom(TOKEN_ROOM);
        vm.prank(actors[1]);
        payments_.setRoomPrice(TOKEN_ROOM, address(token_), 3 ether, 7 days);
    }

    /// @dev Every account the contract may owe: the actors and the fee recipient.
    function accounts() external view returns (address[] memory all) {
        all = new address[](actors.length + 1);
        for (uint256 i = 0; i < actors.length; ++i) {
            all[i] = actors[i];
        }
        all[actors.length] = feeAccount;
    }

    function actor(uint256 seed) internal view returns (address) {
        return actors[seed % actors.length];
    }

    function pickToken(bool useToken) internal view returns (address) {
        return useToken ? address(token) : address(0);
    }

    function fund(address who, address payToken, uint256 amount) internal {
        if (payToken == address(0)) {
            vm.deal(who, amount);
        } else {
            token.mint(who, amount);
            vm.prank(who);
            token.approve(address(payments), amount);
        }
    }

    function modelCredit(address payee, address payToken, uint256 amount, uint16 rate) internal {
        uint256 fee = amount * rate / 10_000;
        credited[payee][payToken] += amount - fee;
        credited[feeAccount][payToken] += fee;
    }

    function tip(uint256 from, uint256 to, bool useToken, uint256 amount) external {
        address sender = actor(from);
        address payee = actor(to);
        address payToken = pickToken(useToken);
        amount = bound(amount, 1, 50 ether);
        fund(sender, payToken, amount);
        vm.prank(sender);
        if (useToken) payments.tipToken(token, payee, amount, bytes32(amount));
        else payments.tip{value: amount}(payee, bytes32(amount));
        modelCredit(payee, payToken, amount, payments.feeBps());
    }

    function subscribe(uint256 from, bool tokenRoom, uint32 periods) external {
        address sender = actor(from);
        bytes32 room = tokenRoom ? TOKEN_ROOM : ETH_ROOM;
        Payments.Room memory r = payments.roomInfo(room);
        periods = uint32(bound(periods, 1, 12));
        uint256 total = r.pricePerPeriod * periods;
        fund(sender, r.token, total);
        vm.prank(sender);
        payments.subscribe{value: r.token == address(0) ? total : 0}(room, periods);
        modelCredit(r.owner, r.token, total, payments.feeBps());
    }

    function sendPostage(uint256 from, uint256 to, bool useToken, uint256 amount, uint64 timeout) external {
        address sender = actor(from);
        address payToken = pickToken(useToken);
        amount = bound(amount, 1, 20 ether);
        timeout = uint64(bound(timeout, 1, 3 days));
        fund(sender, payToken, amount);
        vm.prank(sender);
        payments.sendPostage{value: useToken ? 0 : amount}(actor(to), bytes32(0), payToken, amount, timeout);
    }

    function claimPostage(uint256 idSeed) external {
        uint256 count = payments.postageCount();
        if (count == 0) return;
        uint256 id = idSeed % count + 1;
        Payments.Postage memory p = payments.postage(id);
        if (p.status != Payments.PostageStatus.Pending || block.timestamp >= p.deadline) return;
        vm.prank(p.recipient);
        payments.claimPostage(id);
        modelCredit(p.recipient, p.token, p.amount, p.feeBps);
    }

    function refundPostage(uint256 idSeed) external {
        uint256 count = payments.postageCount();
        if (count == 0) return;
        uint256 id = idSeed % count + 1;
        Payments.Postage memory p = payments.postage(id);
        if (p.status != Payments.PostageStatus.Pending || block.timestamp < p.deadline) return;
        vm.prank(p.sender);
        payments.refundPostage(id);
        credited[p.sender][p.token] += p.amount;
    }

    function withdraw(uint256 who, bool useToken, bool asFeeRecipient) external {
        address account = asFeeRecipient ? feeAccount : actor(who);
        address payToken = pickToken(useToken);
        uint256 amount = payments.balances(account, payToken);
        if (amount == 0) return;
        uint256 before = payToken == address(0) ? account.balance : token.balanceOf(account);
        vm.prank(account);
        payments.withdraw(payToken);
        uint256 received = (payToken == address(0) ? account.balance : token.balanceOf(account)) - before;
        withdrawn[account][payToken] += received;
    }

    function setFee(uint16 bps) external {
        bps = uint16(bound(bps, 0, payments.MAX_FEE_BPS()));
        vm.prank(payments.owner());
        payments.setFeeBps(bps);
    }

    function wait(uint32 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 0, 2 days));
    }
}

contract PaymentsInvariantTest is PaymentsFixture, InvariantTest {
    PaymentsHandler internal handler;

    function setUp() public override {
        super.setUp();
        handler = new PaymentsHandler(payments, token, fees);
        targetContract(address(handler));
    }

    function owedAndEscrowed(address payToken) internal view returns (uint256 owed, uint256 escrowed) {
        address[] memory all = handler.accounts();
        for (uint256 i = 0; i < all.length; ++i) {
            owed += payments.balances(all[i], payToken);
        }
        for (uint256 id = 1; id <= payments.postageCount(); ++id) {
            Payments.Postage memory p = payments.postage(id);
            if (p.status == Payments.PostageStatus.Pending && p.token == payToken) escrowed += p.amount;
        }
    }

    /// @dev The contract holds exactly what it owes: credited balances plus pending postage.
    /// forge-config: default.invariant.runs = 64
    /// forge-config: default.invariant.depth = 64
    /// forge-config: default.invariant.fail_on_revert = true
    function invariant_HoldingsEqualWhatIsOwed() public view {
        (uint256 owedEth, uint256 escrowedEth) = owedAndEscrowed(address(0));
        assertEq(address(payments).balance, owedEth + escrowedEth, "ether");
        (uint256 owedToken, uint256 escrowedToken) = owedAndEscrowed(address(token));
        assertEq(token.balanceOf(address(payments)), owedToken + escrowedToken, "token");
    }

    /// @dev Each balance is what the model credited minus what was withdrawn, so no one
    ///      withdraws more than credited.
    /// forge-config: default.invariant.runs = 64
    /// forge-config: default.invariant.depth = 64
    /// forge-config: default.invariant.fail_on_revert = true
    function invariant_NoOneWithdrawsMoreThanCredited() public view {
        address[] memory all = handler.accounts();
        address[2] memory payTokens = [address(0), address(token)];
        for (uint256 i = 0; i < all.length; ++i) {
            for (uint256 t = 0; t < 2; ++t) {
                uint256 credited = handler.credited(all[i], payTokens[t]);
                uint256 withdrawn = handler.withdrawn(all[i], payTokens[t]);
                assertLe(withdrawn, credited, "withdrawn within credit");
                assertEq(payments.balances(all[i], payTokens[t]), credited - withdrawn, "balance matches model");
            }
        }
    }
}
