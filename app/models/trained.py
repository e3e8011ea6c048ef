"""A trained model's folder as people look at it: its card (typed) and its training curves.

The Orders view shows a delivered model this way; reading the folder is file I/O, so call it
from a worker thread, never the GUI thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.models.types import ModelError
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
    try:
        raw = (folder / CARD_NAME).read_bytes()
        if len(raw) > MAX_CARD_BYTES:
            raise ModelError(f"{CARD_NAME} is larger than {MAX_CARD_BYTES >> 20} MiB")
        card = parse_model_card(json.loads(raw))
    except OSError as e:
        raise ModelError(f"no readable {CARD_NAME} in {folder}: {e.strerror or e}") from None
    except (ValueError, CardError) as e:  # JSON errors are ValueErrors too
        raise ModelError(f"{folder / CARD_NAME}: {e}") from None
    try:
        curves = json.loads((folder / CURVES_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        curves = []
    rows = tuple(c for c in curves if isinstance(c, dict)) if isinstance(curves, list) else ()
    png = folder / CURVES_PNG
    return TrainedModel(folder, card, rows, png if png.is_file() else None)
