"""The model zoo: a compact CenterNet detector, a crop classifier, optional torchvision detectors.

Every model takes uint8-range images `(B, 3, H, W)` (float or uint8 tensors, 0..255) and
normalises them itself, so inference needs no preprocessing constants. Detectors share one
interface: `model(images, boxes, labels) -> (loss, parts)` while training and
`model.predict(images, score_threshold, max_det) -> list[Detections]` for inference, boxes in
input pixels (xyxy). Classifiers: `model(images, labels) -> (loss, parts)` and
`model.predict(images) -> probabilities (B, C)`.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from jobs.train import TrainError
from jobs.train.boxes import batched_nms, gaussian_radius

_MEAN, _STD = 0.45 * 255, 0.25 * 255


@dataclass(frozen=True)
class Detections:
    boxes: torch.Tensor  # (N, 4) xyxy, input pixels
    scores: torch.Tensor  # (N,)
    labels: torch.Tensor  # (N,) class index 0..C-1


def _cbr(cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _DWBlock(nn.Module):
    """Depthwise 3x3 + pointwise 1x1 (+ residual when the shape is kept)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.dw = _cbr(cin, cin, 3, stride, groups=cin)
        self.pw = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.res = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(self.dw(x))
        return F.relu(y + x if self.res else y, inplace=True)


