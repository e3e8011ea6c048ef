// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title ModelMarket: trained models sold for an ERC-20 token
/// @notice An owner lists a model by its card's hash and URI at a price (token base units);
///         a buyer pays the owner directly and gets a purchase record that the app checks
///         (`hasPurchased`) before it unlocks the model.
contract ModelMarket is ReentrancyGuard {
    using SafeERC20 for IERC20;

    struct Listing {
        address owner;
        bool active;
        uint256 price;
        bytes32 cardHash;
        string uri;
    }

    IERC20 public immutable token;
    uint256 public listingCount;
    mapping(uint256 => Listing) private _listings;
    mapping(uint256 => mapping(address => bool)) private _purchased;

    event ModelListed(uint256 indexed id, address indexed owner, bytes32 cardHash, string uri, uint256 price);
    event ModelDelisted(uint256 indexed id);
    event ModelPurchased(uint256 indexed id, address indexed buyer, address indexed owner, uint256 price);

    error NoSuchListing(uint256 id);
    error NotOwner(uint256 id, address caller);
    error ListingInactive(uint256 id);
    error AlreadyPurchased(uint256 id, address buyer);
    error PriceChanged(uint256 id, uint256 price);

    constructor(IERC20 token_) {
        token = token_;
    }

    function list(bytes32 cardHash, string calldata uri, uint256 price) external returns (uint256 id) {
        id = ++listingCount;
        _listings[id] = Listing(msg.sender, true, price, cardHash, uri);
        emit ModelListed(id, msg.sender, cardHash, uri, price);
    }

    function delist(uint256 id) external {
        Listing storage l = _listing(id);
        if (msg.sender != l.owner) revert NotOwner(id, msg.sender);
        l.active = false;
        emit ModelDelisted(id);
    }

    /// @notice Buy listing `id`, paying at most `maxPrice` (guards against a price change).
    function buy(uint256 id, uint256 maxPrice) external nonReentrant {
        Listing storage l = _listing(id);
        if (!l.active) revert ListingInactive(id);
        if (_purchased[id][msg.sender]) revert AlreadyPurchased(id, msg.sender);
        if (l.price > maxPrice) revert PriceChanged(id, l.price);
        _purchased[id][msg.sender] = true;
        emit ModelPurchased(id, msg.sender, l.owner, l.price);
        if (l.price > 0) token.safeTransferFrom(msg.sender, l.owner, l.price);
    }

    function hasPurchased(uint256 id, address buyer) external view returns (bool) {
        return _purchased[id][buyer];
    }

    function getListing(uint256 id) external view returns (Listing memory) {
        return _listing(id);
    }

    function _listing(uint256 id) private view returns (Listing storage l) {
        l = _listings[id];
        if (l.owner == address(0)) revert NoSuchListing(id);
    }
}
