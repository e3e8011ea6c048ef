"""Fuzzing every parser that takes a stranger's bytes (issue 16): whatever comes in, the answer
is a value or the parser's own one-line error, never another exception, a crash or a hang.

Hypothesis runs derandomized with no example database, so CI sees the same cases every run,
and each property is capped at a few seconds (FUZZ profile below)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import web3  # noqa: F401  (its recursion limit of 100,000 is where plain json.loads crashes)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from common.safejson import JsonLimits, SafeJsonError, loads_bounded

ROOT = Path(__file__).resolve().parents[2]
SHELF = json.loads((ROOT / "resources" / "scenes" / "retail_shelf.json").read_text())

FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=300,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

json_scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=5), max_leaves=40)
TOKENS = [b"[", b"]", b"{", b"}", b'"', b"\\", b",", b":", b"1", b"-", b"e", b"9" * 120, b"NaN", b"Infinity",
          b"\\u", b"d800", b"true", b" ", b"\x00", b"\xff", b"1e999", b'"a"']
token_soup = st.lists(st.sampled_from(TOKENS), max_size=200).map(b"".join)


def _depth(v) -> int:
    """Nesting depth of a decoded value, without recursion; every float in it must be finite."""
    best, stack = 0, [(v, 1)]
    while stack:
        x, d = stack.pop()
        assert not isinstance(x, float) or math.isfinite(x), x
        if isinstance(x, (list, dict)):
            best = max(best, d)
            stack.extend((c, d + 1) for c in (x.values() if isinstance(x, dict) else x))
    return best


LIMITS = JsonLimits(max_depth=6, max_items=200, max_string_bytes=64, max_number_chars=40)


@FUZZ
@given(st.binary(max_size=400) | token_soup)
def test_safe_json_on_any_bytes_is_a_value_within_limits_or_its_own_error(data):
    try:
        v = loads_bounded(data, LIMITS)
    except SafeJsonError as e:
        assert "\n" not in str(e)
        return
    assert _depth(v) <= LIMITS.max_depth
    assert v == json.loads(data.decode("utf-8").removeprefix("\ufeff"))


@FUZZ
@given(json_values)
def test_safe_json_reads_what_json_writes(value):
    text = json.dumps(value)
    try:
        got = loads_bounded(text.encode("utf-8", "surrogatepass"), JsonLimits(max_depth=64))
    except SafeJsonError as e:  # only for what the policy refuses: lone surrogates, duplicate keys
        assert "surrogate" in str(e) or "duplicate" in str(e), str(e)
        return
    assert got == json.loads(text)


@FUZZ
@given(st.integers(1, 80).flatmap(lambda d: st.lists(st.sampled_from(["[", '{"k":']), min_size=d, max_size=d)),
       st.booleans())
@example(["["] * 32, True)
@example(["["] * 33, True)
@example(['{"k":', "["] * 16 + ["["], True)
@example(["["] * 33, False)
def test_safe_json_measures_depth_exactly_as_the_decoder_recurses(openers, closed):
    closers = {"[": "]", '{"k":': "}"}
    text = "".join(openers) + ("1" + "".join(closers[o] for o in reversed(openers)) if closed else "")
    depth = len(openers)
    try:
        v = loads_bounded(text.encode(), JsonLimits(max_depth=32))
    except SafeJsonError as e:
        assert ("nested too deep" in str(e)) == (depth > 32), (depth, str(e))
        assert closed or depth > 32 or "not valid JSON" in str(e)
        return
    assert closed and depth <= 32 and _depth(v) == depth


def _mutations(base: dict):
    """`base` with one value (at any depth) replaced by any JSON value, or one key added."""
    paths = []
    stack = [((), base)]
    while stack:
        path, node = stack.pop()
        paths.append(path)
        if isinstance(node, dict):
            stack.extend((path + (k,), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((path + (i,), v) for i, v in enumerate(node))

    def apply(args):
        path, value, add = args
        doc = json.loads(json.dumps(base))
        if not path:
            return value
        node = doc
        for p in path[:-1]:
            node = node[p]
        if add and isinstance(node, dict):
            node[f"x{path[-1]}"] = value
        else:
            node[path[-1]] = value
        return doc

    return st.tuples(st.sampled_from(paths), json_values | st.sampled_from([1e308, -1, 0, 10**30, "", [], {}]),
                     st.booleans()).map(apply)


@FUZZ
@given(_mutations({"id": "r1", "kind": "render", "params": {"scene": SHELF, "start": 0, "count": 20},
                   "resources": {"device": "any", "max_wall_s": 3600}, "inputs": {"a": {"sha256": "a" * 64}}}))
def test_job_spec_and_its_work_estimate_never_fail_other_than_by_their_errors(doc):
    from jobs.estimate import REFERENCE_RATES, EstimateError, estimate_job
    from jobs.spec import SpecError, parse_spec_bytes

    try:
        spec = parse_spec_bytes(json.dumps(doc).encode())
    except SpecError as e:
        assert "\n" not in str(e)
        return
    try:
        est = estimate_job(spec, images=100)
    except EstimateError as e:
        assert "\n" not in str(e)
        return
    for rate in REFERENCE_RATES.values():
        assert math.isfinite(est.seconds_max(rate)) and 0 < est.time_limit_s(rate) <= spec.resources.max_wall_s
        assert 0 < est.no_progress_s(rate) <= 3600


@FUZZ
@given(_mutations(SHELF))
def test_scene_spec_validation_never_fails_other_than_by_scene_error(doc):
    from jobs.render.spec import MAX_OBJECTS_PER_FRAME, MAX_DISTRACTORS, SceneError, parse_scene_bytes

    try:
        scene = parse_scene_bytes(json.dumps(doc).encode())
    except SceneError as e:
        assert "\n" not in str(e)
        return
    assert scene.max_objects_per_frame() <= MAX_OBJECTS_PER_FRAME + MAX_DISTRACTORS


@FUZZ
@given(st.binary(max_size=300) | token_soup | json_values.map(lambda v: json.dumps(v).encode()))
def test_rpc_reply_decoding_is_a_reply_or_rpc_bad_reply(raw):
    from wallet.errors import RpcBadReply
    from wallet.rpc_http import decode_reply

    try:
        doc = decode_reply(raw)
    except RpcBadReply as e:
        assert "\n" not in str(e) and len(str(e)) < 300
        return
    assert isinstance(doc, (dict, list))


def _render_card() -> dict:
    return {"format": "kminer-render-dataset", "version": 1, "scene": "s", "spec_hash": "a" * 64, "seed": 3,
            "frame_ranges": [[0, 6]], "counts": {"images": 6, "objects": 40}, "class_histogram": {"a": 3},
            "time": {"started_utc": "2026-01-01T00:00:00Z", "seconds": 1.5}, "software": {"gl_renderer": "x"}}


@FUZZ
@given(_mutations(_render_card()))
def test_dataset_card_checks_never_fail_other_than_by_card_error(doc):
    from jobs.render.dataset_card import CardError, check_card, check_meta

    try:
        card = check_card(doc)
    except CardError as e:
        assert "\n" not in str(e)
    else:
        assert all(b > a for a, b in card["frame_ranges"]) and isinstance(card["counts"], dict)
    try:
        check_meta(doc, 0)
    except CardError:
        pass


@FUZZ
@given(_mutations({"format": "kminer-model-card/1", "name": "m", "arch": "centernet-s", "task": "detect",
                   "classes": ["a", "b"], "input_size": [320, 240], "metrics": {"map50": 0.5},
                   "weights": {"file": "model.safetensors", "sha256": "b" * 64, "bytes": 10}}))
def test_model_card_checks_never_fail_other_than_by_train_error(doc):
    from jobs.train import TrainError
    from jobs.train.card import check_card

    try:
        card = check_card(doc)
    except TrainError as e:
        assert "\n" not in str(e)
        return
    assert isinstance(card.get("metrics", {}), dict) and all(isinstance(c, str) for c in card["classes"])


@FUZZ
@given(st.binary(max_size=300) | token_soup | json_values.map(lambda v: json.dumps(v).encode()))
def test_keystore_files_of_any_bytes_are_keystore_errors(tmp_path_factory, raw):
    from wallet.errors import KeystoreError
    from wallet.keystore import Keystore

    folder = tmp_path_factory.mktemp("ks")
    (folder / "a.json").write_bytes(raw)
    ks = Keystore(folder, scrypt_n=2**4, allow_weak_kdf=True)
    scan = ks.scan()
    assert len(scan.accounts) + len(scan.unusable) == 1
    if scan.unusable:
        with pytest.raises(KeystoreError):
            ks.accounts()
