"""Running a command as a throwaway unprivileged user, the way a desktop rig runs the app.

`UnprivilegedUser.create()` (root only) adds a system user with its own group and no home,
and a temp folder it owns. `run(argv)` starts `argv` as that user with a clean environment,
inside a private mount namespace made by root first, where any folder on the way to this
Python or this source tree that others may not enter (e.g. /root holding pyenv) is covered by
a small tmpfs showing only the needed entries (bind mounts). Nothing changes outside that
namespace; `remove()` deletes the user and the folder.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("useradd", "userdel", "unshare", "mount", "setpriv")


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def _blocked_ancestors(paths: list[Path]) -> dict[Path, set[str]]:
    """Folders others may not enter on the way to `paths`, each with the child names needed."""
    out: dict[Path, set[str]] = {}
    for p in paths:
        parts = p.parts
        for i in range(1, len(parts) - 1):
            a = Path(*parts[:i + 1])
            if any(b == a or b in a.parents for b in out):
                break
            if not os.stat(a).st_mode & stat.S_IXOTH:
                out.setdefault(a, set()).add(parts[i + 1])
                break
    return out


@dataclass
class UnprivilegedUser:
    name: str
    uid: int
    gid: int
    home: Path          # a temp folder the user owns (its HOME, and room for pytest's tmp)

    @classmethod
    def create(cls) -> "UnprivilegedUser":
        name = f"kmtest{os.getpid()}"
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", "--user-group", name], check=True, capture_output=True)
        import pwd

        pw = pwd.getpwnam(name)
        home = Path(tempfile.mkdtemp(prefix="kminer-as-user-"))
        os.chown(home, pw.pw_uid, pw.pw_gid)
        return cls(name, pw.pw_uid, pw.pw_gid, home)

    def remove(self) -> None:
        subprocess.run(["userdel", self.name], capture_output=True)
        shutil.rmtree(self.home, ignore_errors=True)

    def run(self, argv: list[str], *, env: dict[str, str] | None = None, timeout_s: float = 600,
            cwd: Path = ROOT, net_addrs: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        """`argv` as this user (no capabilities, no supplementary groups), output captured.
        `net_addrs`: run it in a network namespace of its own too (needs `ip`), whose loopback
        device carries these IPv4 addresses (/32 each): nothing outside it can be reached."""
        need = [Path(os.path.realpath(p)) for p in (sys.base_prefix, sys.prefix, ROOT, os.path.dirname(sys.executable))]
        keep = self.home / ".mounts"
        lines = ["set -e"]
        if net_addrs:
            lines.append("ip link set lo up")
            lines += [f"ip addr add {shlex.quote(a)}/32 dev lo" for a in net_addrs]
        n = 0
        for folder, children in _blocked_ancestors(need).items():
            binds = []
            for child in sorted(children):
                k = keep / str(n)
                n += 1
                lines.append(f"mkdir -p {k} && mount --bind {shlex.quote(str(folder / child))} {k}")
                binds.append((k, folder / child))
            lines.append(f"mount -t tmpfs -o mode=0755,size=1m kminer-test {shlex.quote(str(folder))}")
            for k, target in binds:
                lines.append(f"mkdir -p {shlex.quote(str(target))} && mount --bind {k} {shlex.quote(str(target))}")
        base_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.home), "LANG": "C.UTF-8",
                    "TMPDIR": str(self.home), "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
        envs = " ".join(shlex.quote(f"{k}={v}") for k, v in base_env.items())
        lines.append(f"cd {shlex.quote(str(cwd))}")
        lines.append(f"exec setpriv --reuid={self.uid} --regid={self.gid} --clear-groups --inh-caps=-all "
                     f"-- env -i {envs} {' '.join(shlex.quote(a) for a in argv)}")
        unshare = ["unshare", "--mount", *(["--net"] if net_addrs else []), "--propagation", "private"]
        return subprocess.run([*unshare, "sh", "-c", "\n".join(lines)],
                              capture_output=True, text=True, timeout=timeout_s)
