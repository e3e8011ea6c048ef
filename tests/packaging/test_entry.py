"""The bundle's entry (packaging/kminer_entry.py) and the GUI's import path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dash_c_runs_code_like_python(entry, capsys):
    assert entry._run_code("import sys; print('hi', sys.argv[1:])", ["a", "b"]) == 0
    assert capsys.readouterr().out == "hi ['a', 'b']\n"
    assert entry._run_code("raise SystemExit(3)", []) == 3
    assert entry._run_code("raise SystemExit('message')", []) == 1
    assert entry._run_code("1/0", []) == 1
    assert "ZeroDivisionError" in capsys.readouterr().err


_GUI_IMPORTS = r"""
import json, sys
from cli.main import main
rc = main([])
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "pyrender", "OpenGL", "trimesh", "pycocotools"})
print(json.dumps({"rc": rc, "heavy": heavy}))
"""


def test_gui_start_to_first_paint_never_imports_worker_libraries(tmp_path):
    """torch and pyrender load only in workers: the frozen GUI stays lean and starts fast."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", KMINER_REPORT_STARTUP="exit",
               KMINER_HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-c", _GUI_IMPORTS], capture_output=True, text=True, env=env, timeout=120,
                       cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "first paint" in p.stderr
    doc = json.loads(p.stdout.strip().splitlines()[-1])
    assert doc == {"rc": 0, "heavy": []}


def test_worker_argument_runs_the_worker_without_the_app(tmp_path):
    """`kminer worker ...` (how the sandbox starts the frozen bundle) goes straight to
    jobs.worker: the app package, its settings and its log are never loaded."""
    code = (
        "import json, os, sys, runpy\n"
        f"sys.argv = [{str(ROOT / 'packaging' / 'kminer_entry.py')!r}, 'worker', '--job', {str(tmp_path)!r}]\n"
        "r, w = os.pipe()\n"
        "sys.argv += ['--report-fd', str(w)]\n"
        "try:\n"
        "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    rc = e.code\n"
        "os.close(w)\n"
        "report = os.read(r, 65536).decode()\n"
        "print(json.dumps({'rc': rc, 'app': sorted(m for m in sys.modules if m == 'app' or m.startswith('app.')),"
        " 'report': report}))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMINER")}
    env["PYTHONPATH"] = str(ROOT)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    doc = json.loads(p.stdout.strip().splitlines()[-1])
    assert doc["app"] == [], doc["app"]
    assert doc["rc"] == 1 and '"type":"hello"' in doc["report"] and "spec" in doc["report"]   # no spec.json: a clean error
    assert sorted(os.listdir(tmp_path)) == []      # nothing of the app written into the job folder
