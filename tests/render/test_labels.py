"""Labels from id images (no GL): RLE and boxes equal pycocotools' and numpy's own."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from jobs.render.labels import object_runs, rle_from_counts


def test_runs_match_pycocotools_and_mask_boxes():
    rng = np.random.default_rng(0)
    h, w = 37, 53
    ids = np.zeros((h, w), np.uint32)
    for k in range(1, 9):  # overlapping rectangles and blobs, some touching the borders
        y0, x0 = rng.integers(0, h - 3), rng.integers(0, w - 3)
        ids[y0:y0 + rng.integers(1, h), x0:x0 + rng.integers(1, w)] = k
    ids[rng.random((h, w)) < 0.05] = 9
    ids[:, -1] = 3  # a full column: runs continue across column boundaries
    runs = object_runs(ids, 9)
    for k in range(1, 10):
        m = ids == k
        if not m.any():
            assert k not in runs
            continue
        counts, bbox = runs[k]
        ours = rle_from_counts(counts, h, w)
        ref = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        assert ours["counts"] == ref["counts"].decode()
        assert np.array_equal(mask_utils.decode({"size": [h, w], "counts": ours["counts"].encode()}), m)
        ys, xs = np.nonzero(m)
        assert bbox == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        assert list(mask_utils.toBbox(ref)) == bbox


def test_ids_above_n_are_ignored():
    ids = np.array([[0, 1], [5, 1]], np.uint32)
    assert set(object_runs(ids, 1)) == {1}
