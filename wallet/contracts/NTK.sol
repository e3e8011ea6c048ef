// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title NTK (Neurotoken) for local and test chains
/// @notice An ERC-20 with 18 decimals. Only the deployer may mint (the faucet), and never on
///         Ethereum mainnet (chain id 1), where the app uses the real NTK contract instead.
contract NTK is ERC20 {
    address public immutable deployer;

    error NotDeployer(address caller);
    error FaucetDisabledOnMainnet();

    constructor(uint256 initialSupply) ERC20("Neurotoken", "NTK") {
        deployer = msg.sender;
        if (initialSupply > 0) {
            _mint(msg.sender, initialSupply);
        }
    }

    /// @notice The faucet: mint `amount` base units to `to`. Deployer only, never on mainnet.
    function mint(address to, uint256 amount) external {
        if (msg.sender != deployer) revert NotDeployer(msg.sender);
        if (block.chainid == 1) revert FaucetDisabledOnMainnet();
        _mint(to, amount);
    }
}
