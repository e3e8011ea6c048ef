"""The model market's cards: one per listed model (task, metrics, classes, training domain,
price, seller, "Owned", Buy and Try it; photos dropped on it are tried on that model), and the
Buy confirmation with the exact NTK price and the network fee. `ModelMarketView` lays them out."""

from __future__ import annotations

from pathlib import Path

from app.amounts import eth_text, ntk_text
from ui.qt import QDialog, QDialogButtonBox, QFormLayout, QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, Signal
from ui.widgets import DropFiles, clear_layout, muted, short_address

TASKS = {"detect": "Object detector", "classify": "Image classifier"}
_CARD_STYLE = ("#ModelCard { background: palette(base); border: 1px solid palette(mid); border-radius: 8px; }"
               "#ModelCard[selected=\"true\"] { border: 2px solid palette(highlight); }"
               "#ModelCard[dragover=\"true\"] { border: 2px dashed palette(highlight); }")
_BADGE = "border-radius: 9px; padding: 1px 9px; font-weight: bold; color: white; background: %s;"


def domain_text(lst) -> str:
    """The card's training-domain line for display (where its metrics were measured)."""
    if lst.training_domain:
        return f"Trained and evaluated on {lst.training_domain}"
    return "Training domain not stated by the card: its figures may not hold on your photos"


class ModelCard(DropFiles, QFrame):
    """One listing. Emits requests; the view does the work."""

    buyRequested = Signal(int)
    tryRequested = Signal(int)
    photosDropped = Signal(int, object)  # listing id, list[Path]

    def __init__(self, listing, parent=None):
        super().__init__(parent)
        self.setObjectName("ModelCard")
        self.setStyleSheet(_CARD_STYLE)
        self.setToolTip("Drop photos here to try this model")
        self._init_drop()
        self.listing = listing

        self.title = QLabel()
        f = self.title.font()
        f.setPointSizeF(f.pointSizeF() * 1.25)
        f.setBold(True)
        self.title.setFont(f)
        self.badge = QLabel()
        self.subtitle = QLabel()
        muted(self.subtitle)
        self.subtitle.setWordWrap(True)
        self.metrics_box = QHBoxLayout()
        self.metrics_box.setSpacing(18)
        self.classes = QLabel()
        self.classes.setWordWrap(True)
        self.domain = QLabel()  # the card's training domain: where the metrics above hold
        muted(self.domain)
        self.domain.setWordWrap(True)
        self.seller = QLabel()
        muted(self.seller)
        self.seller.setWordWrap(True)
        self.provenance = QLabel()  # verified / unverified / copied (app.models.provenance)
        self.provenance.setWordWrap(True)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #d64545;")
        self.price = QLabel()
        pf = self.price.font()
        pf.setPointSizeF(pf.pointSizeF() * 1.2)
        pf.setBold(True)
        self.price.setFont(pf)
        self.buy_button = QPushButton("Buy…")
        self.buy_button.clicked.connect(lambda: self.buyRequested.emit(self.listing.listing_id))
        self.try_button = QPushButton("Try it…")
        self.try_button.clicked.connect(lambda: self.tryRequested.emit(self.listing.listing_id))

        head = QHBoxLayout()
        head.addWidget(self.title)
        head.addWidget(self.badge)
        head.addStretch(1)
        foot = QHBoxLayout()
        foot.addWidget(self.price)
        foot.addStretch(1)
        foot.addWidget(self.buy_button)
        foot.addWidget(self.try_button)
        box = QVBoxLayout(self)
        box.setContentsMargins(14, 12, 14, 12)
        box.setSpacing(6)
        box.addLayout(head)
        box.addWidget(self.subtitle)
        box.addLayout(self.metrics_box)
        box.addWidget(self.classes)
        box.addWidget(self.domain)
        box.addWidget(self.seller)
        box.addWidget(self.provenance)
        box.addWidget(self.problem)
        box.addLayout(foot)
        self.update_listing(listing)

    def update_listing(self, lst) -> None:
        self.listing = lst
        self.title.setText(lst.name)
        if lst.mine:
            self.badge.setText("Yours")
            self.badge.setStyleSheet(_BADGE % "#7b61ff")
        elif lst.owned:
            self.badge.setText("Owned")
            self.badge.setStyleSheet(_BADGE % "#27ae60")
        self.badge.setVisible(lst.owned)
        parts = [TASKS.get(lst.task, lst.task or "unknown model")]
        if lst.arch:
            parts.append(lst.arch)
        if lst.input_size:
            parts.append(f"{lst.input_size[0]}×{lst.input_size[1]} input")
        if lst.num_params:
            parts.append(f"{lst.num_params / 1000:.0f} k parameters")
        if lst.weights_bytes:
            parts.append(f"{lst.weights_bytes / 1e6:.2f} MB")
        self.subtitle.setText(" · ".join(parts))
        clear_layout(self.metrics_box)
        for i, (label, value) in enumerate(lst.metrics):
            cell = QVBoxLayout()
            cell.setSpacing(0)
            v = QLabel(f"{value:.3f}")
            f = v.font()
            f.setPointSizeF(f.pointSizeF() * (1.6 if i == 0 else 1.25))
            f.setBold(True)
            v.setFont(f)
            cell.addWidget(v)
            cell.addWidget(muted(QLabel(label)))
            self.metrics_box.addLayout(cell)
        self.metrics_box.addStretch(1)
        n = len(lst.classes)
        self.classes.setText(f"{n} class{'es' if n != 1 else ''}: {', '.join(c.replace('_', ' ') for c in lst.classes)}"
                             if n else "")
        self.classes.setVisible(bool(n))
        self.domain.setText(domain_text(lst))
        seller = short_address(lst.owner)
        self.seller.setText(f"Seller {seller} · {lst.seller.summary}" if lst.seller else f"Seller {seller}")
        self.seller.setToolTip(lst.owner)
        self.provenance.setText({"verified": "✓ Verified: the card names this seller",
                                 "copied": f"⚠ Copied: {lst.provenance_note}"}.get(lst.provenance,
                                                                                     f"Unverified: {lst.provenance_note}"))
        self.provenance.setStyleSheet("" if lst.provenance == "verified" else "color: #b9770e;")
        self.provenance.setToolTip(lst.provenance_note)
        self.problem.setText(lst.problem or "")
        self.problem.setVisible(bool(lst.problem))
        self.price.setText(ntk_text(lst.price_wei))
        self.buy_button.setVisible(not lst.owned)
        self.buy_button.setEnabled(lst.card_ok and lst.active)
        self.try_button.setEnabled(lst.owned and lst.card_ok)
        self.try_button.setToolTip("" if lst.owned else "Buy the model to try it")

    def set_selected(self, on: bool) -> None:
        self.setProperty("selected", "true" if on else "false")
        self.style().unpolish(self)
        self.style().polish(self)

    def _dropped(self, files: list[Path]) -> None:
        self.photosDropped.emit(self.listing.listing_id, files)


