"""The model market view (pytest-qt, offscreen) on a real embedded chain: cards for the demo
models, Buy with a confirmation that shows the exact price and fee and moves exactly that much
NTK, insufficient NTK, and "Try it" by dropping the example shelf photo on the bought detector
(real sandboxed worker), detections drawn and saved, a bad photo, cancelling a run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent

from app.amounts import check_amount
from tests.ui.file_dialogs import answer_file_dialog
from tests.ui.layout_checks import clipped_labels
from tests.models.conftest import NTK, SHELF_PHOTO, open_user
from ui.background import Background
from ui.model_market_view import BuyDialog, ModelMarketView
from ui.qt import Qt

pytestmark = pytest.mark.filterwarnings("ignore:Function.*QDragEnterEvent:DeprecationWarning")


class Env:
    def __init__(self, qtbot):
        from app.context import AppContext

        self.qtbot = qtbot
        self.chain = Background("chain")
        self.jobs = Background("jobs")
        self.user = self.on_chain(lambda: open_user(AppContext.open()))   # the chain lives on the chain thread
        self.view: ModelMarketView | None = None

    def on_chain(self, fn):
        return self.chain.submit(fn).result(60)

    def ntk(self) -> int:
        return self.on_chain(lambda: self.user.wallet.token().balance_of(self.user.address))

    def make_view(self) -> ModelMarketView:
        v = ModelMarketView(models=self.user.models, chain_runner=self.chain, jobs_runner=self.jobs)
        self.qtbot.addWidget(v)
        v.resize(1100, 760)
        v.show()
        self.qtbot.waitUntil(lambda: len(v.cards) == 2, timeout=15000)
        # and laid out: new cards start at one spot until the layout places them
        self.qtbot.waitUntil(lambda: len(set(card_tops(v).values())) == 2, timeout=5000)
        self.view = v
        return v

    def close(self) -> None:
        if self.view is not None:
            self.view.shutdown()
        self.jobs.shutdown()
        self.on_chain(self.user.wallet.close)
        self.chain.shutdown()


@pytest.fixture
def env(qtbot):
    e = Env(qtbot)
    yield e
    e.close()


def drop_files(widget, paths: list[Path]) -> None:
    """A drag that enters the widget and drops local files (Qt delivers drop events only during a
    real drag, so the widget's handlers are called with real events)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(QPoint(10, 10), *args)
    widget.dragEnterEvent(enter)
    assert enter.isAccepted()
    widget.dropEvent(QDropEvent(QPointF(10, 10), *args))


def test_cards_show_the_demo_models_with_metrics_classes_price_and_seller(env):
    v = env.make_view()
    det, cls = v.cards[1], v.cards[2]
    assert det.title.text() == "Shelf detector" and det.price.text() == "25 NTK"
    assert cls.title.text() == "Product classifier" and cls.price.text() == "10 NTK"
    assert "Object detector · centernet-s · 320×240 input" in det.subtitle.text()
    assert det.classes.text().startswith("8 classes: cereal box, tea box")
    assert "0 models sold" in det.seller.text() and "0x3Ff7" in det.seller.text()
    assert det.badge.isHidden() and det.buy_button.isEnabled() and not det.try_button.isEnabled()
    assert v.summary.text().startswith("2 models for sale · you own 0")
    assert det.provenance.text().startswith("✓ Verified") and det.provenance.isVisible()
    # where the figures hold: the card's training domain (issue 22)
    assert "synthetic renders of scene 'Retail shelf' (fast (GL) and photoreal (Cycles) engine) only" in det.domain.text() and det.domain.isVisible()


def test_a_card_copied_by_another_seller_shows_as_copied(env):
    """Issue 16: the user lists the demo seller's card and URI as their own: the market says so."""
    def copy() -> None:
        m = env.user.wallet.market()
        raw = m.listing(1)
        m.list_model(env.user.wallet.signer(), card_hash=raw.card_hash, uri=raw.uri, price_wei=NTK)

    env.on_chain(copy)
    v = ModelMarketView(models=env.user.models, chain_runner=env.chain, jobs_runner=env.jobs)
    env.qtbot.addWidget(v)
    v.resize(1100, 760)
    v.show()
    env.view = v
    env.qtbot.waitUntil(lambda: len(v.cards) == 3, timeout=15000)
    copied = v.cards[3]
    assert copied.provenance.text().startswith("⚠ Copied") and "0x3Ff7" in copied.provenance.text()
    assert v.cards[1].provenance.text().startswith("✓ Verified")


def amount_in(text: str, unit: str) -> str:
    """The decimal amount written before `unit` in a label."""
    m = re.search(r"([0-9][0-9,]*(?:\.[0-9]+)?) " + unit, text)
    assert m, f"no {unit} amount in {text!r}"
    return m.group(1)


def card_tops(v: ModelMarketView) -> dict[int, int]:
    return {i: c.mapTo(v, c.rect().topLeft()).y() for i, c in v.cards.items()}


def test_buy_confirms_the_exact_price_and_fee_and_moves_exactly_the_price(env, qtbot):
    v = env.make_view()
    before = env.ntk()
    tops = card_tops(v)
    v.cards[1].buy_button.click()   # an impatient user clicks twice more before the price comes
    v.cards[1].buy_button.click()
    qtbot.mouseClick(v.cards[1].buy_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: v.confirm_dialog is not None, timeout=10000)
    dlg = v.confirm_dialog
    qtbot.wait(300)
    assert len([d for d in v.findChildren(BuyDialog) if d.isVisible()]) == 1   # one dialog, not three
    assert not clipped_labels(dlg)
    assert dlg.price_label.text() == "25 NTK"
    assert dlg.fee_label.text().startswith("at most 0.000") and "ETH (2 transactions: approve NTK, then buy)" in dlg.fee_label.text()
    assert dlg.buy_button.isEnabled() and dlg.problem.isHidden()
    # exact amounts, trailing zeros trimmed (never all 18 decimals, never a float's rounding)
    fee = amount_in(dlg.fee_label.text(), "ETH")
    assert check_amount(fee) == dlg.quote.fee_max_wei and not fee.endswith("0")
    assert card_tops(v) == tops   # the "Getting the price…" message did not move the cards
    assert env.ntk() == before   # nothing happens before the confirmation
    qtbot.mouseClick(dlg.buy_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not v.cards[1].badge.isHidden(), timeout=15000)
    assert v.cards[1].badge.text() == "Owned" and v.cards[1].try_button.isEnabled() and v.cards[1].buy_button.isHidden()
    assert before - env.ntk() == 25 * NTK
    assert v.banner.message.startswith("Bought Shelf detector for 25 NTK (network fee 0.000")
    paid = amount_in(v.banner.message, "ETH")
    assert check_amount(paid) > 0 and not paid.endswith("0")
    qtbot.wait(50)
    assert card_tops(v) == tops   # the "Bought" banner did not push the cards down
    v.show_message("")
    qtbot.wait(50)
    assert card_tops(v) == tops and v.banner.isHidden()   # nor does clearing it pull them up
    assert v.selected == 1 and "drop photos here" in v.panel.model_label.text()


def test_insufficient_ntk_shows_why_and_cannot_buy(env, qtbot):
    env.on_chain(lambda: env.user.wallet.token().transfer(env.user.wallet.signer(), "0x" + "56" * 20,
                                                          env.user.wallet.token().balance_of(env.user.address) - 2 * NTK))
    v = env.make_view()
    qtbot.mouseClick(v.cards[2].buy_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: v.confirm_dialog is not None, timeout=10000)
    dlg = v.confirm_dialog
    assert not dlg.buy_button.isEnabled() and not dlg.problem.isHidden()
    assert dlg.problem.text() == "Not enough NTK: Product classifier costs 10 NTK, you have 2 NTK."
    dlg.reject()
    assert env.ntk() == 2 * NTK


def test_dropping_the_shelf_photo_on_the_bought_detector_draws_and_saves_detections(env, qtbot, tmp_path):
    env.on_chain(lambda: env.user.models.buy(1, max_price_wei=25 * NTK))
    v = env.make_view()
    assert v.selected == 1
    drop_files(v.cards[2], [SHELF_PHOTO])   # not bought: nothing runs
    assert not v.running and "Buy Product classifier first" in v.banner.message
    with qtbot.waitSignal(v.tryFinished, timeout=90000) as sig:
        drop_files(v.cards[1], [SHELF_PHOTO])
        assert v.running and v.panel.cancel_button.isVisible()
    res = sig.args[0]
    assert res is v.result and len(res.images) == 1
    n = len(res.images[0].detections)
    assert n >= 10 and v.panel.table.rowCount() == n
    pm = v.panel.image.pixmap()
    assert pm is not None and (pm.width(), pm.height()) == (640, 480)
    assert f"{n} detections" in v.panel.status.text() and not v.panel.cancel_button.isVisible()
    assert v.panel.summary.text().startswith(f"<b>infer_shelf.png</b>: {n} detections: ")
    v.save_annotated_to(tmp_path / "saved")
    qtbot.waitUntil(lambda: bool(v.saved_paths), timeout=10000)
    assert v.saved_paths == [tmp_path / "saved" / "infer_shelf-detections.png"]
    assert v.saved_paths[0].read_bytes() == res.images[0].annotated.read_bytes()


def test_try_it_warns_on_a_photo_unlike_the_training_renders(env, qtbot, tmp_path):
    """Issue 22: an ordinary photo (scikit-image's astronaut) is flagged out of domain by the
    card's image statistics; the shipped shelf render is not."""
    from PIL import Image
    from skimage import data

    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    env.on_chain(lambda: env.user.models.buy(1, max_price_wei=25 * NTK))
    v = env.make_view()
    assert "synthetic renders of scene 'Retail shelf' (fast (GL) and photoreal (Cycles) engine) only" in v.panel.model_label.text()
    with qtbot.waitSignal(v.tryFinished, timeout=90000) as sig:
        drop_files(v.cards[1], [SHELF_PHOTO, photo])
    res = sig.args[0]
    shelf, astro = res.images
    assert shelf.domain.in_domain and not astro.domain.in_domain and astro.domain.distance > astro.domain.threshold
    assert v.panel.domain_warning.isHidden()
    v._show_page(1)
    assert v.panel.domain_warning.isVisible() and "looks unlike the images the model was trained on" in v.panel.domain_warning.text()
    v._show_page(0)
    assert v.panel.domain_warning.isHidden()


def test_a_bad_photo_is_reported_in_one_line(env, qtbot, tmp_path):
    env.on_chain(lambda: env.user.models.buy(1, max_price_wei=25 * NTK))
    v = env.make_view()
    bad = tmp_path / "holiday.jpg"
    bad.write_text("not a photo")
    with qtbot.waitSignal(v.tryFinished, timeout=20000):
        v.try_photos(1, [bad])
    assert v.banner.text() == "Could not run the model: holiday.jpg is not an image that can be read (UnidentifiedImageError)"
    assert v.result is None and not v.running


def test_a_run_can_be_cancelled(env, qtbot):
    env.on_chain(lambda: env.user.models.buy(1, max_price_wei=25 * NTK))
    v = env.make_view()
    assert v.try_photos(1, [SHELF_PHOTO] * 4)
    handle = v._handle
    qtbot.waitUntil(lambda: handle.attempt is not None and handle.attempt.run is not None, timeout=30000)
    with qtbot.waitSignal(v.tryFinished, timeout=30000) as sig:
        qtbot.mouseClick(v.panel.cancel_button, Qt.MouseButton.LeftButton)
    assert str(sig.args[0]) == "cancelled" and v.panel.status.text() == "Cancelled." and v.result is None


def test_the_example_photo_button_tries_the_owned_model_on_the_shipped_shelf_photo(env, qtbot):
    v = env.make_view()
    assert v.panel.example_button.isVisible()
    qtbot.mouseClick(v.panel.example_button, Qt.MouseButton.LeftButton)   # nothing owned yet: says what to do
    assert not v.running and "Buy" in v.banner.text()
    env.on_chain(lambda: env.user.models.buy(1, max_price_wei=25 * NTK))
    v.refresh()
    qtbot.waitUntil(lambda: v.listing(1) is not None and v.listing(1).owned, timeout=15000)
    v.select(1)
    with qtbot.waitSignal(v.tryFinished, timeout=90000) as sig:
        qtbot.mouseClick(v.panel.example_button, Qt.MouseButton.LeftButton)
    res = sig.args[0]
    assert not isinstance(res, BaseException), res
    assert res.images[0].source.name == "infer_shelf.png" and len(res.images[0].detections) >= 10


def test_a_long_message_keeps_one_line_and_its_whole_text_in_the_tooltip(env, qtbot):
    v = env.make_view()
    tops, height = card_tops(v), v.banner.height()
    long = "Could not read the model market: " + "the node answered something unexpected; " * 8
    v.show_message(long, "error")
    qtbot.wait(50)
    assert v.banner.height() == height and card_tops(v) == tops
    assert v.banner.text().endswith("…") and v.banner.toolTip() == long == v.banner.message
    v.resize(1400, 760)
    qtbot.wait(50)
    assert len(v.banner.text()) > 60 and v.banner.text().endswith("…")   # re-elided to the new width


def test_photo_and_save_dialogs_start_at_the_example_photo_then_in_the_last_folder_used(env, qtbot, tmp_path):
    import shutil

    v = env.make_view()
    v.select(2)
    seen = answer_file_dialog(None)
    v.choose_photos()
    assert seen["folder"] == SHELF_PHOTO.parent   # the shipped example photo, not an empty home folder
    mine = tmp_path / "my photos"
    mine.mkdir()
    shutil.copy(SHELF_PHOTO, mine / "shelf.png")
    answer_file_dialog(mine / "shelf.png")
    v.choose_photos()
    assert "Buy Product classifier first" in v.banner.message   # chosen (and refused: not bought)
    seen = answer_file_dialog(None)
    v.choose_photos()
    assert seen["folder"] == mine
    seen = answer_file_dialog(tmp_path)
    v.choose_save_folder()
    assert seen["folder"] == Path.home()
    seen = answer_file_dialog(None)
    v.choose_save_folder()
    assert seen["folder"] == tmp_path
