"""The photoreal engine as an optional add-on of the bundles (jobs/render/photoreal_addon.py):
install from a wheel file or a download, checked by sha256, unpacked beside the bundle and
renamed into place; bad wheels are refused in one line with nothing written. The wheels here
are small real zip files with a `bpy` package (the 374 MB one is installed into the frozen
bundle by package_test.py's "photoreal add-on" step when a wheel is at hand)."""

from __future__ import annotations

import hashlib
import http.server
import json
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from jobs.render import photoreal_addon as addon

ROOT = Path(__file__).resolve().parents[2]


def _wheel(path: Path, members: dict[str, str] | None = None) -> tuple[Path, str]:
    members = members or {
        "bpy/__init__.py": "class app:\n    version_string = '5.0.1-test'\n",
        "bpy-5.0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: bpy\nVersion: 5.0.1\n",
        "bpy-5.0.1.dist-info/RECORD": "",
    }
    with zipfile.ZipFile(path, "w") as z:
        for name, text in members.items():
            z.writestr(name, text)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith((".photoreal", "photoreal")))


_CHILD = r"""
import json, sys
from pathlib import Path
from jobs.render import photoreal_addon as a
a.activate(Path(sys.argv[1]))
ok, line = a.status()
import bpy
print(json.dumps({"ok": ok, "line": line, "bpy": bpy.app.version_string, "file": bpy.__file__}))
"""


def test_install_from_a_wheel_file_then_the_bundle_finds_it_and_remove_takes_it_out(tmp_path):
    bundle = tmp_path / "kminer"
    bundle.mkdir()
    whl, sha = _wheel(tmp_path / addon.BPY_WHEEL)
    root = addon.addon_root(bundle)
    sp = addon.install(whl, root=root, sha256=sha)
    assert sp == root / "site-packages" and (sp / "bpy" / "__init__.py").is_file()
    marker = json.loads((root / addon.MARKER).read_text())
    assert marker["sha256"] == sha and marker["version"] == addon.BPY_VERSION and "GPL-3.0" in marker["license"]
    assert _leftovers(bundle) == ["photoreal"]  # no temporary folder left behind
    p = subprocess.run([sys.executable, "-I", "-S", "-c", "import sys; sys.path.insert(0, sys.argv[2]); " + _CHILD, str(root), str(ROOT)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert got["ok"] and got["bpy"] == "5.0.1-test" and got["file"].startswith(str(sp))
    assert got["line"].startswith("photoreal engine: Blender bpy 5.0.1 (Cycles), in ")
    # a second install replaces the first in one rename
    whl2, sha2 = _wheel(tmp_path / "second.whl", {"bpy/__init__.py": "X = 2\n"})
    addon.install(whl2, root=root, sha256=sha2)
    assert (sp / "bpy" / "__init__.py").read_text() == "X = 2\n" and _leftovers(bundle) == ["photoreal"]
    assert addon.remove(root) is True and _leftovers(bundle) == []
    assert addon.remove(root) is False


def test_a_wheel_that_is_not_the_pinned_one_is_refused_in_one_line_with_nothing_written(tmp_path):
    bundle = tmp_path / "kminer"
    bundle.mkdir()
    whl, _ = _wheel(tmp_path / addon.BPY_WHEEL)
    with pytest.raises(addon.AddonError) as e:
        addon.install(whl, root=addon.addon_root(bundle))  # the real pin: this small zip is not it
    msg = str(e.value)
    assert "\n" not in msg and "is not the pinned bpy 5.0.1 wheel" in msg and msg.endswith("not installed")
    assert _leftovers(bundle) == []


@pytest.mark.parametrize("members, says", [
    ({"bpy/__init__.py": "", "../evil.py": "x"}, "points outside its folder"),
    ({"/etc/evil.py": "x", "bpy/__init__.py": ""}, "points outside its folder"),
    ({"numpy/__init__.py": ""}, "holds no bpy package"),
])
def test_a_wheel_with_members_outside_its_folder_or_without_bpy_is_refused(tmp_path, members, says):
    bundle = tmp_path / "kminer"
    bundle.mkdir()
    whl, sha = _wheel(tmp_path / "bad.whl", members)
    with pytest.raises(addon.AddonError, match=says):
        addon.install(whl, root=addon.addon_root(bundle), sha256=sha)
    assert _leftovers(bundle) == [] and not (tmp_path / "evil.py").exists()
    not_zip = tmp_path / "not.whl"
    not_zip.write_bytes(b"not a zip")
    with pytest.raises(addon.AddonError, match="is not a wheel"):
        addon.install(not_zip, root=addon.addon_root(bundle), sha256=hashlib.sha256(b"not a zip").hexdigest())
    assert _leftovers(bundle) == []


def test_install_downloads_the_wheel_and_checks_it(tmp_path):
    """The download path, from an HTTP server on 127.0.0.1 (the real one is PyPI's address of
    the pinned wheel, BPY_URL, checked against the same pinned hash)."""
    served = tmp_path / "served"
    served.mkdir()
    whl, sha = _wheel(served / addon.BPY_WHEEL)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(served), **kw)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        bundle = tmp_path / "kminer"
        bundle.mkdir()
        url = f"http://127.0.0.1:{srv.server_address[1]}/{addon.BPY_WHEEL}"
        seen = []
        sp = addon.install(root=addon.addon_root(bundle), url=url, sha256=sha, progress=lambda d, t: seen.append((d, t)))
        assert (sp / "bpy" / "__init__.py").is_file() and seen[-1][0] == whl.stat().st_size
        with pytest.raises(addon.AddonError, match=r"download of nothing.whl failed: File not found; not installed .*--wheel FILE"):
            addon.install(root=addon.addon_root(bundle), url=url.rsplit("/", 1)[0] + "/nothing.whl", sha256=sha)
        assert _leftovers(bundle) == ["photoreal"]  # the earlier install is untouched
        (tmp_path / "other").mkdir()
        with pytest.raises(addon.AddonError, match="not the pinned"):
            addon.install(root=addon.addon_root(tmp_path / "other"), url=url)
        assert _leftovers(tmp_path / "other") == []
    finally:
        srv.shutdown()


def test_from_source_the_line_names_the_pip_extra_and_install_says_to_use_pip(monkeypatch):
    monkeypatch.setitem(sys.modules, "bpy", None)  # find_spec reads None as "not installed"
    ok, line = addon.status()
    assert not ok and line.startswith("photoreal engine not installed: pip install 'knowledge-miner[photoreal]'")
    assert "\n" not in line
    with pytest.raises(addon.AddonError, match=r"pip install 'knowledge-miner\[photoreal\]'"):
        addon.install(Path("/nonexistent.whl"))


def test_the_frozen_line_names_the_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "bpy", None)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "kminer"))
    ok, line = addon.status()
    assert not ok and "`kminer photoreal install` adds it (Blender's bpy 5.0.1, GPL-3.0" in line
    assert addon.addon_root() == tmp_path / "photoreal"


def test_the_pinned_address_names_the_pinned_wheel():
    assert addon.BPY_URL.startswith("https://files.pythonhosted.org/packages/")
    assert addon.BPY_URL.endswith("/" + addon.BPY_WHEEL) and len(addon.BPY_SHA256) == 64
