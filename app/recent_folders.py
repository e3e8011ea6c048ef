"""Where each file dialog starts: the folder the user last chose for that purpose ("scene",
"mesh", "photos", ...), kept in the settings (general.last_folders) so it holds across runs;
the first time, a folder that has something to pick (the demo scenes, the example photo)
rather than a home folder that is often empty on a new machine.

GUI thread only (`remember` saves the settings file, a small atomic write).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from app.context import AppContext
from app.resources import resource_path

__all__ = ["RecentFolders", "FIRST_FOLDERS"]

FIRST_FOLDERS: dict[str, Path] = {
    "scene": resource_path("scenes"),      # the demo scenes
    "photos": resource_path("examples"),   # the shelf photo to try the demo detector on
}
"""Where a purpose's dialog starts before the user has chosen any folder for it (else home)."""


class RecentFolders:
    """The last folder per purpose. `ctx` None: kept for this run only (a view used alone)."""

    def __init__(self, ctx: AppContext | None = None, first: Mapping[str, Path] | None = None):
        self._ctx = ctx
        self._first = dict(FIRST_FOLDERS if first is None else first)
        self._memory: dict[str, str] = {}

    def _saved(self) -> dict[str, str]:
        return dict(self._ctx.settings.general.last_folders) if self._ctx is not None else dict(self._memory)

    def start(self, purpose: str) -> Path:
        """The folder to open the dialog in: the last one chosen for `purpose` while it still
        exists, else its first folder, else the home folder."""
        for folder in (self._saved().get(purpose), self._first.get(purpose)):
            if folder and Path(folder).is_dir():
                return Path(folder)
        return Path.home()

    def is_first(self, folder: Path) -> bool:
        """Whether `folder` is one of the app's own first folders (read-only in an installed app)."""
        return any(Path(folder) == p for p in self._first.values())

    def remember(self, purpose: str, chosen: str | Path) -> None:
        """Note the folder of `chosen` (a file, or a folder) as the last one for `purpose`."""
        p = Path(chosen)
        folder = str(p if p.is_dir() else p.parent)
        saved = self._saved()
        if saved.get(purpose) == folder:
            return
        saved[purpose] = folder
        if self._ctx is None:
            self._memory = saved
            return
        self._ctx.settings.general.last_folders = saved
        self._ctx.save_settings()
