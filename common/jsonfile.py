"""Reading user-supplied JSON files with one-line errors, and exporting model schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_BASE = "https://knowledge-miner.invalid/schemas/"


def read_json(path: str | Path, what: str, error: type[Exception]) -> Any:
    """Decode the JSON file `path`; any failure raises `error` with one line naming `what`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"cannot read {what} {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"cannot read {what} {path}: {e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{what} {path} is not valid JSON: line {e.lineno} column {e.colno}: {e.msg}") from None


def schema_text(model: Any, name: str) -> str:
    """The JSON schema of a pydantic model as committed under resources/schemas/<name>.schema.json."""
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"{SCHEMA_BASE}{name}.schema.json"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
