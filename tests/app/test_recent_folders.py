"""app.recent_folders: the folder each file dialog last used, kept in the settings across runs."""

from __future__ import annotations

from pathlib import Path

from app.context import AppContext
from app.recent_folders import FIRST_FOLDERS, RecentFolders
from app.resources import resource_path


def test_first_the_demo_folders_then_the_last_used_one_across_runs(tmp_path):
    ctx = AppContext.open()
    folders = RecentFolders(ctx)
    assert folders.start("scene") == resource_path("scenes") and (folders.start("scene") / "retail_shelf.json").is_file()
    assert folders.start("photos") == resource_path("examples") and folders.start("mesh") == Path.home()
    assert folders.is_first(folders.start("scene")) and not folders.is_first(tmp_path)
    (tmp_path / "meshes").mkdir()
    folders.remember("mesh", tmp_path / "meshes" / "duck.obj")   # a file: its folder
    folders.remember("annotated", tmp_path)                       # a folder: itself
    again = RecentFolders(AppContext.open())   # the next run reads the settings file
    assert again.start("mesh") == tmp_path / "meshes" and again.start("annotated") == tmp_path
    assert again.start("scene") == FIRST_FOLDERS["scene"]   # other purposes keep their own


def test_a_folder_that_went_away_falls_back_to_the_first_one_then_home(tmp_path):
    folders = RecentFolders()   # this run only
    gone = tmp_path / "gone"
    gone.mkdir()
    folders.remember("scene", gone / "a.json")
    folders.remember("mesh", gone / "b.obj")
    assert folders.start("scene") == gone
    gone.rmdir()
    assert folders.start("scene") == resource_path("scenes") and folders.start("mesh") == Path.home()
