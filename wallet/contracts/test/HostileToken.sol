// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title HostileToken (tests only)
/// @notice An ERC-20 that, when armed, calls back into a target contract from inside
///         `transfer` (a re-entrancy attack on the market paying out). The re-entrant call's
///         outcome is recorded instead of bubbling up, so a test can see it was refused.
contract HostileToken is ERC20 {
    address public target;
    bytes public attackCall;
    bool public armed;
    uint256 public attempts;
    bool public lastReentrySucceeded;
    bytes public lastReentryError;

    constructor() ERC20("Hostile", "HOST") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Make this contract act as a market party (buyer or miner) in a test.
    function execute(address to, bytes calldata data) external returns (bytes memory) {
        (bool success, bytes memory ret) = to.call(data);
        if (!success) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }

    function arm(address target_, bytes calldata call_) external {
        target = target_;
        attackCall = call_;
        armed = true;
    }

    function transfer(address to, uint256 value) public override returns (bool) {
        bool ok = super.transfer(to, value);
        if (armed) {
            armed = false; // one attempt per arming, so the test terminates
            attempts += 1;
            (bool success, bytes memory err) = target.call(attackCall);
            lastReentrySucceeded = success;
            lastReentryError = err;
        }
        return ok;
    }
}
