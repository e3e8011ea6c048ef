"""Reading user-supplied JSON files with one-line errors, and exporting model schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.boundedfile import BoundedReadError, read_bounded
from common.safejson import SPEC_LIMITS, JsonLimits, SafeJsonError, loads_bounded

SCHEMA_BASE = "https://knowledge-miner.invalid/schemas/"


def read_json(path: str | Path, what: str, error: type[Exception], limits: JsonLimits = SPEC_LIMITS) -> Any:
    """Decode the JSON file `path` within `limits` (size, depth...; see common.safejson); any
    failure raises `error` with one line naming `what`. A symlink the user made is followed."""
    path = Path(path)
    try:
        data = read_bounded(path, limits.max_bytes, what=what, follow_symlinks=True)
    except BoundedReadError as e:
        raise error(f"cannot read {e}") from None
    try:
        return loads_bounded(data, limits, what=f"{what} {path}")
    except SafeJsonError as e:
        raise error(str(e)) from None


def schema_text(model: Any, name: str) -> str:
    """The JSON schema of a pydantic model as committed under resources/schemas/<name>.schema.json."""
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"{SCHEMA_BASE}{name}.schema.json"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
