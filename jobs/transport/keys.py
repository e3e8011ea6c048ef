"""Content keys: kept by the node that sealed the content, released only to authorised
Ethereum addresses, sealed to the asker's own key.

A request is one JSON line signed with the asker's Ethereum key (EIP-191). The server
recovers the signer's public key, asks the policy whether that address may have the whole
key (a reader: the buyer once paid, an address that bought a model) or a few item keys (a
buyer sampling frames before it pays), and answers with an ECIES envelope to that public
key. A replayed or overheard request gains nothing: the answer opens only for the signer.

A relay's control port also keeps a **mailbox** (`Mailbox`): small signed messages for an
address that cannot be dialed (a seller behind NAT), taken by a request signed by that address.
A buyer leaves its signed key request there for the seller, the seller (which dials its relays
anyway) takes it, answers it with its key service and leaves the reply, sealed to the buyer,
for the buyer to take. The relay sees only signed requests and sealed envelopes.

Policy: an address in the content's `readers` gets the whole key; the content's `reader`
(the party it was shared for) may open a sample before paying, as `jobs.transport.sampling`
rules (at most `sample_budget(units)` of the result's units, over all its requests, never more
than a quarter: the units and free items the sharer named with the key (`KeyRing.put(units=,
free=)`) or later (`KeyRing.limit_samples`), else each item one unit); anything else is decided
by the app's `authorize(request)` callback (e.g. on-chain `has_purchased`).

Every answer's sealed envelope repeats the request's nonce and info hash, so an answer that
travels through others (a relay's mailbox, a desk) cannot be swapped for another answer to
the same asker: `open_key_reply(..., nonce=, info_hash=)` checks them. A mailbox take may ask
only for the replies to some requests (`take_mail(..., reply_to=[nonces])`), leaving the others
(and dropping junk), or only for messages of one kind (`kind="key_request"`: a seller's take).
Requests and replies carry the protocol version (KEY_PROTOCOL); another version is refused in
one line that says which side is older (`KeyVersionMismatch`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.fsutil import atomic_write_json
from common.guarded_server import MAX_PER_SOURCE, ConnectionGuard, GuardedServerMixin, source_of
from jobs.transport.crypto import CryptoError, open_sealed, recover_signer, seal_to, sign_request
from jobs.transport.ref import split_hostport
from jobs.transport.sampling import SAMPLE_UNITS, sample_refusal
from jobs.transport.sealed import Header, item_key

log = logging.getLogger(__name__)
MAX_LINE_BYTES = 64 << 10
MAX_SKEW_S = 600
IO_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 64
_BUSY_LINE = b'{"ok": false, "error": "busy; try again shortly"}\n'


KEY_PROTOCOL = 2
"""The key request/reply protocol's version. 2: every reply repeats its request's nonce and info
hash inside the seal, sample budgets count units (`jobs.transport.sampling`). Requests and
replies carry it as "v" (none: 1); a request or reply of another version is refused in one line
that says which side is older, never taken for a wrong or swapped key."""


class KeyRefused(Exception):
    """A key request refused or failed; one-line message."""


class KeyVersionMismatch(KeyRefused):
    """The other side speaks another key protocol (an older or newer Knowledge Miner): asking
    again does not help until one of them is updated."""


def version_line(theirs: Any, who: str) -> str:
    """One line for a peer of key protocol `theirs` (`who`: "the key service at ...")."""
    if not isinstance(theirs, int) or isinstance(theirs, bool):
        return f"{who} names no readable key protocol version"
    if theirs < KEY_PROTOCOL:
        return (f"{who} runs an older Knowledge Miner (key protocol v{theirs}; this app speaks v{KEY_PROTOCOL}): "
                "it must be updated before the two can exchange keys")
    return (f"{who} runs a newer Knowledge Miner (key protocol v{theirs}; this app speaks v{KEY_PROTOCOL}): "
            "update this app")


class KeyUnreachable(KeyRefused):
    """The key service could not be reached at all (behind NAT, down): ask through another way."""


@dataclass(frozen=True)
class KeyRequest:
    """A verified request: `address` signed it; `items` None asks for the whole key."""

    address: str
    info_hash: str
    items: tuple[str, ...] | None


class KeyRing:
    """Content keys on disk, one 0600 JSON file per info hash; thread-safe."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._lock = threading.Lock()

    def _path(self, ih: str) -> Path:
        return self.folder / f"{ih}.json"

    def put(self, ih: str, key: bytes, header: Header, *, reader: str = "",
            units: dict[str, str] | None = None, free: tuple[str, ...] = ()) -> None:
        """Keep content `ih`'s key; `units`/`free`: its sample plan (see `limit_samples`), written
        in the same atomic step, so the key is never served without it (None: each item one unit)."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        names = [it.name for it in header.items]
        doc = {"key": key.hex(), "items": names, "reader": reader.lower(), "readers": [], "sampled": {}}
        if units is not None:
            doc.update(_plan(names, units, free))
        with self._lock:
            atomic_write_json(self._path(ih), doc, mode=0o600)

    def get(self, ih: str) -> dict | None:
        try:
            return json.loads(self._path(ih).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None

    def grant(self, ih: str, address: str) -> None:
        """Let `address` have the whole key (payment made, model bought)."""
        with self._lock:
            doc = self.get(ih)
            if doc is None:
                raise KeyRefused(f"no key for content {ih[:12]}…")
            if address.lower() not in doc["readers"]:
                doc["readers"].append(address.lower())
            atomic_write_json(self._path(ih), doc, mode=0o600)

    def limit_samples(self, ih: str, units: dict[str, str], free: tuple[str, ...] = ()) -> None:
        """Name the sample units of content `ih` (item -> unit, e.g. a frame's files -> the frame)
        and the `free` items outside the budget; items of neither stay sealed until payment."""
        with self._lock:
            doc = self.get(ih)
            if doc is None:
                raise KeyRefused(f"no key for content {ih[:12]}…")
            doc.update(_plan(doc["items"], units, free))
            atomic_write_json(self._path(ih), doc, mode=0o600)

    def drop(self, ih: str) -> None:
        self._path(ih).unlink(missing_ok=True)

    def answer(self, req: KeyRequest, authorize: Callable[[KeyRequest], bool] | None,
               sample_units: int = SAMPLE_UNITS) -> bytes | dict:
        """The whole key (bytes) or {item name: item key}, or raises `KeyRefused` saying why not."""
        with self._lock:
            doc = self.get(req.info_hash)
            if doc is None:
                raise KeyRefused("this node holds no key for that content")
            key = bytes.fromhex(doc["key"])
            full = req.address in doc["readers"]
            if req.items is None:
                if full or (authorize is not None and authorize(req)):
                    return key
                raise KeyRefused("not authorised for the whole key (payment not released, or not bought)")
            names = doc["items"]
            unknown = [n for n in req.items if n not in names]
            if unknown:
                raise KeyRefused(f"no item {unknown[0]!r} in that content")
            if not full and not (authorize is not None and authorize(req)):
                if req.address != doc["reader"]:
                    raise KeyRefused("not the party this content was shared for")
                sampled = set(doc["sampled"].get(req.address, ())) | set(req.items)
                why = sample_refusal(sampled, names, doc.get("units"), doc.get("free", ()), sample_units)
                if why:
                    raise KeyRefused(why)
                doc["sampled"][req.address] = sorted(sampled)
                atomic_write_json(self._path(req.info_hash), doc, mode=0o600)
            return {n: item_key(key, names.index(n), n) for n in req.items}


def _plan(items: list[str], units: dict[str, str], free: tuple[str, ...]) -> dict:
    known = set(items)
    return {"units": {str(k): str(v) for k, v in units.items() if k in known},
            "free": sorted(n for n in free if n in known)}


MAIL_MAX_BODY_BYTES = 8 << 10
MAIL_PER_BOX = 256
MAIL_PER_SENDER = 8
MAIL_BOX_BYTES = 512 << 10
MAIL_TOTAL_BYTES = 64 << 20  # all boxes together: a relay's memory stays bounded
MAIL_MAX_BOXES = 10_000
MAIL_TTL_S = 900.0  # what it carries (signed requests) is refused after 10 minutes anyway
MAIL_TAKE_BYTES = 48 << 10  # one take answers at most this much (its line stays under MAX_LINE_BYTES)
MAIL_SEEN_MAX = 200_000
MAIL_PENDING_MAX = 100_000
"""Key requests through this relay whose reply may still come (address, nonce): the oldest go
first past this many (a reply to a forgotten one is refused; its asker asks again)."""
MAIL_REPLY_TO_MAX = 16
"""Request nonces one take may name (`take_mail(reply_to=...)`)."""
MAIL_KEY_REQUEST = "key_request"
"""The `kind` of a buyer's key request left for a seller (a filtered take by the seller's own
buyer side leaves these; the seller takes them with `take_mail(kind=...)`)."""


def mail_reply_to(body: dict) -> str | None:
    """The request nonce a message answers: its `reply_to` (a string), or, for a key reply of an
    older Knowledge Miner (key protocol v1: no `reply_to`), its `nonce`; else None."""
    r = body.get("reply_to")
    if r is None and body.get("kind") == "key_reply":
        r = body.get("nonce")
    return r if isinstance(r, str) else None


class Mailbox:
    """A relay's in-memory mailbox: at most MAIL_PER_BOX messages of at most MAIL_MAX_BODY_BYTES
    per recipient, MAIL_PER_SENDER of them from one sender (one stranger cannot fill a seller's
    box; the seller empties it every few seconds), kept MAIL_TTL_S; a request nonce is accepted
    once (a replayed signed request does nothing). A reply is taken only for a key request its
    addressee left here for its sender (`post`). Thread-safe. A relay restart loses mail:
    senders ask again."""

    def __init__(self, *, per_box: int = MAIL_PER_BOX, per_sender: int = MAIL_PER_SENDER,
                 max_boxes: int = MAIL_MAX_BOXES, ttl_s: float = MAIL_TTL_S):
        self.per_box, self.per_sender, self.max_boxes, self.ttl_s = per_box, per_sender, max_boxes, ttl_s
        self._boxes: dict[str, list[tuple[float, str, dict, int]]] = {}
        self._seen: dict[str, float] = {}  # insertion order = expiry order (one lifetime for all)
        # (asker, request nonce) -> (the address asked, until): a reply is taken only for these
        self._pending: dict[tuple[str, str], tuple[str, float]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def fresh(self, nonce: str) -> bool:
        """False for a nonce seen in the last 2 x MAX_SKEW_S (a replayed request)."""
        now = time.time()
        with self._lock:
            while self._seen:  # the oldest first; also when too many
                oldest, until = next(iter(self._seen.items()))
                if until > now and len(self._seen) < MAIL_SEEN_MAX:
                    break
                del self._seen[oldest]
            if self._seen.get(nonce, 0) > now:
                return False
            self._seen[nonce] = now + 2 * MAX_SKEW_S
            return True

    def _expire(self, to: str, now: float) -> list:
        """`to`'s box without what expired (kept so: the byte count stays true)."""
        box = self._boxes.get(to, [])
        keep = [m for m in box if m[0] > now]
        if len(keep) != len(box):
            self._bytes -= sum(m[3] for m in box if m[0] <= now)
            self._boxes[to] = keep
        return keep

    def post(self, sender: str, to: str, body: dict) -> None:
        """A message that answers a request (a string `reply_to`, see `mail_reply_to`) is taken
        only as the reply to a key request that `to` left here for `sender` and that waits for
        it (once; within MAIL_TTL_S): junk replies cannot fill a box, and a real reply is not
        held back by what fills it (the box's limits do not apply to it; the relay's do)."""
        now = time.time()
        size = len(json.dumps(body))
        sender, to = sender.lower(), to.lower()
        r = mail_reply_to(body)
        with self._lock:
            self._prune_pending(now)
            if r is not None:
                got = self._pending.get((to, r))
                if got is None or got[0] != sender or got[1] <= now:
                    raise KeyRefused("no key request of that address through this relay waits for this reply")
            box = self._expire(to, now)
            if r is None and (len(box) >= self.per_box or sum(m[3] for m in box) + size > MAIL_BOX_BYTES):
                raise KeyRefused("that mailbox is full; try again later")
            if r is None and sum(1 for m in box if m[1] == sender) >= self.per_sender:
                raise KeyRefused("too many of your messages wait in that mailbox; try again later")
            if (to not in self._boxes and len(self._boxes) >= self.max_boxes) or self._bytes + size > MAIL_TOTAL_BYTES:
                for k in list(self._boxes):
                    self._boxes[k] = self._expire(k, now)
                    if not self._boxes[k]:
                        del self._boxes[k]
                if len(self._boxes) >= self.max_boxes or self._bytes + size > MAIL_TOTAL_BYTES:
                    raise KeyRefused("the relay's mailboxes are full; try again later")
            box.append((now + self.ttl_s, sender, body, size))
            self._boxes[to] = box
            self._bytes += size
            if r is not None:
                del self._pending[(to, r)]  # answered: a second reply to it is refused
            elif body.get("kind") == MAIL_KEY_REQUEST and isinstance(body.get("request"), dict):
                nonce = body["request"].get("nonce")
                if isinstance(nonce, str) and 0 < len(nonce) <= 64:
                    self._pending.pop((sender, nonce), None)
                    self._pending[(sender, nonce)] = (to, now + self.ttl_s)
                    while len(self._pending) > MAIL_PENDING_MAX:
                        del self._pending[next(iter(self._pending))]

    def _prune_pending(self, now: float) -> None:
        while self._pending:  # insertion order = expiry order (one lifetime for all)
            oldest, (_, until) = next(iter(self._pending.items()))
            if until > now:
                break
            del self._pending[oldest]

    def take(self, address: str, *, reply_to: Collection[str] | None = None, kind: str | None = None) -> list[dict]:
        """The oldest messages for `address`, at most MAIL_TAKE_BYTES of them (removed); the rest
        stays for the next take. With `reply_to` (request nonces), only the messages whose body's
        `reply_to` is one of them (a string): two requests of one address never take each other's
        replies. With `kind`, only the messages whose body's `kind` is that (a seller takes its key
        requests, leaving the replies to what it bought). A filtered take also drops what no
        filtered take could ever take (a body with no string `reply_to` that is not a key request:
        strangers' junk), so junk cannot keep a box full for its whole life."""
        now = time.time()
        out: list[dict] = []
        used, full = 0, False
        keep: list[tuple[float, str, dict, int]] = []
        with self._lock:
            box = self._expire(address, now)
            for m in box:
                body, size = m[2], m[3]
                r = mail_reply_to(body)
                if (reply_to is not None or kind is not None) and r is None and body.get("kind") != MAIL_KEY_REQUEST:
                    continue  # junk no filtered take would ever take: dropped
                if (reply_to is not None and not (r is not None and r in reply_to)) \
                        or (kind is not None and body.get("kind") != kind):
                    keep.append(m)  # another request's reply, or a key request for the seller at this address
                    continue
                full = full or used + size > MAIL_TAKE_BYTES  # the oldest first: none overtakes
                if full:
                    keep.append(m)
                    continue
                out.append({"from": m[1], "body": body})
                used += size
            # one change, after the loop: what left the box (taken or dropped) leaves the byte count
            self._bytes -= sum(m[3] for m in box) - sum(m[3] for m in keep)
            if keep:
                self._boxes[address] = keep
            else:
                self._boxes.pop(address, None)
        return out

    def held_bytes(self) -> tuple[int, int]:
        """(the byte count kept, the sum of the sizes held): equal, always (for tests and checks)."""
        with self._lock:
            return self._bytes, sum(m[3] for box in self._boxes.values() for m in box)


