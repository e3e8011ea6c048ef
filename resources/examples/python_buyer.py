"""Example buyer module for the `python` engine: estimates pi by Monte Carlo.

The runtime calls `run(ctx)`; `ctx` offers `inputs`, `out_dir`, `device`, `progress()`
and `rng` (a seeded random.Random), nothing else. Write results under `ctx.out_dir`.
"""

import json


def run(ctx):
    n, inside = 200_000, 0
    for i in range(n):
        x, y = ctx.rng.random(), ctx.rng.random()
        inside += x * x + y * y <= 1.0
        if i % 20_000 == 0:
            ctx.progress(i / n, "sampling")
    pi = 4.0 * inside / n
    (ctx.out_dir / "pi.json").write_text(json.dumps({"samples": n, "pi": pi}) + "\n")
    ctx.progress(1.0, "done")
    return {"pi": pi, "device": ctx.device}
