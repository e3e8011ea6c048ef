"""Labels from an object's own geometry, for engines without a silhouette pass (Cycles):
its projected silhouette in pixels (no occlusion) and its truncation by the image border,
computed as the fast engine computes them (`renderer.SceneRenderer`)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

def silhouette_pixels(tris: np.ndarray, width: int, height: int) -> int:
    """Pixels covered by triangles `tris` ((m, 3, 2) pixel coordinates, y down), counted
    once each; one object's silhouette without occlusion."""
    if not len(tris):
        return 0
    img = Image.new("1", (width, height), 0)
    draw = ImageDraw.Draw(img)
    lo, hi = tris.min(axis=1), tris.max(axis=1)
    keep = (hi[:, 0] >= 0) & (lo[:, 0] < width) & (hi[:, 1] >= 0) & (lo[:, 1] < height)
    for t in tris[keep]:
        draw.polygon([(float(t[0, 0]), float(t[0, 1])), (float(t[1, 0]), float(t[1, 1])), (float(t[2, 0]), float(t[2, 1]))], fill=1)
    return int(np.count_nonzero(np.asarray(img)))


def project_object(corners: np.ndarray, pose: np.ndarray, scale: np.ndarray, V: np.ndarray, K: np.ndarray,
                   znear: float, width: int, height: int) -> float:
    """Truncation of an object (share of its projected box outside the image), as the fast
    engine's `SceneRenderer._project` computes it."""
    c = corners * scale
    cw = (pose[:3, :3] @ c.T).T + pose[:3, 3]
    cc = (V[:3, :3] @ cw.T).T + V[:3, 3]
    front = cc[:, 2] < -znear
    if not front.any():
        return 1.0
    pc = cc[front]
    u = K[0, 0] * pc[:, 0] / -pc[:, 2] + K[0, 2]
    v = K[1, 2] - K[1, 1] * pc[:, 1] / -pc[:, 2]
    x0, x1, y0, y1 = u.min(), u.max(), v.min(), v.max()
    area = max(x1 - x0, 1e-9) * max(y1 - y0, 1e-9)
    inside = max(min(x1, width) - max(x0, 0.0), 0.0) * max(min(y1, height) - max(y0, 0.0), 0.0)
    t = 1.0 - inside / area
    if not front.all():
        return float(min(1.0, max(0.5, t)))
    return 1.0 if inside <= 0 else float(min(1.0, max(0.0, t)))
