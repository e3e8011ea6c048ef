"""Box utilities: IoU, NMS and the CenterNet encoding.

Boxes are float tensors `(N, 4)` in `x1, y1, x2, y2` pixel coordinates unless a function
says otherwise (COCO uses `x, y, w, h`). Pure functions, no global state, any device.
"""

from __future__ import annotations


import torch


def xywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    return torch.cat([b[..., :2], b[..., :2] + b[..., 2:4]], dim=-1)


def xyxy_to_xywh(b: torch.Tensor) -> torch.Tensor:
    return torch.cat([b[..., :2], b[..., 2:4] - b[..., :2]], dim=-1)


def box_area(b: torch.Tensor) -> torch.Tensor:
    return (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU `(N, M)` of xyxy boxes `a (N, 4)` and `b (M, 4)`; 0 where both areas are 0."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression; indices of kept boxes, highest score first.

    A box is dropped when its IoU with an already kept, higher-scoring box is above
    `iou_threshold` (strictly greater, as in torchvision).
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    iou = box_iou(boxes[order], boxes[order])
    n = order.numel()
    suppressed = torch.zeros(n, dtype=torch.bool)
    iou_cpu = (iou > iou_threshold).cpu()
    keep: list[int] = []
    for i in range(n):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou_cpu[i]
    return order[torch.tensor(keep, dtype=torch.long, device=boxes.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS within each class only (boxes of different classes never suppress each other)."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    offset = classes.to(boxes.dtype)[:, None] * (boxes.max() + 1)
    return nms(boxes + offset, scores, iou_threshold)


def gaussian_radius(h: torch.Tensor, w: torch.Tensor, min_overlap: float = 0.7) -> torch.Tensor:
    """CenterNet's radius: how far a corner may move and still keep IoU >= `min_overlap`.

    `h`, `w` are box sizes in feature-map cells; returns a radius in cells (float, >= 0).
    The smallest of the three cases of Law & Deng (CornerNet), as CenterNet uses it.
    """
    a1 = 1
    b1 = h + w
    c1 = w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + torch.sqrt(b1**2 - 4 * a1 * c1)) / 2
    a2 = 4
    b2 = 2 * (h + w)
    c2 = (1 - min_overlap) * w * h
    r2 = (b2 + torch.sqrt(b2**2 - 4 * a2 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (h + w)
    c3 = (min_overlap - 1) * w * h
    r3 = (b3 + torch.sqrt((b3**2 - 4 * a3 * c3).clamp(min=0))) / 2
    return torch.minimum(torch.minimum(r1, r2), r3).clamp(min=0)


def centernet_encode(boxes: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """xyxy boxes in input pixels -> (centre cell `(N, 2)` long x,y; sub-cell offset `(N, 2)`;
    size `(N, 2)` w,h in input pixels). The centre cell is floor(centre / stride)."""
    c = (boxes[:, :2] + boxes[:, 2:]) / 2 / stride
    cell = c.floor()
    return cell.long(), c - cell, boxes[:, 2:] - boxes[:, :2]


def centernet_decode(cell: torch.Tensor, offset: torch.Tensor, size: torch.Tensor, stride: int) -> torch.Tensor:
    """Inverse of `centernet_encode`: xyxy boxes in input pixels."""
    c = (cell.to(offset.dtype) + offset) * stride
    return torch.cat([c - size / 2, c + size / 2], dim=-1)


def letterbox_params(src_w: int, src_h: int, dst_w: int, dst_h: int) -> tuple[int, int, int, int]:
    """Resized size and padding (new_w, new_h, pad_x, pad_y) that fit a src image inside dst,
    centred, keeping its aspect ratio. Input pixel = src pixel * (new / src) + pad."""
    s = min(dst_w / src_w, dst_h / src_h)
    nw, nh = max(1, min(dst_w, round(src_w * s))), max(1, min(dst_h, round(src_h * s)))
    return nw, nh, (dst_w - nw) // 2, (dst_h - nh) // 2


def unletterbox(boxes: torch.Tensor, sx: float, sy: float, pad_x: float, pad_y: float, src_w: int, src_h: int) -> torch.Tensor:
    """Map xyxy boxes from letterboxed input pixels back to the source image, clipped to it
    (`sx`, `sy` = resized size / source size)."""
    out = boxes.clone()
    out[:, 0::2] = ((out[:, 0::2] - pad_x) / sx).clamp(0, src_w)
    out[:, 1::2] = ((out[:, 1::2] - pad_y) / sy).clamp(0, src_h)
    return out

