"""Market specs are a stranger's bytes (issue 16): nested 200,000 deep with a correct hash,
NaN, huge, a FIFO or a link in place of the stored file: one SpecError line each, quickly, and
the process goes on. A weights file that is not the card's never has its hash quoted."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from jobs.spec import SpecError, load_market_spec, parse_spec_bytes

GOOD = {"id": "j1", "kind": "render", "params": {"count": 2}}


def test_a_spec_nested_200000_deep_is_refused_in_milliseconds_with_web3_imported():
    import web3  # noqa: F401  (plain json.loads dies of SIGSEGV on this input once web3 is imported)

    spec = b'{"id": "j1", "kind": "render", "params": {"x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}}"
    assert hashlib.sha256(spec).hexdigest()  # what the market would hold: its hash checks out
    t0 = time.perf_counter()
    with pytest.raises(SpecError, match="^spec: nested too deep"):
        parse_spec_bytes(spec)
    assert time.perf_counter() - t0 < 1.0
    assert parse_spec_bytes(json.dumps(GOOD).encode()).id == "j1"  # and the next job is read as usual


@pytest.mark.parametrize("raw, words", [
    (b'{"id": "j1", "kind": "render", "resources": {"max_wall_s": NaN}}', "NaN is not allowed"),
    (b'{"id": "j1", "kind": "render", "resources": {"max_wall_s": 1e999}}', "out of range"),
    (b'{"id": "j1", "id": "j2", "kind": "render"}', "duplicate key 'id'"),
    (b'{"id": "j1", "kind": "render", "seed": ' + b"9" * 5000 + b"}", "a number written too long"),
    (b'{"id": "j1", "kind": "render", "resources": {"max_cpu_s": 1e30}}', "resources.max_cpu_s"),
    (b" " * (2 << 20), "too large"),
])
def test_poison_specs_are_one_line_spec_errors(raw, words):
    with pytest.raises(SpecError) as e:
        parse_spec_bytes(raw)
    assert words in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_a_stored_spec_that_is_a_fifo_or_a_link_is_refused_without_blocking(tmp_path):
    good = tmp_path / "good"
    good.write_text(json.dumps(GOOD))
    assert load_market_spec(good).id == "j1"
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(SpecError, match="not a regular file"):
        load_market_spec(tmp_path / "fifo")
    (tmp_path / "link").symlink_to(good)
    with pytest.raises(SpecError, match="symbolic link"):
        load_market_spec(tmp_path / "link")


def test_a_weights_file_that_is_not_the_cards_is_refused_without_quoting_its_hash(tmp_path):
    from jobs.train import TrainError
    from jobs.train.infer import load_model

    secret = tmp_path / "id_ed25519"
    secret.write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY----- not really")
    card = {"format": "kminer-model-card/1", "arch": "centernet-xs", "task": "detect", "classes": ["a"],
            "input_size": [128, 96], "weights": {"file": "id_ed25519", "sha256": "0" * 64}}
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(TrainError) as e:
        load_model(tmp_path)
    got = hashlib.sha256(secret.read_bytes()).hexdigest()
    assert "is not the one the card describes" in str(e.value)
    assert all(got[:n] not in str(e.value) for n in (6, 8, 12))
