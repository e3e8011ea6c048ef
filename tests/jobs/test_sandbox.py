"""What a job sees inside the sandbox, checked from inside a real job."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from jobs.sandbox import build_launch, bwrap_has, find_bwrap, gpu_device_nodes, level_report, resolve_level

needs_bwrap = pytest.mark.skipif(find_bwrap() is None, reason="bubblewrap not installed")

PROBE = """
import json, os, socket
def run(ctx):
    info = {{
        "env": sorted(os.environ),
        "home": os.environ.get("HOME"),
        "uid": os.getuid(),
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "root_entries": sorted(os.listdir("/")),
        "real_home": sorted(os.listdir({home!r})) if os.path.isdir({home!r}) else None,
        "tmp_entries": sorted(os.listdir("/tmp")),
        "dev": sorted(os.listdir("/dev")),
        "ctx_attrs": sorted(a for a in dir(ctx) if not a.startswith("_")),
        "device": ctx.device,
        "r": ctx.rng.random(),
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }}
    (ctx.out_dir / "probe.json").write_text(json.dumps(info))
    return info
"""


@needs_bwrap
def test_strict_job_sees_a_clean_small_world(rig, monkeypatch, tmp_path):
    monkeypatch.setenv("KMINER_SECRET_TOKEN", "s3cr3t")
    (Path("/tmp") / f"kminer-host-tmp-{os.getpid()}").write_text("host tmp")
    try:
        rig.python_job("probe", PROBE.format(home=os.path.expanduser("~")))
        out, rec = rig.run("probe", "strict")
    finally:
        (Path("/tmp") / f"kminer-host-tmp-{os.getpid()}").unlink()
    assert rec.state == "succeeded", rec.reason
    info = rec.result["returned"]
    assert "KMINER_SECRET_TOKEN" not in info["env"] and "KMINER_HOME" not in info["env"]
    assert set(info["env"]) <= {"PATH", "HOME", "TMPDIR", "LANG", "PYTHONNOUSERSITE", "PYTHONDONTWRITEBYTECODE",
                                "PYTHONUNBUFFERED", "KMINER_REPORT_FD", "KMINER_DEVICE", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER",
                                "NVIDIA_VISIBLE_DEVICES", "PYOPENGL_PLATFORM", "LC_ALL", "TZ", "OMP_NUM_THREADS",
                                "MKL_NUM_THREADS", "EGL_PLATFORM", "LC_CTYPE", "PWD"}
    assert info["home"] == "/tmp" and info["uid"] == 1000 and info["hostname"] == "kminer-job"
    assert info["pid"] < 10                     # own pid namespace
    assert not any(e.startswith("kminer-host-tmp") for e in info["tmp_entries"])   # private /tmp
    assert "home" not in info["root_entries"]
    import sys

    real_home = Path(os.path.expanduser("~"))
    for entry in info["real_home"] or []:   # only what leads to the Python install may show (e.g. ~/.pyenv)
        assert any(real_home / entry == p or real_home / entry in p.parents
                   for p in map(Path, (sys.base_prefix, sys.prefix))), entry
    assert not any(d.startswith("nvidia") for d in info["dev"])   # a CPU job sees no GPU
    assert info["ctx_attrs"] == ["device", "inputs", "out_dir", "progress", "rng"]
    assert info["device"] == "cpu" and info["cuda"] == ""


@needs_bwrap
def test_same_seed_same_random_numbers(rig):
    rig.python_job("p1", PROBE.format(home="/nonexistent"))
    _, a = rig.run("p1", "strict")
    rig.python_job("p2", PROBE.format(home="/nonexistent"))
    _, b = rig.run("p2", "strict")
    assert a.result["returned"]["r"] == b.result["returned"]["r"]


def test_basic_job_gets_a_clean_environment(rig, monkeypatch):
    monkeypatch.setenv("KMINER_SECRET_TOKEN", "s3cr3t")
    rig.python_job("probe", PROBE.format(home="/nonexistent"))
    _, rec = rig.run("probe", "basic")
    assert rec.state == "succeeded", rec.reason
    env = rec.result["returned"]["env"]
    assert "KMINER_SECRET_TOKEN" not in env and "KMINER_HOME" not in env


def test_strict_launch_hides_app_folders_under_readonly_mounts(tmp_path):
    import jobs

    src_root = Path(jobs.__file__).resolve().parent.parent
    hidden = src_root / "jobs"        # any folder under a mounted root stands in for the app's data folder
    job = tmp_path / "job"
    (job / "in").mkdir(parents=True)
    (job / "spec.json").write_text("{}")
    if find_bwrap() is None:
        pytest.skip("bubblewrap not installed")
    launch = build_launch("strict", job, report_fd=5, hide=[hidden, tmp_path / "not-mounted"])
    a = launch.argv
    assert launch.hidden == [str(hidden)]
    i = a.index("--tmpfs", a.index(str(src_root)))
    assert a[i + 1] == str(hidden)
    for flag in ("--unshare-all", "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in a
    assert a[a.index("--cap-drop") + 1] == "ALL"
    assert ["--ro-bind", str(job / "in"), "/job/in"] == a[a.index(str(job / "in")) - 1:a.index(str(job / "in")) + 2]
    assert "/etc/shadow" not in a and "/root" not in a


def test_gpu_nodes_only_for_the_assigned_gpu():
    nodes = gpu_device_nodes(3)
    assert all(n in {"/dev/nvidia3", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
                     "/dev/nvidia-modeset", "/dev/nvidia-caps"} for n in nodes)
    assert all(os.path.exists(n) for n in nodes)


@pytest.mark.parametrize("level", ["basic", "strict"])
def test_cuda_is_pinned_to_the_gpus_uuid_not_its_nvml_index(tmp_path, level):
    """CUDA may number GPUs otherwise than NVML; the UUID names the same card for both."""
    from common.device_id import cuda_index_for

    if level == "strict" and find_bwrap() is None:
        pytest.skip("bubblewrap not installed")
    job = tmp_path / "job"
    (job / "in").mkdir(parents=True)
    (job / "spec.json").write_text("{}")
    uuid = "GPU-8f6b7c1e-0000-4000-8000-000000000001"

    def env_of(launch) -> dict[str, str]:
        if level == "basic":
            return launch.env
        a = launch.argv
        return {a[i + 1]: a[i + 2] for i, x in enumerate(a) if x == "--setenv"}

    env = env_of(build_launch(level, job, report_fd=5, device_index=1, gpu_uuid=uuid))
    assert env["CUDA_VISIBLE_DEVICES"] == uuid == env["NVIDIA_VISIBLE_DEVICES"]
    assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert cuda_index_for(uuid, 1, env) == 0       # the job's cuda:0 is that card
    no_uuid = env_of(build_launch(level, job, report_fd=5, device_index=1, gpu_uuid="cuda:1"))
    assert no_uuid["CUDA_VISIBLE_DEVICES"] == "1"  # NVML gave no UUID: its index, in PCI order
    cpu = env_of(build_launch(level, job, report_fd=5))
    assert cpu["CUDA_VISIBLE_DEVICES"] == "" and cpu["NVIDIA_VISIBLE_DEVICES"] == "void"


def test_level_report_is_honest():
    basic = level_report("basic")
    assert basic.available and any("network" in x for x in basic.not_enforced)
    strict = level_report("strict")
    assert strict.available == (find_bwrap() is not None)
    if strict.available:
        assert any("no network" in x for x in strict.enforced)
    assert resolve_level("auto") == ("strict" if find_bwrap() else "basic")
    with pytest.raises(ValueError):
        resolve_level("paranoid")
    json.dumps(strict.as_dict())


def test_ram_limit_never_exceeds_three_quarters_of_the_machine():
    from jobs.limits import limits_for, machine_ram_mb
    from jobs.spec import Resources

    lim = limits_for(Resources(max_ram_mb=1 << 22), device_is_gpu=False, max_output_mb=100)
    assert lim.ram_mb == int(machine_ram_mb() * 0.75)
    assert limits_for(Resources(max_ram_mb=512, max_disk_mb=900), device_is_gpu=True, max_output_mb=100).output_mb == 100


WORLD = """
import os, sys
def run(ctx):
    job = ctx.out_dir.parent
    return {"app_modules": sorted(m for m in sys.modules if m.split(".")[0] in ("app", "ui", "PySide6")),
            "job_folder": sorted(os.listdir(job)), "tmp_is_writable": os.access("/tmp", os.W_OK),
            "shm_is_writable": os.access("/dev/shm", os.W_OK) if os.path.isdir("/dev/shm") else None,
            "job_root_writable": os.access(job, os.W_OK), "root_writable": os.access("/", os.W_OK)}
