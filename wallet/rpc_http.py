"""A web3 HTTP provider that treats the node's reply as stranger data.

web3's own HTTPProvider reads a reply whole (`response.content`) and, when it is not JSON,
puts all of it in the exception message (a 20 MB reply of NUL bytes became 80 MB on stderr).
`BoundedHTTPProvider` instead streams the reply with a read timeout per chunk and a deadline
for the whole request, stops at `max_reply_bytes`, and decodes it with common.safejson. Every
failure is a `RpcBadReply` (bad or oversized reply) or a `requests` connection error / timeout
(the node cannot be reached; wallet.chain retries those), each with a short message.

Threading: like web3's provider, one instance may serve several threads (requests' Session).
"""

from __future__ import annotations

import time
from typing import Any

import requests
from web3 import HTTPProvider

from common.boundedfile import read_at_most
from common.safejson import RPC_LIMITS, SafeJsonError, loads_bounded
from wallet.errors import RpcBadReply

DEFAULT_TIMEOUT_S = 5.0
"""Per request: connecting, each read, and (x 2) the whole reply."""
MAX_REPLY_BYTES = RPC_LIMITS.max_bytes
_CHUNK = 64 << 10


class BoundedHTTPProvider(HTTPProvider):
    """HTTPProvider with capped, deadline-bound reads and safe decoding (module docstring)."""

    def __init__(self, endpoint_uri: str, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 max_reply_bytes: int = MAX_REPLY_BYTES, **kwargs: Any):
        super().__init__(endpoint_uri, request_kwargs={"timeout": timeout_s},
                         exception_retry_configuration=None, **kwargs)
        self.timeout_s = timeout_s
        self.max_reply_bytes = max_reply_bytes
        self._session = requests.Session()

    def _make_request(self, method: Any, request_data: bytes) -> bytes:
        headers = {**self.get_request_headers(), "Accept-Encoding": "identity"}  # no compression bombs
        status, reason, body = post_bounded(self._session, str(self.endpoint_uri), request_data, headers=headers,
                                            timeout_s=self.timeout_s, max_reply_bytes=self.max_reply_bytes,
                                            what=f"{method} reply")
        if status < 400:
            return body
        try:  # some nodes send their JSON-RPC error object with an HTTP error status
            if isinstance(decode_reply(body).get("error"), dict):
                return body
        except (RpcBadReply, AttributeError):
            pass
        if status >= 500 or status == 429:
            raise requests.ConnectionError(f"the node answered HTTP {status}")
        raise RpcBadReply(f"the node refused the request: HTTP {status} {reason[:60]}")

    def make_batch_request(self, batch_requests):  # type: ignore[override]
        raise NotImplementedError("batch requests are not used by the wallet")

    def decode_rpc_response(self, raw_response: bytes) -> Any:  # type: ignore[override]
        return decode_reply(raw_response, limits_bytes=self.max_reply_bytes)


def post_bounded(session: requests.Session, url: str, body: bytes, *, headers: dict[str, str], timeout_s: float,
                 max_reply_bytes: int, what: str = "reply") -> tuple[int, str, bytes]:
    """POST `body`; (HTTP status, reason, reply bytes): at most `max_reply_bytes`, within
    2 x `timeout_s` in all (a node that drips its reply a byte at a time is cut off too)."""
    deadline = time.monotonic() + 2 * timeout_s
    with session.post(url, data=body, headers=headers, timeout=(timeout_s, timeout_s), stream=True) as resp:
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_reply_bytes:
            raise RpcBadReply(f"the node's {what} is {int(declared):,} bytes (the limit is {max_reply_bytes:,})")

        def read(n: int) -> bytes:
            if time.monotonic() > deadline:
                raise requests.Timeout(f"the node's {what} took over {2 * timeout_s:g} s")
            return _read_some(resp, n)

        reply = read_at_most(read, max_reply_bytes)
        if len(reply) > max_reply_bytes:
            raise RpcBadReply(f"the node's {what} is over {max_reply_bytes:,} bytes")
        return resp.status_code, resp.reason or "", reply


def _read_some(resp: requests.Response, n: int) -> bytes:
    """Whatever bytes arrive next (at most `n`: read1 returns once some came), within one
    read timeout; urllib3's errors as the requests errors wallet.chain retries."""
    from urllib3.exceptions import ProtocolError, ReadTimeoutError

    try:
        return resp.raw.read1(min(n, _CHUNK), decode_content=False)
    except ReadTimeoutError:
        raise requests.Timeout("the node stopped sending its reply") from None
    except (ProtocolError, OSError) as e:
        raise requests.ConnectionError(f"the reply broke off ({type(e).__name__})") from None


def decode_reply(raw: bytes, *, limits_bytes: int = MAX_REPLY_BYTES) -> Any:
    """A JSON-RPC reply (object, or list for a batch) decoded within RPC_LIMITS; `RpcBadReply`
    naming what is wrong, never quoting more than a few bytes of it."""
    try:
        doc = loads_bounded(raw, RPC_LIMITS.but(max_bytes=limits_bytes), what="the node's reply")
    except SafeJsonError as e:
        raise RpcBadReply(f"{e}{_glimpse(raw)}") from None
    if isinstance(doc, dict):
        if "result" not in doc and not isinstance(doc.get("error"), dict):
            raise RpcBadReply(f"the node's reply is not a JSON-RPC response (no result or error){_glimpse(raw)}")
        return doc
    if isinstance(doc, list) and all(isinstance(d, dict) for d in doc):
        return doc
    raise RpcBadReply(f"the node's reply is not a JSON-RPC response{_glimpse(raw)}")


def _glimpse(raw: bytes) -> str:
    """The first bytes of a bad reply, printable, for the one-line message."""
    head = raw[:40].decode("utf-8", "replace")
    shown = "".join(c if c.isprintable() else "." for c in head)
    return f" (starts {shown!r}{'…' if len(raw) > 40 else ''}, {len(raw):,} bytes)" if raw else " (empty)"
