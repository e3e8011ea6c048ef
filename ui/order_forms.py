"""Small parts of the Orders page's posting forms (`ui.orders_view`): its number fields, its
one-line error label, and the cost texts shown before a dataset or training order is posted.
"""

from __future__ import annotations

from app.amounts import ntk_text
from app.costs import CostBreakdown, CostLine
from ui.order_detail import BAD
from ui.qt import QDoubleSpinBox, QLabel, QSpinBox


def int_spin(lo: int, hi: int, value: int, suffix: str = "") -> QSpinBox:
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setValue(value)
    if suffix:
        s.setSuffix(suffix)
    s.setGroupSeparatorShown(True)
    return s


def hours_spin(value: float) -> QDoubleSpinBox:
    s = QDoubleSpinBox()
    s.setRange(0.05, 24 * 30)
    s.setDecimals(2)
    s.setValue(value)
    s.setSuffix(" h")
    return s


def error_label() -> QLabel:
    lab = QLabel()
    lab.setWordWrap(True)
    lab.setStyleSheet(f"color: {BAD};")
    lab.setVisible(False)
    return lab


def dataset_cost(shards: int, reward_each_wei: int, images: int) -> CostBreakdown:
    """A dataset order's cost before posting: the escrow (the market's network fee is added as
    a line where it is estimated)."""
    return CostBreakdown("Post this dataset order?", (
        CostLine("Escrow", shards * reward_each_wei, note=f"{shards} shard{'s' if shards != 1 else ''} × "
                                                         f"{ntk_text(reward_each_wei, 6)}, {images} images"),),
        ("The NTK stays in escrow until each shard's result is verified; a shard nobody delivers by its deadline "
         "is refunded.",))


def train_cost(reward_wei: int) -> CostBreakdown:
    return CostBreakdown("Post this training order?", (CostLine("Reward", reward_wei, note="paid once the model is "
                                                                                          "verified"),),
                         ("It is posted once its data is verified; the reward stays in escrow until then.",))
