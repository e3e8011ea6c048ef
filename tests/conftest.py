"""Test-wide set-up: offscreen Qt, an isolated KMINER_HOME per test, a file keyring."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ["PYTHON_KEYRING_BACKEND"] = "keyrings.alt.file.PlaintextKeyring"

import shutil
import subprocess

import pytest


@pytest.fixture(autouse=True)
def _our_gpu_package():
    """Importing bpy (the photoreal engine, in-process in a few tests) puts Blender's own `gpu`
    module in sys.modules["gpu"], over our gpu/ package; the app only imports bpy in worker and
    preview processes, so tests give ours back after each test."""
    import sys

    def ours(mod) -> bool:
        return mod is not None and hasattr(mod, "__path__")  # Blender's gpu is a plain module

    before = sys.modules.get("gpu")
    yield
    now = sys.modules.get("gpu")
    if now is not None and not ours(now):
        if ours(before):
            sys.modules["gpu"] = before
        else:
            del sys.modules["gpu"]  # the next `import gpu...` finds our package again


@pytest.fixture(autouse=True)
def kminer_home(tmp_path, monkeypatch):
    """Every test gets its own app folders, so nothing touches the real user's files."""
    home = tmp_path / "kminer-home"
    monkeypatch.setenv("KMINER_HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))  # keyrings.alt's file lives here
    return home


@pytest.fixture
def xvfb():
    """A private Xvfb (skips when Xvfb is not installed) on a free display number (Xvfb picks it: -displayfd); yields ":N"."""
    if not shutil.which("Xvfb"):
        pytest.skip("needs Xvfb (packaging/debian-deps.sh test)")
    proc = subprocess.Popen(["Xvfb", "-displayfd", "1", "-nolisten", "tcp", "-screen", "0", "1280x900x24"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    line = proc.stdout.readline().decode().strip()
    if not line.isdigit():
        proc.kill()
        pytest.fail(f"Xvfb did not start (said {line!r})")
    display = f":{line}"
    yield display, proc
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
