"""Labels from the id image: tight boxes, COCO RLE masks, visibility, per-frame metadata.

Everything here is numpy on finished pixels, safe to run on writer threads. One scan of
the id image in column-major order gives every object's runs; boxes and the RLE come from
those runs (no per-object full-image masks). Box convention: COCO `[x, y, w, h]` in
pixels, x/y the top-left corner of the top-left pixel, so a 1-pixel object is `[x, y, 1, 1]`.
"""

from __future__ import annotations

import math

import numpy as np
from pycocotools import mask as mask_utils

from jobs.render.sampling import FrameSample
from jobs.render.spec import SceneSpec

ANN_STRIDE = 10000  # annotation id = frame * ANN_STRIDE + instance id (ids never 0)
MAX_OBJECTS = ANN_STRIDE - 1


def _r(x: float, nd: int = 6) -> float:
    return float(round(float(x), nd))


def _mat(m: np.ndarray) -> list[list[float]]:
    return np.round(np.asarray(m, dtype=np.float64), 6).tolist()


class ObjectRuns:
    """Every object's vertical runs in one column-major scan of the id image.

    Boxes for all objects come from a few vectorised reductions; RLE counts are built
    only for the objects asked for (the annotated ones).
    """

    def __init__(self, ids: np.ndarray, n: int):
        h, w = ids.shape
        self.h, self.total = h, h * w
        flat = np.ascontiguousarray(ids.T).ravel()  # column-major, as COCO RLE wants
        change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        starts = np.union1d(np.concatenate([[0], change]), np.arange(h, self.total, h))  # runs never cross a column
        lengths = np.diff(np.append(starts, self.total))
        vals = flat[starts]
        keep = (vals > 0) & (vals <= n)
        starts, lengths, vals = starts[keep], lengths[keep], vals[keep]
        order = np.argsort(vals, kind="stable")
        self.starts, self.lengths, vals = starts[order], lengths[order], vals[order]
        self.group = {}
        self.boxes: dict[int, list[float]] = {}
        if not len(vals):
            return
        first = np.concatenate([[0], np.flatnonzero(np.diff(vals)) + 1])
        last = np.append(first[1:], len(vals))
        col, r0 = self.starts // h, self.starts % h
        r1 = r0 + self.lengths
        x0, x1 = np.minimum.reduceat(col, first), np.maximum.reduceat(col, first) + 1
        y0, y1 = np.minimum.reduceat(r0, first), np.maximum.reduceat(r1, first)
        for i, v in enumerate(vals[first].tolist()):
            self.group[v] = (int(first[i]), int(last[i]))
            self.boxes[v] = [float(x0[i]), float(y0[i]), float(x1[i] - x0[i]), float(y1[i] - y0[i])]

    def counts(self, iid: int) -> list[int]:
        """Uncompressed COCO RLE counts (zeros first) of object `iid`."""
        a, b = self.group[iid]
        s, e = self.starts[a:b], self.starts[a:b] + self.lengths[a:b]
        join = np.flatnonzero(s[1:] != e[:-1]) + 1  # merge runs that continue into the next column
        ms = s[np.concatenate([[0], join])]
        me = e[np.concatenate([join - 1, [len(s) - 1]])]
        counts = np.empty(2 * len(ms) + 1, dtype=np.int64)
        counts[0] = ms[0]
        counts[1:-1:2] = me - ms
        counts[2:-1:2] = ms[1:] - me[:-1]
        counts[-1] = self.total - me[-1]
        if counts[-1] == 0:  # the object reaches the last pixel: COCO ends on a run of ones
            counts = counts[:-1]
        return counts.tolist()


def object_runs(ids: np.ndarray, n: int) -> dict[int, tuple[list[int], list[float]]]:
    """For each instance id in 1..n present in `ids`: (uncompressed RLE counts, bbox)."""
    r = ObjectRuns(ids, n)
    return {v: (r.counts(v), r.boxes[v]) for v in r.group}


