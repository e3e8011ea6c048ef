"""The order desk: a buyer's small HTTP endpoint where miners claim shards and deliver results.

On chain an order names its desk (`spec_uri` = `http://host:port`, the address the buyer
configured); miners and the buyer talk there with the signed messages of
docs/order-protocol.md. Every route takes and returns JSON:

    GET  /v1/orders/<id>   -> the order's spec document (its sha256 is the order's specHash)
    POST /v1/claim    {"request": Signed ClaimRequest}          -> {"queued": true}
    POST /v1/confirm  {"confirm": Signed Claim (mining key)}     -> {"queued": true}
    POST /v1/commit   {"commit": Signed ResultCommit, "ref": magnet} -> {"queued": true}
    POST /v1/keys     {"keys": {"op": "keys", "order_id", "shard", "miner", "request_nonce",
                      "reply", "ts", "nonce", "sig"}} (EIP-191 by the mining key) -> {"queued": true}
    POST /v1/status   {"order_id", "shard", "miner"}               -> what the buyer answered so far:
                      {"state", "grant", "ack", "voucher", "rejection", "reason", "key_request"}

`keys` carries a key service's reply relayed by a miner that cannot be reached (behind NAT):
the buyer publishes its signed key request in `status` (`key_request`), the miner's key service
answers it with an envelope only the buyer opens, and the miner posts that here. The key
itself never crosses the desk in the clear.

The desk checks only what needs no chain (sizes, shapes, signatures against the named
signer) and queues the message; the buyer's service answers on its chain thread and
publishes the answers that `status` returns. So a stranger's request never touches the chain
from a server thread, and a forged or oversized one costs a one-line 4xx and nothing else.
Bodies are at most `MAX_BODY_BYTES`, read with a timeout, parsed by common.safejson.

Who may take room in the inbox (at most `MAX_INBOX` messages wait for the buyer at a time):
- A first claim (`/v1/claim`) is the only message a fresh mining key may send. Claims share
  at most `MAX_CLAIMS` places (half the inbox), and at most `MAX_CLAIMS_PER_IP` of them come
  from one client address (IPv6: one /64), so keys made by the thousand cannot starve the
  miners already working, and one address cannot take every claim place. With the share
  full, a claim from a network (IPv4 /24, IPv6 /48) with fewer claims waiting displaces the
  newest claim of the network with the most: a flood from a few networks cannot keep a
  newcomer out. (The buyer then checks claims in turn by network: `OrderBuyer.step`.)
- `confirm`, `commit` and `keys` are queued only from a party: the mining key the buyer
  granted that order's shard (`is_party(order_id, shard, miner)`, the buyer's own record; a
  claim can reach the chain only with that grant). Anyone else gets a one-line 403 before its
  signature is even checked, and takes no room. Parties are few (each holds a grant the buyer
  gave against stake), so the places claims cannot take are theirs.
- Whatever the kind, at most `MAX_PER_MINER` messages of one mining key wait at a time; past
  a bound the answer is 503 (try again shortly), and a message already waiting is not queued
  twice. `status` takes no room; refusals it reports to strangers are kept for the latest
  `MAX_REFUSALS` (miner, shard) pairs only.
At most `MAX_CONNECTIONS` connections are served at once, at most `MAX_CONNECTIONS_PER_IP` of
them from one address (more get a 503 and are closed), and a connection still open
`REQUEST_DEADLINE_S` after it was accepted is cut, however slowly it trickles bytes
(slowloris). `DeskClient` is the miner's side.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from common.boundedfile import read_at_most
from common.guarded_server import ConnectionGuard, GuardedServerMixin, network_of, source_of
from common.safejson import JsonLimits, SafeJsonError, loads_bounded
from jobs.transport.crypto import CryptoError, recover_signer, sign_request
from jobs.transport.ref import RefError, parse_ref
from wallet.order_messages import Claim, ClaimRequest, Domain, MessageError, ResultCommit, Signed

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 << 10
MAX_REPLY_BYTES = 1 << 20  # a spec document (the desk's reply) is at most this
MAX_INBOX = 1_000
MAX_CLAIMS = MAX_INBOX // 2  # first claims (all a fresh key may send) never take the parties' half
MAX_CLAIMS_PER_IP = 100  # claims waiting from one client address (IPv6: one /64)
# (past MAX_CLAIMS, a claim from a network (IPv4 /24, IPv6 /48) with fewer claims waiting than
# the network with the most takes the place of that network's newest claim)
MAX_PER_MINER = 64  # one key (a buggy loop, a flood) cannot crowd the others out of the inbox
MAX_REFUSALS = 4_096  # refusals `status` keeps for strangers (the latest ones)
IO_TIMEOUT_S = 10.0
REQUEST_DEADLINE_S = 20.0  # a whole request, headers to reply, however slowly it trickles
MAX_CONNECTIONS = 128
MAX_CONNECTIONS_PER_IP = 8
_BUSY_BODY = b'{"error": "the desk is busy; try again shortly"}'
_BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: "
         + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY)
DESK_LIMITS = JsonLimits(max_bytes=MAX_BODY_BYTES, max_depth=6, max_items=200, max_string_bytes=8 << 10)
SPEC_DOC_LIMITS = JsonLimits(max_bytes=MAX_REPLY_BYTES, max_depth=16, max_items=20_000)


class DeskError(Exception):
    """A desk request refused or failed (one line)."""


@dataclass(frozen=True)
class Inbound:
    """A message that passed the desk's checks, waiting for the buyer's chain thread."""

    kind: str  # "claim" | "confirm" | "commit" | "keys"
    signed: Signed | None
    ref: str = ""
    doc: dict | None = None  # "keys": the miner's signed relay of its key service's reply
    client: str = ""  # the sender's address (the buyer takes claims' checks in turn by network)

    @property
    def miner(self) -> str:
        return self.doc["miner"] if self.doc is not None else self.signed.message.miner


class OrderDesk:
    """The HTTP server. `spec_of(order_id)` gives the spec document bytes (None: unknown);
    `is_ours(order_id)` whether the order is at this desk; `is_party(order_id, shard, miner)`
    whether that mining key (lower case) holds the buyer's grant of that shard: called from the
    server's threads, so it must be cheap and thread-safe. Answers come from
    `answers[(order_id, shard, miner)]`, a dict the buyer fills (`publish`)."""

    def __init__(self, listen: tuple[str, int], *, domain: Domain, spec_of: Callable[[int], bytes | None],
                 is_ours: Callable[[int], bool], is_party: Callable[[int, int, str], bool],
                 io_timeout_s: float = IO_TIMEOUT_S, request_deadline_s: float = REQUEST_DEADLINE_S,
                 max_connections: int = MAX_CONNECTIONS, max_connections_per_ip: int = MAX_CONNECTIONS_PER_IP):
        self.domain, self.spec_of, self.is_ours, self.is_party = domain, spec_of, is_ours, is_party
        self._inbox: deque[Inbound] = deque()
        self._queued: set[tuple[str, bytes, str]] = set()  # (kind, signature, ref) of what waits in the inbox
        self._per_miner: dict[str, int] = {}  # mining key -> messages of it waiting
        self._claims = 0  # claims waiting
        self._claims_from: dict[str, int] = {}  # client address (IPv6: its /64) -> claims of it waiting
        self._claims_of_net: dict[str, list[tuple[Inbound, tuple]]] = {}  # IPv4 /24, IPv6 /48 -> (claim, key)
        self._answers: dict[tuple[int, int, str], dict] = {}
        self._refusals: OrderedDict[tuple[int, int, str], dict] = OrderedDict()  # strangers' answers, bounded
        self._lock = threading.Lock()
        desk = self

        class Handler(BaseHTTPRequestHandler):
            timeout = io_timeout_s
            server_version = "kminer-desk/1"
            sys_version = ""

            def log_message(self, fmt, *args) -> None:  # access log off: strangers' lines stay out of logs
                pass

            def do_GET(self) -> None:
                self._answer(*desk._get(self.path))

            def do_POST(self) -> None:
                try:
                    n = int(self.headers.get("Content-Length", ""))
                except ValueError:
                    return self._answer(411, {"error": "a Content-Length is required"})
                if not 0 < n <= MAX_BODY_BYTES:
                    return self._answer(413, {"error": f"body must be 1..{MAX_BODY_BYTES} bytes"})
                try:
                    raw = self.rfile.read(n)  # exactly Content-Length (already bounded); the socket times out
                    if len(raw) != n:
                        return self._answer(400, {"error": "the body is shorter than its Content-Length"})
                    body = loads_bounded(raw, DESK_LIMITS, what="request")
                except (SafeJsonError, OSError) as e:
                    return self._answer(400, {"error": str(e)[:200]})
                self._answer(*desk._post(self.path, body, client=self.client_address[0]))

            def _answer(self, code: int, doc: Any) -> None:
                data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:  # the asker went away
                    pass

        class Server(GuardedServerMixin, ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False  # close() must not wait for a stalled stranger
            allow_reuse_address = True
            request_queue_size = 64
            address_family = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET

            def handle_error(self, request, client_address) -> None:
                log.debug("order desk: a request failed", exc_info=True)

        self._srv = Server(listen, Handler)
        self._srv.guard = ConnectionGuard(max_connections, request_deadline_s, busy=_BUSY,
                                          max_per_source=max_connections_per_ip, source_of=source_of)
        self.port = self._srv.server_address[1]
        self.host = listen[0]
        self._thread = threading.Thread(target=self._srv.serve_forever, args=(0.1,), name="order-desk", daemon=True)
        self._thread.start()

    @property
    def open_connections(self) -> int:
        return self._srv.guard.count

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # --- the buyer's side --------------------------------------------------------------
    def take(self) -> list[Inbound]:
        """Everything queued since the last call (the buyer's chain thread)."""
        with self._lock:
            out = list(self._inbox)
            self._inbox.clear()
            self._queued.clear()
            self._per_miner.clear()
            self._claims = 0
            self._claims_from.clear()
            self._claims_of_net.clear()
        return out

    def waiting(self) -> dict[str, int]:
        """How many messages of each kind wait for the buyer (diagnostics)."""
        with self._lock:
            out: dict[str, int] = {}
            for m in self._inbox:
                out[m.kind] = out.get(m.kind, 0) + 1
        return out

    def publish(self, order_id: int, shard: int, miner: str, **answer: Any) -> None:
        """Set what `status` tells that miner about that shard (signed messages as JSON)."""
        key = (order_id, shard, miner.lower())
        doc = {k: (v.to_json() if isinstance(v, Signed) else v) for k, v in answer.items()}
        with self._lock:
            if answer.get("state") == "refused" and key not in self._answers:
                # a stranger's claim refused: kept for its `status`, the latest MAX_REFUSALS only
                # (fresh keys by the thousand must not grow the desk's memory)
                cur = self._refusals.pop(key, {})
                self._refusals[key] = {**cur, **doc}
                while len(self._refusals) > MAX_REFUSALS:
                    self._refusals.popitem(last=False)
                return
            self._refusals.pop(key, None)
            self._answers[key] = {**self._answers.get(key, {}), **doc}

    def close(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()
        self._srv.guard.close()

    # --- routes -------------------------------------------------------------------------
    def _get(self, path: str) -> tuple[int, Any]:
        parts = path.split("?", 1)[0].strip("/").split("/")
        if len(parts) == 3 and parts[:2] == ["v1", "orders"] and parts[2].isdigit() and len(parts[2]) < 20:
            spec = self.spec_of(int(parts[2]))
            if spec is not None:
                return 200, spec
        return 404, {"error": "no such order at this desk"}

    def _post(self, path: str, body: Any, *, client: str = "") -> tuple[int, Any]:
        if not isinstance(body, dict):
            return 400, {"error": "the body is a JSON object"}
        route = path.split("?", 1)[0].rstrip("/")
        try:
            if route == "/v1/status":
                return 200, self._status(body)
            if route == "/v1/keys":
                return self._keys(body.get("keys"), client)
            kind, expect, field = {"/v1/claim": ("claim", ClaimRequest, "request"),
                                   "/v1/confirm": ("confirm", Claim, "confirm"),
                                   "/v1/commit": ("commit", ResultCommit, "commit")}.get(route, (None, None, None))
            if kind is None:
                return 404, {"error": "no such route"}
            signed = Signed.from_json(body.get(field), expect=expect)
            m = signed.message
            if not self.is_ours(m.order_id):
                return 404, {"error": f"order {m.order_id} is not at this desk"}
            if kind != "claim" and not self.is_party(m.order_id, m.shard, m.miner.lower()):
                return _not_party(kind, m.order_id, m.shard, m.miner)
            signed.verify(self.domain, m.miner)  # every miner->buyer message is signed by its mining key
            ref = ""
            if kind == "commit":
                ref = str(body.get("ref", ""))
                if parse_ref(ref).info_hash != m.result_hash.hex():
                    return 400, {"error": "the reference does not name the committed result hash"}
            return self._queue(Inbound(kind, signed, ref), (kind, signed.signature, ref), client)
        except (MessageError, RefError, ValueError, TypeError, KeyError) as e:
            return 400, {"error": str(e)[:200]}

    def _queue(self, m: Inbound, key: tuple, client: str) -> tuple[int, Any]:
        """Into the inbox within its bounds (a claim: the claims' share and its address's);
        a party's message reaches here only after `is_party`. Past the claims' share, a claim
        from a network with fewer claims waiting displaces the newest claim of the network with
        the most (which is asked again), so a flood from a few networks cannot keep a newcomer
        out, whatever it keeps posting."""
        src = source_of(client) if m.kind == "claim" else ""
        net = network_of(client) if m.kind == "claim" else ""
        with self._lock:
            if key in self._queued:  # the same signed message again: it already waits
                return 202, {"queued": True}
            if len(self._inbox) >= MAX_INBOX:
                return 503, {"error": "the desk is busy; try again shortly"}
            who = m.miner.lower()
            if self._per_miner.get(who, 0) >= MAX_PER_MINER:
                return 503, {"error": "too many of your messages are waiting; try again shortly"}
            m = dataclasses.replace(m, client=client)
            if m.kind == "claim":
                if self._claims_from.get(src, 0) >= MAX_CLAIMS_PER_IP:
                    return 503, {"error": "too many claims from your address are waiting; try again shortly"}
                if self._claims >= MAX_CLAIMS:
                    mine = len(self._claims_of_net.get(net, ()))
                    most = max(self._claims_of_net, key=lambda n: len(self._claims_of_net[n]))
                    if len(self._claims_of_net[most]) <= mine + 1:
                        return 503, {"error": "the desk is busy with claims; try again shortly"}
                    self._drop_claim(most)
                self._claims += 1
                self._claims_from[src] = self._claims_from.get(src, 0) + 1
                self._claims_of_net.setdefault(net, []).append((m, key))
                # a claim asked again (after a "try later"): the old refusal is not its answer
                self._refusals.pop((m.signed.message.order_id, m.signed.message.shard, who), None)
            self._inbox.append(m)
            self._queued.add(key)
            self._per_miner[who] = self._per_miner.get(who, 0) + 1
        return 202, {"queued": True}

    def _drop_claim(self, net: str) -> None:
        """Take the newest claim of `net` out of the inbox (under the lock)."""
        waiting = self._claims_of_net[net]
        m, key = waiting.pop()
        if not waiting:
            del self._claims_of_net[net]
        for i in range(len(self._inbox) - 1, -1, -1):
            if self._inbox[i] is m:
                del self._inbox[i]
                break
        self._queued.discard(key)
        self._claims -= 1
        src = source_of(m.client)
        self._claims_from[src] -= 1
        if not self._claims_from[src]:
            del self._claims_from[src]
        who = m.miner.lower()
        self._per_miner[who] -= 1
        if not self._per_miner[who]:
            del self._per_miner[who]

    def _keys(self, doc: Any, client: str) -> tuple[int, Any]:
        """A relayed key-service reply: shape, our order, signed by the miner it names."""
        if not isinstance(doc, dict) or doc.get("op") != "keys" or not isinstance(doc.get("reply"), dict):
            raise ValueError("keys: a signed relay of a key service's reply is expected")
        order_id, shard = int(doc["order_id"]), int(doc["shard"])
        miner, nonce = str(doc["miner"]).lower(), str(doc["request_nonce"])
        if not (0 <= shard < 128 and len(nonce) <= 64 and len(miner) == 42):
            raise ValueError("keys: bad shard, miner or nonce")
        if not self.is_ours(order_id):
            return 404, {"error": f"order {order_id} is not at this desk"}
        if not self.is_party(order_id, shard, miner):
            return _not_party("keys", order_id, shard, miner)
        try:
            signer, _pub = recover_signer(doc)
        except CryptoError as e:
            raise ValueError(f"keys: {e}") from None
        if signer.lower() != miner:
            raise ValueError("keys: not signed by the miner it names")
        return self._queue(Inbound("keys", None, doc=dict(doc, miner=miner)), ("keys", str(doc.get("sig")), ""),
                           client)

    def _status(self, body: dict) -> dict:
        try:
            order_id, shard, miner = int(body["order_id"]), int(body["shard"]), str(body["miner"]).lower()
        except (KeyError, TypeError, ValueError):
            raise ValueError("status needs order_id, shard and miner") from None
        with self._lock:
            key = (order_id, shard, miner)
            got = dict(self._answers.get(key) or self._refusals.get(key) or {})
        return {"state": got.pop("state", "unknown"), **got}


def _not_party(kind: str, order_id: int, shard: int, miner: str) -> tuple[int, dict]:
    return 403, {"error": f"{kind}: mining key {str(miner)[:42]} holds no grant of order {order_id} shard {shard} "
                          f"at this desk; only a claim may come first"}


class DeskClient:
    """The miner's calls to a buyer's desk (`url` from the order's spec_uri)."""

    def __init__(self, url: str, *, timeout_s: float = IO_TIMEOUT_S):
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/") or parts.query:
            raise DeskError(f"an order desk is http://host:port, not {url[:80]!r}")
        self.url, self.timeout_s = url.rstrip("/"), timeout_s

    def spec(self, order_id: int) -> bytes:
        return self._call("GET", f"/v1/orders/{int(order_id)}", None, raw=True)

    def send(self, route: str, **body: Any) -> dict:
        return self._call("POST", f"/v1/{route}", {k: (v.to_json() if isinstance(v, Signed) else v)
                                                   for k, v in body.items()})

    def status(self, order_id: int, shard: int, miner: str) -> dict:
        return self._call("POST", "/v1/status", {"order_id": order_id, "shard": shard, "miner": miner})

    def relay_keys(self, order_id: int, shard: int, mining_key: bytes, miner: str, request_nonce: str,
                   reply: dict) -> dict:
        """Post our key service's `reply` to the buyer's `key_request` (we cannot be dialed)."""
        body = {"op": "keys", "order_id": int(order_id), "shard": int(shard), "miner": miner.lower(),
                "request_nonce": request_nonce, "reply": reply, "ts": int(time.time()), "nonce": os.urandom(8).hex()}
        return self.send("keys", keys=sign_request(mining_key, body))

    def _call(self, method: str, path: str, body: dict | None, *, raw: bool = False) -> Any:
        """One request, all of it (connect, headers, body) within `timeout_s` plus one socket
        timeout at most, however slowly the desk trickles bytes; every failure is a DeskError."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        deadline = time.monotonic() + self.timeout_s

        def within(r):
            def read(n: int) -> bytes:
                if time.monotonic() > deadline:
                    raise DeskError(f"order desk {self.url}: too slow (over {self.timeout_s:g} s)")
                return r.read1(n)
            return read

        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                reply = read_at_most(within(r), MAX_REPLY_BYTES)
                if len(reply) > MAX_REPLY_BYTES:
                    raise DeskError(f"order desk {self.url}: the reply is over {MAX_REPLY_BYTES} bytes")
                if r.length:  # the connection closed before the Content-Length it announced
                    raise DeskError(f"order desk {self.url}: the reply ended early")
        except urllib.error.HTTPError as e:
            try:
                why = loads_bounded(read_at_most(within(e), 4096)[:4096], DESK_LIMITS).get("error", "")
            except (SafeJsonError, AttributeError, OSError, DeskError, http.client.HTTPException):
                why = ""
            raise DeskError(f"order desk {self.url}: {e.code} {str(why)[:200]}".rstrip()) from None
        except (OSError, SafeJsonError, http.client.HTTPException, ValueError) as e:
            # http.client's own errors too (a stranger answering garbage): one line, never a crash
            raise DeskError(f"order desk {self.url}: {getattr(e, 'reason', None) or e or type(e).__name__}") from None
        if raw:
            return reply
        try:
            doc = loads_bounded(reply, SPEC_DOC_LIMITS, what="desk reply")
        except SafeJsonError as e:
            raise DeskError(f"order desk {self.url}: {e}") from None
        if not isinstance(doc, dict):
            raise DeskError(f"order desk {self.url}: the reply is not an object")
        return doc
