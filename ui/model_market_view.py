"""The model market: a card per listed model (metrics, classes, price, seller, "Owned"),
Buy with a confirmation showing the exact NTK price and the network fee, and "Try it": drop
photos on a model (or choose them), watch the sandboxed run, see the detections drawn, save
the annotated images.

Threading: every chain call (listings, quote, buy, fetch) goes through `chain_runner`, the
GUI's one "chain" runner; the model run (a sandboxed worker process) and image loading go
through `jobs_runner`. Callbacks land on the GUI thread. Nothing here imports torch.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QImage

from app.recent_folders import RecentFolders
from app.amounts import eth_text, ntk_text
from ui.background import Background
from ui.file_dialogs import choose_folder, open_files
from ui.qt import (
    QHBoxLayout, QHeaderView, QLabel, QPixmap, QScrollArea, QSplitter, Qt, QTableWidgetItem, QTimer, QToolButton,
    QVBoxLayout, QWidget, Signal,
)
from ui.model_card import BuyDialog, ModelCard, domain_text
from ui.try_panel import EXAMPLE_PHOTO, TryPanel, load_preview
from ui.widgets import MessageStrip, muted, page_heading

_BANNER = {"info": "background: rgba(47,128,237,0.12);", "ok": "background: rgba(39,174,96,0.16);",
           "error": "background: rgba(235,87,87,0.16);"}


class ModelMarketView(QWidget):
    """See the module docstring. `models` is an app.models.ModelService."""

    listingsChanged = Signal(object)   # list[ModelListing]
    tryFinished = Signal(object)       # TryResult, or an exception
    _stage = Signal(str)               # from the jobs runner's thread (queued to the GUI thread)

    def __init__(self, *, models, chain_runner: Background, jobs_runner: Background,
                 folders: RecentFolders | None = None, parent=None):
        """folders: where the file dialogs start (the last folder used; kept for this run if None)."""
        super().__init__(parent)
        self._models = models
        self.folders = folders or RecentFolders()
        self._chain = chain_runner
        self._jobs = jobs_runner
        self.listings: list = []
        self.cards: dict[int, ModelCard] = {}
        self.selected: int | None = None
        self.confirm_dialog: BuyDialog | None = None
        self._quoting = False
        self.result = None
        self._images: list[QImage] = []
        self._page = 0
        self._handle = None
        self._t0 = 0.0
        self._stage_text = ""
        self._loading = False
        self._last_save_dir: Path | None = None
        self.saved_paths: list[Path] = []

        title, self.summary = page_heading("Model market")
        self.summary.setStyleSheet("")
        muted(self.summary)
        self.refresh_button = QToolButton()
        self.refresh_button.setText("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        head = QHBoxLayout()
        titles = QVBoxLayout()
        titles.addWidget(title)
        titles.addWidget(self.summary)
        head.addLayout(titles, 1)
        head.addWidget(self.refresh_button, 0, Qt.AlignmentFlag.AlignTop)

        self.banner = MessageStrip(_BANNER)   # its space is kept: a message never moves the cards

        holder = QWidget()
        self._cards_box = QVBoxLayout(holder)
        self._cards_box.setSpacing(12)
        self._cards_box.setContentsMargins(0, 0, 6, 0)
        self.empty = QLabel("Loading the market…")
        muted(self.empty)
        self._cards_box.addWidget(self.empty)
        self._cards_box.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(holder)
        scroll.setMinimumWidth(380)

        self.panel = TryPanel()
        self.panel.photosDropped.connect(lambda files: self.try_photos(self.selected, files))
        self.panel.chooseRequested.connect(self.choose_photos)
        self.panel.exampleRequested.connect(self.try_example)
        self.panel.cancelRequested.connect(self.cancel_try)
        self.panel.saveRequested.connect(self.choose_save_folder)
        self.panel.open_button.clicked.connect(self._open_result_folder)
        self.panel.prev_button.clicked.connect(lambda: self._show_page(self._page - 1))
        self.panel.next_button.clicked.connect(lambda: self._show_page(self._page + 1))

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(scroll)
        split.addWidget(self.panel)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        split.setSizes([460, 520])

        box = QVBoxLayout(self)
        box.addLayout(head)
        box.addWidget(self.banner)
        box.addWidget(split, 1)

        self._stage.connect(self._on_stage)
        self._ticker = QTimer(self)
        self._ticker.setInterval(200)
        self._ticker.timeout.connect(self._tick)
        QTimer.singleShot(0, self.refresh)

    # -- messages ------------------------------------------------------------------------------
    def show_message(self, text: str, kind: str = "info") -> None:
        self.banner.show_message(text, kind)

    # -- listings (chain) ----------------------------------------------------------------------
    def refresh(self) -> None:
        if self._loading:
            return
        self._loading = True
        models = self._models
        self._chain.submit(models.listings, on_done=self._apply_listings, on_error=self._listings_failed)

    def _listings_failed(self, err: BaseException) -> None:
        self._loading = False
        self.empty.setText("The market could not be read.")
        self.show_message(f"Could not read the model market: {err}", "error")

    def _apply_listings(self, items) -> None:
        self._loading = False
        self.listings = list(items)
        seen = set()
        for i, lst in enumerate(self.listings):
            seen.add(lst.listing_id)
            card = self.cards.get(lst.listing_id)
            if card is None:
                card = ModelCard(lst)
                card.buyRequested.connect(self.request_buy)
                card.tryRequested.connect(self._try_clicked)
                card.photosDropped.connect(self.try_photos)
                self.cards[lst.listing_id] = card
                self._cards_box.insertWidget(i + 1, card)
            else:
                card.update_listing(lst)
        for lid in [k for k in self.cards if k not in seen]:
            self.cards.pop(lid).deleteLater()
        self.empty.setVisible(not self.listings)
        self.empty.setText("No models for sale on this network yet.")
        owned = sum(1 for x in self.listings if x.owned and not x.mine)
        n = len(self.listings)
        self.summary.setText(f"{n} model{'s' if n != 1 else ''} for sale · you own {owned}"
                             " · drop photos on a model you own to try it")
        if self.selected is None or self.selected not in self.cards:
            first = next((x.listing_id for x in self.listings if x.owned and x.card_ok), None)
            self.select(first)
        else:
            self.select(self.selected)
        self.listingsChanged.emit(self.listings)

    def listing(self, listing_id: int | None):
        return next((x for x in self.listings if x.listing_id == listing_id), None)

    def select(self, listing_id: int | None) -> None:
        self.selected = listing_id
        for lid, card in self.cards.items():
            card.set_selected(lid == listing_id)
        lst = self.listing(listing_id)
        if lst is None:
            self.panel.model_label.setText("Buy a model, then drop photos on it or here.")
        elif not lst.owned:
            self.panel.model_label.setText(f"{lst.name}: buy it to try it on your photos.")
        else:
            self.panel.model_label.setText(f"{lst.name} · drop photos here or choose them\n{domain_text(lst)}")

    # -- buying (chain) --------------------------------------------------------------------------
    def request_buy(self, listing_id: int) -> None:
        """Quote (chain), then the confirmation dialog; buying happens only on its Buy button.
        A second request while one is quoting or its dialog is open is ignored (a double click
        never opens two dialogs)."""
        if self._quoting or self.confirm_dialog is not None:
            return
        self._quoting = True
        self.show_message(f"Getting the price of model #{listing_id}…")
        models = self._models

        def failed(e: BaseException) -> None:
            self._quoting = False
            self.show_message(f"Cannot buy model #{listing_id}: {e}", "error")

        self._chain.submit(lambda: models.quote(listing_id), on_done=self._confirm, on_error=failed)

    def _confirm(self, quote) -> None:
        self._quoting = False
        self.show_message("")
        if quote.already_owned:
            self.show_message(f"You already own {quote.name}.", "info")
            return
        dlg = BuyDialog(quote, self)
        self.confirm_dialog = dlg
        dlg.accepted.connect(lambda: self._buy(quote))
        dlg.finished.connect(lambda _r: setattr(self, "confirm_dialog", None))
        dlg.open()

    def _buy(self, quote) -> None:
        self.show_message(f"Buying {quote.name} for {ntk_text(quote.price_wei)}…")
        for card in self.cards.values():
            card.buy_button.setEnabled(False)
        models = self._models
        self._chain.submit(lambda: models.buy(quote.listing_id, max_price_wei=quote.price_wei),
                           on_done=lambda p: self._bought(quote, p), on_error=self._buy_failed)

    def _bought(self, quote, purchase) -> None:
        self.show_message(f"Bought {quote.name} for {ntk_text(purchase.price_wei)} (network fee {eth_text(purchase.fee_wei)}). "
                          "Drop photos on it to try it.", "ok")
        self.selected = quote.listing_id
        self.refresh()

    def _buy_failed(self, err: BaseException) -> None:
        self.show_message(f"Not bought: {err}", "error")
        self.refresh()

    # -- trying (chain for fetch, jobs runner for the run) ----------------------------------------
    def _try_clicked(self, listing_id: int) -> None:
        self.select(listing_id)
        self.choose_photos()

    def choose_photos(self) -> None:
        if self.selected is None:
            self.show_message("Choose a model you own first (Buy…, then Try it).", "info")
            return
        files = open_files(self, self.folders, "photos", "Photos to try the model on",
                           "Images (*.png *.jpg *.jpeg *.bmp *.webp *.tif *.tiff)")
        if files:
            self.try_photos(self.selected, files)

    def try_example(self) -> None:
        """The shelf photo shipped with the app (resources/examples), for a user with none at hand."""
        if self.selected is None or not (self.listing(self.selected) and self.listing(self.selected).owned):
            self.show_message("Choose a model you own first (Buy…, then Try it).", "info")
            return
        self.try_photos(self.selected, [EXAMPLE_PHOTO])

    @property
    def running(self) -> bool:
        return self._handle is not None

    def try_photos(self, listing_id: int | None, paths: list[Path]) -> bool:
        """Run the owned model `listing_id` on `paths`; False (with a message) if it can't start."""
        lst = self.listing(listing_id)
        if lst is None:
            self.show_message("Choose a model first: drop the photos on a model card.", "info")
            return False
        self.select(listing_id)
        if self.running:
            self.show_message("A model is already running; wait for it or cancel it.", "info")
            return False
        if not lst.owned:
            self.show_message(f"Buy {lst.name} first to try it on your photos.", "info")
            return False
        models = self._models
        self._handle = models.new_try()
        handle = self._handle
        self._t0 = time.monotonic()
        self._stage_text = "Checking the model…"
        self.result = None
        self._images = []
        self.panel.image.set_pixmap(None)
        self.panel.image.set_hint(f"Running {lst.name} on {len(paths)} photo{'s' if len(paths) != 1 else ''}…")
        self.panel.show_results_controls(False)
        self.panel.set_busy(True)
        self.panel.status.setText(self._stage_text)
        self._ticker.start()
        self.show_message("")

        def stage(msg: dict) -> None:
            try:
                self._stage.emit(str(msg.get("message") or msg.get("type") or ""))
            except RuntimeError:   # the view is gone; the run goes on to its end
                pass

        def run(model):
            res = models.try_model(model, paths, handle=handle, on_event=stage)
            return res, [load_preview(im.annotated) for im in res.images]

        def fetched(model) -> None:
            if handle.cancelled:
                self._try_done(RuntimeError("cancelled"))
                return
            self._stage_text = "Starting the worker…"
            self._jobs.submit(lambda: run(model), on_done=self._try_done, on_error=self._try_done)

        # check the photos first (off the GUI thread), then fetch on the chain thread
        self._jobs.submit(lambda: models.check_images(paths),
                          on_done=lambda _files: self._chain.submit(lambda: models.fetch(listing_id), on_done=fetched,
                                                                    on_error=self._try_done),
                          on_error=self._try_done)
        return True

    def cancel_try(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._stage_text = "Cancelling…"
            self.panel.status.setText(self._stage_text)
            self.panel.cancel_button.setEnabled(False)

    def _on_stage(self, text: str) -> None:
        if text and self.running:
            self._stage_text = text[:1].upper() + text[1:] + "…"

    def _tick(self) -> None:
        if self.running:
            self.panel.status.setText(f"{self._stage_text}  {time.monotonic() - self._t0:.1f} s")

    def _try_done(self, value) -> None:
        self._ticker.stop()
        self._handle = None
        self.panel.set_busy(False)
        self.panel.cancel_button.setEnabled(True)
        if isinstance(value, BaseException):
            msg = str(value)
            if msg == "cancelled":
                self.panel.status.setText("Cancelled.")
                self.panel.image.set_hint("Cancelled. Drop photos to try again.")
            else:
                self.panel.status.setText("")
                self.panel.image.set_hint("Drop photos here\n(PNG, JPEG…)")
                self.show_message(f"Could not run the model: {msg}", "error")
            self.tryFinished.emit(value)
            return
        res, images = value
        self.result = res
        self._images = images
        n = sum(len([d for d in im.detections if d.box is not None]) for im in res.images)
        self.panel.status.setText(f"{len(res.images)} photo{'s' if len(res.images) != 1 else ''}, {n} detections "
                                  f"in {res.run_s:.1f} s ({res.sandbox} sandbox)")
        self.panel.show_results_controls(True, len(res.images))
        self._show_page(0)
        self.tryFinished.emit(res)

    def _show_page(self, page: int) -> None:
        if self.result is None or not self.result.images:
            return
        page = max(0, min(page, len(self.result.images) - 1))
        self._page = page
        im = self.result.images[page]
        qimg = self._images[page] if page < len(self._images) else QImage()
        self.panel.image.set_pixmap(QPixmap.fromImage(qimg) if not qimg.isNull() else None)
        self.panel.page_label.setText(f"{page + 1} / {len(self.result.images)}")
        dets = sorted(im.detections, key=lambda d: -d.score)
        boxes = [d for d in dets if d.box is not None]
        warn = im.domain.warning if im.domain is not None else ""
        self.panel.domain_warning.setText(f"⚠ {warn}" if warn else "")
        self.panel.domain_warning.setVisible(bool(warn))
        if boxes:
            counts: dict[str, int] = {}
            for d in boxes:
                counts[d.label] = counts.get(d.label, 0) + 1
            top = ", ".join(f"{c} {k.replace('_', ' ')}" for k, c in sorted(counts.items(), key=lambda kv: -kv[1]))
            self.panel.summary.setText(f"<b>{im.source.name}</b>: {len(boxes)} detections: {top}")
        elif dets:
            self.panel.summary.setText(f"<b>{im.source.name}</b>: " +
                                       ", ".join(f"{d.label.replace('_', ' ')} {d.score:.2f}" for d in dets))
        else:
            self.panel.summary.setText(f"<b>{im.source.name}</b>: nothing found above the score threshold")
        self.panel.table.setRowCount(len(dets))
        for r, d in enumerate(dets):
            box = ", ".join(f"{v:.0f}" for v in d.box) if d.box else "–"
            for c, text in enumerate((d.label.replace("_", " "), f"{d.score:.2f}", box)):
                item = QTableWidgetItem(text)
                if c == 1:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.panel.table.setItem(r, c, item)
        self.panel.table.resizeColumnsToContents()
        self.panel.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)

    # -- saving ----------------------------------------------------------------------------------
    def choose_save_folder(self) -> None:
        folder = choose_folder(self, self.folders, "annotated", "Save the annotated images in")
        if folder:
            self.save_annotated_to(folder)

    def save_annotated_to(self, folder: Path) -> None:
        if self.result is None:
            return
        res, models = self.result, self._models
        self._jobs.submit(lambda: models.save_annotated(res, folder), on_done=lambda paths: self._saved(folder, paths),
                          on_error=lambda e: self.show_message(f"Could not save the images: {e}", "error"))

    def _saved(self, folder: Path, paths) -> None:
        self._last_save_dir = folder
        self.show_message(f"Saved {len(paths)} annotated image{'s' if len(paths) != 1 else ''} in {folder}", "ok")
        self.saved_paths = list(paths)

    def _open_result_folder(self) -> None:
        folder = self._last_save_dir or (self.result.out_dir if self.result else None)
        if folder is not None and not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            self.show_message(f"No file manager opened it: the images are in {folder}", "info")

    def shutdown(self) -> None:
        """Cancel a running model (call before the runners are shut down)."""
        self.cancel_try()
