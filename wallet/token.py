"""ERC-20 client (NTK): balances, transfers, allowances, and the faucet on test chains.

Amounts are integers in base units (NTK has 18 decimals: 1 NTK = 10**18); `format_units`
is for display only. Threading: as the `Chain` it uses (one thread at a time).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from wallet import artifacts
from wallet.chain import Chain, TxResult

NTK_DECIMALS = 18


@dataclass(frozen=True)
class TokenInfo:
    address: str
    symbol: str
    decimals: int


def format_units(amount: int, decimals: int = NTK_DECIMALS) -> str:
    """`amount` base units as a decimal string without trailing zeros (display only)."""
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(int(amount)), 10**decimals)
    if not frac or decimals == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(frac).rjust(decimals, '0').rstrip('0')}"


def parse_units(text: str, decimals: int = NTK_DECIMALS) -> int:
    """'1.5' -> 1.5 * 10**decimals base units; more decimals than the token has is an error."""
    t = text.strip()
    try:
        q = Decimal(t)
    except Exception:
        raise ValueError(f"not an amount: {text!r}") from None
    if not q.is_finite() or q < 0:
        raise ValueError(f"not a valid amount: {text!r}")
    sign, digits, exp = q.as_tuple()  # exact: no context precision involved
    n = int("".join(map(str, digits)) or "0")
    shift = exp + decimals
    if shift >= 0:
        return n * 10**shift
    n, rest = divmod(n, 10**-shift)
    if rest:
        raise ValueError(f"{text} has more than {decimals} decimals")
    return n


class TokenClient:
    def __init__(self, chain: Chain, address: str):
        self.chain = chain
        self.contract = chain.w3.eth.contract(address=chain.w3.to_checksum_address(address),
                                              abi=artifacts.load("NTK").abi_list())
        self.address = self.contract.address

    def info(self) -> TokenInfo:
        f = self.contract.functions
        return TokenInfo(self.address, self.chain.call(f.symbol()), int(self.chain.call(f.decimals())))

    def balance_of(self, owner: str) -> int:
        return int(self.chain.call(self.contract.functions.balanceOf(self.chain.w3.to_checksum_address(owner))))

    def allowance(self, owner: str, spender: str) -> int:
        return int(self.chain.call(self.contract.functions.allowance(owner, spender)))

    def transfer(self, account, to: str, amount_wei: int) -> TxResult:
        to = self.chain.w3.to_checksum_address(to)
        return self.chain.transact(account, self.contract.functions.transfer(to, amount_wei), gas=self._gas(90_000),
                                   what=f"sending {format_units(amount_wei)} NTK")

    def approve(self, account, spender: str, amount_wei: int) -> TxResult:
        return self.chain.transact(account, self.contract.functions.approve(spender, amount_wei), gas=self._gas(80_000),
                                   what="approving NTK")

    def ensure_allowance(self, account, spender: str, amount_wei: int) -> TxResult | None:
        """Approve `spender` for `amount_wei` unless the allowance already covers it."""
        if amount_wei <= 0 or self.allowance(account.address, spender) >= amount_wei:
            return None
        return self.approve(account, spender, amount_wei)

    def mint(self, account, to: str, amount_wei: int) -> TxResult:
        """The faucet (our NTK on test chains; only its deployer may call it)."""
        to = self.chain.w3.to_checksum_address(to)
        return self.chain.transact(account, self.contract.functions.mint(to, amount_wei), gas=self._gas(90_000),
                                   what="faucet mint")

    def _gas(self, n: int) -> int | None:
        return n if self.chain.embedded else None
