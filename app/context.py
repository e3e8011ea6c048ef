"""The composition root's small shared pieces: paths, settings store, logging.

Commands and the GUI build their services from an `AppContext`; nothing here is a global
singleton that widgets reach for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.logs import setup_logging
from app.paths import Paths, resolve_paths
from app.settings import LoadResult, Settings, SettingsStore

__all__ = ["AppContext", "resolve_paths"]


@dataclass
class AppContext:
    paths: Paths
    store: SettingsStore
    settings: Settings
    load_message: str | None = None
    """Set when the settings file could not be used (kept aside); shown once to the user."""

    @classmethod
    def open(cls, paths: Paths | None = None) -> "AppContext":
        paths = (paths or resolve_paths()).ensure()
        store = SettingsStore(paths.settings_file)
        res: LoadResult = store.load()
        return cls(paths, store, res.settings, res.message)

    def save_settings(self) -> None:
        self.store.save(self.settings)

    @staticmethod
    def setup_logging(*, verbose: bool = False) -> None:
        paths = resolve_paths().ensure()
        setup_logging(paths.log_file, stderr_level=logging.INFO if verbose else None)
