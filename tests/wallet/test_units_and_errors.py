"""Amount parsing/formatting in base units, and revert decoding to names."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import keccak

from wallet.errors import decode_revert
from wallet.token import format_units, parse_units


def test_parse_and_format_units_are_exact():
    assert parse_units("1.5") == 1_500_000_000_000_000_000
    assert parse_units("0.000000000000000001") == 1
    assert format_units(1_500_000_000_000_000_000) == "1.5" and format_units(10**24) == "1000000"
    # beyond Decimal's default 28 significant digits: still exact, both ways
    big = "1000000000000.000000000000000001"
    assert parse_units(big) == 10**30 + 1 and format_units(10**30 + 1) == big
    assert parse_units("1e3") == 1000 * 10**18 and format_units(-5) == "-0.000000000000000005"
    for bad in ("-1", "abc", "1e-19", "nan", "0.0000000000000000001"):
        with pytest.raises(ValueError):
            parse_units(bad)


def test_revert_decoding_names_custom_errors_panics_and_strings():
    sel = keccak(text="WrongStatus(uint256,uint8)")[:4]
    assert str(decode_revert(sel + encode(["uint256", "uint8"], [7, 4]))) == "WrongStatus(7, accepted)"
    panic = keccak(text="Panic(uint256)")[:4] + encode(["uint256"], [0x11])
    assert str(decode_revert(panic)) == "Panic(arithmetic overflow)"
    err = keccak(text="Error(string)")[:4] + encode(["string"], ["nope"])
    assert str(decode_revert("0x" + err.hex())) == "Error(nope)"
    assert decode_revert(b"").name == "reverted without a reason"
    assert decode_revert(b"\x01\x02\x03\x04").name == "unknown"
