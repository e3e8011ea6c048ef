"""`kminer render`: render a synthetic dataset from a scene spec, merge shards, verify.

    kminer render SCENE.json --out DIR [--count N] [--start K] [--seed S] [--input FILE...] [--json]
    kminer render merge SHARD... --out DIR [--copy] [--json]
    kminer render verify DATASET [--scene SCENE.json] [--sample N] [--sample-seed S] [--json]
    kminer render preview SCENE.json --out FILE.png [--frame I] [--seed S] [--boxes] [--json]
    kminer render export DATASET --format yolo|kitti --out DIR [--json]

Rendering runs in this process (pyrender/OpenGL are imported only in the handler).
`--input` files are the meshes and images the scene names by sha256.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

from PIL import Image

from app.errors import UserError
from common.fsutil import atomic_write_bytes, sha256_file

# The domain this command drives is imported inside its handlers (see cli/commands/__init__.py).


def register(sub: Any) -> None:
    p = sub.add_parser(
        "render", help="render a labelled dataset from a scene (also: render merge, verify, preview, export)",
        description="Render frames of a scene spec into a COCO dataset folder; 'render merge SHARD... --out DIR' "
                    "merges shard folders; 'render verify DATASET' re-renders a random sample and compares; 'render preview SCENE --out F.png' renders one frame; "
                    "'render export DATASET --format yolo|kitti --out DIR' writes it in YOLO or KITTI layout.")
    p.add_argument("target", nargs="+", metavar="ARG", help="SCENE.json; or: merge SHARD...; or: verify DATASET; or: preview SCENE.json; or: export DATASET")
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (must be empty or absent)")
    p.add_argument("--count", type=int, metavar="N", help="frames to render (default: the scene's outputs.count - start)")
    p.add_argument("--start", type=int, default=0, metavar="K", help="first frame index (for shards)")
    p.add_argument("--seed", type=int, metavar="S", help="seed (default: the scene's outputs.seed)")
    p.add_argument("--input", type=Path, action="append", default=[], metavar="FILE",
                   help="a mesh or image the scene names by sha256 (repeatable)")
    p.add_argument("--copy", action="store_true", help="merge: copy files instead of hard-linking")
    p.add_argument("--scene", type=Path, metavar="SCENE", help="verify: the scene spec (default: DATASET/scene.json)")
    p.add_argument("--sample", type=int, default=5, metavar="N", help="verify: frames to re-render (default 5)")
    p.add_argument("--sample-seed", type=int, metavar="S", help="verify: seed of the frame sample (default random)")
    p.add_argument("--frame", type=int, default=0, metavar="I", help="preview: which frame (default 0)")
    p.add_argument("--boxes", action="store_true", help="preview: draw the boxes")
    p.add_argument("--format", choices=["yolo", "kitti"], help="export: the layout to write")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=run)


def _inputs(files: list[Path]) -> dict[str, Path]:
    out = {}
    for f in files:
        if not f.is_file():
            raise UserError(f"--input {f}: no such file")
        out[sha256_file(f)] = f
    return out


def _progress(quiet: bool):
    tty = sys.stderr.isatty()

    def report(k: int, n: int, msg: str) -> None:
        if quiet:
            return
        line = f"[{k}/{n}] {msg}"
        if tty:
            sys.stderr.write("\r" + line[:100].ljust(100) + ("\n" if k == n else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    return report


def run(args: argparse.Namespace) -> int:
    from jobs.render.dataset import RenderError  # deferred: loads numpy and trimesh
    from jobs.render.spec import SceneError

    first = args.target[0]
    try:
        if first == "merge" and not Path(first).is_file():
            return _merge(args)
        if first == "verify" and not Path(first).is_file():
            return _verify(args)
        if first == "preview" and not Path(first).is_file():
            return _preview(args)
        if first == "export" and not Path(first).is_file():
            return _export(args)
        return _render(args)
    except (SceneError, RenderError) as e:
        raise UserError(str(e)) from None


def _render(args: argparse.Namespace) -> int:
    from jobs.cards import parse_dataset_card
    from jobs.render.dataset import render_dataset  # deferred: loads numpy and trimesh
    from jobs.render.spec import load_scene

    if len(args.target) != 1:
        raise UserError("render takes one scene file (or: render merge SHARD... / render verify DATASET)")
    if args.out is None:
        raise UserError("--out DIR is required")
    if args.count is not None and args.count < 1:
        raise UserError("--count must be at least 1")
    spec = load_scene(args.target[0])
    card = render_dataset(spec, args.out, start=args.start, count=args.count, seed=args.seed,
                          inputs=_inputs(args.input), progress=_progress(args.json))
    if args.json:
        print(json.dumps(card, indent=2))
    else:
        c = parse_dataset_card(card)
        print(f"rendered {c.counts.images} frames of '{c.scene}' into {args.out}: {c.counts.annotations} boxes "
              f"({c.counts.objects_below_threshold} objects under the visibility threshold), {c.time.seconds:.1f} s, "
              f"{c.time.frames_per_s} frames/s [{c.software.get('gl_platform')}]")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from jobs.cards import parse_dataset_card
    from jobs.render.dataset import merge_datasets  # deferred: loads numpy and trimesh

    shards = args.target[1:]
    if not shards:
        raise UserError("render merge needs at least one SHARD folder")
    if args.out is None:
        raise UserError("--out DIR is required")
    card = merge_datasets(shards, args.out, link=not args.copy)
    if args.json:
        print(json.dumps(card, indent=2))
    else:
        c = parse_dataset_card(card)
        print(f"merged {len(shards)} shards into {args.out}: {c.counts.images} frames, "
              f"ranges {[list(r) for r in c.frame_ranges]}, {c.counts.annotations} boxes")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from jobs.render.verify import verify_dataset  # deferred: loads numpy and trimesh

    if len(args.target) != 2:
        raise UserError("usage: kminer render verify DATASET [--scene SCENE] [--sample N]")
    if args.sample < 1:
        raise UserError("--sample must be at least 1")
    rep = verify_dataset(args.target[1], scene=args.scene, sample=args.sample, sample_seed=args.sample_seed,
                         inputs=_inputs(args.input), progress=_progress(args.json))
    if args.json:
        print(json.dumps(rep, indent=2))
    else:
        verdict = "PASS" if rep["passed"] else "FAIL"
        print(f"{verdict} ({rep['mode']}): frames {rep['frames_checked']} re-rendered, {rep['exact_matches']} exact, "
              f"RGB MAD max {rep['rgb_mad_max']}, box IoU min {rep['box_iou_min']}")
        for f in rep["failures"]:
            print(f"  - {f}")
    return 0 if rep["passed"] else 1


def _export(args: argparse.Namespace) -> int:
    from jobs.render.export import export_dataset  # deferred: loads numpy

    if len(args.target) != 2 or args.format is None or args.out is None:
        raise UserError("usage: kminer render export DATASET --format yolo|kitti --out DIR")
    res = export_dataset(args.target[1], args.out, args.format)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"exported {res['images']} frames and {res['boxes']} boxes as {res['format'].upper()} into {res['out']}")
    return 0


def _preview(args: argparse.Namespace) -> int:
    from jobs.render.preview import overlay, preview_frame  # deferred: loads numpy and trimesh
    from jobs.render.spec import load_scene

    if len(args.target) != 2:
        raise UserError("usage: kminer render preview SCENE.json --out FILE.png [--frame I] [--boxes]")
    if args.out is None or args.out.suffix.lower() != ".png":
        raise UserError("--out FILE.png is required")
    if args.frame < 0:
        raise UserError("--frame must be >= 0")
    if args.out.is_dir():
        raise UserError(f"--out {args.out} is a folder: give the PNG file to write")
    above = args.out.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise UserError(f"cannot write {args.out}: {above} is a file, not a folder")
    spec = load_scene(args.target[1])
    res = preview_frame(spec, args.frame, seed=args.seed, inputs=_inputs(args.input))
    img = overlay(res["rgb"], res["annotations"], spec.categories) if args.boxes else None

    buf = io.BytesIO()
    (img or Image.fromarray(res["rgb"])).save(buf, format="PNG")
    atomic_write_bytes(args.out, buf.getvalue())
    summary = {"file": str(args.out), "frame": args.frame, "objects": len(res["objects"]),
               "annotations": [{"category": spec.categories[a["category_id"] - 1], "bbox": a["bbox"],
                                "visible_fraction": a["visible_fraction"]} for a in res["annotations"]]}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"frame {args.frame} of '{spec.name}' -> {args.out}: {len(res['objects'])} objects, {len(res['annotations'])} boxes")
    return 0
