"""Typed cards (jobs.cards): the committed JSON schemas match the pydantic models, the shipped
demo models' cards and a rendered dataset's card parse, and a bad card is one CardError line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.cards import SCHEMAS_DIR, CardError, parse_dataset_card, parse_model_card, schema_texts

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_card_schemas_match_the_models():
    for name, text in schema_texts().items():
        assert (SCHEMAS_DIR / name).read_text(encoding="utf-8") == text, f"regenerate: python -m jobs.cards ({name})"


@pytest.mark.parametrize("folder", ["shelf-detector", "product-classifier"])
def test_the_demo_models_cards_parse(folder):
    raw = json.loads((ROOT / "resources" / "models" / folder / "model_card.json").read_text(encoding="utf-8"))
    card = parse_model_card(raw)
    assert card.task in ("detect", "classify") and card.classes == raw["classes"]
    assert card.weights.sha256 == raw["weights"]["sha256"] and card.metric_value(raw["metric"]) is not None
    assert card.model_dump(mode="json", exclude_none=True)["production"] == raw["production"]  # unknown fields kept


def test_a_bad_card_is_one_line_naming_the_field():
    good = json.loads((ROOT / "resources" / "models" / "shelf-detector" / "model_card.json").read_text())
    for bad, field in ((good | {"format": "other"}, "format"), (good | {"input_size": [4, 4]}, "input_size.0"),
                       (good | {"classes": []}, "classes"), (good | {"weights": {"file": "../x"}}, "weights.file")):
        with pytest.raises(CardError, match=f"model card field {field}") as e:
            parse_model_card(bad)
        assert "\n" not in str(e.value)
    with pytest.raises(CardError, match="top level must be a JSON object"):
        parse_dataset_card([1, 2])
    with pytest.raises(CardError, match="dataset card field counts"):
        parse_dataset_card({"format": "kminer-render-dataset", "spec_hash": "ab", "seed": 1, "frame_ranges": [[0, 2]]})


def test_a_trained_model_folder_reads_typed_and_a_broken_one_is_one_line(tmp_path):
    from app.models import ModelError, read_trained_model

    m = read_trained_model(ROOT / "resources" / "models" / "shelf-detector")
    assert m.card.arch == "centernet-s" and m.curves and m.curves[-1]["epoch"] == m.card.training["epochs"] and m.curves_png.is_file()
    (tmp_path / "model_card.json").write_text('{"format": "kminer-model-card/1", "task": "detect"}')
    with pytest.raises(ModelError, match="model card field arch") as e:
        read_trained_model(tmp_path)
    assert "\n" not in str(e.value)
