// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title JobMarket: escrowed render/train jobs paid in one ERC-20 token
/// @notice Life of a job: the buyer posts it with the reward escrowed (Open); one miner claims
///         it, depositing the job's optional stake (Claimed); the miner submits a result before
///         the deadline (Submitted); the buyer accepts (reward and stake to the miner) or rejects
///         within the review window (reward back to the buyer, stake back to the miner); once
///         the window has passed the miner may release the payment himself; once the deadline
///         has passed without a result the buyer takes the escrow back, plus the stake of a
///         miner who claimed and never delivered. Amounts are token base units; times are unix
///         seconds of block timestamps.
contract JobMarket is ReentrancyGuard {
    using SafeERC20 for IERC20;

    enum Status {
        None,
        Open,
        Claimed,
        Submitted,
        Accepted,
        Rejected,
        Released,
        Refunded
    }

    struct Job {
        address buyer;
        uint64 deadline;
        uint32 reviewWindow;
        Status status;
        address miner;
        uint64 submittedAt;
        uint8 kind;
        uint256 reward;
        uint256 stake;
        bytes32 specHash;
        bytes32 resultHash;
        string specURI;
        string resultURI;
    }

    uint32 public constant MAX_REVIEW_WINDOW = 30 days;
    uint256 public constant MAX_SHARDS = 256;

    IERC20 public immutable token;
    uint256 public jobCount;
    mapping(uint256 => Job) private _jobs;

    /// @notice Reputation counters of a miner: results paid (accepted or released), results
    ///         rejected, and claimed jobs whose deadline passed without a result.
    mapping(address => uint256) public completed;
    mapping(address => uint256) public rejected;
    mapping(address => uint256) public expired;

    event JobPosted(
        uint256 indexed id, address indexed buyer, uint8 kind, bytes32 specHash, string specURI, uint256 reward, uint64 deadline
    );
    event JobClaimed(uint256 indexed id, address indexed miner, uint256 stake);
    event ResultSubmitted(uint256 indexed id, address indexed miner, bytes32 resultHash, string resultURI);
    event JobAccepted(uint256 indexed id, address indexed miner, uint256 reward);
    event JobRejected(uint256 indexed id, address indexed miner);
    event PaymentReleased(uint256 indexed id, address indexed miner, uint256 reward);
    event JobRefunded(uint256 indexed id, address indexed buyer, uint256 amount);

    error ZeroReward();
    error DeadlineInPast(uint64 deadline, uint256 nowTs);
    error BadReviewWindow(uint32 reviewWindow);
    error BadShardCount(uint256 count);
    error LengthMismatch();
    error NoSuchJob(uint256 id);
    error WrongStatus(uint256 id, Status status);
    error NotBuyer(uint256 id, address caller);
    error NotMiner(uint256 id, address caller);
    error BuyerCannotClaim(uint256 id);
    error DeadlinePassed(uint256 id, uint64 deadline);
    error DeadlineNotReached(uint256 id, uint64 deadline);
    error ReviewWindowClosed(uint256 id, uint256 closesAt);
    error ReviewWindowOpen(uint256 id, uint256 closesAt);

    constructor(IERC20 token_) {
        token = token_;
    }

    /// @notice Post one job; `reward` is pulled from the caller (approve it first).
    function post(
        uint8 kind,
        bytes32 specHash,
        string calldata specURI,
        uint256 reward,
        uint64 deadline,
        uint32 reviewWindow,
        uint256 stake
    ) external nonReentrant returns (uint256 id) {
        _checkTerms(reward, deadline, reviewWindow);
        id = _create(kind, specHash, specURI, reward, deadline, reviewWindow, stake);
        token.safeTransferFrom(msg.sender, address(this), reward);
    }

    /// @notice Post N shard jobs (same kind, terms and reward each) in one transaction; the
    ///         total N * rewardEach is pulled once. Returns the first id; ids are consecutive.
    function postShards(
        uint8 kind,
        bytes32[] calldata specHashes,
        string[] calldata specURIs,
        uint256 rewardEach,
        uint64 deadline,
        uint32 reviewWindow,
        uint256 stake
    ) external nonReentrant returns (uint256 firstId) {
        uint256 n = specHashes.length;
        if (n == 0 || n > MAX_SHARDS) revert BadShardCount(n);
        if (specURIs.length != n) revert LengthMismatch();
        _checkTerms(rewardEach, deadline, reviewWindow);
        uint256 total = rewardEach * n; // checked: reverts on overflow
        firstId = jobCount + 1;
        for (uint256 i = 0; i < n; ++i) {
            _create(kind, specHashes[i], specURIs[i], rewardEach, deadline, reviewWindow, stake);
        }
        token.safeTransferFrom(msg.sender, address(this), total);
    }

    /// @notice Claim an open job before its deadline, depositing its stake (approve it first).
    function claim(uint256 id) external nonReentrant {
        Job storage j = _job(id);
        if (j.status != Status.Open) revert WrongStatus(id, j.status);
        if (msg.sender == j.buyer) revert BuyerCannotClaim(id);
        if (block.timestamp > j.deadline) revert DeadlinePassed(id, j.deadline);
        j.status = Status.Claimed;
        j.miner = msg.sender;
        emit JobClaimed(id, msg.sender, j.stake);
        if (j.stake > 0) token.safeTransferFrom(msg.sender, address(this), j.stake);
    }

    /// @notice The claiming miner submits the result's hash and URI, no later than the deadline.
    function submitResult(uint256 id, bytes32 resultHash, string calldata resultURI) external nonReentrant {
        Job storage j = _job(id);
        if (j.status != Status.Claimed) revert WrongStatus(id, j.status);
        if (msg.sender != j.miner) revert NotMiner(id, msg.sender);
        if (block.timestamp > j.deadline) revert DeadlinePassed(id, j.deadline);
        j.status = Status.Submitted;
        j.submittedAt = uint64(block.timestamp);
        j.resultHash = resultHash;
        j.resultURI = resultURI;
        emit ResultSubmitted(id, msg.sender, resultHash, resultURI);
    }

    /// @notice The buyer accepts a submitted result: reward and stake go to the miner.
    function accept(uint256 id) external nonReentrant {
        Job storage j = _job(id);
        if (j.status != Status.Submitted) revert WrongStatus(id, j.status);
        if (msg.sender != j.buyer) revert NotBuyer(id, msg.sender);
        emit JobAccepted(id, j.miner, j.reward);
        _payMiner(j, Status.Accepted);
    }

    /// @notice The buyer rejects a submitted result within the review window: the reward goes
    ///         back to the buyer and the stake back to the miner.
    function reject(uint256 id) external nonReentrant {
        Job storage j = _job(id);
        if (j.status != Status.Submitted) revert WrongStatus(id, j.status);
        if (msg.sender != j.buyer) revert NotBuyer(id, msg.sender);
        uint256 closesAt = uint256(j.submittedAt) + j.reviewWindow;
        if (block.timestamp > closesAt) revert ReviewWindowClosed(id, closesAt);
        j.status = Status.Rejected;
        rejected[j.miner] += 1;
        emit JobRejected(id, j.miner);
        token.safeTransfer(j.buyer, j.reward);
        if (j.stake > 0) token.safeTransfer(j.miner, j.stake);
    }

    /// @notice After the review window has passed unanswered, the miner pays himself.
    function release(uint256 id) external nonReentrant {
        Job storage j = _job(id);
        if (j.status != Status.Submitted) revert WrongStatus(id, j.status);
        if (msg.sender != j.miner) revert NotMiner(id, msg.sender);
        uint256 closesAt = uint256(j.submittedAt) + j.reviewWindow;
        if (block.timestamp <= closesAt) revert ReviewWindowOpen(id, closesAt);
        emit PaymentReleased(id, j.miner, j.reward);
        _payMiner(j, Status.Released);
    }

    /// @notice After the deadline without a result, the buyer takes the escrow back (and the
    ///         stake of a miner who claimed the job and never delivered).
    function refund(uint256 id) external nonReentrant {
        Job storage j = _job(id);
        if (j.status != Status.Open && j.status != Status.Claimed) revert WrongStatus(id, j.status);
        if (msg.sender != j.buyer) revert NotBuyer(id, msg.sender);
        if (block.timestamp <= j.deadline) revert DeadlineNotReached(id, j.deadline);
        uint256 amount = j.reward;
        if (j.status == Status.Claimed) {
            expired[j.miner] += 1;
            amount += j.stake;
        }
        j.status = Status.Refunded;
        emit JobRefunded(id, j.buyer, amount);
        token.safeTransfer(j.buyer, amount);
    }

    /// @notice Everything known about job `id` (reverts NoSuchJob for an unknown id).
    function getJob(uint256 id) external view returns (Job memory) {
        return _job(id);
    }

    function _job(uint256 id) private view returns (Job storage j) {
        j = _jobs[id];
        if (j.status == Status.None) revert NoSuchJob(id);
    }

    /// @dev A job done (accepted, or released after the review window): the miner gets the
    ///      reward and the stake back, and one more completed job.
    function _payMiner(Job storage j, Status done) private {
        j.status = done;
        completed[j.miner] += 1;
        token.safeTransfer(j.miner, j.reward + j.stake);
    }

    function _checkTerms(uint256 reward, uint64 deadline, uint32 reviewWindow) private view {
        if (reward == 0) revert ZeroReward();
        if (deadline <= block.timestamp) revert DeadlineInPast(deadline, block.timestamp);
        if (reviewWindow == 0 || reviewWindow > MAX_REVIEW_WINDOW) revert BadReviewWindow(reviewWindow);
    }

    function _create(
        uint8 kind,
        bytes32 specHash,
        string calldata specURI,
        uint256 reward,
        uint64 deadline,
        uint32 reviewWindow,
        uint256 stake
    ) private returns (uint256 id) {
        id = ++jobCount;
        Job storage j = _jobs[id];
        j.buyer = msg.sender;
        j.deadline = deadline;
        j.reviewWindow = reviewWindow;
        j.status = Status.Open;
        j.kind = kind;
        j.reward = reward;
        j.stake = stake;
        j.specHash = specHash;
        j.specURI = specURI;
        emit JobPosted(id, msg.sender, kind, specHash, specURI, reward, deadline);
    }
}
