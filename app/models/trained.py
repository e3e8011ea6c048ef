"""A trained model's folder as people look at it: its card (typed) and its training curves.

The Orders view shows a delivered model this way; reading the folder is file I/O, so call it
from a worker thread, never the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.models.types import ModelError
from common.safejson import CARD_LIMITS, SafeJsonError, load_file
from jobs.cards import CardError, ModelCard, parse_model_card
from jobs.train.card import CARD_NAME

CURVES_JSON = "curves.json"
CURVES_PNG = "curves.png"
MAX_CARD_BYTES = 4 << 20


@dataclass(frozen=True)
class TrainedModel:
    folder: Path
    card: ModelCard
    curves: tuple[dict[str, Any], ...]
    """One record per epoch (epoch, train_loss, map50 or accuracy...), oldest first."""
    curves_png: Path | None
    """The training-curve plot, when the folder has one."""


def read_trained_model(folder: str | Path) -> TrainedModel:
    """The model in `folder` (model_card.json, and curves.json / curves.png when present);
    ModelError in one line when its card is missing, too big or not a model card."""
    folder = Path(folder)
    try:  # a miner's delivery: read without links, capped, decoded with a depth limit
        card = parse_model_card(load_file(folder / CARD_NAME, CARD_LIMITS.but(max_bytes=MAX_CARD_BYTES),
                                          what="model card", root=folder))
    except SafeJsonError as e:
        if "file not found" in str(e):
            raise ModelError(f"no readable {CARD_NAME} in {folder}: file not found") from None
        raise ModelError(f"{folder / CARD_NAME}: {e}") from None
    except CardError as e:
        raise ModelError(f"{folder / CARD_NAME}: {e}") from None
    try:
        curves = load_file(folder / CURVES_JSON, CARD_LIMITS, what="curves", root=folder)
    except SafeJsonError:
        curves = []
    rows = tuple(c for c in curves if isinstance(c, dict)) if isinstance(curves, list) else ()
    png = folder / CURVES_PNG
    return TrainedModel(folder, card, rows, png if png.is_file() else None)
