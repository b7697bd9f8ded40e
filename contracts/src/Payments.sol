// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @title Payments
/// @notice dchat payments: tips that reference a message, paid rooms with subscriptions, and
///         postage (an escrowed deposit for messaging a stranger, claimable by the recipient
///         before a deadline and refundable to the sender after it). Payments are in ETH
///         (token `address(0)`) or an ERC-20.
/// @dev Pull payments: every payout is credited to `balances[account][token]` and paid by
///      `withdraw`. An operator fee of `feeBps` basis points is taken on tips, subscriptions and
///      claimed postage (postage keeps the rate in force when it was sent) and credited to
///      `feeRecipient`. Tokens that deliver less (or more) than the transferred amount, such as
///      fee-on-transfer tokens, are rejected with `TokenAmountMismatch`; rebasing tokens are not
///      supported. Every function that moves value is `nonReentrant`.
contract Payments is Ownable2Step, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice A paid room.
    /// @param owner Account that sets the price and is credited with subscriptions.
    /// @param periodSeconds Length of one subscription period.
    /// @param token Payment token, `address(0)` for ETH.
    /// @param pricePerPeriod Price of one period; 0 means subscriptions are not on sale.
    struct Room {
        address owner;
        uint64 periodSeconds;
        address token;
        uint256 pricePerPeriod;
    }

    /// @notice State of a postage escrow.
    enum PostageStatus {
        None,
        Pending,
        Claimed,
        Refunded
    }

    /// @notice A postage escrow.
    /// @param sender Account that paid the postage and may be refunded.
    /// @param deadline The recipient may claim before this timestamp; the sender is refunded from it on.
    /// @param recipient Account that may claim the postage.
    /// @param status Pending, claimed or refunded.
    /// @param feeBps Fee rate taken if claimed (the rate when the postage was sent).
    /// @param token Payment token, `address(0)` for ETH.
    /// @param amount Amount held in escrow.
    /// @param messageHash The message the postage pays for.
    struct Postage {
        address sender;
        uint64 deadline;
        address recipient;
        PostageStatus status;
        uint16 feeBps;
        address token;
        uint256 amount;
        bytes32 messageHash;
    }

    /// @notice Highest fee the owner may set, in basis points (10%).
    uint16 public constant MAX_FEE_BPS = 1000;
    /// @notice Longest postage timeout, in seconds.
    uint64 public constant MAX_POSTAGE_TIMEOUT = 365 days;
    uint256 private constant BPS = 10_000;

    /// @notice Account credited with the operator fee.
    address public feeRecipient;
    /// @notice Operator fee in basis points.
    uint16 public feeBps;
    /// @notice Number of postage escrows created; also the latest postage id (ids start at 1).
    uint256 public postageCount;

    /// @notice Amount each account may withdraw, per token (`address(0)` for ETH).
    mapping(address account => mapping(address token => uint256)) public balances;

    mapping(bytes32 room => Room) private _rooms;
    mapping(bytes32 room => mapping(address subscriber => uint64)) private _expiry;
    mapping(uint256 id => Postage) private _postage;

    /// @notice A tip was paid.
    /// @param from Tipper.
    /// @param to Account tipped (credited `amount - fee`).
    /// @param token Payment token, `address(0)` for ETH.
    /// @param amount Amount paid, fee included.
    /// @param fee Operator fee taken.
    /// @param messageHash The message tipped for.
    event Tipped(
        address indexed from,
        address indexed to,
        address token,
        uint256 amount,
        uint256 fee,
        bytes32 indexed messageHash
    );

    /// @notice A room was registered.
    /// @param room Room id.
    /// @param owner The room's owner (the registering account).
    event RoomRegistered(bytes32 indexed room, address indexed owner);

    /// @notice A room changed owner.
    /// @param room Room id.
    /// @param previousOwner Former owner.
    /// @param newOwner New owner.
    event RoomOwnershipTransferred(bytes32 indexed room, address indexed previousOwner, address indexed newOwner);

    /// @notice A room's owner set its subscription price.
    /// @param room Room id.
    /// @param token Payment token, `address(0)` for ETH.
    /// @param pricePerPeriod Price of one period (0: not on sale).
    /// @param periodSeconds Length of one period.
    event RoomPriceSet(bytes32 indexed room, address indexed token, uint256 pricePerPeriod, uint64 periodSeconds);

    /// @notice A subscription was bought or extended.
    /// @param room Room id.
    /// @param subscriber Subscriber.
    /// @param token Payment token, `address(0)` for ETH.
    /// @param periods Periods bought.
    /// @param amount Amount paid, fee included.
    /// @param fee Operator fee taken.
    /// @param expiry New expiry timestamp of the subscription.
    event Subscribed(
        bytes32 indexed room,
        address indexed subscriber,
        address indexed token,
        uint32 periods,
        uint256 amount,
        uint256 fee,
        uint64 expiry
    );

    /// @notice Postage was put in escrow.
    /// @param id Postage id.
    /// @param sender Payer.
    /// @param recipient Account that may claim it.
    /// @param token Payment token, `address(0)` for ETH.
    /// @param amount Amount escrowed.
    /// @param deadline Claimable before this timestamp, refundable from it on.
    /// @param messageHash The message the postage pays for.
    event PostageSent(
        uint256 indexed id,
        address indexed sender,
        address indexed recipient,
        address token,
        uint256 amount,
        uint64 deadline,
        bytes32 messageHash
    );

    /// @notice The recipient claimed postage.
    /// @param id Postage id.
    /// @param recipient Recipient (credited `amount - fee`).
    /// @param amount Amount escrowed.
    /// @param fee Operator fee taken.
    event PostageClaimed(uint256 indexed id, address indexed recipient, uint256 amount, uint256 fee);

    /// @notice Unclaimed postage went back to its sender.
    /// @param id Postage id.
    /// @param sender Sender (credited `amount`).
    /// @param amount Amount refunded.
    event PostageRefunded(uint256 indexed id, address indexed sender, uint256 amount);

    /// @notice An account withdrew its balance of a token.
    /// @param account Account paid.
    /// @param token Token paid, `address(0)` for ETH.
    /// @param amount Amount paid.
    event Withdrawn(address indexed account, address indexed token, uint256 amount);

    /// @notice The owner changed the fee rate.
    /// @param previous Former rate in basis points.
    /// @param current New rate in basis points.
    event FeeBpsSet(uint16 previous, uint16 current);

    /// @notice The owner changed the fee recipient.
    /// @param previous Former recipient.
    /// @param current New recipient.
    event FeeRecipientSet(address indexed previous, address indexed current);

    /// @notice An address argument is zero.
    error ZeroAddress();
    /// @notice An amount is zero.
    error ZeroAmount();
    /// @notice The fee rate exceeds `MAX_FEE_BPS`.
    error FeeTooHigh(uint16 feeBps, uint16 max);
    /// @notice The ETH sent differs from what the call requires.
    error IncorrectPayment(uint256 expected, uint256 sent);
    /// @notice The token moved a different amount than requested (e.g. a fee-on-transfer token).
    error TokenAmountMismatch(uint256 expected, uint256 received);
    /// @notice The room id is zero.
    error InvalidRoom();
    /// @notice The room already has an owner.
    error RoomAlreadyRegistered(bytes32 room, address owner);
    /// @notice The room has no owner.
    error RoomNotRegistered(bytes32 room);
    /// @notice The caller does not own the room.
    error NotRoomOwner(bytes32 room, address caller);
    /// @notice A subscription period of zero seconds.
    error ZeroPeriod();
    /// @notice The room has no price set.
    error RoomNotForSale(bytes32 room);
    /// @notice Subscribing for zero periods.
    error ZeroPeriods();
    /// @notice The new expiry does not fit in 64 bits.
    error ExpiryOverflow();
    /// @notice The postage timeout is zero or exceeds `MAX_POSTAGE_TIMEOUT`.
    error InvalidTimeout(uint64 timeout, uint64 max);
    /// @notice No postage has this id.
    error UnknownPostage(uint256 id);
    /// @notice The postage was already claimed or refunded.
    error PostageSettled(uint256 id);
    /// @notice Only the postage's recipient may claim it.
    error NotPostageRecipient(uint256 id, address caller);
    /// @notice Only the postage's sender may be refunded.
    error NotPostageSender(uint256 id, address caller);
    /// @notice The claim deadline has passed.
    error PostageExpired(uint256 id, uint64 deadline);
    /// @notice The postage can be refunded only from its deadline on.
    error PostageNotExpired(uint256 id, uint64 deadline);
    /// @notice The caller has no balance of this token.
    error NothingToWithdraw(address token);
    /// @notice Sending ETH failed.
    error TransferFailed(address to, uint256 amount);

    /// @dev Restricts a function to the owner of `room` (an unregistered room has none).
    modifier onlyRoomOwner(bytes32 room) {
        if (_rooms[room].owner != msg.sender) revert NotRoomOwner(room, msg.sender);
        _;
    }

    /// @param initialOwner Account that sets the fee rate and recipient.
    /// @param initialFeeRecipient Account credited with the operator fee.
    /// @param initialFeeBps Operator fee in basis points (at most `MAX_FEE_BPS`).
    constructor(address initialOwner, address initialFeeRecipient, uint16 initialFeeBps) Ownable(initialOwner) {
        _setFeeRecipient(initialFeeRecipient);
        _setFeeBps(initialFeeBps);
    }

    // ----------------------------------------------------------------------------------------
    // Tips
    // ----------------------------------------------------------------------------------------

    /// @notice Tips `to` the ETH sent, for message `messageHash`.
    /// @param to Account tipped.
    /// @param messageHash The message tipped for.
    function tip(address to, bytes32 messageHash) external payable nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        if (msg.value == 0) revert ZeroAmount();
        uint256 fee = _credit(to, address(0), msg.value, feeBps);
        emit Tipped(msg.sender, to, address(0), msg.value, fee, messageHash);
    }

    /// @notice Tips `to` `amount` of `token` (approve this contract first), for message `messageHash`.
    /// @param token ERC-20 token paid.
    /// @param to Account tipped.
    /// @param amount Amount paid, fee included.
    /// @param messageHash The message tipped for.
    function tipToken(IERC20 token, address to, uint256 amount, bytes32 messageHash) external nonReentrant {
        if (address(token) == address(0) || to == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        uint256 fee = _credit(to, address(token), amount, feeBps);
        emit Tipped(msg.sender, to, address(token), amount, fee, messageHash);
        _pull(token, amount);
    }

    // ----------------------------------------------------------------------------------------
    // Paid rooms
    // ----------------------------------------------------------------------------------------

    /// @notice Registers the caller as the owner of `room`, which must have no owner yet.
    /// @param room Room id (non-zero).
    function registerRoom(bytes32 room) external {
        if (room == bytes32(0)) revert InvalidRoom();
        address owner_ = _rooms[room].owner;
        if (owner_ != address(0)) revert RoomAlreadyRegistered(room, owner_);
        _rooms[room].owner = msg.sender;
        emit RoomRegistered(room, msg.sender);
    }

    /// @notice Hands `room` to `newOwner`. Room owner only.
    /// @param room Room id.
    /// @param newOwner New owner (non-zero); future subscriptions are credited to it.
    function transferRoomOwnership(bytes32 room, address newOwner) external onlyRoomOwner(room) {
        if (newOwner == address(0)) revert ZeroAddress();
        _rooms[room].owner = newOwner;
        emit RoomOwnershipTransferred(room, msg.sender, newOwner);
    }

    /// @notice Sets the subscription price of `room`. Room owner only. Existing subscriptions keep
    ///         their expiry.
    /// @param room Room id.
    /// @param token Payment token, `address(0)` for ETH.
    /// @param pricePerPeriod Price of one period; 0 stops sales.
    /// @param periodSeconds Length of one period (non-zero).
    function setRoomPrice(bytes32 room, address token, uint256 pricePerPeriod, uint64 periodSeconds)
        external
        onlyRoomOwner(room)
    {
        if (periodSeconds == 0) revert ZeroPeriod();
        Room storage r = _rooms[room];
        r.token = token;
        r.pricePerPeriod = pricePerPeriod;
        r.periodSeconds = periodSeconds;
        emit RoomPriceSet(room, token, pricePerPeriod, periodSeconds);
    }

    /// @notice Buys `periods` periods of `room` for the caller, extending from the later of now and
    ///         the current expiry. Pays `pricePerPeriod * periods`: as `msg.value` for an ETH room
    ///         (exactly), otherwise by transferring the token (approve this contract first).
    /// @param room Room id.
    /// @param periods Number of periods (non-zero).
    /// @return expiry The subscription's new expiry timestamp.
    function subscribe(bytes32 room, uint32 periods) external payable nonReentrant returns (uint64 expiry) {
        Room memory r = _rooms[room];
        if (r.owner == address(0)) revert RoomNotRegistered(room);
        if (r.pricePerPeriod == 0) revert RoomNotForSale(room);
        if (periods == 0) revert ZeroPeriods();
        uint256 total = r.pricePerPeriod * periods;
        _checkValue(r.token, total);

        uint256 current = _expiry[room][msg.sender];
        uint256 start = current > block.timestamp ? current : block.timestamp;
        uint256 newExpiry = start + uint256(r.periodSeconds) * periods;
        if (newExpiry > type(uint64).max) revert ExpiryOverflow();
        expiry = uint64(newExpiry);
        _expiry[room][msg.sender] = expiry;
        uint256 fee = _credit(r.owner, r.token, total, feeBps);
        emit Subscribed(room, msg.sender, r.token, periods, total, fee, expiry);

        if (r.token != address(0)) _pull(IERC20(r.token), total);
    }

    // ----------------------------------------------------------------------------------------
    // Postage
    // ----------------------------------------------------------------------------------------

    /// @notice Escrows postage for a message to `recipient`: ETH as `msg.value` (exactly `amount`)
    ///         or `amount` of `token` (approve this contract first).
    /// @param recipient Account that may claim the postage.
    /// @param messageHash The message the postage pays for.
    /// @param token Payment token, `address(0)` for ETH.
    /// @param amount Amount to escrow (non-zero).
    /// @param timeout Seconds the recipient has to claim (1 to `MAX_POSTAGE_TIMEOUT`).
    /// @return id The new postage id.
    function sendPostage(address recipient, bytes32 messageHash, address token, uint256 amount, uint64 timeout)
        external
        payable
        nonReentrant
        returns (uint256 id)
    {
        if (recipient == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        if (timeout == 0 || timeout > MAX_POSTAGE_TIMEOUT) revert InvalidTimeout(timeout, MAX_POSTAGE_TIMEOUT);
        _checkValue(token, amount);

        id = ++postageCount;
        uint64 deadline = uint64(block.timestamp) + timeout;
        _postage[id] = Postage({
            sender: msg.sender,
            deadline: deadline,
            recipient: recipient,
            status: PostageStatus.Pending,
            feeBps: feeBps,
            token: token,
            amount: amount,
            messageHash: messageHash
        });
        emit PostageSent(id, msg.sender, recipient, token, amount, deadline, messageHash);

        if (token != address(0)) _pull(IERC20(token), amount);
    }

    /// @notice Claims postage `id` for its recipient (the caller), before its deadline. The amount
    ///         less the fee is credited to the caller's balance.
    /// @param id Postage id.
    function claimPostage(uint256 id) external nonReentrant {
        Postage storage p = _pendingPostage(id);
        if (msg.sender != p.recipient) revert NotPostageRecipient(id, msg.sender);
        if (block.timestamp >= p.deadline) revert PostageExpired(id, p.deadline);

        p.status = PostageStatus.Claimed;
        uint256 amount = p.amount;
        uint256 fee = _credit(msg.sender, p.token, amount, p.feeBps);
        emit PostageClaimed(id, msg.sender, amount, fee);
    }

    /// @notice Refunds unclaimed postage `id` to its sender (the caller), from its deadline on.
    ///         The full amount is credited to the caller's balance.
    /// @param id Postage id.
    function refundPostage(uint256 id) external nonReentrant {
        Postage storage p = _pendingPostage(id);
        if (msg.sender != p.sender) revert NotPostageSender(id, msg.sender);
        if (block.timestamp < p.deadline) revert PostageNotExpired(id, p.deadline);

        p.status = PostageStatus.Refunded;
        uint256 amount = p.amount;
        balances[msg.sender][p.token] += amount;
        emit PostageRefunded(id, msg.sender, amount);
    }

    // ----------------------------------------------------------------------------------------
    // Withdrawals and administration
    // ----------------------------------------------------------------------------------------

    /// @notice Pays the caller its whole balance of `token`.
    /// @param token Token to withdraw, `address(0)` for ETH.
    function withdraw(address token) external nonReentrant {
        uint256 amount = balances[msg.sender][token];
        if (amount == 0) revert NothingToWithdraw(token);

        balances[msg.sender][token] = 0;
        emit Withdrawn(msg.sender, token, amount);

        if (token == address(0)) {
            (bool ok,) = msg.sender.call{value: amount}("");
            if (!ok) revert TransferFailed(msg.sender, amount);
        } else {
            IERC20(token).safeTransfer(msg.sender, amount);
        }
    }

    /// @notice Sets the operator fee for future tips, subscriptions and postage. Owner only.
    /// @param newFeeBps Fee in basis points (at most `MAX_FEE_BPS`).
    function setFeeBps(uint16 newFeeBps) external onlyOwner {
        _setFeeBps(newFeeBps);
    }

    /// @notice Sets the account credited with future fees. Owner only.
    /// @param newFeeRecipient Fee recipient (non-zero).
    function setFeeRecipient(address newFeeRecipient) external onlyOwner {
        _setFeeRecipient(newFeeRecipient);
    }

    // ----------------------------------------------------------------------------------------
    // Views
    // ----------------------------------------------------------------------------------------

    /// @notice A room's owner and price.
    /// @param room Room id.
    /// @return The room (owner `address(0)` if unregistered).
    function roomInfo(bytes32 room) external view returns (Room memory) {
        return _rooms[room];
    }

    /// @notice When `subscriber`'s subscription to `room` ends (0 if it never subscribed).
    /// @param room Room id.
    /// @param subscriber Account to check.
    /// @return Expiry timestamp; the subscription is valid while `block.timestamp` is below it.
    function subscriptionExpiry(bytes32 room, address subscriber) external view returns (uint64) {
        return _expiry[room][subscriber];
    }

    /// @notice Whether `subscriber` has an unexpired subscription to `room`.
    /// @param room Room id.
    /// @param subscriber Account to check.
    /// @return True while the subscription lasts.
    function isSubscribed(bytes32 room, address subscriber) external view returns (bool) {
        return _expiry[room][subscriber] > block.timestamp;
    }

    /// @notice A postage escrow. Reverts with `UnknownPostage` if none has this id.
    /// @param id Postage id.
    /// @return The escrow.
    function postage(uint256 id) external view returns (Postage memory) {
        Postage storage p = _postage[id];
        if (p.status == PostageStatus.None) revert UnknownPostage(id);
        return p;
    }

    // ----------------------------------------------------------------------------------------
    // Internals
    // ----------------------------------------------------------------------------------------

    /// @dev Credits `payee` with `amount` less a fee at `rate` basis points, and the fee recipient
    ///      with the fee. Returns the fee.
    function _credit(address payee, address token, uint256 amount, uint16 rate) private returns (uint256 fee) {
        fee = amount * rate / BPS;
        balances[payee][token] += amount - fee;
        if (fee != 0) balances[feeRecipient][token] += fee;
    }

    /// @dev Requires `msg.value` to be `amount` for ETH and zero for a token.
    function _checkValue(address token, uint256 amount) private view {
        uint256 expected = token == address(0) ? amount : 0;
        if (msg.value != expected) revert IncorrectPayment(expected, msg.value);
    }

    /// @dev Transfers `amount` of `token` from the caller and checks that exactly `amount` arrived.
    function _pull(IERC20 token, uint256 amount) private {
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 afterwards = token.balanceOf(address(this));
        if (afterwards != before + amount) {
            revert TokenAmountMismatch(amount, afterwards > before ? afterwards - before : 0);
        }
    }

    function _pendingPostage(uint256 id) private view returns (Postage storage p) {
        p = _postage[id];
        if (p.status == PostageStatus.None) revert UnknownPostage(id);
        if (p.status != PostageStatus.Pending) revert PostageSettled(id);
    }

    function _setFeeBps(uint16 newFeeBps) private {
        if (newFeeBps > MAX_FEE_BPS) revert FeeTooHigh(newFeeBps, MAX_FEE_BPS);
        emit FeeBpsSet(feeBps, newFeeBps);
        feeBps = newFeeBps;
    }

    function _setFeeRecipient(address newFeeRecipient) private {
        if (newFeeRecipient == address(0)) revert ZeroAddress();
        emit FeeRecipientSet(feeRecipient, newFeeRecipient);
        feeRecipient = newFeeRecipient;
    }
}
