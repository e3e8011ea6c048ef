"""The Windows Job Object layer: structure layouts and limit packing run on every platform;
the kernel calls only on Windows."""

from __future__ import annotations

import ctypes
import os
import struct

import pytest

from jobs import winjob
from jobs.limits import Limits


@pytest.mark.skipif(struct.calcsize("P") != 8, reason="layouts checked for 64-bit Windows")
def test_structure_sizes_match_the_windows_sdk_on_64_bit():
    # winnt.h on x64: BASIC 64 bytes, IO_COUNTERS 48, EXTENDED 144
    assert ctypes.sizeof(winjob.JOBOBJECT_BASIC_LIMIT_INFORMATION) == 64
    assert ctypes.sizeof(winjob.IO_COUNTERS) == 48
    assert ctypes.sizeof(winjob.JOBOBJECT_EXTENDED_LIMIT_INFORMATION) == 144
    assert winjob.JOBOBJECT_EXTENDED_LIMIT_INFORMATION.JobMemoryLimit.offset == 120
    assert winjob.JOBOBJECT_BASIC_LIMIT_INFORMATION.ActiveProcessLimit.offset == 40


def test_limit_info_packs_kill_on_close_memory_processes_and_cpu():
    info = winjob.limit_info(Limits(ram_mb=512, processes=16, cpu_s=30))
    b = info.BasicLimitInformation
    for flag in (winjob.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE, winjob.JOB_OBJECT_LIMIT_ACTIVE_PROCESS,
                 winjob.JOB_OBJECT_LIMIT_JOB_MEMORY, winjob.JOB_OBJECT_LIMIT_PROCESS_TIME):
        assert b.LimitFlags & flag
    assert b.ActiveProcessLimit == 16
    assert info.JobMemoryLimit == 512 << 20
    assert b.PerProcessUserTimeLimit == 30 * 10_000_000


def test_no_cpu_limit_leaves_the_flag_off():
    info = winjob.limit_info(Limits(cpu_s=None))
    assert not info.BasicLimitInformation.LimitFlags & winjob.JOB_OBJECT_LIMIT_PROCESS_TIME


def test_worker_starts_suspended_in_its_own_group():
    f = winjob.creation_flags()
    assert f & winjob.CREATE_SUSPENDED and f & winjob.CREATE_NEW_PROCESS_GROUP
    assert not f & winjob.BELOW_NORMAL_PRIORITY_CLASS
    assert winjob.creation_flags(below_normal=True) == f | winjob.BELOW_NORMAL_PRIORITY_CLASS


@pytest.mark.skipif(os.name == "nt", reason="checks the refusal elsewhere")
def test_job_object_refuses_to_start_off_windows():
    with pytest.raises(OSError, match="only on Windows"):
        winjob.WinJob(Limits())


@pytest.mark.skipif(os.name != "nt", reason="needs Windows")
def test_job_object_kills_its_process_on_close():   # pragma: no cover - runs on Windows CI only
    import subprocess
    import sys

    job = winjob.WinJob(Limits(ram_mb=256, processes=4))
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], creationflags=winjob.creation_flags())
    job.assign_and_resume(p._handle)
    job.close()
    assert p.wait(10) != 0