def rle_from_counts(counts: list[int], h: int, w: int) -> dict:
    rle = mask_utils.frPyObjects({"counts": counts, "size": [h, w]}, h, w)
    return {"size": [h, w], "counts": rle["counts"].decode("ascii")}


def frame_labels(spec: SceneSpec, fs: FrameSample, ids: np.ndarray, silhouette_px: np.ndarray,
                 truncation: np.ndarray) -> tuple[list[dict], list[dict]]:
    """(objects metadata, COCO annotations) of one frame.

    visible_fraction = (visible px / unoccluded silhouette px in the image) x (1 - truncation).
    Objects under the threshold (or smaller than `min_pixels`, or unlabelled) stay in the
    metadata with `annotated: false`.
    """
    out = spec.outputs
    h, w = ids.shape
    n = len(fs.objects)
    visible = np.bincount(ids.ravel(), minlength=n + 1)[1:n + 1]
    runs = ObjectRuns(ids, n)
    cats = spec.categories
    objects, anns = [], []
    for k, o in enumerate(fs.objects):
        iid = o.instance_id
        vis, sil = int(visible[k]), int(silhouette_px[k])
        occl_vis = vis / sil if sil > 0 else 0.0
        trunc = float(truncation[k])
        vf = occl_vis * (1.0 - trunc)
        annotated = bool(out.boxes and o.category_id > 0 and vis >= out.min_pixels and vf >= out.min_visible_fraction)
        bbox = runs.boxes.get(iid)
        objects.append({
            "instance_id": iid, "asset": spec.assets[o.asset].name, "category_id": o.category_id,
            "category": cats[o.category_id - 1] if o.category_id else None,
            "pose": _mat(o.pose), "scale": [_r(v) for v in o.scale],
            "color": [_r(v, 4) for v in o.color[:3]], "roughness": _r(o.roughness, 4), "metalness": _r(o.metalness, 4),
            "visible_px": vis, "silhouette_px": sil, "truncation": _r(trunc, 4), "visible_fraction": _r(vf, 4),
            "bbox": bbox, "annotated": annotated,
        })
        if annotated:
            anns.append({
                "id": fs.index * ANN_STRIDE + iid, "image_id": fs.index, "category_id": o.category_id,
                "bbox": bbox, "area": vis, "segmentation": rle_from_counts(runs.counts(iid), h, w), "iscrowd": 0,
                "instance_id": iid, "visible_fraction": _r(vf, 4), "truncation": _r(trunc, 4),
            })
    return objects, anns


def frame_meta(spec: SceneSpec, spec_hash: str, fs: FrameSample, K: np.ndarray, files: dict[str, str],
               hashes: dict[str, str], objects: list[dict], anns: list[dict]) -> dict:
    """The per-frame metadata file's content (no timings: byte-identical across runs)."""
    cam = spec.camera
    return {
        "frame": fs.index, "seed": fs.seed, "spec_hash": spec_hash,
        "width": spec.outputs.width, "height": spec.outputs.height, "files": files, "sha256": hashes,
        "camera": {"K": _mat(K), "pose_cam_to_world_gl": _mat(fs.camera_pose), "yfov_deg": _r(math.degrees(fs.yfov)),
                   "znear": cam.znear, "zfar": cam.zfar},
        "lights": [{"kind": li.kind, "pose": _mat(li.pose), "color": [_r(c, 4) for c in li.color],
                    "intensity": _r(li.intensity, 4), "temperature_k": _r(li.temperature_k, 1)} for li in fs.lights],
        "ambient": _r(fs.ambient, 4), "background": [_r(c, 4) for c in fs.bg_color],
        "objects": objects,
        "distractors": [{"shape": ["box", "sphere", "cylinder"][d.shape], "pose": _mat(d.pose), "scale": [_r(v) for v in d.scale]}
                        for d in fs.distractors],
        "annotations": anns,
    }
