"""AMD cards in the job runtime: a render job runs on an AMD card (EGL on Mesa: no ROCm), a
training job is never placed on one without a ROCm build of torch, the sandbox gets the card's
own /dev/dri nodes (and /dev/kfd) by its PCI address."""

from __future__ import annotations

import json
import time

from app.context import AppContext
from app.devices import DeviceService
from app.miner.fleet import Fleet
from jobs.artifacts import ArtifactStore
from jobs.execute import Device, RuntimeConfig, device_fits
from jobs.queue import JobQueue
from jobs.sandbox import amd_device_nodes, strict_problem
from jobs.scheduler import Scheduler
from jobs.spec import parse_spec
from tests.agent.conftest import render_spec_bytes
from tests.gpu.amdsmi_standin import make_amd_standin
from tests.gpu.nvml_standin import make_standin


def test_render_runs_on_the_amd_card_and_training_waits_for_a_rocm_build(tmp_path):
    ctx = AppContext.open()
    devices = DeviceService(ctx, nvml_module=make_standin(gpus=[]), amd_module=make_amd_standin(), idle=lambda: None)
    devices.set_mode("amd:0", "mining")
    fleet = Fleet(ctx, devices)
    queue = JobQueue(tmp_path / "jobs.sqlite")
    cfg = RuntimeConfig(jobs_dir=tmp_path / "jobs", store=ArtifactStore(tmp_path / "artifacts"),
                        level="strict" if strict_problem() is None else "basic", hide=[tmp_path / "kminer-home"])
    sch = Scheduler(queue, cfg, fleet.job_devices)
    render = json.loads(render_spec_bytes(frames=1))
    render.update(id="r")
    render["resources"]["device"] = "gpu"
    queue.add(parse_spec(render))
    queue.add(parse_spec({"id": "t", "kind": "train", "params": {}, "resources": {"device": "gpu"}}))
    amd0 = devices.device("amd:0").key
    try:
        end = time.monotonic() + 120
        started_on = {}
        while queue.get("r").state not in ("succeeded", "failed") and time.monotonic() < end:
            fleet.poll()
            sch.tick()
            started_on.update({q: rj.device_id for q, rj in sch.running().items()})
            time.sleep(0.1)
        assert queue.get("r").state == "succeeded", queue.get("r").reason
        assert started_on == {"r": amd0}
        assert queue.get("t").state == "queued"  # no ROCm torch here: nothing may train it
    finally:
        sch.shutdown()
        queue.close()
        devices.close()


def test_device_fits_follows_capabilities():
    spec = parse_spec({"id": "t", "kind": "train", "params": {}, "resources": {"device": "gpu"}})
    amd = Device("k", "amd", memory_mb=8192, capabilities=("render",))
    assert not device_fits(spec.resources, amd, spec.kind) and device_fits(spec.resources, amd)
    assert device_fits(spec.resources, Device("k", "amd", memory_mb=8192, capabilities=("render", "train")), "train")
    assert device_fits(spec.resources, amd, "render") and not device_fits(spec.resources, Device("cpu"), "render")


def test_the_sandbox_gets_the_cards_own_nodes(tmp_path):
    sys_root, dev_root = tmp_path / "sys", tmp_path / "dev"
    for name, bdf in (("card0", "0000:05:00.0"), ("renderD128", "0000:05:00.0"), ("card1", "0000:0a:00.0"),
                      ("renderD129", "0000:0a:00.0")):
        pci = sys_root / "devices" / "pci0000:00" / bdf
        pci.mkdir(parents=True, exist_ok=True)
        (sys_root / "class" / "drm" / name).mkdir(parents=True)
        (sys_root / "class" / "drm" / name / "device").symlink_to(pci)
        (dev_root / "dri").mkdir(parents=True, exist_ok=True)
        (dev_root / "dri" / name).touch()
    (dev_root / "kfd").touch()
    nodes = amd_device_nodes("0000:0a:00.0", str(sys_root), str(dev_root))
    assert nodes == [f"{dev_root}/kfd", f"{dev_root}/dri/card1", f"{dev_root}/dri/renderD129"]
