"""Exact amounts and addresses as people type and read them: `check_amount` turns text into
integer base units (wei), `format_amount` turns base units into exact decimal text (never a
float), `check_address` checks an address and its EIP-55 checksum. Pure, safe on any thread;
every view and the command line show money through these."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation, localcontext

DECIMALS = 18
"""NTK's and ETH's decimals."""


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


def format_amount(wei: int | None, decimals: int = DECIMALS, *, group: bool = True) -> str:
    """Exact decimal text of `wei` base units (no float, no rounding), thousands grouped."""
    if wei is None:
        return "–"
    # integer arithmetic: Decimal.scaleb would round to the context's 28 digits
    sign, whole, frac = "-" if wei < 0 else "", *divmod(abs(int(wei)), 10**decimals)
    text = f"{whole:,}" if group else str(whole)
    digits = str(frac).rjust(decimals, "0").rstrip("0")
    return sign + text + (f".{digits}" if digits else "")


def ntk_text(wei: int | None) -> str:
    """`wei` as exact NTK for people: "12.5 NTK"."""
    return f"{format_amount(wei)} NTK"


def eth_text(wei: int | None) -> str:
    """`wei` as exact ETH for people: "0.000042 ETH"."""
    return f"{format_amount(wei)} ETH"
