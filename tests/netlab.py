"""Network namespaces joined by veth pairs, made and removed by a test or a benchmark.

`NetLab` builds a small network on this machine only (no route leaves it): namespaces,
veth links with a /24 each, default routes, and an iptables masquerade where a namespace
plays a home router. `lab.popen(ns, argv)` runs a command inside one. Everything is torn
down by `close()`; names carry the pid so parallel runs do not collide.

`netlab_or_skip()` says plainly why a lab cannot be made here (not root, no `ip`, no
iptables) so tests skip with that reason, never silently.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from dataclasses import dataclass, field

SUBNET_BASE = "10.213"
_LABS = itertools.count()  # several labs of one process at once get names of their own  # 10.213.<link>.0/24: one /24 per veth link, inside our namespaces only


class NetLabError(Exception):
    """The namespaces cannot be made here; the message says why."""


def why_no_netlab(*, nat: bool = False) -> str | None:
    """None when this machine can make a lab, else the reason (for pytest.skip)."""
    if os.name != "posix" or os.geteuid() != 0:
        return "network namespaces need root (run the tests as root, e.g. in CI)"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is missing"
    if nat and shutil.which("iptables") is None:
        return "iptables is missing (packaging/debian-deps.sh test installs it)"
    probe = f"kmprobe{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return f"cannot make a network namespace: {r.stderr.strip() or r.returncode}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


@dataclass
class NetLab:
    """Namespaces by short role name ('a', 'b', 'nat'...), veth links between them."""

    tag: str = field(default_factory=lambda: f"km{os.getpid() % 100000}x{next(_LABS)}")
    namespaces: dict[str, str] = field(default_factory=dict)
    addrs: dict[tuple[str, str], str] = field(default_factory=dict)  # (ns, peer ns) -> address
    _links: int = 0

    def ns(self, role: str) -> str:
        """Create namespace `role` (idempotent) with loopback up; returns its system name."""
        if role not in self.namespaces:
            name = f"{self.tag}{role}"
            _run("ip", "netns", "add", name)
            self.namespaces[role] = name
            self.sh(role, "ip", "link", "set", "lo", "up")
        return self.namespaces[role]

    def link(self, left: str, right: str) -> tuple[str, str]:
        """A veth pair between two namespaces; returns (left address, right address)."""
        self._links += 1
        n = self._links
        ln, rn = self.ns(left), self.ns(right)
        lif, rif = f"{self.tag}{n}l"[:15], f"{self.tag}{n}r"[:15]
        _run("ip", "link", "add", lif, "netns", ln, "type", "veth", "peer", "name", rif, "netns", rn)
        la, ra = f"{SUBNET_BASE}.{n}.1", f"{SUBNET_BASE}.{n}.2"
        for role, ifname, addr in ((left, lif, la), (right, rif, ra)):
            self.sh(role, "ip", "addr", "add", f"{addr}/24", "dev", ifname)
            self.sh(role, "ip", "link", "set", ifname, "up")
        self.addrs[(left, right)], self.addrs[(right, left)] = la, ra
        return la, ra

    def iface(self, role: str, peer: str) -> str:
        """The interface name in `role` that faces `peer`."""
        addr = self.addrs[(role, peer)]
        out = self.sh(role, "ip", "-o", "addr", "show", "to", addr).split()
        return out[1]

    def route_default(self, role: str, via_peer: str) -> None:
        self.sh(role, "ip", "route", "add", "default", "via", self.addrs[(via_peer, role)])

    def router(self, role: str, *, masquerade_towards: str | None = None) -> None:
        """Let `role` forward packets; with `masquerade_towards`, NAT everything leaving
        towards that namespace (a home router: outside hosts cannot open connections in)."""
        self.sh(role, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        if masquerade_towards is not None:
            out = self.iface(role, masquerade_towards)
            self.sh(role, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", out, "-j", "MASQUERADE")
            # inbound only for flows the inside started (what a home router's NAT lets through)
            self.sh(role, "iptables", "-A", "FORWARD", "-i", out, "-m", "conntrack",
                    "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
            self.sh(role, "iptables", "-A", "FORWARD", "-i", out, "-j", "DROP")

    def cmd(self, role: str, *argv: str) -> list[str]:
        """argv prefixed to run inside namespace `role`."""
        return ["ip", "netns", "exec", self.namespaces[role], *argv]

    def sh(self, role: str, *argv: str) -> str:
        return _run(*self.cmd(role, *argv))

    def popen(self, role: str, argv: list[str], **kw) -> subprocess.Popen:
        return subprocess.Popen(self.cmd(role, *argv), **kw)

    def close(self) -> None:
        """Kill what still runs in our namespaces and remove them (links go with them)."""
        for name in self.namespaces.values():
            pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        self.namespaces.clear()

    def __enter__(self) -> NetLab:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def pair() -> tuple[NetLab, str, str]:
    """The simplest lab: namespaces 'a' and 'b' on one veth; returns (lab, addr a, addr b)."""
    lab = NetLab()
    try:
        a, b = lab.link("a", "b")
    except BaseException:
        lab.close()
        raise
    return lab, a, b


def one_behind_nat(inside: str = "a", router: str = "na", outside: str = "b") -> NetLab:
    """`inside` behind a masquerading `router`; `outside` reachable (a home rig and a server)."""
    lab = NetLab()
    try:
        lab.link(inside, router)
        lab.link(router, outside)
        lab.route_default(inside, router)
        lab.router(router, masquerade_towards=outside)
    except BaseException:
        lab.close()
        raise
    return lab


def both_behind_nat() -> NetLab:
    """'a' and 'b' each behind its own masquerading router ('na', 'nb'); 'pub' between the
    routers is the open internet, and 'srv' a server on it (one interface, like a rented
    machine) where a relay can sit."""
    lab = NetLab()
    try:
        lab.link("a", "na")
        lab.link("na", "pub")
        lab.link("pub", "nb")
        lab.link("nb", "b")
        lab.link("pub", "srv")
        lab.route_default("a", "na")
        lab.route_default("b", "nb")
        lab.route_default("na", "pub")
        lab.route_default("nb", "pub")
        lab.route_default("srv", "pub")
        lab.router("pub")
        lab.router("na", masquerade_towards="pub")
        lab.router("nb", masquerade_towards="pub")
    except BaseException:
        lab.close()
        raise
    return lab


def open_network_with_homes_behind_nat() -> NetLab:
    """One lab for several cases: 'pub' the open network (a router), reachable machines 'a',
    'b' and a server 'srv' on it; 'c' behind its home router 'nc' and 'd' behind 'nd'
    (masquerade: nothing on pub can open a connection to c or d)."""
    lab = NetLab()
    try:
        for role in ("a", "b", "srv", "nc", "nd"):
            lab.link(role, "pub")
            lab.route_default(role, "pub")
        lab.link("c", "nc")
        lab.link("d", "nd")
        lab.route_default("c", "nc")
        lab.route_default("d", "nd")
        lab.router("pub")
        lab.router("nc", masquerade_towards="pub")
        lab.router("nd", masquerade_towards="pub")
    except BaseException:
        lab.close()
        raise
    return lab


def _run(*argv: str) -> str:
    r = subprocess.run(list(argv), capture_output=True, text=True)
    if r.returncode != 0:
        raise NetLabError(f"{' '.join(argv)}: {r.stderr.strip() or r.returncode}")
    return r.stdout
