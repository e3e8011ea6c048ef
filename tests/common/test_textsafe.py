"""Text from strangers shown safely: control characters escaped, the rest kept."""

from __future__ import annotations

import pytest

from common.textsafe import has_unsafe, safe_line, safe_text


@pytest.mark.parametrize("raw, shown", [
    ("plain text, ünïcode ✓", "plain text, ünïcode ✓"),
    ("a\tb\nc", "a\tb\nc"),
    ("\x1b]52;c;cHduZWQ=\x07", "\\x1b]52;c;cHduZWQ=\\x07"),          # OSC 52: set the clipboard
    ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),                             # clear screen, cursor home
    ("\x9b31m", "\\x9b31m"),                                          # one-byte CSI (C1)
    ("abc\u202edcba", "abc\\u202edcba"),                              # right-to-left override
    ("bar\r50%\r100%", "bar\n50%\n100%"),                              # progress bars: CR becomes a line break
    ("crlf\r\nline", "crlf\nline"),
    ("nul\x00del\x7f", "nul\\x00del\\x7f"),
])
def test_safe_text_escapes_controls_and_keeps_the_rest(raw, shown):
    assert safe_text(raw) == shown
    assert not has_unsafe(safe_text(raw))
    assert has_unsafe(raw) == (raw != shown)


def test_safe_line_folds_lines_and_caps_length():
    assert safe_line("two\nlines\tand \x1b[1m bold") == "two lines and \\x1b[1m bold"
    assert safe_line("x" * 50, max_chars=10) == "x" * 10
