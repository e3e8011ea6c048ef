"""Windows pieces that can be checked on Linux: the icon, the version resource, the Inno Setup
script and the CI workflow (the Windows build itself runs only on a Windows runner)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ISS = ROOT / "packaging" / "windows" / "kminer.iss"
WORKFLOW = ROOT / ".github" / "workflows" / "windows.yml"


def test_icon_is_rendered_from_the_svg_at_every_size(win_resources, tmp_path):
    from PIL import Image

    out = win_resources.make_icon(ROOT / "resources" / "icons" / "kminer.svg", tmp_path / "k.ico")
    with Image.open(out) as im:
        assert im.format == "ICO"
        sizes = set(im.info["sizes"])
    assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= sizes
    with Image.open(out) as im:
        im.size = (256, 256)
        lo, hi = im.convert("RGBA").getchannel("A").getextrema()
    assert lo == 0 and hi == 255  # drawn, with a transparent background


def test_bad_svg_is_refused(win_resources, tmp_path):
    bad = tmp_path / "x.svg"
    bad.write_text("not svg")
    with pytest.raises(ValueError):
        win_resources.render_svg_png(bad, 16)


def test_version_resource_carries_the_app_version(win_resources):
    assert win_resources.version_tuple("0.1.0") == (0, 1, 0, 0)
    assert win_resources.version_tuple("1.2.3rc1") == (1, 2, 3, 0)
    text = win_resources.version_file_text("1.2.3")
    ast.parse(text, mode="eval")  # PyInstaller evaluates it as one expression
    assert "filevers=(1, 2, 3, 0)" in text and "'ProductVersion', '1.2.3'" in text
    try:
        from PyInstaller.utils.win32.versioninfo import load_version_info_from_text_file
    except ImportError:
        return  # PyInstaller is in the `packaging` extra only
    path = Path(__file__).parent / "_v.txt"
    try:
        path.write_text(text)
        vi = load_version_info_from_text_file(str(path))
        assert vi.ffi.fileVersionMS == (1 << 16) | 2
    finally:
        path.unlink()


def _iss_sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    cur = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(";") or line.startswith("#"):
            continue
        m = re.fullmatch(r"\[(\w+)\]", line)
        if m:
            cur = m.group(1)
            sections.setdefault(cur, [])
        else:
            assert cur is not None, f"line outside a section: {line}"
            sections[cur].append(line)
    return sections


def test_installer_has_start_menu_uninstaller_and_optional_start_at_login():
    s = _iss_sections(ISS.read_text())
    assert {"Setup", "Tasks", "Files", "Icons", "Registry", "Run"} <= set(s)
    setup = dict(line.split("=", 1) for line in s["Setup"])
    assert setup["AppVersion"] == "{#AppVersion}" and setup["UninstallDisplayIcon"] == r"{app}\kminerw.exe"
    assert any(line.startswith('Name: "{group}\\Knowledge Miner"') and "kminerw.exe" in line for line in s["Icons"])
    assert any("{uninstallexe}" in line for line in s["Icons"])
    startup = [line for line in s["Tasks"] if line.startswith('Name: "startup"')]
    assert startup and "Flags: unchecked" in startup[0]  # opt-in
    run_key = [line for line in s["Registry"] if "CurrentVersion\\Run" in line]
    assert run_key and "Tasks: startup" in run_key[0] and "uninsdeletevalue" in run_key[0] and "HKCU" in run_key[0]
    assert "UninstallDelete" not in s  # never deletes the user's wallet or data


def test_workflow_builds_self_tests_and_packages_on_windows():
    text = WORKFLOW.read_text()
    assert "\t" not in text
    assert re.search(r"^\s+runs-on: windows-", text, re.M)
    for needle in ("packaging/kminer.spec", "self-test --json", "ISCC.exe", "packaging\\windows\\kminer.iss",
                   "sign.ps1", "Get-FileHash -Algorithm SHA256", "unins000.exe"):
        assert needle in text, needle
    try:
        import yaml
    except ImportError:
        return
    doc = yaml.safe_load(text)
    steps = doc["jobs"]["installer"]["steps"]
    assert all("uses" in st or "run" in st for st in steps)
