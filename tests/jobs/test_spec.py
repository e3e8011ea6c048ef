"""Job specs: validation errors name the field; the committed JSON schema matches the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.spec import SpecError, load_spec, parse_spec, schema_text

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"id": "j1", "kind": "python", "inputs": {"module": {"sha256": "a" * 64, "uri": "m.py"}}}


def test_committed_schema_matches_the_model():
    committed = (ROOT / "resources" / "schemas" / "job.schema.json").read_text(encoding="utf-8")
    assert committed == schema_text(), "regenerate: python -m jobs.spec > resources/schemas/job.schema.json"


def test_valid_spec_gets_defaults():
    s = parse_spec(GOOD)
    assert s.resources.max_wall_s == 3600 and s.resources.device == "any" and s.carries_code


@pytest.mark.parametrize("patch, field", [
    ({"id": "../etc"}, "spec field id"),
    ({"inputs": {"module": {"sha256": "xyz"}}}, "spec field inputs.module.sha256"),
    ({"resources": {"max_ram_mb": 1}}, "spec field resources.max_ram_mb"),
    ({"resources": {"device": "tpu"}}, "spec field resources.device"),
    ({"surprise": 1}, "spec field surprise"),
    ({"inputs": {"../x": {"sha256": "a" * 64}}}, "spec field inputs"),
])
def test_invalid_spec_names_the_field(patch, field):
    with pytest.raises(SpecError) as e:
        parse_spec({**GOOD, **patch})
    assert str(e.value).startswith(field)
    assert "\n" not in str(e.value)


def test_unreadable_and_non_json_specs_are_one_line_errors(tmp_path):
    with pytest.raises(SpecError, match="cannot read spec"):
        load_spec(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON.*line 1"):
        load_spec(bad)
    bad.write_text(json.dumps([1, 2]))
    with pytest.raises(SpecError, match="top level must be a JSON object"):
        load_spec(bad)


def test_example_specs_are_valid():
    for p in sorted((ROOT / "resources" / "examples").glob("*.json")):
        data = json.loads(p.read_text())
        if isinstance(data, dict) and "kind" in data and "id" in data:
            load_spec(p)
