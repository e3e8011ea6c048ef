"""The composition root's small shared pieces: paths, settings store, logging.

Commands and the GUI build their services from an `AppContext`; nothing here is a global
singleton that widgets reach for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from app.logs import setup_logging
from app.paths import Paths, resolve_paths
from app.settings import LoadResult, Settings, SettingsStore

__all__ = ["AppContext", "resolve_paths"]

log = logging.getLogger(__name__)

_notice_sink: Callable[[str], None] | None = None
_noticed: set[str] = set()


def on_settings_notice(sink: Callable[[str], None] | None) -> None:
    """Where lines about the settings file go (kept aside, a field that fell back): the CLI
    prints them on stderr, each once per command, whatever opens a context."""
    global _notice_sink
    _notice_sink = sink
    _noticed.clear()


def _announce(lines) -> None:
    for line in lines:
        if _notice_sink is not None and line not in _noticed:
            _noticed.add(line)
            _notice_sink(line)


@dataclass
class AppContext:
    paths: Paths
    store: SettingsStore
    settings: Settings
    load_message: str | None = None
    """Set when the settings file could not be used (kept aside); shown once to the user."""
    load_notices: tuple[str, ...] = ()
    """Every line about the last load (the kept-aside message, fields that fell back to their
    defaults): the CLI prints them (on_settings_notice), the GUI shows them."""
    _stamp: tuple[int, int, int] | None = field(default=None, repr=False)
    """(inode, mtime_ns, size) of the settings file as last loaded or saved here (saves are
    atomic renames, so every save is a new inode, even within one clock tick)."""

    @classmethod
    def open(cls, paths: Paths | None = None) -> "AppContext":
        paths = (paths or resolve_paths()).ensure()
        store = SettingsStore(paths.settings_file)
        res: LoadResult = store.load()
        ctx = cls(paths, store, res.settings, res.message, tuple(res.notices()))
        ctx._stamp = ctx._file_stamp()
        _announce(ctx.load_notices)
        return ctx

    @property
    def network_problem(self) -> str | None:
        """Why the wallet must not connect as the settings say (a network field of the file is
        invalid and was not fixed since): never a silent default chain. None when fine."""
        return self.store.network_problem(self.settings)

    def save_settings(self) -> None:
        self.store.save(self.settings)
        self._stamp = self._file_stamp()

    def reload_settings_if_changed(self) -> bool:
        """Take the settings file again if something else changed it since this process last
        read or wrote it (`kminer settings set` while the agent runs). A file that cannot be
        used is set aside by the store as at start-up; the settings in use stay. Returns True
        when new settings were taken. Call it from the thread that owns the settings."""
        stamp = self._file_stamp()
        if stamp == self._stamp or stamp is None:
            return False
        self._stamp = stamp
        res = self.store.load()
        if res.message:
            log.warning("settings file changed but was not used: %s", res.message)
            return False
        self.settings = res.settings
        self.load_notices = tuple(res.notices())
        _announce(self.load_notices)
        log.info("settings reloaded: %s changed", self.paths.settings_file)
        return True

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.paths.settings_file.stat()
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    @staticmethod
    def setup_logging(*, verbose: bool = False) -> None:
        paths = resolve_paths().ensure()
        setup_logging(paths.log_file, stderr_level=logging.INFO if verbose else None)
