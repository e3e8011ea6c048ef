"""`python -m jobs.transport`: run a seeder, a relay, fetch a reference, show status.

    serve PATH... --home H [--listen 0.0.0.0:6881] [--advertise HOST:PORT] [--sealed --reader 0x..]
                  [--key-file F --keys-listen HOST:PORT] [--relay HOST:PORT] [--until-s N]
    fetch URI --home H --out PATH [--key-file F] [--timeout-s N]
    relay --home H --listen 0.0.0.0:6881 [--advertise HOST:PORT] [--allow 0x..] [--max-serve-s N]
    status --home H [--json]

`serve` prints one reference per line, then serves until SIGTERM/SIGINT or every item's
serve-until time has passed. `relay` mirrors content that allowed addresses ask it to
(signed mirror requests on port + 1) and serves it on, for peers that cannot reach each
other (both behind NAT). Exit code 0 only on success; errors are one line.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from jobs.transport.engine import EngineConfig
from jobs.transport.ref import RefError, parse_ref

KIB = 1024


def _engine(a: argparse.Namespace) -> EngineConfig:
    return EngineConfig(listen=a.listen, upload_bytes_s=a.up_kib_s * KIB, download_bytes_s=a.down_kib_s * KIB,
                        dht=bool(a.dht_bootstrap), dht_bootstrap=tuple(a.dht_bootstrap),
                        port_mapping=a.port_mapping, utp=a.utp)


def _key(a: argparse.Namespace) -> bytes | None:
    if not a.key_file:
        return None
    try:
        raw = Path(a.key_file).read_text(encoding="utf-8").strip().removeprefix("0x")
        key = bytes.fromhex(raw)
    except (OSError, ValueError) as e:
        raise SystemExit(f"transport: cannot read the key file {a.key_file}: {e}") from None
    if len(key) != 32:
        raise SystemExit("transport: the key file must hold a 32-byte hex private key")
    return key


def _wait_for_signal(stop_when=lambda: False) -> None:
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(0.5) and not stop_when():
        pass


def cmd_serve(a: argparse.Namespace) -> int:
    from jobs.transport.keys import KeyServer
    from jobs.transport.node import NodeConfig, TransportNode

    key = _key(a)
    node = TransportNode(Path(a.home), NodeConfig(engine=_engine(a), quota_bytes=a.quota_mib << 20,
                                                  advertise=tuple(a.advertise), relays=tuple(a.relay), identity_key=key))
    ks = None
    try:
        if a.sealed:
            ks = KeyServer(node.keys, a.keys_listen)
            host = a.advertise[0].rsplit(":", 1)[0] if a.advertise else "127.0.0.1"
            node.config = replace(node.config, key_servers=(f"{host}:{ks.port}",))
        until = time.time() + a.until_s if a.until_s else 0
        for p in a.paths:
            if a.sealed:
                shared = node.share(Path(p), until_ts=until, reader=a.reader, push_to=tuple(a.push))
                if a.grant_reader and a.reader:
                    node.keys.grant(shared.ref.info_hash, a.reader)
                print(json.dumps({"uri": shared.ref.uri(), "content_key": shared.content_key.hex()}) if a.json
                      else shared.ref.uri(), flush=True)
            else:
                print(node.publish(Path(p), until_ts=until, reader=a.reader, push_to=tuple(a.push)).uri(), flush=True)
        _wait_for_signal(lambda: not node.status().transfers)
    finally:
        if ks is not None:
            ks.close()
        node.close()
    return 0


def cmd_fetch(a: argparse.Namespace) -> int:
    import shutil

    from jobs.transport.keys import request_key
    from jobs.transport.node import NodeConfig, TransportNode
    from jobs.transport.sealed import unseal

    ref = parse_ref(a.uri)
    key = _key(a)
    out = Path(a.out)
    if out.exists():
        raise SystemExit(f"transport: {out} already exists")
    with TransportNode(Path(a.home), NodeConfig(engine=_engine(a), quota_bytes=a.quota_mib << 20)) as node:
        t0 = time.monotonic()
        path = node.fetch(ref, timeout_s=a.timeout_s, max_bytes=a.max_mib << 20 if a.max_mib else None)
        secs = time.monotonic() - t0
        fetched = next((t.entry.fetched_bytes for t in node.status().transfers if t.entry.info_hash == ref.info_hash), 0)
        if key is not None:
            if not ref.key_servers:
                raise SystemExit("transport: the reference names no key server (x.km)")
            unseal(path, request_key(ref.key_servers[0], ref.info_hash, key), out)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out)
    size = path.stat().st_size
    print(json.dumps({"out": str(out), "bytes": size, "fetched_bytes": fetched, "seconds": secs}) if a.json else f"{out}: {size} bytes in {secs:.1f} s")
    return 0


def cmd_relay(a: argparse.Namespace) -> int:
    from jobs.transport.keys import KeyRefused, KeyServer, Mailbox
    from jobs.transport.node import NodeConfig, TransportError, TransportNode

    allow = {x.lower() for x in a.allow}
    node = TransportNode(Path(a.home), NodeConfig(engine=_engine(a), quota_bytes=a.quota_mib << 20,
                                                  advertise=tuple(a.advertise)))

    def on_mirror(address: str, uri: str, until_ts: float) -> None:
        if allow and address not in allow:
            raise KeyRefused(f"{address} may not use this relay")
        try:
            ref = parse_ref(uri)
            node.start_fetch(ref, until_ts=min(until_ts or time.time() + a.max_serve_s, time.time() + a.max_serve_s))
        except (RefError, TransportError) as e:
            raise KeyRefused(str(e)) from None

    host = a.listen.rsplit(":", 1)[0]
    ks = KeyServer(node.keys, f"{host}:{node.engine.listen_port() + 1}", on_mirror=on_mirror, mailbox=Mailbox())
    print(json.dumps({"peer_port": node.engine.listen_port(), "control_port": ks.port}), flush=True)
    try:
        _wait_for_signal()
    finally:
        ks.close()
        node.close()
    return 0


def cmd_status(a: argparse.Namespace) -> int:
    p = Path(a.home) / "status.json"
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise SystemExit(f"transport: no status in {a.home} (is a node running there?)") from None
    if a.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"port {doc['listen_port']}  disk {doc['used_bytes'] / 2**20:.1f}/{doc['quota_bytes'] / 2**20:.0f} MiB  "
          f"caps up {doc['upload_bytes_s_cap'] // KIB or '-'} down {doc['download_bytes_s_cap'] // KIB or '-'} KiB/s")
    for t in doc["transfers"]:
        e, s = t["entry"], t["state"] or {}
        until = time.strftime("%Y-%m-%d %H:%M", time.localtime(e["until_ts"])) if e["until_ts"] else "-"
        print(f"{e['role']:5} {e['info_hash'][:12]} {e['name'][:30]:30} {100 * s.get('progress', 0):5.1f}% "
              f"up {s.get('up_bytes_s', 0) // KIB} KiB/s down {s.get('down_bytes_s', 0) // KIB} KiB/s "
              f"peers {len(s.get('peers', ()))} for {e['reader'] or '-'} until {until} {e['error']}")
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m jobs.transport", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p: argparse.ArgumentParser, listen: str = "0.0.0.0:0") -> None:
        p.add_argument("--home", required=True, help="the node's folder (state, data, keys)")
        p.add_argument("--listen", default=listen, help="host:port for peers (default %(default)s)")
        p.add_argument("--up-kib-s", type=int, default=0, help="upload cap, KiB/s (0: none)")
        p.add_argument("--down-kib-s", type=int, default=0, help="download cap, KiB/s (0: none)")
        p.add_argument("--quota-mib", type=int, default=20 << 10, help="disk quota, MiB (default %(default)s)")
        p.add_argument("--dht-bootstrap", action="append", default=[], help="host:port of a DHT node (enables the DHT)")
        p.add_argument("--port-mapping", action="store_true", help="ask the router for a port (UPnP / NAT-PMP)")
        p.add_argument("--utp", action="store_true", help="allow uTP as well as TCP")
        p.add_argument("--key-file", help="file with a hex Ethereum private key (signs requests, opens sealed content)")
        p.add_argument("--json", action="store_true")

    p = sub.add_parser("serve", help="serve files (or sealed folders) and print their references")
    common(p, "0.0.0.0:6881")
    p.add_argument("paths", nargs="+")
    p.add_argument("--advertise", action="append", default=[], help="host:port peers should dial (repeatable)")
    p.add_argument("--relay", action="append", default=[], help="host:port of a relay to mirror through")
    p.add_argument("--push", action="append", default=[],
                   help="host:port of the recipient's node: dial it until it holds everything (we are behind NAT)")
    p.add_argument("--sealed", action="store_true", help="seal each path with a fresh content key and run a key server")
    p.add_argument("--keys-listen", default="0.0.0.0:0", help="host:port of the key server (with --sealed)")
    p.add_argument("--reader", default="", help="0x address the content is for (may sample items)")
    p.add_argument("--grant-reader", action="store_true", help="let --reader have the whole key at once (no fair exchange)")
    p.add_argument("--until-s", type=float, default=0, help="stop serving after this many seconds (0: on a signal)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("fetch", help="fetch a reference, verified, to --out")
    common(p)
    p.add_argument("uri")
    p.add_argument("--out", required=True)
    p.add_argument("--timeout-s", type=float, default=600)
    p.add_argument("--max-mib", type=int, default=0, help="refuse content larger than this (0: the quota)")
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("relay", help="mirror content for peers that cannot reach each other")
    common(p, "0.0.0.0:6881")
    p.add_argument("--advertise", action="append", default=[])
    p.add_argument("--allow", action="append", default=[], help="0x address allowed to ask for mirroring (default: any)")
    p.add_argument("--max-serve-s", type=float, default=7 * 86400, help="longest a mirrored item is kept")
    p.set_defaults(func=cmd_relay)

    p = sub.add_parser("status", help="what a running node serves and fetches")
    p.add_argument("--home", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    return ap


def main(argv: list[str] | None = None) -> int:
    import logging

    from jobs.transport.keys import KeyRefused
    from jobs.transport.node import TransportError
    from jobs.transport.sealed import SealError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    a = parser().parse_args(argv)
    try:
        return a.func(a)
    except (TransportError, RefError, KeyRefused, SealError) as e:
        print(f"transport: {e}", file=sys.stderr)
        return 1
