import json
import os
import subprocess
import sys

from cli.main import main
from cli.commands import selftest


def test_self_test_passes_on_this_machine(kminer_home):
    env = dict(os.environ, KMINER_HOME=str(kminer_home))
    p = subprocess.run([sys.executable, "-m", "cli", "self-test", "--json"], capture_output=True, text=True,
                       env=env, timeout=300)
    res = json.loads(p.stdout)
    assert p.returncode == 0, res
    assert res["ok"] and {c["check"] for c in res["checks"]} == {"imports", "settings", "devices", "render"}
    assert all(c["ok"] for c in res["checks"])


def test_a_failing_check_fails_the_self_test(monkeypatch, capsys):
    def broken():
        raise RuntimeError("EGL is missing")

    monkeypatch.setattr(selftest, "CHECKS", [("settings", selftest._check_settings), ("render", broken)])
    assert main(["self-test"]) == 1
    out = capsys.readouterr().out
    assert "PASS  settings" in out and "FAIL  render" in out and "EGL is missing" in out
