"""Sealed archives, envelopes and references, without a network."""

from __future__ import annotations

import os

import pytest

from jobs.transport.crypto import CryptoError, address_of, open_sealed, public_key, recover_signer, seal_to, sign_request
from jobs.transport.ref import RefError, parse_ref
from jobs.transport.sealed import SealError, check_content_key, open_item, read_header, sample_keys, seal, unseal


def _folder(tmp_path):
    src = tmp_path / "res"
    (src / "images").mkdir(parents=True)
    for i in range(3):
        (src / "images" / f"{i}.png").write_bytes(os.urandom(70_000 + i))
    (src / "coco.json").write_text("{}")
    return src


def test_a_sealed_folder_opens_whole_with_its_key_and_item_by_item_with_sample_keys(tmp_path):
    src, key = _folder(tmp_path), os.urandom(32)
    header = seal(src, tmp_path / "a.kmseal", key)
    h = read_header(tmp_path / "a.kmseal")
    assert h == header and [it.name for it in h.items][0] == "coco.json"
    k = sample_keys(key, h, ["images/1.png"])["images/1.png"]
    open_item(tmp_path / "a.kmseal", h, "images/1.png", k, tmp_path / "one.png")
    assert (tmp_path / "one.png").read_bytes() == (src / "images" / "1.png").read_bytes()
    with pytest.raises(SealError, match="not the one the archive committed to"):
        open_item(tmp_path / "a.kmseal", h, "images/2.png", k, tmp_path / "two.png")
    with pytest.raises(SealError, match="does not open"):
        check_content_key(h, os.urandom(32))
    unseal(tmp_path / "a.kmseal", key, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out" / "images").iterdir()) == ["0.png", "1.png", "2.png"]


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_altered_or_truncated_archive_is_refused_and_leaves_nothing(tmp_path, damage):
    src, key = _folder(tmp_path), os.urandom(32)
    path = tmp_path / "a.kmseal"
    seal(src, path, key)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[-100] ^= 1
    else:
        del data[-5000:]
    path.write_bytes(bytes(data))
    with pytest.raises(SealError):
        unseal(path, key, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_envelope_opens_only_for_its_recipient_and_signatures_recover_the_signer():
    me, other = os.urandom(32), os.urandom(32)
    blob = seal_to(public_key(me), b"secret")
    assert open_sealed(me, blob) == b"secret"
    with pytest.raises(CryptoError):
        open_sealed(other, blob)
    req = sign_request(me, {"op": "key", "n": 1})
    assert recover_signer(req)[0] == address_of(public_key(me))
    req["n"] = 2
    assert recover_signer(req)[0] != address_of(public_key(me))


def test_references_round_trip_and_bad_ones_say_why():
    uri = "magnet:?xt=urn:btmh:1220" + "ab" * 32 + "&dn=r.kmseal&xl=10&x.pe=10.0.0.1:6881&x.km=10.0.0.1:6890"
    ref = parse_ref(uri)
    assert ref.uri() == uri and ref.peers == ("10.0.0.1:6881",) and ref.key_servers == ("10.0.0.1:6890",)
    with pytest.raises(RefError, match="v2 info hash"):
        parse_ref("magnet:?xt=urn:btih:" + "ab" * 20)
    with pytest.raises(RefError, match="host:port"):
        parse_ref("magnet:?xt=urn:btmh:1220" + "ab" * 32 + "&x.pe=nope")