class KeyServer:
    """Answers signed key requests on a TCP port (threads; `close()` stops it)."""

    def __init__(self, ring: KeyRing, listen: str, *, authorize: Callable[[KeyRequest], bool] | None = None,
                 sample_units: int = SAMPLE_UNITS, on_mirror: Callable[[str, str, float], None] | None = None,
                 mailbox: Mailbox | None = None):
        """`on_mirror(address, uri, until_ts)`, set on a relay, takes signed mirror requests;
        `mailbox`, on a relay, keeps messages for addresses that cannot be dialed; `sample_units`
        is the k of `sampling.sample_budget` (what the buyers' samplers ask for)."""
        self.ring, self.authorize, self.sample_units = ring, authorize, sample_units
        self.on_mirror, self.mailbox = on_mirror, mailbox
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = IO_TIMEOUT_S

            def handle(self) -> None:
                line = self.rfile.readline(MAX_LINE_BYTES + 1)
                reply = outer._reply(line)
                self.wfile.write(json.dumps(reply).encode() + b"\n")

        class Server(GuardedServerMixin, socketserver.ThreadingTCPServer):
            daemon_threads = True
            block_on_close = False
            allow_reuse_address = True
            address_family = socket.AF_INET6 if ":" in listen.rsplit(":", 1)[0] else socket.AF_INET

        host, port = split_hostport(listen)
        self._srv = Server((host, port), Handler)
        # strangers reach this port: a bounded number of them, each for one request's time
        self._srv.guard = ConnectionGuard(MAX_CONNECTIONS, 2 * IO_TIMEOUT_S, busy=_BUSY_LINE,
                                          max_per_source=MAX_PER_SOURCE, source_of=source_of)
        self.port = self._srv.server_address[1]
        self._thread = threading.Thread(target=self._srv.serve_forever, name="key-server", daemon=True)
        self._thread.start()

    def _reply(self, line: bytes) -> dict:
        if len(line) > MAX_LINE_BYTES:
            return {"ok": False, "error": "request too large"}
        try:
            req = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "malformed request"}
        return self.answer(req)

    def answer(self, req: Any) -> dict:
        """The reply to one parsed request (a signed dict from `signed_key_request`), the same
        whether it came over our port or was relayed (a buyer's order desk, when we are
        behind NAT): refusals are {"ok": false, "error": ...}, never exceptions."""
        try:
            if not isinstance(req, dict) or req.get("op") not in ("key", "mirror", "post", "take"):
                raise KeyRefused("unknown request")
            if abs(time.time() - float(req.get("ts", 0))) > MAX_SKEW_S:
                raise KeyRefused("request too old or clock off by more than 10 minutes")
            address, pub = recover_signer(req)
            if req["op"] == "key" and req.get("v", 1) != KEY_PROTOCOL:
                raise KeyRefused(version_line(req.get("v", 1), "the asker").replace("this app", "this key service"))
            if req["op"] in ("post", "take"):
                return self._mail(req, address)
            if req["op"] == "mirror":
                if self.on_mirror is None:
                    raise KeyRefused("this node is not a relay")
                self.on_mirror(address, str(req.get("uri", "")), float(req.get("until_ts", 0)))
                return {"ok": True}
            items = req.get("items")
            if items is not None and (not isinstance(items, list) or not all(isinstance(n, str) for n in items)):
                raise KeyRefused("items must be a list of names")
            kr = KeyRequest(address, str(req.get("info_hash", "")), None if items is None else tuple(items))
            got = self.ring.answer(kr, self.authorize, self.sample_units)
            body = {"key": got.hex()} if isinstance(got, bytes) else {"items": {n: k.hex() for n, k in got.items()}}
            body.update(v=KEY_PROTOCOL, nonce=str(req.get("nonce", ""))[:64], info_hash=kr.info_hash)
            log.info("key %s for %s… released to %s", "whole" if isinstance(got, bytes) else f"{len(got)} items",
                     kr.info_hash[:12], address)
            return {"ok": True, "v": KEY_PROTOCOL, "envelope": seal_to(pub, json.dumps(body).encode()).hex()}
        except (KeyRefused, CryptoError) as e:
            return {"ok": False, "error": str(e)}
        except (ValueError, TypeError):
            return {"ok": False, "error": "malformed request"}

    def _mail(self, req: dict, address: str) -> dict:
        if self.mailbox is None:
            raise KeyRefused("this node keeps no mailbox (not a relay)")
        if not self.mailbox.fresh(f"{address}:{req.get('nonce')}"):
            raise KeyRefused("this request was already used")
        if req["op"] == "take":
            want = req.get("reply_to")
            if want is not None and (not isinstance(want, list) or len(want) > MAIL_REPLY_TO_MAX
                                     or not all(isinstance(n, str) for n in want)):
                raise KeyRefused(f"reply_to is a list of at most {MAIL_REPLY_TO_MAX} request nonces")
            kind = req.get("kind")
            if kind is not None and (not isinstance(kind, str) or len(kind) > 64):
                raise KeyRefused("kind is a short string")
            return {"ok": True, "mail": self.mailbox.take(address, reply_to=None if want is None else set(want),
                                                          kind=kind)}
        to, body = str(req.get("to", "")).lower(), req.get("body")
        if len(to) != 42 or not to.startswith("0x") or not isinstance(body, dict):
            raise KeyRefused("a post needs `to` (a 0x address) and a `body` object")
        if len(json.dumps(body)) > MAIL_MAX_BODY_BYTES:
            raise KeyRefused(f"a message is at most {MAIL_MAX_BODY_BYTES} bytes")
        self.mailbox.post(address, to, body)
        return {"ok": True}

    def close(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()
        self._srv.guard.close()


def post_mail(control: str, to: str, body: dict, private_key: bytes, *, timeout_s: float = IO_TIMEOUT_S) -> None:
    """Leave `body` for address `to` at a relay's mailbox (`control` host:port), signed by us."""
    req = {"op": "post", "to": to.lower(), "body": body, "ts": int(time.time()), "nonce": os.urandom(8).hex()}
    _call(control, sign_request(private_key, req), timeout_s)


def take_mail(control: str, private_key: bytes, *, reply_to: list[str] | None = None, kind: str | None = None,
              timeout_s: float = IO_TIMEOUT_S) -> list[dict]:
    """What a relay's mailbox holds for our address ([{"from", "body"}]), taken out of it; with
    `reply_to` (our request nonces, at most MAIL_REPLY_TO_MAX), only the replies to those (the
    rest stays for whoever asked it); with `kind`, only messages of that kind."""
    req = {"op": "take", "ts": int(time.time()), "nonce": os.urandom(8).hex()}
    if reply_to is not None:
        req["reply_to"] = list(reply_to)[-MAIL_REPLY_TO_MAX:]
    if kind is not None:
        req["kind"] = kind
    reply = _call(control, sign_request(private_key, req), timeout_s)
    mail = reply.get("mail")
    if not isinstance(mail, list):
        raise KeyRefused(f"relay {control} sent a malformed mailbox")
    return [m for m in mail if isinstance(m, dict) and isinstance(m.get("body"), dict) and isinstance(m.get("from"), str)
            and (reply_to is None or mail_reply_to(m["body"]) in reply_to)
            and (kind is None or m["body"].get("kind") == kind)]


def control_of(peer: str) -> str:
    """A relay's control address (its key service / mailbox): its peer port + 1."""
    host, port = split_hostport(peer)
    return f"[{host}]:{port + 1}" if ":" in host else f"{host}:{port + 1}"


def signed_key_request(info_hash: str, private_key: bytes, *, items: list[str] | None = None) -> dict:
    """A key request signed by `private_key` (the whole key, or `items`), to send to a key
    service directly (`request_key`) or have relayed to it (`KeyServer.answer`)."""
    body = {"op": "key", "v": KEY_PROTOCOL, "info_hash": info_hash, "items": items, "ts": int(time.time()),
            "nonce": os.urandom(8).hex()}
    return sign_request(private_key, body)


def open_key_reply(reply: Any, private_key: bytes, source: str, *, nonce: str | None = None,
                   info_hash: str | None = None) -> bytes | dict[str, bytes]:
    """The whole key or {item: key} from a key service's reply (only the asker can open it);
    `KeyRefused` for a refusal or an envelope that does not open. `source` names who answered.
    `nonce` / `info_hash`: the request this must answer, checked inside the sealed envelope (a
    go-between cannot hand us the answer to another of our requests instead)."""
    if not isinstance(reply, dict) or not reply.get("ok"):
        why = reply.get("error", "refused") if isinstance(reply, dict) else "bad reply"
        raise KeyRefused(f"{source}: {str(why)[:200]}")
    if reply.get("v", 1) != KEY_PROTOCOL:  # (an older service names no version, nor its request)
        raise KeyVersionMismatch(version_line(reply.get("v", 1), source))
    try:
        body = json.loads(open_sealed(private_key, bytes.fromhex(reply["envelope"])))
        if (nonce is not None and body.get("nonce") != nonce) or (info_hash is not None and body.get("info_hash") != info_hash):
            raise KeyRefused(f"{source} sent the answer to another request")
        if "key" in body:
            return bytes.fromhex(body["key"])
        return {str(n): bytes.fromhex(k) for n, k in body["items"].items()}
    except (CryptoError, ValueError, KeyError, TypeError, AttributeError):
        raise KeyRefused(f"{source} sent an envelope that does not open") from None


def request_key(server: str, info_hash: str, private_key: bytes, *, items: list[str] | None = None,
                timeout_s: float = IO_TIMEOUT_S) -> bytes | dict[str, bytes]:
    """Ask `server` (host:port) for the whole key or some item keys; checked by the caller
    against the sealed header (`sealed.check_content_key` / `open_item`). `KeyUnreachable`
    when the server cannot be reached."""
    req = signed_key_request(info_hash, private_key, items=items)
    reply = _call(server, req, timeout_s)
    return open_key_reply(reply, private_key, f"key server {server}", nonce=req["nonce"], info_hash=info_hash)


def request_mirror(control: str, uri: str, until_ts: float, private_key: bytes, *, timeout_s: float = IO_TIMEOUT_S) -> None:
    """Ask a relay (its control host:port) to fetch and serve `uri` until `until_ts`."""
    body = {"op": "mirror", "uri": uri, "until_ts": until_ts, "ts": int(time.time()), "nonce": os.urandom(8).hex()}
    _call(control, sign_request(private_key, body), timeout_s)


def _call(server: str, req: dict, timeout_s: float) -> dict:
    """One request and its one-line reply, all within about `timeout_s` however slowly the
    server trickles bytes (KeyRefused), or KeyUnreachable when it cannot be reached."""
    deadline = time.monotonic() + timeout_s
    try:
        with socket.create_connection(split_hostport(server), timeout=timeout_s) as s:
            s.sendall(json.dumps(req).encode() + b"\n")
            buf = b""
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise KeyRefused(f"key server {server}: too slow (over {timeout_s:g} s)")
                s.settimeout(left)
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
                if len(buf) > MAX_LINE_BYTES + 1:
                    raise KeyRefused(f"key server {server}: the reply is too large")
            line = buf.split(b"\n", 1)[0]
    except TimeoutError:
        raise KeyRefused(f"key server {server}: too slow (over {timeout_s:g} s)") from None
    except OSError as e:
        raise KeyUnreachable(f"key server {server}: {e.strerror or e}") from None
    try:
        reply = json.loads(line)
    except ValueError:
        raise KeyRefused(f"key server {server} sent a malformed reply") from None
    if not isinstance(reply, dict) or not reply.get("ok"):
        raise KeyRefused(f"key server {server}: {reply.get('error', 'refused') if isinstance(reply, dict) else 'bad reply'}")
    return reply