class BuyDialog(QDialog):
    """The confirmation before buying: exact price, the most the fee can be, balances."""

    def __init__(self, quote, parent=None):
        super().__init__(parent)
        self.quote = quote
        self.setWindowTitle(f"Buy {quote.name}")
        form = QFormLayout()
        self.price_label = QLabel(ntk_text(quote.price_wei))
        f = self.price_label.font()
        f.setBold(True)
        self.price_label.setFont(f)
        form.addRow("Price (to the seller):", self.price_label)
        n = quote.transactions
        self.fee_label = QLabel(f"at most {eth_text(quote.fee_max_wei)} ({n} transaction{'s' if n > 1 else ''}"
                                + (": approve NTK, then buy)" if n > 1 else ")"))
        form.addRow("Network fee:", self.fee_label)
        after = quote.ntk_balance_wei - quote.price_wei
        self.balance_label = QLabel(f"{ntk_text(quote.ntk_balance_wei)} → {ntk_text(after)}" if after >= 0
                                    else ntk_text(quote.ntk_balance_wei))
        form.addRow("Your NTK:", self.balance_label)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #d64545;")
        if not quote.enough_ntk:
            self.problem.setText(f"Not enough NTK: {quote.name} costs {ntk_text(quote.price_wei)}, you have "
                                 f"{ntk_text(quote.ntk_balance_wei)}.")
        elif not quote.enough_eth:
            self.problem.setText(f"Not enough ETH for the network fee: you have {eth_text(quote.eth_balance_wei)}.")
        self.problem.setVisible(bool(self.problem.text()))
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.buy_button = self.buttons.addButton(f"Buy for {ntk_text(quote.price_wei)}",
                                                 QDialogButtonBox.ButtonRole.AcceptRole)
        self.buy_button.setEnabled(quote.enough_ntk and quote.enough_eth)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        intro = QLabel(f"Buy <b>{quote.name}</b> (model #{quote.listing_id}) on the model market? "
                       "You pay the seller directly; the model is yours to run.")
        intro.setWordWrap(True)
        box = QVBoxLayout(self)
        box.addWidget(intro)
        box.addLayout(form)
        box.addWidget(self.problem)
        box.addWidget(self.buttons)
        self.resize(440, self.sizeHint().height())