class Backbone(nn.Module):
    """Stem (stride 2) and four stages at strides 4, 8, 16, 32; returns all four maps."""

    def __init__(self, widths: tuple[int, ...], depths: tuple[int, ...]):
        super().__init__()
        self.stem = _cbr(3, widths[0], 3, 2)
        stages = []
        cin = widths[0]
        for i, (w, d) in enumerate(zip(widths[1:], depths)):
            # the first stage uses full 3x3 convs (cheap at few channels, good features)
            blocks: list[nn.Module] = [_cbr(cin, w, 3, 2) if i == 0 else _DWBlock(cin, w, 2)]
            blocks += [_cbr(w, w, 3, 1) if i == 0 else _DWBlock(w, w, 1) for _ in range(d - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = w
        self.stages = nn.ModuleList(stages)
        self.out_channels = widths[1:]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        outs = []
        for s in self.stages:
            x = s(x)
            outs.append(x)
        return outs


def _normalise(images: torch.Tensor) -> torch.Tensor:
    return (images.float() - _MEAN) / _STD


class CenterNet(nn.Module):
    """CenterNet-style detector: a class heatmap, log box size and sub-cell offset at stride 4.

    Loss: the CenterNet focal loss on the heatmap, L1 on log-size and offset at box centres.
    """

    stride = 4

    def __init__(self, num_classes: int, widths: tuple[int, ...], depths: tuple[int, ...], neck: int):
        super().__init__()
        self.num_classes = num_classes
        self.backbone = Backbone(widths, depths)
        self.lateral = nn.ModuleList([nn.Conv2d(c, neck, 1) for c in self.backbone.out_channels])
        self.smooth = nn.ModuleList([_DWBlock(neck, neck, 1) for _ in self.backbone.out_channels[:-1]])
        self.head = _cbr(neck, neck, 3)
        self.heat = nn.Conv2d(neck, num_classes, 1)
        self.reg = nn.Conv2d(neck, 4, 1)  # log w, log h (in stride units), offset x, offset y
        nn.init.constant_(self.heat.bias, -2.19)  # prior 0.1, as in CenterNet

    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.backbone(_normalise(images))
        p = self.lateral[-1](feats[-1])
        for i in range(len(feats) - 2, -1, -1):
            p = F.interpolate(p, size=feats[i].shape[-2:], mode="nearest") + self.lateral[i](feats[i])
            p = self.smooth[i](p)
        h = self.head(p)
        return self.heat(h), self.reg(h)

    def forward(self, images: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor):
        heat, reg = self.features(images)
        return centernet_loss(heat.float(), reg.float(), boxes, labels, self.stride)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, score_threshold: float = 0.05, max_det: int = 100,
                nms_iou: float = 0.6) -> list[Detections]:
        heat, reg = self.features(images)
        heat = heat.float().sigmoid()
        reg = reg.float()
        b, c, h, w = heat.shape
        peaks = heat * (F.max_pool2d(heat, 3, 1, 1) == heat)
        k = min(max_det, c * h * w)
        scores, idx = peaks.view(b, -1).topk(k)
        cls = idx // (h * w)
        pix = idx % (h * w)
        ys, xs = (pix // w).float(), (pix % w).float()
        r = reg.view(b, 4, h * w).gather(2, pix[:, None, :].expand(b, 4, k))
        bw = r[:, 0].clamp(max=10).exp() * self.stride
        bh = r[:, 1].clamp(max=10).exp() * self.stride
        cx = (xs + r[:, 2]) * self.stride
        cy = (ys + r[:, 3]) * self.stride
        bx = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=-1)
        out = []
        for i in range(b):
            keep = scores[i] >= score_threshold
            bb, ss, cc = bx[i][keep], scores[i][keep], cls[i][keep]
            kept = batched_nms(bb, ss, cc, nms_iou)
            out.append(Detections(bb[kept], ss[kept], cc[kept]))
        return out


def centernet_targets(boxes: torch.Tensor, labels: torch.Tensor, num_classes: int, fh: int, fw: int, stride: int):
    """Heatmap `(B, C, fh, fw)` with a Gaussian peak of exactly 1 at every box centre cell,
    and per-box centre indices, regression targets and validity mask. `labels` < 0 is padding."""
    b, m = labels.shape
    dev = boxes.device
    valid = labels >= 0
    wh = (boxes[..., 2:] - boxes[..., :2]).clamp(min=1.0)
    c = (boxes[..., :2] + boxes[..., 2:]) / 2 / stride
    cell = c.floor()
    cell[..., 0].clamp_(0, fw - 1)
    cell[..., 1].clamp_(0, fh - 1)
    off = c - cell
    radius = gaussian_radius(wh[..., 1] / stride, wh[..., 0] / stride).floor().clamp(min=0, max=32)
    sigma = (2 * radius + 1) / 6
    # each box paints only its (2r+1)^2 window (as CenterNet does): B*M*K^2 values, not B*M*fh*fw
    big = int(radius[valid].max()) if bool(valid.any()) else 0
    d = torch.arange(-big, big + 1, device=dev)
    dy, dx = (t.reshape(-1) for t in torch.meshgrid(d, d, indexing="ij"))
    cx, cy = cell[..., 0:1].long(), cell[..., 1:2].long()
    gx, gy = cx + dx, cy + dy  # (B, M, K*K)
    val = torch.exp(-(dx**2 + dy**2).float() / (2 * sigma[..., None] ** 2))
    r = radius.long()[..., None]
    ok = valid[..., None] & (dx.abs() <= r) & (dy.abs() <= r) & (gx >= 0) & (gx < fw) & (gy >= 0) & (gy < fh)
    plane = torch.arange(b, device=dev)[:, None] * num_classes + labels.clamp(min=0)  # (B, M)
    idx = (plane[..., None] * fh + gy.clamp(0, fh - 1)) * fw + gx.clamp(0, fw - 1)
    heat = torch.zeros(b * num_classes * fh * fw, device=dev)
    heat.scatter_reduce_(0, idx.reshape(-1), (val * ok).reshape(-1), reduce="amax")
    ind = (cell[..., 1] * fw + cell[..., 0]).long()
    reg = torch.cat([torch.log(wh / stride), off], dim=-1)  # (B, M, 4)
    return heat.view(b, num_classes, fh, fw), ind, reg, valid


def centernet_loss(heat: torch.Tensor, reg: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, stride: int):
    b, c, fh, fw = heat.shape
    gt, ind, reg_t, valid = centernet_targets(boxes, labels, c, fh, fw, stride)
    p = heat.sigmoid().clamp(1e-4, 1 - 1e-4)
    pos = gt.eq(1).float()
    pos_loss = torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = torch.log(1 - p) * p**2 * (1 - gt) ** 4 * (1 - pos)
    num_pos = pos.sum().clamp(min=1)
    l_heat = -(pos_loss.sum() + neg_loss.sum()) / num_pos
    r = reg.view(b, 4, fh * fw).gather(2, ind[:, None, :].expand(b, 4, ind.shape[1])).transpose(1, 2)
    mask = valid[..., None].float()
    n = mask.sum().clamp(min=1)
    l_size = (F.l1_loss(r[..., :2], reg_t[..., :2], reduction="none") * mask).sum() / n
    l_off = (F.l1_loss(r[..., 2:], reg_t[..., 2:], reduction="none") * mask).sum() / n
    loss = l_heat + l_size + l_off
    return loss, {"heat": l_heat.detach(), "size": l_size.detach(), "offset": l_off.detach()}


class Classifier(nn.Module):
    """Crop classifier: the same backbone, global average pool, a linear layer."""

    def __init__(self, num_classes: int, widths: tuple[int, ...], depths: tuple[int, ...]):
        super().__init__()
        self.num_classes = num_classes
        self.backbone = Backbone(widths, depths)
        self.drop = nn.Dropout(0.1)
        self.fc = nn.Linear(widths[-1], num_classes)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        f = self.backbone(_normalise(images))[-1]
        return self.fc(self.drop(f.mean(dim=(2, 3))))

    def forward(self, images: torch.Tensor, labels: torch.Tensor):
        logits = self.logits(images).float()
        loss = F.cross_entropy(logits, labels, label_smoothing=0.05)
        acc = (logits.argmax(1) == labels).float().mean()
        return loss, {"ce": loss.detach(), "acc": acc.detach()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits(images).float().softmax(1)


class TorchvisionDetector(nn.Module):
    """Adapter giving a torchvision detection model (random init, nothing downloaded) our interface."""

    def __init__(self, name: str, num_classes: int, input_size: tuple[int, int]):
        super().__init__()
        from torchvision.models import detection as D  # optional extra

        w, h = input_size
        kw = dict(weights=None, weights_backbone=None, num_classes=num_classes + 1)
        if name == "tv-fasterrcnn-mobilenet":
            self.m = D.fasterrcnn_mobilenet_v3_large_320_fpn(min_size=min(w, h), max_size=max(w, h), **kw)
        elif name == "tv-retinanet":
            self.m = D.retinanet_resnet50_fpn(min_size=min(w, h), max_size=max(w, h), **kw)
        elif name == "tv-ssdlite":
            self.m = D.ssdlite320_mobilenet_v3_large(**kw)
        else:
            raise TrainError(f"unknown torchvision architecture {name!r}")
        self.num_classes = num_classes

    def forward(self, images: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor):
        imgs = [im.float() / 255 for im in images]
        targets = [{"boxes": b[l >= 0], "labels": l[l >= 0] + 1} for b, l in zip(boxes, labels)]
        parts = self.m(imgs, targets)
        return sum(parts.values()), {k: v.detach() for k, v in parts.items()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor, score_threshold: float = 0.05, max_det: int = 100,
                nms_iou: float = 0.6) -> list[Detections]:
        was = self.m.training
        self.m.eval()
        outs = self.m([im.float() / 255 for im in images])
        self.m.train(was)
        res = []
        for o in outs:
            keep = o["scores"] >= score_threshold
            res.append(Detections(o["boxes"][keep][:max_det], o["scores"][keep][:max_det], o["labels"][keep][:max_det] - 1))
        return res


@dataclass(frozen=True)
class ArchSpec:
    name: str
    task: str  # "detect" or "classify"
    description: str
    build: Callable[[int, tuple[int, int]], nn.Module]
    default_input: tuple[int, int]  # (width, height) in pixels
    needs: str | None = None  # an optional module that must be importable

    def available(self) -> bool:
        return self.needs is None or importlib.util.find_spec(self.needs) is not None


ARCHS: dict[str, ArchSpec] = {}


def _add(spec: ArchSpec) -> None:
    ARCHS[spec.name] = spec


_add(ArchSpec("centernet-xs", "detect", "tiny CenterNet (~0.1 M params) for tests and smoke runs",
              lambda c, s: CenterNet(c, (8, 16, 24, 32, 48), (1, 1, 1, 1), 24), (128, 96)))
_add(ArchSpec("centernet-s", "detect", "compact CenterNet (~0.5 M params), trains on a CPU in minutes",
              lambda c, s: CenterNet(c, (16, 32, 80, 160, 320), (2, 2, 4, 3), 80), (320, 240)))
_add(ArchSpec("centernet-m", "detect", "wider CenterNet (~2.5 M params) for GPUs",
              lambda c, s: CenterNet(c, (32, 64, 128, 256, 512), (2, 3, 6, 4), 128), (512, 384)))
_add(ArchSpec("classifier-xs", "classify", "tiny crop classifier for tests",
              lambda c, s: Classifier(c, (8, 16, 24, 32, 48), (1, 1, 1, 1)), (32, 32)))
_add(ArchSpec("classifier-s", "classify", "compact crop classifier (~0.1 M params)",
              lambda c, s: Classifier(c, (16, 32, 64, 128, 192), (1, 2, 2, 2)), (64, 64)))
for _tv, _d in (("tv-fasterrcnn-mobilenet", "torchvision Faster R-CNN MobileNetV3-FPN (random init)"),
                ("tv-retinanet", "torchvision RetinaNet ResNet-50-FPN (random init)"),
                ("tv-ssdlite", "torchvision SSDlite MobileNetV3 (random init)")):
    _add(ArchSpec(_tv, "detect", _d, (lambda n: lambda c, s: TorchvisionDetector(n, c, s))(_tv), (320, 320), needs="torchvision"))


def get_arch(name: str) -> ArchSpec:
    spec = ARCHS.get(name)
    if spec is None:
        raise TrainError(f"unknown architecture {name!r}; choose one of {', '.join(sorted(ARCHS))}")
    if not spec.available():
        raise TrainError(f"architecture {name!r} needs the optional {spec.needs!r} package, which is not installed "
                         f"(pip install 'knowledge-miner[{spec.needs}]')")
    return spec


def build_model(arch: str, num_classes: int, input_size: tuple[int, int] | None = None) -> nn.Module:
    spec = get_arch(arch)
    if num_classes < 1:
        raise TrainError("a model needs at least one class")
    return spec.build(num_classes, input_size or spec.default_input)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
