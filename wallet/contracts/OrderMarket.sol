// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

/// @title OrderMarket: one escrow per order of N shards, settled with EIP-712 signatures
/// @notice The happy path touches the chain twice per order: the buyer posts it (one escrow
///         deposit) and the miner redeems the buyer's cumulative vouchers, many orders per
///         transaction. Claims, result commitments and acknowledgements travel off chain as
///         EIP-712 messages (domain: this contract on this chain; every struct names its order).
///         The chain is the court of appeal: a miner whose buyer goes silent submits its result
///         commitment and is paid after the review window against the revealed content key; a
///         buyer rejects such a submission with evidence; an order's unpaid escrow goes back to
///         its buyer when it closes; a miner who claimed and delivered nothing loses its stake.
///         A voucher names the set of shards it pays (a bitmap), not an amount: every shard is
///         paid at most once, whoever asks and however, so nothing can draw more than the
///         escrow. Stakes are balances per (mining key, payout address), reused across claims.
///         Amounts are token base units; times are unix seconds of block timestamps.
contract OrderMarket is EIP712, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice What a buyer offers; see `postOrder`.
    struct Terms {
        uint8 kind;
        bytes32 specHash;
        string specURI;
        uint8 shards;
        uint8 signedShards;
        uint96 rewardEach;
        uint16 stakeBps;
        uint40 deadline;
        uint24 reviewWindow;
        uint24 redeemWindow;
    }

    /// @dev Two slots written when posted (the paid set shares the second, so the first
    ///      redemption of an order rewrites a slot instead of creating one); `holdUntil` only
    ///      by the on-chain fallback.
    struct Order {
        address buyer;
        uint40 deadline;
        uint24 reviewWindow;
        uint24 redeemWindow;
        bool closed;
        uint128 paid;
        uint96 rewardEach;
        uint8 shards;
        uint8 signedShards;
        uint16 stakeBps;
        uint40 holdUntil;
    }

    /// @notice A shard granted to a miner: signed by the buyer (the grant) and by the miner's
    ///         mining key (the confirmation that binds its stake). Payment goes to `payout`.
    struct Claim {
        uint256 orderId;
        uint16 shard;
        address miner;
        address payout;
    }

    /// @notice A buyer's payment: every shard of `orderId` whose bit is set in `shards` is
    ///         paid to `payee` (once: shards paid before are skipped).
    struct Voucher {
        uint256 orderId;
        address payee;
        uint256 shards;
    }

    /// @notice A result commitment (signed by the miner) or its acknowledgement (by the buyer).
    struct Result {
        uint256 orderId;
        uint16 shard;
        address miner;
        address payout;
        bytes32 resultHash;
        bytes32 resultKeyHash;
    }

    enum RecordStatus {
        None,
        Submitted,
        Rejected,
        Released,
        Slashed,
        KeyDemanded,
        KeyRevealed,
        DemandVoided
    }

    /// @dev What the chain knows of one (order, shard, miner) beyond the happy path, in one
    ///      slot: the commitment (keccak256 cut to 26 bytes), when, and the status.
    struct Record {
        bytes26 commit;
        uint40 at;
        RecordStatus status;
    }

    struct Stake {
        uint96 active;
        uint96 withdrawing;
        uint64 unlockAt;
    }

    /// @notice Public counters per address: as buyer (orders, shards posted, rejections made)
    ///         and as payout address of a miner (shards paid, rejections received, slashes).
    struct Stats {
        uint32 ordersPosted;
        uint64 shardsPosted;
        uint32 rejectionsMade;
        uint64 shardsPaid;
        uint32 rejectionsReceived;
        uint32 slashes;
    }

    bytes32 public constant CLAIM_TYPEHASH = keccak256("Claim(uint256 orderId,uint16 shard,address miner,address payout)");
    bytes32 public constant VOUCHER_TYPEHASH = keccak256("Voucher(uint256 orderId,address payee,uint256 shards)");
    bytes32 public constant RESULT_COMMIT_TYPEHASH = keccak256(
        "ResultCommit(uint256 orderId,uint16 shard,address miner,address payout,bytes32 resultHash,bytes32 resultKeyHash)"
    );
    bytes32 public constant RESULT_ACK_TYPEHASH = keccak256(
        "ResultAck(uint256 orderId,uint16 shard,address miner,address payout,bytes32 resultHash,bytes32 resultKeyHash)"
    );

    uint256 public constant MAX_SHARDS = 128;
    uint64 public constant MAX_DEADLINE = 30 days;
    uint24 public constant MAX_WINDOW = 7 days;
    uint64 public constant UNBOND_DELAY = 14 days;

    IERC20 public immutable token;
    uint256 public orderCount;
    mapping(uint256 => Order) private _orders;
    mapping(bytes32 => Record) private _records;
    /// @notice On-chain claims of shards at or above an order's `signedShards`: keccak(miner, payout).
    mapping(uint256 => mapping(uint256 => bytes32)) public onchainClaim;
    mapping(address => mapping(address => Stake)) private _stakes;
    mapping(address => Stats) private _stats;

    event OrderPosted(
        uint256 indexed orderId,
        address indexed buyer,
        uint8 kind,
        bytes32 specHash,
        string specURI,
        uint8 shards,
        uint8 signedShards,
        uint256 rewardEach,
        uint256 stakeEach,
        uint40 deadline,
        uint24 reviewWindow,
        uint24 redeemWindow
    );
    event ShardClaimed(uint256 indexed orderId, uint16 shard, address indexed miner, address payout);
    event ResultSubmitted(
        uint256 indexed orderId, uint16 shard, address indexed miner, address payout, bytes32 resultHash, bytes32 resultKeyHash
    );
    event ResultRejected(
        uint256 indexed orderId, uint16 shard, address indexed miner, bytes32 resultHash, bytes32 evidenceHash, string evidenceURI
    );
    event ResultReleased(uint256 indexed orderId, uint16 shard, address indexed miner, address indexed payout, uint256 amount, bytes32 key);
    event VoucherRedeemed(uint256 indexed orderId, address indexed payee, uint256 shards, uint256 amount);
    event OrderClosed(uint256 indexed orderId, address indexed buyer, uint256 refunded);
    event Slashed(uint256 indexed orderId, uint16 shard, address indexed miner, address indexed payout, uint256 amount);
    event KeyDemanded(uint256 indexed orderId, uint16 shard, address indexed miner, address payout, bytes32 resultKeyHash);
    event KeyDemandVoided(uint256 indexed orderId, uint16 shard, address indexed miner);
    event KeyRevealed(uint256 indexed orderId, uint16 shard, address indexed miner, bytes32 key);
    event StakeDeposited(address indexed miner, address indexed payout, uint256 amount);
    event UnstakeRequested(address indexed miner, address indexed payout, uint256 amount, uint64 unlockAt);
    event StakeWithdrawn(address indexed miner, address indexed payout, uint256 amount);

    error BadTerms(string what);
    error NoSuchOrder(uint256 orderId);
    error OrderIsClosed(uint256 orderId);
    error NotBuyer(uint256 orderId, address caller);
    error NotMiner(address caller);
    error BadShard(uint256 orderId, uint256 shard);
    error BadSignature(string what);
    error ShardTaken(uint256 orderId, uint256 shard);
    error ShardPaid(uint256 orderId, uint256 shard);
    error StakeTooLow(uint256 have, uint256 need);
    error DeadlinePassed(uint256 orderId, uint40 deadline);
    error TooEarly(uint256 notBefore);
    error TooLate(uint256 notAfter);
    error WrongRecord(RecordStatus status);
    error CommitMismatch();
    error LengthMismatch();
    error NothingToWithdraw();

    constructor(IERC20 token_) EIP712("Knowledge Miner OrderMarket", "1") {
        token = token_;
    }

    // --- buyer ---------------------------------------------------------------------------

    /// @notice Post an order of `t.shards` shards (at most 128) with `shards * rewardEach`
    ///         escrowed (approve it first). A claim's stake is `stakeBps` basis points of the
    ///         reward (10,000 = the reward itself). Shards below `signedShards` are claimed with a
    ///         buyer-signed `Claim`; the others on chain with `claimShard`. Results are due by
    ///         `deadline`; submissions on chain are reviewed for `reviewWindow`; vouchers must be
    ///         redeemed before the order closes, `redeemWindow` after the review ends.
    function postOrder(Terms calldata t) external nonReentrant returns (uint256 orderId) {
        if (t.shards == 0 || t.shards > MAX_SHARDS) revert BadTerms("shards");
        if (t.signedShards > t.shards) revert BadTerms("signedShards");
        if (t.rewardEach == 0) revert BadTerms("rewardEach");
        if (t.deadline <= block.timestamp || t.deadline > block.timestamp + MAX_DEADLINE) revert BadTerms("deadline");
        if (t.reviewWindow == 0 || t.reviewWindow > MAX_WINDOW) revert BadTerms("reviewWindow");
        if (t.redeemWindow == 0 || t.redeemWindow > MAX_WINDOW) revert BadTerms("redeemWindow");
        orderId = ++orderCount;
        Order storage o = _orders[orderId];
        o.buyer = msg.sender;
        o.deadline = t.deadline;
        o.reviewWindow = t.reviewWindow;
        o.redeemWindow = t.redeemWindow;
        o.rewardEach = t.rewardEach;
        o.shards = t.shards;
        o.signedShards = t.signedShards;
        o.stakeBps = t.stakeBps;
        Stats storage s = _stats[msg.sender];
        s.ordersPosted += 1;
        s.shardsPosted += t.shards;
        _emitPosted(orderId, t);
        token.safeTransferFrom(msg.sender, address(this), uint256(t.rewardEach) * t.shards);
    }

    /// @notice Reject a result submitted on chain, within its review window, with the hash and
    ///         URI of the evidence. The shard stays unpaid (its escrow returns when the order
    ///         closes); the buyer's public rejection count and the payout's both grow.
    function reject(Claim calldata c, bytes32 resultHash, bytes32 resultKeyHash, bytes32 evidenceHash, string calldata evidenceURI)
        external
    {
        Order storage o = _order(c.orderId);
        if (msg.sender != o.buyer) revert NotBuyer(c.orderId, msg.sender);
        Record storage r = _records[_recordKey(c.orderId, c.shard, c.miner)];
        if (r.status != RecordStatus.Submitted) revert WrongRecord(r.status);
        if (r.commit != bytes26(keccak256(abi.encode(c.payout, resultHash, resultKeyHash)))) revert CommitMismatch();
        if (block.timestamp > uint256(r.at) + o.reviewWindow) revert TooLate(uint256(r.at) + o.reviewWindow);
        r.status = RecordStatus.Rejected;
        _stats[msg.sender].rejectionsMade += 1;
        _stats[c.payout].rejectionsReceived += 1;
        emit ResultRejected(c.orderId, c.shard, c.miner, resultHash, evidenceHash, evidenceURI);
    }

    /// @notice Close the order once every window has passed: its unpaid escrow goes back to
    ///         the buyer, and nothing more is paid from it.
    function refund(uint256 orderId) external nonReentrant returns (uint256 amount) {
        Order storage o = _order(orderId);
        if (msg.sender != o.buyer) revert NotBuyer(orderId, msg.sender);
        if (o.closed) revert OrderIsClosed(orderId);
        uint256 until = _holdUntil(o);
        if (block.timestamp <= until) revert TooEarly(until + 1);
        o.closed = true;
        amount = uint256(o.rewardEach) * (o.shards - _popcount(o.paid));
        emit OrderClosed(orderId, msg.sender, amount);
        if (amount > 0) token.safeTransfer(msg.sender, amount);
    }

    /// @notice Take the stake of a miner who confirmed a claim (its signature on the `Claim`;
    ///         none for an on-chain claim) and was neither paid for the shard nor released its
    ///         result in time. Goes to the buyer; at most the order's `stakeEach`.
    function slash(Claim calldata c, bytes calldata minerSig) external nonReentrant returns (uint256 amount) {
        Order storage o = _order(c.orderId);
        if (msg.sender != o.buyer) revert NotBuyer(c.orderId, msg.sender);
        _checkClaim(o, c, minerSig, c.miner);
        if (_isPaid(o, c.shard)) revert ShardPaid(c.orderId, c.shard);
        Record storage r = _records[_recordKey(c.orderId, c.shard, c.miner)];
        uint256 after_;
        if (r.status == RecordStatus.None) {
            after_ = uint256(o.deadline) + o.reviewWindow + o.redeemWindow;
        } else if (r.status == RecordStatus.Submitted) {
            after_ = uint256(r.at) + o.reviewWindow + o.redeemWindow;
        } else {
            revert WrongRecord(r.status);
        }
        if (block.timestamp <= after_) revert TooEarly(after_ + 1);
        r.status = RecordStatus.Slashed;
        amount = _takeStake(c.miner, c.payout, _stakeEach(o));
        emit Slashed(c.orderId, c.shard, c.miner, c.payout, amount);
        if (amount > 0) token.safeTransfer(msg.sender, amount);
    }

    /// @notice A shard paid by voucher whose key never came: show the miner's signed
    ///         `ResultCommit`; within the review window the miner reveals the key on chain
    ///         (`revealKey`), or shows the shard was paid to someone else (`answerDemand`), or
    ///         loses its stake (`slashForKey`).
    function demandKey(Result calldata rc, bytes calldata minerSig) external {
        Order storage o = _order(rc.orderId);
        if (msg.sender != o.buyer) revert NotBuyer(rc.orderId, msg.sender);
        if (rc.shard >= o.shards || !_isPaid(o, rc.shard)) revert BadShard(rc.orderId, rc.shard);
        bytes32 digest = _hashTypedDataV4(_resultHash(RESULT_COMMIT_TYPEHASH, rc));
        if (!SignatureChecker.isValidSignatureNow(rc.miner, digest, minerSig)) revert BadSignature("result commit");
        Record storage r = _records[_recordKey(rc.orderId, rc.shard, rc.miner)];
        if (r.status != RecordStatus.None && r.status != RecordStatus.Submitted) revert WrongRecord(r.status);
        r.status = RecordStatus.KeyDemanded;
        r.at = uint40(block.timestamp);
        r.commit = bytes26(keccak256(abi.encode(rc.payout, rc.resultKeyHash)));
        emit KeyDemanded(rc.orderId, rc.shard, rc.miner, rc.payout, rc.resultKeyHash);
    }

    /// @notice Void a key demand by showing that the shard was paid to another payee: the
    ///         buyer-signed voucher that paid it (public in the redeeming transaction), or the
    ///         on-chain release of another miner (`otherMiner`, with an empty voucher).
    function answerDemand(
        uint256 orderId,
        uint16 shard,
        address miner,
        address payout,
        bytes32 resultKeyHash,
        Voucher calldata other,
        bytes calldata otherSig,
        address otherMiner
    ) external {
        Order storage o = _order(orderId);
        Record storage r = _records[_recordKey(orderId, shard, miner)];
        if (r.status != RecordStatus.KeyDemanded) revert WrongRecord(r.status);
        if (r.commit != bytes26(keccak256(abi.encode(payout, resultKeyHash)))) revert CommitMismatch();
        if (otherMiner != address(0)) {
            if (otherMiner == miner || _records[_recordKey(orderId, shard, otherMiner)].status != RecordStatus.Released) {
                revert WrongRecord(RecordStatus.Released);
            }
        } else {
            if (other.orderId != orderId || other.payee == payout || (other.shards >> shard) & 1 == 0) {
                revert BadShard(orderId, shard);
            }
            bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(VOUCHER_TYPEHASH, other.orderId, other.payee, other.shards)));
            if (!SignatureChecker.isValidSignatureNow(o.buyer, digest, otherSig)) revert BadSignature("voucher");
        }
        r.status = RecordStatus.DemandVoided;
        emit KeyDemandVoided(orderId, shard, miner);
    }

    /// @notice The demanded key was not revealed within the review window: take the stake.
    function slashForKey(uint256 orderId, uint16 shard, address miner, address payout, bytes32 resultKeyHash)
        external
        nonReentrant
        returns (uint256 amount)
    {
        Order storage o = _order(orderId);
        if (msg.sender != o.buyer) revert NotBuyer(orderId, msg.sender);
        Record storage r = _records[_recordKey(orderId, shard, miner)];
        if (r.status != RecordStatus.KeyDemanded) revert WrongRecord(r.status);
        if (r.commit != bytes26(keccak256(abi.encode(payout, resultKeyHash)))) revert CommitMismatch();
        uint256 after_ = uint256(r.at) + o.reviewWindow;
        if (block.timestamp <= after_) revert TooEarly(after_ + 1);
        r.status = RecordStatus.Slashed;
        amount = _takeStake(miner, payout, _stakeEach(o));
        emit Slashed(orderId, shard, miner, payout, amount);
        if (amount > 0) token.safeTransfer(msg.sender, amount);
    }

    // --- miner ---------------------------------------------------------------------------

    /// @notice The on-chain claim (no buyer signature needed) of a shard at or above the
    ///         order's `signedShards`, first come; the caller is the mining key and its stake for
    ///         `payout` must cover the order's stake per claim.
    function claimShard(uint256 orderId, uint16 shard, address payout) external {
        Order storage o = _order(orderId);
        if (o.closed) revert OrderIsClosed(orderId);
        if (block.timestamp > o.deadline) revert DeadlinePassed(orderId, o.deadline);
        if (shard < o.signedShards || shard >= o.shards) revert BadShard(orderId, shard);
        if (msg.sender == o.buyer) revert NotMiner(msg.sender);
        if (onchainClaim[orderId][shard] != bytes32(0)) revert ShardTaken(orderId, shard);
        if (_isPaid(o, shard)) revert ShardPaid(orderId, shard);
        uint256 have = _stakes[msg.sender][payout].active;
        uint256 need = _stakeEach(o);
        if (have < need) revert StakeTooLow(have, need);
        onchainClaim[orderId][shard] = keccak256(abi.encode(msg.sender, payout));
        emit ShardClaimed(orderId, shard, msg.sender, payout);
    }

    /// @notice The silent-buyer fallback: put the result commitment on chain. Before the
    ///         deadline the claim suffices (the buyer's grant `grantSig`, or the on-chain claim);
    ///         after it, until the deadline plus the review window, only with the buyer's signed
    ///         `ResultAck` (`ackSig`) of this very result. Caller: the mining key or the payout.
    function submitResult(Claim calldata c, bytes calldata grantSig, bytes32 resultHash, bytes32 resultKeyHash, bytes calldata ackSig)
        external
    {
        if (msg.sender != c.miner && msg.sender != c.payout) revert NotMiner(msg.sender);
        Order storage o = _order(c.orderId);
        if (o.closed) revert OrderIsClosed(c.orderId);
        _checkClaim(o, c, grantSig, o.buyer);
        if (block.timestamp > o.deadline) {
            uint256 lateBy = uint256(o.deadline) + o.reviewWindow;
            if (block.timestamp > lateBy) revert TooLate(lateBy);
            Result memory ack = Result(c.orderId, c.shard, c.miner, c.payout, resultHash, resultKeyHash);
            bytes32 digest = _hashTypedDataV4(_resultHash(RESULT_ACK_TYPEHASH, ack));
            if (!SignatureChecker.isValidSignatureNow(o.buyer, digest, ackSig)) revert DeadlinePassed(c.orderId, o.deadline);
        }
        if (_isPaid(o, c.shard)) revert ShardPaid(c.orderId, c.shard);
        Record storage r = _records[_recordKey(c.orderId, c.shard, c.miner)];
        if (r.status != RecordStatus.None) revert WrongRecord(r.status);
        r.commit = bytes26(keccak256(abi.encode(c.payout, resultHash, resultKeyHash)));
        r.at = uint40(block.timestamp);
        r.status = RecordStatus.Submitted;
        uint40 hold = uint40(block.timestamp) + o.reviewWindow + o.redeemWindow;
        if (hold > o.holdUntil) o.holdUntil = hold;
        emit ResultSubmitted(c.orderId, c.shard, c.miner, c.payout, resultHash, resultKeyHash);
    }

    /// @notice After the review window of an unrejected submission, pay the shard to the
    ///         payout address against the content key (keccak256(key) == resultKeyHash). Anyone
    ///         may send it; the key becomes public with the payment.
    function release(Claim calldata c, bytes32 resultHash, bytes32 key) external nonReentrant {
        Order storage o = _order(c.orderId);
        if (o.closed) revert OrderIsClosed(c.orderId);
        Record storage r = _records[_recordKey(c.orderId, c.shard, c.miner)];
        if (r.status != RecordStatus.Submitted) revert WrongRecord(r.status);
        if (r.commit != bytes26(keccak256(abi.encode(c.payout, resultHash, keccak256(abi.encode(key)))))) revert CommitMismatch();
        uint256 opensAt = uint256(r.at) + o.reviewWindow;
        if (block.timestamp <= opensAt) revert TooEarly(opensAt + 1);
        if (_isPaid(o, c.shard)) revert ShardPaid(c.orderId, c.shard);
        r.status = RecordStatus.Released;
        o.paid |= uint128(1) << c.shard;
        Stats storage s = _stats[c.payout];
        s.shardsPaid += 1;
        emit ResultReleased(c.orderId, c.shard, c.miner, c.payout, o.rewardEach, key);
        token.safeTransfer(c.payout, o.rewardEach);
    }

    /// @notice Reveal a demanded key on chain (anyone; the key must match the commitment).
    function revealKey(uint256 orderId, uint16 shard, address miner, address payout, bytes32 key) external {
        Record storage r = _records[_recordKey(orderId, shard, miner)];
        if (r.status != RecordStatus.KeyDemanded) revert WrongRecord(r.status);
        if (r.commit != bytes26(keccak256(abi.encode(payout, keccak256(abi.encode(key)))))) revert CommitMismatch();
        r.status = RecordStatus.KeyRevealed;
        emit KeyRevealed(orderId, shard, miner, key);
    }

    /// @notice Redeem buyer-signed vouchers, any orders and payees, in one transaction. Each
    ///         pays `rewardEach` per shard in its set not paid before; consecutive vouchers to
    ///         the same payee are paid in one transfer. Anyone may send it.
    function redeem(Voucher[] calldata vouchers, bytes[] calldata sigs) external nonReentrant returns (uint256 total) {
        uint256 n = vouchers.length;
        if (sigs.length != n) revert LengthMismatch();
        address payee;
        uint256 pending;
        uint256 pendingShards;
        for (uint256 i = 0; i < n; ++i) {
            Voucher calldata v = vouchers[i];
            Order storage o = _order(v.orderId);
            if (o.closed) revert OrderIsClosed(v.orderId);
            if ((v.shards >> o.shards) != 0) revert BadShard(v.orderId, o.shards);
            if (v.payee == address(0)) revert BadTerms("payee");
            bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(VOUCHER_TYPEHASH, v.orderId, v.payee, v.shards)));
            if (!SignatureChecker.isValidSignatureNow(o.buyer, digest, sigs[i])) revert BadSignature("voucher");
            uint256 fresh = v.shards & ~uint256(o.paid);
            if (fresh == 0) continue;
            o.paid |= uint128(fresh);
            uint256 count = _popcount(fresh);
            uint256 amount = count * o.rewardEach;
            emit VoucherRedeemed(v.orderId, v.payee, fresh, amount);
            if (v.payee != payee) {
                _payOut(payee, pending, pendingShards);
                payee = v.payee;
                pending = 0;
                pendingShards = 0;
            }
            pending += amount;
            pendingShards += count;
            total += amount;
        }
        _payOut(payee, pending, pendingShards);
    }

    // --- stakes --------------------------------------------------------------------------

    /// @notice Deposit stake for claims by mining key `miner` paying the caller (the payout
    ///         address). Approve it first. One balance serves every claim of that pair.
    function depositStake(address miner, uint96 amount) external nonReentrant {
        if (amount == 0) revert BadTerms("amount");
        _stakes[miner][msg.sender].active += amount;
        emit StakeDeposited(miner, msg.sender, amount);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Start withdrawing `amount` of the stake of (`miner`, caller); it can still be
    ///         slashed until it unlocks, `UNBOND_DELAY` from now (a new request restarts it).
    function requestUnstake(address miner, uint96 amount) external {
        Stake storage s = _stakes[miner][msg.sender];
        if (amount == 0 || amount > s.active) revert StakeTooLow(s.active, amount);
        s.active -= amount;
        s.withdrawing += amount;
        s.unlockAt = uint64(block.timestamp) + UNBOND_DELAY;
        emit UnstakeRequested(miner, msg.sender, amount, s.unlockAt);
    }

    /// @notice Withdraw the unlocked stake of (`miner`, caller) to the caller.
    function withdrawStake(address miner) external nonReentrant returns (uint256 amount) {
        Stake storage s = _stakes[miner][msg.sender];
        amount = s.withdrawing;
        if (amount == 0) revert NothingToWithdraw();
        if (block.timestamp < s.unlockAt) revert TooEarly(s.unlockAt);
        s.withdrawing = 0;
        emit StakeWithdrawn(miner, msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // --- reads ---------------------------------------------------------------------------

    function getOrder(uint256 orderId) external view returns (Order memory o) {
        o = _order(orderId);
        o.holdUntil = uint40(_holdUntil(o));
    }

    function getRecord(uint256 orderId, uint16 shard, address miner) external view returns (Record memory) {
        return _records[_recordKey(orderId, shard, miner)];
    }

    function stakeOf(address miner, address payout) external view returns (Stake memory) {
        return _stakes[miner][payout];
    }

    function statsOf(address who) external view returns (Stats memory) {
        return _stats[who];
    }

    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // --- internals -----------------------------------------------------------------------

    function _order(uint256 orderId) private view returns (Order storage o) {
        o = _orders[orderId];
        if (o.buyer == address(0)) revert NoSuchOrder(orderId);
    }

    function _holdUntil(Order memory o) private pure returns (uint256) {
        uint256 base = uint256(o.deadline) + o.reviewWindow + o.redeemWindow;
        return o.holdUntil > base ? o.holdUntil : base;
    }

    function _stakeEach(Order storage o) private view returns (uint256) {
        return uint256(o.rewardEach) * o.stakeBps / 10_000;
    }

    function _isPaid(Order storage o, uint16 shard) private view returns (bool) {
        return (o.paid >> shard) & 1 == 1;
    }

    /// @dev A claim is valid for `o` when its shard exists and, below `signedShards`,
    ///      `signer` signed it (the buyer's grant, or the miner's confirmation); at or above,
    ///      when it is the shard's on-chain claim.
    function _checkClaim(Order storage o, Claim calldata c, bytes calldata sig, address signer) private view {
        if (c.shard >= o.shards) revert BadShard(c.orderId, c.shard);
        if (c.shard < o.signedShards) {
            bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(CLAIM_TYPEHASH, c.orderId, c.shard, c.miner, c.payout)));
            if (!SignatureChecker.isValidSignatureNow(signer, digest, sig)) revert BadSignature("claim");
        } else if (onchainClaim[c.orderId][c.shard] != keccak256(abi.encode(c.miner, c.payout))) {
            revert BadShard(c.orderId, c.shard);
        }
    }

    function _resultHash(bytes32 typehash, Result memory r) private pure returns (bytes32) {
        return keccak256(abi.encode(typehash, r.orderId, r.shard, r.miner, r.payout, r.resultHash, r.resultKeyHash));
    }

    function _recordKey(uint256 orderId, uint16 shard, address miner) private pure returns (bytes32) {
        return keccak256(abi.encode(orderId, shard, miner));
    }

    function _takeStake(address miner, address payout, uint256 want) private returns (uint256 taken) {
        Stake storage s = _stakes[miner][payout];
        uint256 fromActive = want < s.active ? want : s.active;
        s.active -= uint96(fromActive);
        uint256 rest = want - fromActive;
        uint256 fromWithdrawing = rest < s.withdrawing ? rest : s.withdrawing;
        s.withdrawing -= uint96(fromWithdrawing);
        _stats[payout].slashes += 1;
        return fromActive + fromWithdrawing;
    }

    function _payOut(address payee, uint256 amount, uint256 shards) private {
        if (amount == 0) return;
        _stats[payee].shardsPaid += uint64(shards);
        token.safeTransfer(payee, amount);
    }

    function _emitPosted(uint256 orderId, Terms calldata t) private {
        emit OrderPosted(
            orderId, msg.sender, t.kind, t.specHash, t.specURI, t.shards, t.signedShards, t.rewardEach,
            uint256(t.rewardEach) * t.stakeBps / 10_000,
            t.deadline, t.reviewWindow, t.redeemWindow
        );
    }

    function _popcount(uint256 x) private pure returns (uint256 n) {
        while (x != 0) {
            x &= x - 1;
            ++n;
        }
    }
}
