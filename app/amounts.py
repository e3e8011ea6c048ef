"""Exact amounts and addresses as people type and read them: `check_amount` turns text into
integer base units (wei), `format_amount` turns base units into exact decimal text (never a
float), `check_address` checks an address and its EIP-55 checksum. Pure, safe on any thread;
every view, notice, log line and command shows money through these (`ntk_text`, `eth_text`)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation, localcontext
from numbers import Integral

DECIMALS = 18
"""NTK's and ETH's decimals."""
WEI_PER_NTK = 10**DECIMALS
"""Base units in one NTK (and wei in one ETH)."""


class FieldError(ValueError):
    """Bad input in one form field: `field` names it ("to", "amount", "password", ...)."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


def check_address(text: str, field: str = "to") -> str:
    """The checksummed address in `text`; FieldError if it is not one or its checksum is wrong.

    All-lowercase or all-uppercase hex carries no checksum (EIP-55) and is accepted as is."""
    from eth_utils import is_hex, to_checksum_address  # deferred: eth-utils takes ~0.1 s to load

    t = (text or "").strip()
    if not t:
        raise FieldError(field, "Enter the recipient's address (0x followed by 40 hex digits).")
    if not t.startswith(("0x", "0X")) or len(t) != 42 or not is_hex(t):
        raise FieldError(field, "Not an Ethereum address: it must be 0x followed by 40 hex digits.")
    body = t[2:]
    good = to_checksum_address("0x" + body.lower())
    if body != body.lower() and body != body.upper() and good != "0x" + body:
        raise FieldError(field, "The address's checksum does not match (mixed upper/lower case): "
                                "check it for a typo.")
    return good


def check_amount(text: str, decimals: int = DECIMALS, field: str = "amount") -> int:
    """`text` (e.g. "12.5", "1,000") in base units; FieldError for empty, zero, negative, or too precise."""
    t = (text or "").strip().replace(",", "").replace("_", "").replace(" ", "")
    if not t:
        raise FieldError(field, "Enter an amount.")
    try:
        q = Decimal(t)
    except InvalidOperation:
        raise FieldError(field, f"Not a number: {text.strip()!r}.") from None
    if not q.is_finite():
        raise FieldError(field, f"Not a number: {text.strip()!r}.")
    if q <= 0:
        raise FieldError(field, "The amount must be more than zero.")
    if q.adjusted() > 60:
        raise FieldError(field, "That amount is too large.")
    with localcontext() as c:
        c.prec = 200  # exact: the default 28 digits would round large amounts
        base = q.scaleb(decimals)
    if base != base.to_integral_value():
        raise FieldError(field, f"At most {decimals} decimal places.")
    return int(base)


def format_amount(wei: int | None, decimals: int = DECIMALS, *, group: bool = True,
                  max_decimals: int | None = None) -> str:
    """Decimal text of `wei` base units (integer arithmetic, no float), thousands grouped:
    exact, or with `max_decimals` cut (never rounded up) to that many decimals, where an amount
    too small to show is "<0.000001" rather than 0. None shows as an en dash."""
    if wei is None:
        return "–"
    if isinstance(wei, bool) or not isinstance(wei, Integral):
        raise TypeError(f"an amount in base units is an int, not {type(wei).__name__}")
    # integer arithmetic: Decimal.scaleb would round to the context's 28 digits
    sign, whole, frac = "-" if wei < 0 else "", *divmod(abs(int(wei)), 10**decimals)
    text = f"{whole:,}" if group else str(whole)
    digits = str(frac).rjust(decimals, "0")
    if max_decimals is not None:
        digits = digits[:max_decimals]
        if frac and not whole and not digits.strip("0"):
            return f"{sign}<0.{'0' * (max_decimals - 1)}1"
    digits = digits.rstrip("0")
    return sign + text + (f".{digits}" if digits else "")


def ntk_text(wei: int | None, max_decimals: int | None = None) -> str:
    """`wei` as NTK for people: "12.5 NTK" (exact unless `max_decimals` cuts it)."""
    return f"{format_amount(wei, max_decimals=max_decimals)} NTK"


def eth_text(wei: int | None, max_decimals: int | None = None) -> str:
    """`wei` as ETH for people: "0.000042 ETH" (exact unless `max_decimals` cuts it)."""
    return f"{format_amount(wei, max_decimals=max_decimals)} ETH"


def ntk_float(wei: int) -> float:
    """`wei` in NTK as a float, for charts and rates only (never for sums or comparisons of money)."""
    return wei / WEI_PER_NTK
