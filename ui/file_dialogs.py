"""The app's file dialogs: each starts in the folder last used for the same purpose (see
app.recent_folders) and remembers the folder chosen. Qt's static dialogs, so a native one is
used where the desktop offers it. GUI thread only."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from app.recent_folders import RecentFolders


def open_files(parent, folders: RecentFolders, purpose: str, title: str, filt: str) -> list[Path]:
    """Files chosen to open (none when cancelled)."""
    paths, _ = QFileDialog.getOpenFileNames(parent, title, str(folders.start(purpose)), filt)
    if paths:
        folders.remember(purpose, paths[0])
    return [Path(p) for p in paths]


def open_file(parent, folders: RecentFolders, purpose: str, title: str, filt: str) -> Path | None:
    """One file chosen to open, or None."""
    path, _ = QFileDialog.getOpenFileName(parent, title, str(folders.start(purpose)), filt)
    if path:
        folders.remember(purpose, path)
    return Path(path) if path else None


def save_file(parent, folders: RecentFolders, purpose: str, title: str, name: str, filt: str, *,
              first: Path | None = None) -> Path | None:
    """Where to save a file suggested as `name`, or None. `first`: the folder to start in
    instead of the purpose's first folder (one the app ships, not writable when installed)."""
    folder = folders.start(purpose)
    if first is not None and (folders.is_first(folder) or folder == Path.home()):
        first.mkdir(parents=True, exist_ok=True)
        folder = first
    path, _ = QFileDialog.getSaveFileName(parent, title, str(folder / name), filt)
    if path:
        folders.remember(purpose, path)
    return Path(path) if path else None


def choose_folder(parent, folders: RecentFolders, purpose: str, title: str) -> Path | None:
    """A folder chosen, or None."""
    folder = QFileDialog.getExistingDirectory(parent, title, str(folders.start(purpose)))
    if folder:
        folders.remember(purpose, folder)
    return Path(folder) if folder else None
