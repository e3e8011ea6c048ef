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
