"""Small built-in engines the runtime itself uses: `sleep` (a timed, cancellable job for
scheduler tests, pause/resume and latency benchmarks). No buyer code runs here."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobs.engine import EngineError, JobContext


class SleepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(1.0, ge=0, le=86400, description="How long to run (wall seconds).")
    steps: int = Field(10, ge=1, le=100000, description="Progress lines to report.")
    output_bytes: int = Field(0, ge=0, le=1 << 30, description="Bytes written to out/result.bin at the end.")


def sleep(ctx: JobContext) -> dict[str, Any]:
    """Sleep `seconds` in `steps`, reporting progress; stops early when cancelled."""
    try:
        p = SleepParams.model_validate(ctx.params)
    except ValidationError as e:
        err = e.errors()[0]
        raise EngineError(f"params.{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    ctx.progress(0.0, "started")
    step = p.seconds / p.steps
    done = 0
    for i in range(p.steps):
        if ctx.cancelled():
            break
        time.sleep(step)
        done = i + 1
        ctx.progress(done / p.steps)
    if p.output_bytes:
        (ctx.out_dir / "result.bin").write_bytes(b"\0" * p.output_bytes)
    return {"steps_done": done, "seconds": p.seconds}
