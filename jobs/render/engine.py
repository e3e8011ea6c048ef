"""The `render` job engine: a thin adapter from `JobContext` to `render_dataset`.

params: `scene` (the spec as a JSON object) unless an input named `scene` (a JSON file) is
given; `start` (default 0), `count` (default the spec's outputs.count - start), `seed`
(default the spec's outputs.seed). inputs: user files by sha256 (meshes, label and
background images). The dataset goes straight into `ctx.out_dir` (see dataset.py's layout).
"""

from __future__ import annotations

from pathlib import Path

from jobs.render.dataset import RenderError, render_dataset
from jobs.render.spec import SceneError, load_scene, parse_render_params


def run(ctx) -> dict:
    from jobs.engine import EngineError

    try:
        scene = load_scene(Path(ctx.inputs["scene"])) if "scene" in ctx.inputs else None
        rp, spec = parse_render_params(ctx.params, scene)
    except (SceneError, TypeError, ValueError) as e:
        raise EngineError(f"bad render parameters: {e}") from None
    start, count, seed = rp.start, rp.count, rp.seed
    by_hash = _inputs_by_hash(ctx.inputs)
    total = count if count is not None else max(0, spec.outputs.count - start)
    ctx.log(f"rendering scene '{spec.name}' frames {start}..{start + total - 1} (spec {spec.spec_hash()[:12]})")
    try:
        card = render_dataset(spec, Path(ctx.out_dir), start=start, count=count, seed=seed, inputs=by_hash,
                              progress=lambda k, n, msg: ctx.progress(k / n, msg),
                              cancelled=getattr(ctx, "cancelled", None))
    except (SceneError, RenderError) as e:
        raise EngineError(str(e)) from None
    if card["software"].get("gl_egl_error"):
        ctx.log(f"rendered with OSMesa (software fallback) because {card['software']['gl_egl_error']}", "warning")
    return {k: card[k] for k in ("scene", "spec_hash", "seed", "frame_ranges", "counts", "class_histogram", "time")} | {
        "gl": {k: v for k, v in card["software"].items() if k.startswith("gl_")}}


def _inputs_by_hash(inputs) -> dict[str, Path]:
    """The scene names user files by sha256; job inputs are named freely, so index by content."""
    from common.fsutil import sha256_file

    return {sha256_file(p): Path(p) for p in inputs.values() if Path(p).is_file()}
