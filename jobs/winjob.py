"""Windows Job Objects through ctypes: the `basic` sandbox's process container on Windows.

A job object holds the worker and every process it starts: closing our handle kills them
all (JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE), and it caps the job's committed memory, the number
of active processes and per-process CPU time. The worker is created suspended, assigned,
then resumed, so it cannot start a child outside the job first.

The structure layouts and limit packing (`limit_info`) are plain ctypes and are unit-tested
on every platform; the calls into kernel32/ntdll run only on Windows (see docs/sandbox.md
for what has and has not been verified there).
"""

from __future__ import annotations

import ctypes
import os
from ctypes import c_int64, c_size_t, c_uint32, c_uint64, c_void_p

from jobs.limits import Limits

JOB_OBJECT_LIMIT_PROCESS_TIME = 0x00000002
JOB_OBJECT_LIMIT_ACTIVE_PROCESS = 0x00000008
JOB_OBJECT_LIMIT_JOB_MEMORY = 0x00000200
JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION = 0x00000400
JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x00002000
JobObjectExtendedLimitInformation = 9
CREATE_SUSPENDED = 0x00000004
CREATE_NEW_PROCESS_GROUP = 0x00000200
BELOW_NORMAL_PRIORITY_CLASS = 0x00004000
CREATE_NO_WINDOW = 0x08000000
_100NS_PER_S = 10_000_000


class JOBOBJECT_BASIC_LIMIT_INFORMATION(ctypes.Structure):
    _fields_ = [("PerProcessUserTimeLimit", c_int64), ("PerJobUserTimeLimit", c_int64), ("LimitFlags", c_uint32),
                ("MinimumWorkingSetSize", c_size_t), ("MaximumWorkingSetSize", c_size_t),
                ("ActiveProcessLimit", c_uint32), ("Affinity", c_size_t), ("PriorityClass", c_uint32),
                ("SchedulingClass", c_uint32)]


class IO_COUNTERS(ctypes.Structure):
    _fields_ = [(n, c_uint64) for n in ("ReadOperationCount", "WriteOperationCount", "OtherOperationCount",
                                        "ReadTransferCount", "WriteTransferCount", "OtherTransferCount")]


class JOBOBJECT_EXTENDED_LIMIT_INFORMATION(ctypes.Structure):
    _fields_ = [("BasicLimitInformation", JOBOBJECT_BASIC_LIMIT_INFORMATION), ("IoInfo", IO_COUNTERS),
                ("ProcessMemoryLimit", c_size_t), ("JobMemoryLimit", c_size_t),
                ("PeakProcessMemoryUsed", c_size_t), ("PeakJobMemoryUsed", c_size_t)]


def limit_info(limits: Limits) -> JOBOBJECT_EXTENDED_LIMIT_INFORMATION:
    """The job object limits for `limits`. Memory is the job's *committed* memory: Windows
    has no overcommit, so unlike Linux this counts what CUDA commits, not what it reserves."""
    info = JOBOBJECT_EXTENDED_LIMIT_INFORMATION()
    b = info.BasicLimitInformation
    b.LimitFlags = (JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE | JOB_OBJECT_LIMIT_ACTIVE_PROCESS
                    | JOB_OBJECT_LIMIT_JOB_MEMORY | JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION)
    b.ActiveProcessLimit = limits.processes
    info.JobMemoryLimit = limits.ram_bytes
    if limits.cpu_s is not None:
        b.LimitFlags |= JOB_OBJECT_LIMIT_PROCESS_TIME
        b.PerProcessUserTimeLimit = limits.cpu_s * _100NS_PER_S
    return info


def creation_flags(*, below_normal: bool = False) -> int:
    """Started suspended (assigned to its job object before it runs), in its own process group
    (Ctrl-Break reaches only it), without a console; `below_normal`: a lower CPU priority class."""
    return CREATE_SUSPENDED | CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW | (BELOW_NORMAL_PRIORITY_CLASS if below_normal else 0)


class WinJob:
    """One job object. Methods raise OSError with the Windows error on failure. Windows only."""

    def __init__(self, limits: Limits):
        if os.name != "nt":
            raise OSError("Job Objects exist only on Windows")
        self._k32 = ctypes.WinDLL("kernel32", use_last_error=True)
        self._ntdll = ctypes.WinDLL("ntdll")
        self._k32.CreateJobObjectW.restype = c_void_p
        self._k32.CreateJobObjectW.argtypes = [c_void_p, c_void_p]
        self._k32.SetInformationJobObject.argtypes = [c_void_p, ctypes.c_int, c_void_p, c_uint32]
        self._k32.AssignProcessToJobObject.argtypes = [c_void_p, c_void_p]
        self._k32.TerminateJobObject.argtypes = [c_void_p, c_uint32]
        self._k32.CloseHandle.argtypes = [c_void_p]
        self._ntdll.NtResumeProcess.argtypes = [c_void_p]
        self._ntdll.NtSuspendProcess.argtypes = [c_void_p]
        h = self._k32.CreateJobObjectW(None, None)
        if not h:
            raise ctypes.WinError(ctypes.get_last_error())
        self.handle = h
        info = limit_info(limits)
        if not self._k32.SetInformationJobObject(h, JobObjectExtendedLimitInformation, ctypes.byref(info),
                                                 ctypes.sizeof(info)):
            err = ctypes.get_last_error()
            self.close()
            raise ctypes.WinError(err)

    def assign_and_resume(self, process_handle: int) -> None:
        """Put a process created with CREATE_SUSPENDED into the job, then let it run."""
        if not self._k32.AssignProcessToJobObject(self.handle, c_void_p(int(process_handle))):
            raise ctypes.WinError(ctypes.get_last_error())
        self._ntdll.NtResumeProcess(c_void_p(int(process_handle)))

    def suspend(self, process_handle: int) -> None:
        self._ntdll.NtSuspendProcess(c_void_p(int(process_handle)))

    def resume(self, process_handle: int) -> None:
        self._ntdll.NtResumeProcess(c_void_p(int(process_handle)))

    def terminate(self, exit_code: int = 1) -> None:
        if self.handle:
            self._k32.TerminateJobObject(self.handle, exit_code)

    def close(self) -> None:
        """Closing the last handle kills every process still in the job."""
        if self.handle:
            self._k32.CloseHandle(self.handle)
            self.handle = None
