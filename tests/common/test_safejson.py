"""common.safejson and common.boundedfile: stranger JSON and files within limits, one-line errors.

The first test shows the crash these guard against (json.loads on a list nested 200,000 deep,
in a process where web3 raised the recursion limit, dies of SIGSEGV), in a child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.boundedfile import BoundedReadError, read_bounded
from common.safejson import (RPC_LIMITS, SPEC_LIMITS, JsonLimits, SafeJsonError, load_file, load_stream,
                             loads_bounded, read_capped)

ROOT = Path(__file__).resolve().parents[2]
DEEP = b"[" * 200_000 + b"]" * 200_000


def _child(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r})\n" + code],
                          capture_output=True, timeout=120)


def test_plain_json_loads_on_deep_nesting_kills_the_process_once_web3_is_imported():
    proc = _child("import web3, json\nassert sys.getrecursionlimit() >= 100_000\n"
                  "json.loads('[' * 200_000 + ']' * 200_000)\n")
    assert proc.returncode == -11, (proc.returncode, proc.stderr[-300:])  # SIGSEGV


def test_the_safe_loader_refuses_the_same_input_cleanly_with_web3_imported():
    proc = _child("import web3\nfrom common.safejson import loads_bounded, SafeJsonError\n"
                  "try:\n    loads_bounded(b'[' * 200_000 + b']' * 200_000)\n"
                  "except SafeJsonError as e:\n    print(e)\n")
    assert proc.returncode == 0, proc.stderr[-300:]
    assert proc.stdout.decode().strip() == "JSON: nested too deep (the limit is 32 levels)"


@pytest.mark.parametrize("data, words", [
    (b"[" * 33 + b"]" * 33, "nested too deep (the limit is 32 levels)"),
    (b"[" * 200_000, "nested too deep"),  # unbalanced: the decoder would still recurse
    (b'{"a":' * 40 + b"1" + b"}" * 40, "nested too deep"),
    (b"[NaN]", "NaN is not allowed"),
    (b"[-Infinity]", "-Infinity is not allowed"),
    (b"[1e400]", "number 1e400 is out of range"),
    (b"[" + b"9" * 101 + b"]", "a number written too long (the limit is 100 characters)"),
    (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
    (b'["\\ud800"]', "lone UTF-16 surrogate"),
    (b'"' + b"x" * (64 << 10) + b'"', "a string of 65,538 bytes (the limit is 65,536 bytes)"),
    (b"[" + b"0," * 100_000 + b"0]", "too many items: 100,001"),
    (b"\xff\xfe[]", "not UTF-8 text"),
    (b'{"a": [1, 2}', "not valid JSON: line 1 column 12"),
    (b" " * (1 << 20) + b" ", "too large: 1,048,577 bytes (the limit is 1,048,576 bytes)"),
])
def test_over_the_limits_is_one_line_naming_what(data, words):
    with pytest.raises(SafeJsonError) as e:
        loads_bounded(data, what="spec")
    msg = str(e.value)
    assert msg.startswith("spec: ") and words in msg, msg
    assert "\n" not in msg and len(msg) < 200


@pytest.mark.parametrize("data, value", [
    (b'{"a": [1, 2.5, "x"], "b": null, "c": true}', {"a": [1, 2.5, "x"], "b": None, "c": True}),
    (b"[" * 32 + b"]" * 32, json.loads("[" * 32 + "]" * 32)),
    ('["\\ud83d\\ude00 \u00e9", "a\\\\\\"[[["]'.encode(), ["\U0001F600 \u00e9", 'a\\"[[[']),
    (b'"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["', "[" * 36),  # brackets in strings do not nest
    (b"\xef\xbb\xbf{}", {}),
    (b"[" + b"9" * 78 + b"]", [int("9" * 78)]),
])
def test_ordinary_json_decodes_as_json_loads_would(data, value):
    assert loads_bounded(data) == value


def test_duplicate_keys_may_be_allowed_and_limits_adjusted():
    assert loads_bounded(b'{"a": 1, "a": 2}', SPEC_LIMITS.but(duplicate_keys="last")) == {"a": 2}
    assert RPC_LIMITS.duplicate_keys == "last" and RPC_LIMITS.max_bytes == 16 << 20
    assert loads_bounded(b"[[[]]]", JsonLimits(max_depth=3)) == [[[]]]
    with pytest.raises(SafeJsonError, match="limit is 2 levels"):
        loads_bounded(b"[[[]]]", JsonLimits(max_depth=2))


def test_a_stream_is_never_read_past_its_cap():
    class Endless:
        read_bytes = 0

        def read(self, n: int) -> bytes:
            self.read_bytes += n
            return b" " * n

    src = Endless()
    with pytest.raises(SafeJsonError, match="too large"):
        read_capped(src, 1000, what="reply")
    assert src.read_bytes == 1001
    with pytest.raises(SafeJsonError, match="too large"):
        load_stream(Endless(), SPEC_LIMITS.but(max_bytes=5000))


def test_rejecting_an_over_deep_megabyte_is_fast():
    data = b"[" * 500_000 + b"]" * 500_000
    t0 = time.perf_counter()
    with pytest.raises(SafeJsonError, match="nested too deep"):
        loads_bounded(data, SPEC_LIMITS.but(max_bytes=2 << 20))
    assert time.perf_counter() - t0 < 2.0


def test_bounded_read_refuses_links_fifos_and_big_files(tmp_path):
    good = tmp_path / "a.json"
    good.write_text("{}")
    assert read_bounded(good, 10) == b"{}"
    (tmp_path / "link.json").symlink_to(good)
    with pytest.raises(BoundedReadError, match="is a symbolic link"):
        read_bounded(tmp_path / "link.json", 10, what="card")
    assert read_bounded(tmp_path / "link.json", 10, follow_symlinks=True) == b"{}"
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(BoundedReadError, match="not a regular file"):
        read_bounded(tmp_path / "fifo", 10)
    (tmp_path / "big").write_bytes(b"x" * 11)
    with pytest.raises(BoundedReadError, match="too large: 11 bytes"):
        read_bounded(tmp_path / "big", 10)
    with pytest.raises(BoundedReadError, match="file not found"):
        read_bounded(tmp_path / "none", 10)


def test_bounded_read_under_a_root_follows_no_link_on_the_way(tmp_path):
    root = tmp_path / "result"
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "0.json").write_text("[1]")
    assert load_file(root / "meta" / "0.json", root=root) == [1]
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "0.json").write_text('["secret"]')
    (root / "linked").symlink_to(outside)
    with pytest.raises(SafeJsonError, match="symbolic link"):
        load_file(root / "linked" / "0.json", root=root, what="frame metadata")
    with pytest.raises(SafeJsonError, match="leaves its folder"):
        load_file("../secret/0.json", root=root)
