"""Which input URLs a job may name, and which addresses a fetch may reach.

A buyer's spec names where its inputs come from. Fetched naively, that lets a stranger make
the rig send requests anywhere it can reach: its router, a printer, a service on
127.0.0.1, the cloud metadata address. `UrlPolicy` says what is allowed:

- schemes: `https` and `http` by default; `file://` and plain paths only for a spec the
  user runs from their own disk (`allow_local_files`) or inside folders the miner shares
  on purpose (`local_roots`: the shared artifact store), and then only regular files;
  other fsspec schemes only when listed;
- addresses: public (globally routable) unicast only. Loopback, private (RFC 1918, ULA),
  link-local, CGNAT, multicast, reserved, unspecified and documentation ranges are refused,
  IPv4 inside IPv6 (mapped, 6to4, NAT64, Teredo) included, unless the user lists the host
  in `allow_hosts` (by name or literal address, as written in the URL);
- every address a name resolves to must pass (so one public answer cannot hide a private
  one), the fetch then connects to exactly the address that was checked (no second lookup
  a rebinding DNS server could answer differently), and each redirect is checked again;
- caps: bytes, seconds (the job's own wall-clock limit when smaller) and redirects.

Pure values and checks; the network side is jobs/url_fetch.py.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


class UrlRefused(ValueError):
    """A URL or address the policy does not allow; the message says why in one line."""


@dataclass(frozen=True)
class UrlPolicy:
    """What input URLs may name. Defaults are for strangers' specs (market jobs)."""

    schemes: frozenset[str] = frozenset({"https", "http"})
    allow_hosts: frozenset[str] = frozenset()   # hosts the user trusts even on non-public addresses
    allow_local_files: bool = False             # file:// and plain paths (a spec from the user's own disk)
    max_bytes: int = 4 << 30                    # per fetched input
    timeout_s: float = 600.0                    # whole fetch, redirects included
    max_redirects: int = 5
    fsspec_schemes: frozenset[str] = field(default_factory=frozenset)   # e.g. {"s3"}: fetched by fsspec, no address check
    local_roots: frozenset[str] = field(default_factory=frozenset)      # folders file:// URIs may point into

    def host_allowed(self, host: str) -> bool:
        return _norm_host(host) in {_norm_host(h) for h in self.allow_hosts}

    def capped(self, *, max_bytes: int | None = None, timeout_s: float | None = None) -> "UrlPolicy":
        """This policy with tighter caps (a job's own limits)."""
        from dataclasses import replace

        return replace(self, max_bytes=min(self.max_bytes, max_bytes) if max_bytes else self.max_bytes,
                       timeout_s=min(self.timeout_s, timeout_s) if timeout_s else self.timeout_s)


def _norm_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class Target:
    """A checked http(s) URL: where to connect and what to ask for."""

    scheme: str
    host: str          # as written (for Host: and TLS SNI / certificate checks)
    port: int
    path: str          # path + query, never empty
    allowed_host: bool


def parse_http_url(url: str, policy: UrlPolicy) -> Target:
    """Check scheme and form of an http(s) URL; raises `UrlRefused`."""
    try:
        u = urlsplit(url)
        port = u.port
    except ValueError as e:
        raise UrlRefused(f"{_short(url)}: not a valid URL ({e})") from None
    scheme = u.scheme.lower()
    if scheme not in ("http", "https") or scheme not in policy.schemes:
        raise UrlRefused(f"{_short(url)}: scheme {scheme or '(none)'!r} is not allowed "
                         f"(allowed: {', '.join(sorted(policy.schemes)) or 'none'})")
    if u.username or u.password:
        raise UrlRefused(f"{_short(url)}: credentials in URLs are not allowed")
    host = u.hostname or ""
    if not host:
        raise UrlRefused(f"{_short(url)}: no host")
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    return Target(scheme, host, port or (443 if scheme == "https" else 80), path, policy.host_allowed(host))


def address_problem(ip: IP) -> str | None:
    """Why `ip` is not a public unicast address, or None when it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is None and (ip in _NAT64 or ip in _NAT64_LOCAL):
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None:
            why = address_problem(inner)
            return f"{why} (inside {ip})" if why else None
    for test, why in (("is_loopback", "loopback"), ("is_unspecified", "unspecified"), ("is_link_local", "link-local"),
                      ("is_multicast", "multicast"), ("is_private", "private"), ("is_reserved", "reserved")):
        if getattr(ip, test):
            return why
    if not ip.is_global:
        return "not globally routable"
    return None


def check_addresses(host: str, addresses: list[str], policy: UrlPolicy) -> IP:
    """The address to connect to for `host`: every one it resolved to must be public unless
    the host is allowed. Raises `UrlRefused` naming the first bad one."""
    if not addresses:
        raise UrlRefused(f"{host}: the name did not resolve")
    ips = []
    for a in addresses:
        ip = ipaddress.ip_address(a.split("%", 1)[0])
        why = address_problem(ip)
        if why and not policy.host_allowed(host):
            raise UrlRefused(f"{host}: address {ip} is {why}; inputs may come only from public addresses "
                             "(allow the host in the settings to use it)")
        ips.append(ip)
    return ips[0]


def local_path_problem(path: Path, policy: UrlPolicy) -> str | None:
    """Why a local file named by a URI may not be read under `policy`, or None. Inside a
    `local_roots` folder means inside it once every link is resolved."""
    if policy.allow_local_files:
        return None
    if policy.local_roots:
        real = Path(os.path.realpath(path))
        for root in policy.local_roots:
            r = Path(os.path.realpath(root))
            if r == real or r in real.parents:
                return None
        return "local files outside the shared folders are not allowed for this job's inputs"
    return "local files not allowed for this job's inputs"


def _short(url: str) -> str:
    return url if len(url) <= 120 else url[:117] + "..."
