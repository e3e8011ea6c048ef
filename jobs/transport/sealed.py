"""Sealed archives: what actually travels between peers, encrypted item by item.

A sealed archive holds the files of a folder (or one file) as *items*, each encrypted with
its own key derived from one random content key K:

    K_i = HKDF(K, "km-item/1" || i || name)         key_hash_i = sha256(K_i)

Layout: MAGIC | u32 header length | header JSON | item 0 ciphertext | item 1 ... Each item
is cut in segments of `seg` plaintext bytes, each ChaCha20-Poly1305 sealed with nonce =
segment number and associated data = sha256(header) || final flag, so a segment cannot be
moved, dropped, reordered or spliced from another archive, and a truncated item fails.

Why per item: fair exchange. The header (names, sizes, key hashes) is inside the content
hash the miner commits to at submit; later the buyer picks items to sample, the miner hands
over just those K_i (each checked against its key_hash; how many: `jobs.transport.sampling`,
never the whole), and the rest stays unreadable
until K itself is revealed with payment (its keccak256 committed on chain). A stranger who
learns the content hash gets ciphertext only.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from jobs.transport.crypto import KEY_BYTES, hkdf

MAGIC = b"KMSEAL1\n"
SEG_BYTES = 1 << 16
TAG_BYTES = 16
MAX_HEADER_BYTES = 16 << 20
MAX_ITEMS = 200_000


class SealError(Exception):
    """A sealed archive that is malformed, altered, or opened with the wrong key."""


@dataclass(frozen=True)
class Item:
    """One file in a sealed archive: its relative name, plaintext size and key hash."""

    name: str
    size: int
    key_hash: str
    offset: int  # where its ciphertext starts in the archive


@dataclass(frozen=True)
class Header:
    items: tuple[Item, ...]
    seg: int
    digest: bytes  # sha256 of the header bytes, bound into every segment

    def item(self, name: str) -> tuple[int, Item]:
        for i, it in enumerate(self.items):
            if it.name == name:
                return i, it
        raise SealError(f"no item {name!r} in the sealed archive")


def item_key(content_key: bytes, index: int, name: str) -> bytes:
    return hkdf(content_key, b"km-item/1" + struct.pack(">I", index) + name.encode())


def _key_hash(k: bytes) -> str:
    return hashlib.sha256(k).hexdigest()


def _ct_size(size: int, seg: int) -> int:
    n = max(1, -(-size // seg))
    return size + n * TAG_BYTES


def _files(src: Path) -> list[tuple[str, Path]]:
    """(relative name, path) of every regular file under `src`, sorted; links refused."""
    if src.is_file():
        return [(src.name, src)]
    out = []
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        dirnames.sort()
        for name in filenames:
            p = Path(dirpath, name)
            if p.is_symlink() or not p.is_file():
                raise SealError(f"{p.relative_to(src)}: only regular files can be sealed")
            out.append((p.relative_to(src).as_posix(), p))
        for d in dirnames:
            if Path(dirpath, d).is_symlink():
                raise SealError(f"{Path(dirpath, d).relative_to(src)}: links cannot be sealed")
    return sorted(out)


def seal(src: Path, out: Path, content_key: bytes, *, seg: int = SEG_BYTES) -> Header:
    """Write the sealed archive of file or folder `src` to `out` (atomically)."""
    if len(content_key) != KEY_BYTES:
        raise SealError("a content key is 32 bytes")
    files = _files(Path(src))
    keys = [item_key(content_key, i, name) for i, (name, _) in enumerate(files)]
    rows = [{"name": n, "size": p.stat().st_size, "key_hash": _key_hash(k)} for (n, p), k in zip(files, keys)]
    raw = json.dumps({"v": 1, "seg": seg, "items": rows}, sort_keys=True, separators=(",", ":")).encode()
    header = _parse_header(raw)
    tmp = out.with_name(f".{out.name}.part")
    try:
        with open(tmp, "wb") as f:
            f.write(MAGIC + struct.pack(">I", len(raw)) + raw)
            for (name, path), k, it in zip(files, keys, header.items):
                with open(path, "rb") as src_f:
                    for block in _seal_item(k, header.digest, it.size, seg, src_f):
                        f.write(block)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return header


def _seal_item(k: bytes, digest: bytes, size: int, seg: int, f) -> Iterator[bytes]:
    aead = ChaCha20Poly1305(k)
    n = max(1, -(-size // seg))
    for s in range(n):
        chunk = f.read(seg)
        if len(chunk) != min(seg, size - s * seg):
            raise SealError("a file changed size while it was being sealed")
        yield aead.encrypt(_nonce(s), chunk, digest + bytes([s == n - 1]))


def _nonce(s: int) -> bytes:
    return b"\0\0\0\0" + struct.pack(">Q", s)


def _parse_header(raw: bytes) -> Header:
    try:
        doc = json.loads(raw)
        seg = int(doc["seg"])
        rows = doc["items"]
        if doc.get("v") != 1 or not (1024 <= seg <= 1 << 24) or not isinstance(rows, list) or len(rows) > MAX_ITEMS:
            raise ValueError
        offset = len(MAGIC) + 4 + len(raw)
        items = []
        for r in rows:
            name, size, kh = str(r["name"]), int(r["size"]), str(r["key_hash"])
            if size < 0 or len(kh) != 64 or name.startswith("/") or ".." in name.split("/") or not name:
                raise ValueError
            items.append(Item(name, size, kh, offset))
            offset += _ct_size(size, seg)
    except (ValueError, KeyError, TypeError):
        raise SealError("the sealed archive's header is malformed") from None
    return Header(tuple(items), seg, hashlib.sha256(raw).digest())


def read_header(path: Path) -> Header:
    """The header of a sealed archive (no key needed: names, sizes, key hashes)."""
    with open(path, "rb") as f:
        head = f.read(len(MAGIC) + 4)
        if len(head) != len(MAGIC) + 4 or head[: len(MAGIC)] != MAGIC:
            raise SealError(f"{path.name} is not a sealed archive")
        (n,) = struct.unpack(">I", head[len(MAGIC):])
        if n > MAX_HEADER_BYTES:
            raise SealError("the sealed archive's header is too large")
        raw = f.read(n)
    if len(raw) != n:
        raise SealError("the sealed archive is truncated")
    return _parse_header(raw)


def sample_keys(content_key: bytes, header: Header, names: Iterable[str]) -> dict[str, bytes]:
    """The item keys a miner hands a buyer for the items it chose to sample."""
    out = {}
    for name in names:
        i, _ = header.item(name)
        out[name] = item_key(content_key, i, name)
    return out


def check_content_key(header: Header, content_key: bytes) -> None:
    """Raise `SealError` unless every item key derived from `content_key` matches its hash
    (the proof a revealed key opens the whole committed result)."""
    for i, it in enumerate(header.items):
        if _key_hash(item_key(content_key, i, it.name)) != it.key_hash:
            raise SealError(f"the content key does not open item {it.name!r}")


def open_item(path: Path, header: Header, name: str, key: bytes, out: Path) -> Path:
    """Decrypt one item with its own key (checked against the header first) to `out`."""
    i, it = header.item(name)
    if _key_hash(key) != it.key_hash:
        raise SealError(f"the key given for {name!r} is not the one the archive committed to")
    tmp = out.with_name(f".{out.name}.part")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "rb") as f, open(tmp, "wb") as o:
            f.seek(it.offset)
            aead = ChaCha20Poly1305(key)
            n = max(1, -(-it.size // header.seg))
            for s in range(n):
                want = min(header.seg, it.size - s * header.seg) + TAG_BYTES
                ct = f.read(want)
                if len(ct) != want:
                    raise SealError(f"{name!r}: the sealed archive is truncated")
                try:
                    o.write(aead.decrypt(_nonce(s), ct, header.digest + bytes([s == n - 1])))
                except InvalidTag:
                    raise SealError(f"{name!r}: segment {s} was altered") from None
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


def unseal(path: Path, content_key: bytes, dest: Path) -> Path:
    """Decrypt every item into folder `dest` (must not exist); verified before it appears."""
    header = read_header(path)
    check_content_key(header, content_key)
    if dest.exists():
        raise SealError(f"{dest} already exists")
    tmp = dest.with_name(f".{dest.name}.part")
    try:
        for i, it in enumerate(header.items):
            open_item(path, header, it.name, item_key(content_key, i, it.name), tmp.joinpath(*it.name.split("/")))
        tmp.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
