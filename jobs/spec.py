"""Job specs: the pydantic model a buyer posts (as JSON) and a miner validates before running.

A spec names the engine (`kind`), its parameters (validated again by the engine's own
model), the inputs as content hashes plus where to fetch them, and the resources the job
needs. Units are in the field names (`_s`, `_mb`). `load_spec` turns any problem into one
`SpecError` line that names the field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from common.jsonfile import read_json
from common.jsonfile import schema_text as _schema_text
from common.safejson import SPEC_LIMITS, SafeJsonError, loads_bounded

SPEC_VERSION = 1
# Kinds whose spec carries buyer code: by default they run only under the strict sandbox.
CODE_KINDS = frozenset({"python"})
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_INPUTS = 4096


class SpecError(ValueError):
    """A spec that cannot be used; the message is one line naming the field."""


MAX_OUTPUT_FILES = 1_000_000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class InputRef(_Model):
    """One input: its content hash and where to get it."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", title="SHA-256",
                        description="Hex sha256 of the file, or of the folder's deterministic archive.")
    uri: str | None = Field(None, min_length=1, max_length=2048, title="URI",
                            description="Where to fetch it: a path relative to the spec file, file://, s3://... "
                                        "(any fsspec URL). Empty: it must already be in the artifact store.")
    type: Literal["file", "dir"] = Field("file", title="Type", description="A single file or a folder.")


class Resources(_Model):
    """What the job needs and may use; the runtime enforces the limits."""

    device: Literal["cpu", "gpu", "any"] = Field("any", title="Device kind", description="Where the job can run.")
    min_gpu_memory_mb: int = Field(0, ge=0, le=1 << 20, title="Min GPU memory (MB)",
                                   description="Only GPUs with at least this much memory take the job.")
    max_wall_s: float = Field(3600.0, gt=0, le=7 * 86400, title="Max wall time (s)",
                              description="Running time (pauses excluded) after which the job is killed.")
    max_cpu_s: int | None = Field(None, ge=1, le=4 * 7 * 86400, title="Max CPU time (s)",
                                  description="CPU seconds per process (RLIMIT_CPU); empty: 4x the wall limit.")
    max_ram_mb: int = Field(4096, ge=64, le=1 << 22, title="Max RAM (MB)",
                            description="Resident memory of the whole job (cgroup limit, or an RSS watchdog).")
    max_disk_mb: int = Field(1024, ge=1, le=1 << 24, title="Max output (MB)",
                             description="Total size of the output folder; the miner's own cap may be lower.")
    max_output_files: int = Field(10000, ge=1, le=MAX_OUTPUT_FILES, title="Max output files",
                                  description="Files and folders the job may leave (outputs, scratch and /tmp together); "
                                              "the miner's own cap may be lower.")
    max_silent_s: float | None = Field(None, ge=1, le=7 * 86400, title="Max time without progress (s)",
                                       description="Running time (pauses excluded) without a rising progress report "
                                                   "after which the job is stopped; empty: only the wall limit.")
    max_processes: int = Field(256, ge=1, le=4096, title="Max processes",
                               description="Processes and threads of the whole job (torch starts a thread per core).")
    max_open_files: int = Field(1024, ge=16, le=65536, title="Max open files", description="Per process (RLIMIT_NOFILE).")


class JobSpec(_Model):
    """A job as posted by a buyer."""

    spec_version: int = Field(SPEC_VERSION, ge=1, le=SPEC_VERSION, title="Spec version", description="Layout version.")
    id: str = Field(title="Job id", description="Letters, digits, '.', '_' or '-', up to 128 characters.")
    kind: str = Field(min_length=1, max_length=64, title="Kind",
                      description="The engine: python, render, train, infer, verify-render, verify-train...")
    params: dict[str, Any] = Field(default_factory=dict, title="Parameters",
                                   description="Engine parameters; the engine validates them.")
    inputs: dict[str, InputRef] = Field(default_factory=dict, max_length=MAX_INPUTS, title="Inputs",
                                        description="Input name -> content.")
    resources: Resources = Field(default_factory=Resources, title="Resources", description="Needs and limits.")
    seed: int = Field(0, ge=0, le=2**63 - 1, title="Seed", description="Seeds every random generator of the job.")

    @field_validator("id")
    @classmethod
    def _check_id(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError("use letters, digits, '.', '_' or '-' (up to 128), starting with a letter or digit")
        return v

    @field_validator("inputs")
    @classmethod
    def _check_inputs(cls, v: dict[str, InputRef]) -> dict[str, InputRef]:
        for name in v:
            if not _NAME.match(name) or name in (".", ".."):
                raise ValueError(f"input name {name!r}: use letters, digits, '.', '_' or '-' (up to 64)")
        return v

    @property
    def carries_code(self) -> bool:
        return self.kind in CODE_KINDS


def _where(err: dict[str, Any]) -> str:
    return ".".join(str(p) for p in err["loc"]) or "(top level)"


def parse_spec(data: Any) -> JobSpec:
    """Validate a decoded spec; raises `SpecError` naming the first bad field."""
    if not isinstance(data, dict):
        raise SpecError("spec: the top level must be a JSON object")
    try:
        return JobSpec.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise SpecError(f"spec field {_where(err)}: {err['msg']}{more}") from None


def load_spec(path: str | Path) -> JobSpec:
    """Read and validate a spec file (size and depth limited); every failure is one `SpecError` line."""
    return parse_spec(read_json(path, "spec", SpecError))


def parse_spec_bytes(data: bytes) -> JobSpec:
    """A spec as published by a stranger (the bytes whose hash the market holds): decoded
    within common.safejson.SPEC_LIMITS, then validated; every failure is one `SpecError` line."""
    try:
        return parse_spec(loads_bounded(data, SPEC_LIMITS, what="spec"))
    except SafeJsonError as e:
        raise SpecError(str(e)) from None


def load_market_spec(path: str | Path) -> JobSpec:
    """A fetched market spec file (from the artifact store): read without following links,
    at most SPEC_LIMITS.max_bytes, then `parse_spec_bytes`."""
    from common.boundedfile import BoundedReadError, read_bounded

    try:
        return parse_spec_bytes(read_bounded(path, SPEC_LIMITS.max_bytes, what="spec"))
    except BoundedReadError as e:
        raise SpecError(str(e)) from None


def schema_text() -> str:
    return _schema_text(JobSpec, "job")


if __name__ == "__main__":  # python -m jobs.spec > resources/schemas/job.schema.json
    print(schema_text(), end="")
