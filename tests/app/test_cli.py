import subprocess
import sys

import pytest

from app import __version__
from cli.main import build_parser, main


def run_kminer(*args, env_home):
    import os

    env = dict(os.environ, KMINER_HOME=str(env_home))
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=env, timeout=120)


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"kminer {__version__}"


def test_every_command_has_help(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sub.choices, "no commands registered"
    for name in sub.choices:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0, name
        assert "usage:" in capsys.readouterr().out


def test_bad_arguments_give_one_line_and_exit_2(kminer_home):
    p = run_kminer("no-such-command", env_home=kminer_home)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kminer: error:")
    assert "Traceback" not in p.stderr


def test_no_display_is_one_line_not_a_crash(kminer_home, monkeypatch):
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["KMINER_HOME"] = str(kminer_home)
    p = subprocess.run([sys.executable, "-m", "cli"], capture_output=True, text=True, env=env, timeout=60)
    if sys.platform != "linux":
        pytest.skip("display check is Linux-only")
    assert p.returncode == 1
    assert p.stderr.strip().startswith("kminer: error: no display found")


def test_help_does_not_import_heavy_modules(kminer_home):
    code = ("import sys; from cli.main import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'pyrender', 'web3', 'PySide6') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in p.stdout, p.stdout + p.stderr
