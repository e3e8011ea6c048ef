"""One device identity (common.device_id.DeviceId): the stable key is the NVML UUID, whatever
CUDA_VISIBLE_DEVICES does to the CUDA numbering; NVML and CUDA indices are named apart."""

from __future__ import annotations

from common.device_id import DeviceId, cuda_index_for
from gpu.devices import discover
from tests.gpu.nvml_standin import RTX_3070_X1, RTX_3090_X16, make_standin


def test_a_gpu_renumbered_by_cuda_visible_devices_keeps_its_key():
    plain = {d.key: d.ident for d in discover(make_standin(), env={}).devices}
    hidden = {d.key: d.ident for d in discover(make_standin(), env={"CUDA_VISIBLE_DEVICES": "1"}).devices}
    assert plain.keys() == hidden.keys() == {RTX_3070_X1.uuid, RTX_3090_X16.uuid, "cpu"}
    g90, g90_hidden = plain[RTX_3090_X16.uuid], hidden[RTX_3090_X16.uuid]
    assert (g90.nvml_index, g90.cuda_index, g90.torch_device) == (1, 1, "cuda:1")
    # the same card: same key, same NVML index and label; torch sees it as cuda:0 now
    assert (g90_hidden.key, g90_hidden.nvml_index, g90_hidden.label) == (g90.key, 1, "cuda:1")
    assert (g90_hidden.cuda_index, g90_hidden.torch_device) == (0, "cuda:0")
    # the card CUDA cannot see keeps its key too, with no CUDA index
    g70 = hidden[RTX_3070_X1.uuid]
    assert (g70.key, g70.nvml_index, g70.cuda_index, g70.torch_device) == (RTX_3070_X1.uuid, 0, None, None)
    assert hidden["cpu"] == DeviceId.cpu() and hidden["cpu"].torch_device == "cpu"


def test_cuda_visible_devices_by_uuid_reorders_and_prefixes_match():
    env = {"CUDA_VISIBLE_DEVICES": f"{RTX_3090_X16.uuid},{RTX_3070_X1.uuid[4:12]}"}
    ids = {d.key: d.ident for d in discover(make_standin(), env=env).gpus}
    assert ids[RTX_3090_X16.uuid].cuda_index == 0 and ids[RTX_3070_X1.uuid].cuda_index == 1


def test_cuda_index_rules():
    u = RTX_3090_X16.uuid
    assert cuda_index_for(u, 1, {}) == 1                                   # unset: NVML (PCI bus) order
    assert cuda_index_for(u, 1, {"CUDA_VISIBLE_DEVICES": "1,0"}) == 0
    assert cuda_index_for(u, 1, {"CUDA_VISIBLE_DEVICES": "0"}) is None
    assert cuda_index_for(u, 1, {"CUDA_VISIBLE_DEVICES": ""}) is None       # no GPU at all
    assert cuda_index_for(u, 1, {"CUDA_VISIBLE_DEVICES": "-1,1"}) is None   # the list ends at -1
    assert cuda_index_for(u, 1, {"CUDA_VISIBLE_DEVICES": "0, GPU-A1B2"}) == 1  # case and spaces as CUDA takes them
    assert cuda_index_for(None, 1, {"CUDA_VISIBLE_DEVICES": "GPU-a1b2"}) is None


def test_the_jobs_list_names_a_gpu_by_its_label_not_its_key(kminer_home):
    import json

    from app.context import AppContext
    from app.devices import DeviceService
    from app.resources import resource_path
    from app.runtime import JobsService, open_queue
    from jobs.spec import parse_spec

    ctx = AppContext.open()
    data = json.loads(resource_path("examples", "python_job.json").read_text()) | {"id": "on-gpu"}
    q = open_queue(ctx)
    q.add(parse_spec(data))
    q.start_attempt("on-gpu", device_id=RTX_3090_X16.uuid, sandbox="basic", job_dir=ctx.paths.jobs_dir / "on-gpu")
    q.close()
    devices = DeviceService(ctx, nvml_module=make_standin(), idle=lambda: None)
    try:
        svc = JobsService(ctx, devices=devices)   # the queue names the GPU by its key; people read cuda:1
        assert svc.jobs()[0]["device_id"] == RTX_3090_X16.uuid and svc.jobs()[0]["device"] == "cuda:1"
        assert svc.attempts("on-gpu")[0]["device"] == "cuda:1" and "on cuda:1 (basic sandbox)" in svc.log("on-gpu")
        assert JobsService(ctx).jobs()[0]["device"] == RTX_3090_X16.uuid  # no device service: the key as it is
    finally:
        devices.close()
