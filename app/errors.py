"""Errors every layer above the core may raise for the user to read."""

from __future__ import annotations


class UserError(Exception):
    """An error the user caused and can fix; its message is shown as one line (the command
    line prints it and exits 1; the GUI launcher prints it before any window opens)."""