"""


@pytest.mark.parametrize("level", ["strict", "basic"])
def test_worker_never_loads_the_app_and_leaves_only_app_files(rig, level):
    """The worker is `python -m jobs.worker`: no app module in it, and after the run the
    attempt folder holds only what the app wrote (spec, log, outcome)."""
    if level == "strict" and find_bwrap() is None:
        pytest.skip("bubblewrap not installed")
    rig.python_job("world", WORLD)
    _, rec = rig.run("world", level)
    assert rec.state == "succeeded", rec.reason
    got = rec.result["returned"]
    assert got["app_modules"] == []
    if level == "strict":   # only the four mounts, /job and / read-only, /tmp and /dev/shm writable
        assert got["job_folder"] == ["in", "out", "spec.json", "work"]
        assert (got["job_root_writable"], got["root_writable"], got["tmp_is_writable"], got["shm_is_writable"]) == \
            (False, False, True, True)
    attempt = rig.jobs_dir / "world" / "attempt-1"
    assert sorted(p.name for p in attempt.iterdir()) == ["outcome.json", "spec.json", "worker.log"]


def test_strict_launch_without_clearenv_on_bwrap_04(tmp_path, monkeypatch):
    """bubblewrap 0.4 (Debian 11, Ubuntu 20.04) has no --clearenv: the launch leaves it out and
    relies on bwrap starting with an empty environment; its help is asked once."""
    import jobs.sandbox as sb

    real = find_bwrap()
    if real is None:
        pytest.skip("bubblewrap not installed")
    help_text = subprocess.run([real, "--help"], capture_output=True, text=True).stdout
    old_help = "\n".join(line for line in help_text.splitlines() if "--clearenv" not in line
                         and "--disable-userns" not in line) + "\n"
    fake = tmp_path / "bwrap"
    calls = tmp_path / "calls"
    fake.write_text(f'#!/bin/sh\necho x >> {calls}\nif [ "$1" = --help ]; then cat <<"H"\n{old_help}H\nexit 0; fi\n'
                    f'exec {real} "$@"\n')
    fake.chmod(0o755)
    monkeypatch.setattr(sb, "find_bwrap", lambda: str(fake))
    sb._bwrap_help.cache_clear()
    job = tmp_path / "job"
    (job / "in").mkdir(parents=True)
    (job / "spec.json").write_text("{}")
    try:
        a1 = build_launch("strict", job, report_fd=5)
        a2 = build_launch("strict", job, report_fd=5)
    finally:
        sb._bwrap_help.cache_clear()
    assert "--clearenv" not in a1.argv and "--disable-userns" not in a1.argv
    assert a1.env == {} and "--clearenv" not in a2.argv
    assert calls.read_text().count("x") == 1
    monkeypatch.undo()
    if bwrap_has(real, "--clearenv"):
        assert "--clearenv" in build_launch("strict", job, report_fd=5).argv
