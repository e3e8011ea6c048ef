"""The package-test scripts that run inside the bundle (packaging/linux/frozen/*.py), run here
from source with the venv's Python (the same code, same checks, no bundle needed), and the
helpers of packaging/linux/package_test_app.py."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FROZEN = ROOT / "packaging" / "linux" / "frozen"


def _run(script: str, *args: str, env: dict | None = None, timeout: float = 180) -> dict:
    e = dict(os.environ, **(env or {}))
    code = (FROZEN / script).read_text()
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, env=e,
                       timeout=timeout, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads([ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1])


def test_frozen_scripts_are_valid_python():
    names = sorted(p.name for p in FROZEN.glob("*.py"))
    assert names == ["gui_tour.py", "preview_frame.py", "qr_charts.py"]
    for p in FROZEN.glob("*.py"):
        ast.parse(p.read_text(), str(p))


def test_qr_and_charts_script(tmp_path):
    doc = _run("qr_charts.py", str(tmp_path), env={"QT_QPA_PLATFORM": "offscreen"})
    assert doc["qr_wrong_modules"] == 0 and doc["qr_modules"] >= 21
    assert set(doc["chart_colours"]) == {"stacked", "running", "comparison"}
    assert min(doc["chart_colours"].values()) >= 8
    assert (tmp_path / "qr.png").stat().st_size > 0 and (tmp_path / "chart-running.png").stat().st_size > 0


@pytest.mark.slow
def test_preview_script_renders_through_the_preview_child():
    doc = _run("preview_frame.py", str(ROOT / "resources" / "scenes" / "table_top.json"))
    assert doc["argv"][1:] == ["-m", "cli", "preview-server"]  # from source; frozen: [exe, "preview-server"]
    assert doc["size"] == [320, 240] and doc["rgb_bytes"] == 320 * 240 * 3
    assert doc["lit_samples"] >= 50 and doc["objects"] >= 1 and doc["moved_differs"]
    assert doc["sample_images"] == 2 and doc["sample_boxes"] >= 1


@pytest.mark.slow
def test_gui_tour_script_shows_the_wizard_walks_it_then_every_page(tmp_path, app_checks):
    env = {"QT_QPA_PLATFORM": "offscreen", "KMINER_HOME": str(tmp_path / "home"), "KMINER_PASSWORD": "tour-password"}
    wiz = _run("gui_tour.py", str(tmp_path / "wizard"), "0.2", env=env)
    assert wiz["wizard"] == "FirstRunWizard" and len(wiz["wizard_pages"]) >= 2
    assert (tmp_path / "wizard" / "first-run.png").is_file()
    e = dict(os.environ, **env)
    walk = subprocess.run([sys.executable, "-c", (FROZEN / "gui_tour.py").read_text(), str(tmp_path / "walk"), "0.2",
                           "create", "tour-password"], capture_output=True, text=True, cwd=ROOT, env=e, timeout=600,
                          check=False)
    assert walk.returncode == 0, walk.stderr[-2000:]
    walked = json.loads(next(ln for ln in walk.stdout.splitlines() if ln.startswith('{"walked"')))
    assert "error" not in walked, walked
    assert walked["walked"][:2] == ["Welcome to Knowledge Miner", "Create your wallet"]
    assert walked["walked"][2:4] == ["Your recovery phrase", "Check your recovery phrase"], walked
    assert "Benchmark your devices" in walked["walked"] and "GFLOP/s" in walked["bench"]["cpu"]
    assert walked["walked"][-1] == "Set your prices"
    assert list((tmp_path / "home" / "data" / "keystore").glob("*.json"))
    doc = _run("gui_tour.py", str(tmp_path / "main"), "0.3", env=env, timeout=300)
    assert set(app_checks.PAGES) <= set(doc["pages"])
    assert all(colours >= 20 for _w, _h, colours in doc["shots"].values()), doc["shots"]
    assert doc["charts"]["Devices"] == 0 and "Earnings" in doc["charts"]
    assert any("preview-server" in c for c in doc["preview_children"])
    assert doc["worker_modules"] == [] and doc["worker_libs"] == []
    assert app_checks._log_problems(tmp_path / "home") == []


def test_log_problems_and_last_json(app_checks, tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "kminer.log").write_text("2026 INFO fine\n2026 ERROR    ui.x: boom\n")
    bad = app_checks._log_problems(tmp_path, "ModuleNotFoundError: No module named 'segno'\nok\n")
    assert len(bad) == 2 and "segno" in bad[0] and "boom" in bad[1]
    assert app_checks._log_problems(tmp_path / "nothing", "all good") == []
    since = app_checks._log_sizes(tmp_path)
    with open(tmp_path / "logs" / "kminer.log", "a") as f:
        f.write("2026 INFO OpenGL.acceleratesupport: No OpenGL_accelerate module loaded: No module named 'x'\n"
                "2026 WARNING ui.y: Traceback (most recent call last):\n")
    assert app_checks._log_problems(tmp_path, "", since) == ["2026 WARNING ui.y: Traceback (most recent call last):"]
    assert app_checks._last_json('noise\n{"a": 1}\n{"b": 2}\ntrailer') == {"b": 2}
    with pytest.raises(RuntimeError):
        app_checks._last_json("no json here")
