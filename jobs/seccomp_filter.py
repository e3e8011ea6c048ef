"""The seccomp filter every strict job runs under, and a fresh kernel keyring for each job.

Built like Flatpak's (common/flatpak-run.c, setup_seccomp): allow by default, and make
the calls a sandboxed job has no business with fail with EPERM (or ENOSYS where libc
should fall back, as for clone3). Blocked:

- the kernel keyring (add_key, keyctl, request_key): the app's keys, and the miner's
  other secrets a keyring backend may keep there;
- new namespaces (unshare, setns, clone with CLONE_NEWUSER, clone3 as a whole because
  seccomp cannot read its flags): no nested user namespace, so no fake root and no mount;
- mount, umount, pivot_root, chroot and the new mount API (open_tree, move_mount, fsopen,
  fsconfig, fsmount, fspick, mount_setattr);
- ptrace, process_vm_readv/writev, perf_event_open, personality (other than the default);
- the TIOCSTI and TIOCLINUX ioctls (typing into, or copying from, a terminal);
- old or dangerous system calls: syslog, uselib, acct, modify_ldt, quotactl, the NUMA
  calls (move_pages, mbind, get/set_mempolicy, migrate_pages), bpf, userfaultfd, kexec and
  kernel module loading;
- socket families other than unix, inet, inet6 and netlink (the job has no network
  anyway: its own empty net namespace).
Calls of another architecture's ABI (32-bit int 0x80, x32) kill the process: libseccomp's
default for a filter that lists only the native architecture.

The filter is compiled by libseccomp (the library Flatpak, systemd and bubblewrap's users
link), through `pyseccomp`, a pure-Python ctypes binding with libseccomp's own Python API
(Debian's python3-seccomp is the same API, but built for the system interpreter only, so a
virtual environment or a PyInstaller bundle cannot load it). The BPF program is built once
per process and handed to bubblewrap as `--seccomp FD` (a memfd).

`join_fresh_session_keyring()` is for the child between fork and exec: the job then starts
with a new, empty session keyring instead of inheriting the app's.
"""

from __future__ import annotations

import errno
import functools
import os
import threading

CLONE_NEWUSER = 0x10000000
TIOCSTI = 0x5412
TIOCLINUX = 0x541C
KEYCTL_JOIN_SESSION_KEYRING = 1
PER_LINUX = 0

EPERM_CALLS = (
    "syslog", "uselib", "acct", "modify_ldt", "quotactl", "add_key", "keyctl", "request_key", "move_pages", "mbind",
    "get_mempolicy", "set_mempolicy", "migrate_pages", "unshare", "setns", "mount", "umount", "umount2", "pivot_root",
    "chroot", "perf_event_open", "ptrace", "process_vm_readv", "process_vm_writev", "bpf", "userfaultfd",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
)
ENOSYS_CALLS = ("clone3", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr")
SOCKET_FAMILIES_ALLOWED = (0, 1, 2, 10, 16)   # AF_UNSPEC, AF_UNIX, AF_INET, AF_INET6, AF_NETLINK
_lock = threading.Lock()


class SeccompUnavailable(RuntimeError):
    """libseccomp (or its binding) is missing; strict cannot run without the filter."""


def _lib():
    try:
        import pyseccomp
    except ImportError:
        raise SeccompUnavailable("the seccomp binding is missing (pip install pyseccomp)") from None
    except (RuntimeError, OSError) as e:   # pyseccomp raises RuntimeError when libseccomp.so is not found
        raise SeccompUnavailable(f"libseccomp not found ({e}; Debian/Ubuntu: apt install libseccomp2)") from None
    return pyseccomp


def available() -> str | None:
    """None when the filter can be built here, else why not (one line)."""
    try:
        filter_bytes()
    except SeccompUnavailable as e:
        return str(e)
    return None


@functools.lru_cache(maxsize=1)
def filter_bytes() -> bytes:
    """The compiled BPF program (raw `struct sock_filter` array), built once."""
    import tempfile

    sc = _lib()
    with _lock:
        f = sc.SyscallFilter(sc.ALLOW)
        for name in EPERM_CALLS:
            _add(sc, f, sc.ERRNO(errno.EPERM), name)
        for name in ENOSYS_CALLS:
            _add(sc, f, sc.ERRNO(errno.ENOSYS), name)
        _add(sc, f, sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER))
        for req in (TIOCSTI, TIOCLINUX):
            _add(sc, f, sc.ERRNO(errno.EPERM), "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, req))
        _add(sc, f, sc.ERRNO(errno.EPERM), "personality", sc.Arg(0, sc.NE, PER_LINUX))
        last = -1
        for fam in SOCKET_FAMILIES_ALLOWED:
            for bad in range(last + 1, fam):
                _add(sc, f, sc.ERRNO(errno.EAFNOSUPPORT), "socket", sc.Arg(0, sc.EQ, bad))
            last = fam
        _add(sc, f, sc.ERRNO(errno.EAFNOSUPPORT), "socket", sc.Arg(0, sc.GE, last + 1))
        with tempfile.TemporaryFile() as tmp:
            f.export_bpf(tmp)
            tmp.seek(0)
            data = tmp.read()
    if not data or len(data) % 8:
        raise SeccompUnavailable(f"libseccomp produced an unusable filter ({len(data)} bytes)")
    return data


def _add(sc, f, action: int, name: str, *args) -> None:
    try:
        if sc.resolve_syscall(sc.system_arch(), name) < 0:
            return          # not a system call on this architecture (e.g. modify_ldt off x86)
        f.add_rule(action, name, *args)
    except (OSError, ValueError, RuntimeError) as e:
        raise SeccompUnavailable(f"cannot block {name}: {e}") from None


def filter_fd() -> int:
    """A fresh fd holding the filter, positioned at its start, for `bwrap --seccomp FD`.
    The caller passes it to the child (pass_fds) and closes its own copy after the start."""
    data = filter_bytes()
    fd = os.memfd_create("kminer-seccomp", os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


@functools.lru_cache(maxsize=1)
def _keyctl():
    """(libc syscall function, keyctl's number here) or None where there is no keyctl."""
    import ctypes

    try:
        nr = _lib().resolve_syscall(_lib().system_arch(), "keyctl")
        if nr < 0:
            return None
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syscall, nr
    except (SeccompUnavailable, OSError, AttributeError, ValueError):
        return None


def session_keyring_joiner():
    """A function for the child between fork and exec that makes it (and so the job) start
    a new, empty session keyring; None where the kernel call is not available. Resolved
    here, in the parent, because the child may only make system calls."""
    kc = _keyctl()
    if kc is None:
        return None
    syscall, nr = kc

    def join() -> None:
        syscall(nr, KEYCTL_JOIN_SESSION_KEYRING, None)

    return join
