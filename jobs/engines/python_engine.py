"""The `python` engine: runs a buyer's module, `run(ctx) -> dict | None`.

The buyer's code gets a `BuyerContext` and nothing else: its inputs (read-only paths), the
output folder, the device string, a progress callback and a seeded `random.Random`. It
runs only inside the worker, so the sandbox level decides what else it could reach; by
default the runtime runs this kind only under `strict`.

Parameters: `module` (the input holding the code: a .py file, or a folder), `file` (the
.py file inside that folder, default `main.py`), `entry` (function name, default `run`).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import random
import sys
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobs.engine import EngineError, JobContext


class PythonParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    module: str = Field("module", description="Name of the input holding the buyer's code.")
    file: str = Field("main.py", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]*\.py$",
                      description="The .py file to load when the input is a folder.")
    entry: str = Field("run", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="The function to call.")


class BuyerContext:
    """What buyer code sees. Deliberately small: no job folder, no spec, no runtime objects."""

    __slots__ = ("inputs", "out_dir", "device", "rng", "_progress")

    def __init__(self, inputs: Mapping[str, Path], out_dir: Path, device: str, seed: int, progress):
        self.inputs = MappingProxyType(dict(inputs))
        self.out_dir = out_dir
        self.device = device
        self.rng = random.Random(seed)
        self._progress = progress

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report progress in [0, 1]."""
        self._progress(fraction, message)


def _load(path: Path, base: Path | None):
    if base is not None:
        sys.path.insert(0, str(base))
    loader = importlib.machinery.SourceFileLoader("buyer_module", str(path))
    spec = importlib.util.spec_from_file_location("buyer_module", path, loader=loader)
    if spec is None or spec.loader is None:
        raise EngineError(f"cannot load buyer module {path.name}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["buyer_module"] = mod
    spec.loader.exec_module(mod)
    return mod


def run(ctx: JobContext) -> dict[str, Any]:
    try:
        p = PythonParams.model_validate(ctx.params)
    except ValidationError as e:
        err = e.errors()[0]
        raise EngineError(f"params.{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    if p.module not in ctx.inputs:
        raise EngineError(f"params.module: no input named {p.module!r}")
    src = ctx.inputs[p.module]
    if src.is_dir():
        path = (src / p.file)
        if ".." in Path(p.file).parts or not path.is_file():
            raise EngineError(f"params.file: {p.file!r} not found in input {p.module!r}")
        mod = _load(path, src)
    else:
        mod = _load(src, None)
    fn = getattr(mod, p.entry, None)
    if not callable(fn):
        raise EngineError(f"buyer module has no function {p.entry!r}")
    bctx = BuyerContext({k: v for k, v in ctx.inputs.items() if k != p.module}, ctx.out_dir, ctx.device,
                        ctx.seed, ctx.progress)
    returned = fn(bctx)
    if returned is not None and not isinstance(returned, dict):
        raise EngineError(f"{p.entry}() returned {type(returned).__name__}; return a dict or None")
    files = sum(1 for f in ctx.out_dir.rglob("*") if f.is_file())
    return {"returned": returned or {}, "output_files": files}
