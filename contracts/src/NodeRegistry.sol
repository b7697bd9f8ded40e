// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title NodeRegistry
/// @notice Directory of dchat nodes: an operator (the registering account) publishes its node's
///         libp2p peer id, multiaddrs and public URL, optionally with an ETH stake. Clients and
///         other nodes bootstrap from the active set (`nodes`).
/// @dev One node per operator. The peer id is a claim, not a proof: whoever dials the node
///      authenticates the peer id in the libp2p handshake, so peer ids are not required to be
///      unique (uniqueness would let anyone squat someone else's id). The stake returns to the
///      operator through a pull withdrawal once the unbonding delay after deregistering has
///      passed. `minStake` applies when registering; raising it does not evict existing nodes.
contract NodeRegistry is Ownable2Step, ReentrancyGuardTransient {
    /// @notice A registered node.
    /// @param peerId libp2p peer id (multihash bytes).
    /// @param multiaddrs libp2p multiaddrs the node listens on, as text.
    /// @param url Public base URL of the node's HTTP API ("" if none).
    /// @param stake ETH locked by the operator while registered.
    /// @param registeredAt Timestamp of registration.
    /// @param updatedAt Timestamp of the last registration or update.
    struct Node {
        bytes peerId;
        string[] multiaddrs;
        string url;
        uint96 stake;
        uint64 registeredAt;
        uint64 updatedAt;
    }

    /// @notice A node together with its operator, as returned by `nodes`.
    struct NodeInfo {
        address operator;
        Node node;
    }

    /// @notice Stake waiting for the end of its unbonding delay.
    /// @param amount Wei the operator may withdraw.
    /// @param releaseAt Timestamp from which `withdraw` pays out.
    struct Unbonding {
        uint128 amount;
        uint64 releaseAt;
    }

    /// @notice Longest accepted peer id, in bytes.
    uint256 public constant MAX_PEER_ID_LENGTH = 128;
    /// @notice Most multiaddrs a node may publish.
    uint256 public constant MAX_MULTIADDRS = 16;
    /// @notice Longest accepted multiaddr or URL, in bytes.
    uint256 public constant MAX_STRING_LENGTH = 512;
    /// @notice Longest unbonding delay the owner may set.
    uint64 public constant MAX_UNBONDING_DELAY = 30 days;

    /// @notice Stake (wei) required to register.
    uint256 public minStake;
    /// @notice Seconds between deregistering and being able to withdraw the stake.
    uint64 public unbondingDelay;

    /// @notice Stake each operator is waiting to withdraw.
    mapping(address operator => Unbonding) public unbonding;

    mapping(address operator => Node) private _nodes;
    /// @dev Operators of active nodes, and each one's index in `_operators` plus one (0: inactive).
    address[] private _operators;
    mapping(address operator => uint256) private _position;

    /// @notice An operator registered a node.
    /// @param operator The registering account.
    /// @param peerId libp2p peer id.
    /// @param multiaddrs Multiaddrs of the node.
    /// @param url Public URL of the node.
    /// @param stake Wei staked.
    event Registered(address indexed operator, bytes peerId, string[] multiaddrs, string url, uint256 stake);

    /// @notice An operator changed its node's details.
    /// @param operator The node's operator.
    /// @param peerId New libp2p peer id.
    /// @param multiaddrs New multiaddrs.
    /// @param url New public URL.
    event Updated(address indexed operator, bytes peerId, string[] multiaddrs, string url);

    /// @notice An operator removed its node; its stake starts unbonding.
    /// @param operator The node's operator.
    /// @param stake Wei moved to unbonding.
    /// @param releaseAt When the operator's unbonding stake becomes withdrawable (0 if none is pending).
    event Deregistered(address indexed operator, uint256 stake, uint64 releaseAt);

    /// @notice An operator withdrew its unbonded stake.
    /// @param operator The operator paid.
    /// @param amount Wei paid.
    event Withdrawn(address indexed operator, uint256 amount);

    /// @notice The owner changed the stake required to register.
    /// @param previous Former minimum stake.
    /// @param current New minimum stake.
    event MinStakeSet(uint256 previous, uint256 current);

    /// @notice The owner changed the unbonding delay.
    /// @param previous Former delay in seconds.
    /// @param current New delay in seconds.
    event UnbondingDelaySet(uint64 previous, uint64 current);

    /// @notice The caller already has an active node.
    error AlreadyRegistered(address operator);
    /// @notice The operator has no active node.
    error NotRegistered(address operator);
    /// @notice The peer id is empty or longer than `MAX_PEER_ID_LENGTH`.
    error InvalidPeerId(uint256 length);
    /// @notice More multiaddrs than `MAX_MULTIADDRS`.
    error TooManyMultiaddrs(uint256 count, uint256 max);
    /// @notice A multiaddr or the URL is longer than `MAX_STRING_LENGTH`.
    error StringTooLong(uint256 length, uint256 max);
    /// @notice The ETH sent is below `minStake`.
    error InsufficientStake(uint256 sent, uint256 required);
    /// @notice The unbonding delay exceeds `MAX_UNBONDING_DELAY`.
    error UnbondingDelayTooLong(uint64 delay, uint64 max);
    /// @notice The operator has no unbonding stake.
    error NothingToWithdraw();
    /// @notice The unbonding delay has not passed yet.
    error StillUnbonding(uint64 releaseAt);
    /// @notice Sending ETH to the operator failed.
    error TransferFailed(address to, uint256 amount);

    /// @param initialOwner Account that may set `minStake` and `unbondingDelay`.
    /// @param initialUnbondingDelay Initial unbonding delay in seconds (at most `MAX_UNBONDING_DELAY`).
    constructor(address initialOwner, uint64 initialUnbondingDelay) Ownable(initialOwner) {
        _setUnbondingDelay(initialUnbondingDelay);
    }

    /// @notice Registers the caller's node. Send at least `minStake` wei as stake.
    /// @param peerId libp2p peer id (1 to `MAX_PEER_ID_LENGTH` bytes).
    /// @param multiaddrs Multiaddrs of the node (at most `MAX_MULTIADDRS`).
    /// @param url Public base URL of the node's HTTP API, or "".
    function register(bytes calldata peerId, string[] calldata multiaddrs, string calldata url) external payable {
        if (_position[msg.sender] != 0) revert AlreadyRegistered(msg.sender);
        if (msg.value < minStake) revert InsufficientStake(msg.value, minStake);
        _validate(peerId, multiaddrs, url);

        _operators.push(msg.sender);
        _position[msg.sender] = _operators.length;
        Node storage entry = _nodes[msg.sender];
        entry.peerId = peerId;
        _setMultiaddrs(entry, multiaddrs);
        entry.url = url;
        entry.stake = SafeCast.toUint96(msg.value);
        entry.registeredAt = uint64(block.timestamp);
        entry.updatedAt = uint64(block.timestamp);
        emit Registered(msg.sender, peerId, multiaddrs, url, msg.value);
    }

    /// @notice Replaces the details of the caller's node. The stake is unchanged.
    /// @param peerId New libp2p peer id.
    /// @param multiaddrs New multiaddrs.
    /// @param url New public URL, or "".
    function update(bytes calldata peerId, string[] calldata multiaddrs, string calldata url) external {
        if (_position[msg.sender] == 0) revert NotRegistered(msg.sender);
        _validate(peerId, multiaddrs, url);

        Node storage entry = _nodes[msg.sender];
        entry.peerId = peerId;
        _setMultiaddrs(entry, multiaddrs);
        entry.url = url;
        entry.updatedAt = uint64(block.timestamp);
        emit Updated(msg.sender, peerId, multiaddrs, url);
    }

    /// @notice Removes the caller's node. Its stake becomes withdrawable after `unbondingDelay`
    ///         (stake already unbonding is merged and waits for the new release time).
    function deregister() external {
        if (_position[msg.sender] == 0) revert NotRegistered(msg.sender);
        uint256 stake = _nodes[msg.sender].stake;

        _removeOperator(msg.sender);
        delete _nodes[msg.sender];
        Unbonding storage pending = unbonding[msg.sender];
        if (stake > 0) {
            pending.amount += uint128(stake);
            pending.releaseAt = uint64(block.timestamp) + unbondingDelay;
        }
        emit Deregistered(msg.sender, stake, pending.releaseAt);
    }

    /// @notice Pays the caller its unbonded stake.
    function withdraw() external nonReentrant {
        Unbonding memory pending = unbonding[msg.sender];
        if (pending.amount == 0) revert NothingToWithdraw();
        if (block.timestamp < pending.releaseAt) revert StillUnbonding(pending.releaseAt);

        delete unbonding[msg.sender];
        emit Withdrawn(msg.sender, pending.amount);

        (bool ok,) = msg.sender.call{value: pending.amount}("");
        if (!ok) revert TransferFailed(msg.sender, pending.amount);
    }

    /// @notice Sets the stake required for new registrations. Owner only.
    /// @param newMinStake Minimum stake in wei.
    function setMinStake(uint256 newMinStake) external onlyOwner {
        emit MinStakeSet(minStake, newMinStake);
        minStake = newMinStake;
    }

    /// @notice Sets the unbonding delay for future deregistrations. Owner only.
    /// @param newDelay Delay in seconds (at most `MAX_UNBONDING_DELAY`).
    function setUnbondingDelay(uint64 newDelay) external onlyOwner {
        _setUnbondingDelay(newDelay);
    }

    /// @notice Whether `operator` has an active (registered, not deregistered) node.
    /// @param operator Account to check.
    /// @return True if the operator's node is active.
    function isActive(address operator) external view returns (bool) {
        return _position[operator] != 0;
    }

    /// @notice The active node of `operator`. Reverts with `NotRegistered` if there is none.
    /// @param operator The node's operator.
    /// @return The node's details.
    function node(address operator) external view returns (Node memory) {
        if (_position[operator] == 0) revert NotRegistered(operator);
        return _nodes[operator];
    }

    /// @notice Number of active nodes.
    /// @return The size of the active set.
    function activeCount() external view returns (uint256) {
        return _operators.length;
    }

    /// @notice A page of active nodes. The order is stable while nothing deregisters;
    ///         deregistering moves the last node into the freed position.
    /// @param offset Index of the first node returned.
    /// @param limit Most nodes returned.
    /// @return page Up to `limit` nodes from `offset` (empty past the end).
    function nodes(uint256 offset, uint256 limit) external view returns (NodeInfo[] memory page) {
        uint256 total = _operators.length;
        if (offset >= total) return new NodeInfo[](0);
        uint256 end = total - offset > limit ? offset + limit : total;
        page = new NodeInfo[](end - offset);
        for (uint256 i = offset; i < end; ++i) {
            address operator = _operators[i];
            page[i - offset] = NodeInfo({operator: operator, node: _nodes[operator]});
        }
    }

    /// @dev Removes `operator` from `_operators` by moving the last operator into its place.
    function _removeOperator(address operator) private {
        uint256 index = _position[operator] - 1;
        uint256 last = _operators.length - 1;
        if (index != last) {
            address moved = _operators[last];
            _operators[index] = moved;
            _position[moved] = index + 1;
        }
        _operators.pop();
        delete _position[operator];
    }

    /// @dev Replaces the stored multiaddrs (nested calldata arrays cannot be assigned to storage).
    function _setMultiaddrs(Node storage entry, string[] calldata multiaddrs) private {
        delete entry.multiaddrs;
        for (uint256 i = 0; i < multiaddrs.length; ++i) {
            entry.multiaddrs.push(multiaddrs[i]);
        }
    }

    function _setUnbondingDelay(uint64 newDelay) private {
        if (newDelay > MAX_UNBONDING_DELAY) revert UnbondingDelayTooLong(newDelay, MAX_UNBONDING_DELAY);
        emit UnbondingDelaySet(unbondingDelay, newDelay);
        unbondingDelay = newDelay;
    }

    function _validate(bytes calldata peerId, string[] calldata multiaddrs, string calldata url) private pure {
        if (peerId.length == 0 || peerId.length > MAX_PEER_ID_LENGTH) revert InvalidPeerId(peerId.length);
        if (multiaddrs.length > MAX_MULTIADDRS) revert TooManyMultiaddrs(multiaddrs.length, MAX_MULTIADDRS);
        for (uint256 i = 0; i < multiaddrs.length; ++i) {
            if (bytes(multiaddrs[i]).length > MAX_STRING_LENGTH) {
                revert StringTooLong(bytes(multiaddrs[i]).length, MAX_STRING_LENGTH);
            }
        }
        if (bytes(url).length > MAX_STRING_LENGTH) revert StringTooLong(bytes(url).length, MAX_STRING_LENGTH);
    }
}
