"""Typed cards: the dataset card (`dataset.json` of a rendered dataset) and the model card
(`model_card.json` beside a model's weights), as pydantic models with JSON schemas in
resources/schemas/ (`python -m jobs.cards` rewrites them).

The engines write these cards; the app reads them from strangers (market results, listed
models), so every read goes through `parse_dataset_card` / `parse_model_card`: a card that
does not fit is one `CardError` line, never a KeyError deep in a view. Fields the format
does not name are kept (extra="allow") so a newer writer's additions survive a round trip.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from common.jsonfile import schema_text as _schema_text

__all__ = ["CardError", "DatasetCard", "ModelCard", "parse_dataset_card", "parse_model_card", "SCHEMAS_DIR"]

SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "resources" / "schemas"
DATASET_CARD_FORMAT = "kminer-render-dataset"
MODEL_CARD_FORMAT = "kminer-model-card/1"
Count = Annotated[int, Field(ge=0)]


class CardError(ValueError):
    """A card that is not one of ours or breaks its format; the message names the field."""


class _Card(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class DatasetCounts(_Card):
    images: Count
    objects: Count = 0
    annotations: Count = 0
    objects_below_threshold: Count = 0
    objects_unlabelled: Count = 0


class DatasetTime(_Card):
    started_utc: str = ""
    seconds: float = Field(0.0, ge=0)
    frames_per_s: float | None = None


class DatasetCard(_Card):
    """What a rendered dataset holds and how it was made (jobs.render.dataset writes it)."""

    format: Literal["kminer-render-dataset"] = Field("kminer-render-dataset", description="Always kminer-render-dataset.")
    version: int = Field(1, ge=1)
    scene: str = Field("", description="The scene's name.")
    spec_hash: str = Field(description="sha256 of the scene spec's canonical JSON.")
    seed: int
    frame_ranges: list[tuple[Count, Count]] = Field(description="[start, end) frame ranges, sorted.")
    image_size: tuple[int, int] | None = Field(None, description="Width and height in pixels.")
    counts: DatasetCounts
    class_histogram: dict[str, Count] = Field(default_factory=dict, description="Annotated boxes per category.")
    categories: list[str] = Field(default_factory=list)
    outputs: dict[str, Any] = Field(default_factory=dict, description="The scene's output switches.")
    software: dict[str, Any] = Field(default_factory=dict, description="Versions and the GL platform.")
    time: DatasetTime = Field(default_factory=DatasetTime)
    merged_from: list[str] | None = Field(None, description="The shard folders a merged dataset came from.")


class ModelWeights(_Card):
    file: str = Field("model.safetensors", description="The weights file beside the card (a bare name).")
    sha256: str | None = None
    bytes: Count | None = None
    dtype: str | None = None

    @field_validator("file")
    @classmethod
    def _bare_name(cls, v: str) -> str:
        if not v or "/" in v or "\\" in v or v.startswith("."):
            raise ValueError(f"names an invalid weights file {v!r}")
        return v


class ModelCard(_Card):
    """What a model is and what it claims (jobs.train writes it; the model market lists it)."""

    format: Literal["kminer-model-card/1"] = Field(description="Always kminer-model-card/1.")
    task: Literal["detect", "classify"]
    arch: str
    classes: list[str] = Field(min_length=1)
    input_size: tuple[Annotated[int, Field(ge=8, le=4096)], Annotated[int, Field(ge=8, le=4096)]] = Field(
        description="Width and height the model takes, in pixels.")
    weights: ModelWeights
    name: str | None = Field(None, description="A display name the seller chose.")
    seller: str | None = Field(None, pattern=r"^0x[0-9a-fA-F]{40}$",
                               description="The address that made and lists this card. The card's hash is on the "
                                           "chain, so the listing's seller (who signed the listing transaction) "
                                           "proves it only when it is this address; else it shows as unverified.")
    num_params: Count | None = None
    metric: str | None = Field(None, description="The headline metric's key in `metrics` (map50, accuracy).")
    metrics: dict[str, Any] = Field(default_factory=dict, description="On the validation split; fractions 0-1.")
    holdout_metrics: dict[str, Any] | None = Field(None, description="On held-out data, when measured.")
    datasets: list[dict[str, Any]] = Field(default_factory=list, description="The datasets it was trained on.")
    training_domain: str | None = Field(None, max_length=400,
                                        description="What the training images were, in one line (\"synthetic renders of "
                                                    "scene X only\"): the metrics hold there, not necessarily on photos.")
    evaluation_sets: list[dict[str, Any]] = Field(default_factory=list,
                                                  description="Where each metric was measured: name, what images, "
                                                              "how many, the figure.")
    domain_stats: dict[str, Any] | None = Field(None, description="Image statistics of the training images "
                                                                 "(jobs.domain): Try it warns on photos far from them.")
    split: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    software: dict[str, Any] = Field(default_factory=dict)
    created_utc: str | None = None

    def metric_value(self, key: str, *, holdout: bool = False) -> float | None:
        """A metric as a float (None when missing or not a number)."""
        v = (self.holdout_metrics or {}).get(key) if holdout else self.metrics.get(key)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _parse(model: type[_Card], data: Any, what: str) -> Any:
    if not isinstance(data, dict):
        raise CardError(f"{what}: the top level must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top)"
        raise CardError(f"{what} field {where}: {err['msg']}") from None


def parse_dataset_card(data: Any) -> DatasetCard:
    """A decoded dataset.json as a DatasetCard; CardError naming the first bad field."""
    return _parse(DatasetCard, data, "dataset card")


def parse_model_card(data: Any) -> ModelCard:
    """A decoded model_card.json as a ModelCard; CardError naming the first bad field."""
    return _parse(ModelCard, data, "model card")


def schema_texts() -> dict[str, str]:
    """File name under resources/schemas/ -> the schema text committed there."""
    return {"dataset-card.schema.json": _schema_text(DatasetCard, "dataset-card"),
            "model-card.schema.json": _schema_text(ModelCard, "model-card")}


if __name__ == "__main__":  # python -m jobs.cards: rewrite the card schemas in resources/schemas/
    for name, text in schema_texts().items():
        (SCHEMAS_DIR / name).write_text(text, encoding="utf-8")
        print(f"wrote {SCHEMAS_DIR / name}", file=sys.stderr)
