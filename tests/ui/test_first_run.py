"""The first-run wizard with the real services: create (field errors, the recovery phrase shown
once and three words asked back, backup, local chain deployed and funded, RPC down at the
field, device modes, a real benchmark run then one cancelled, price floors and the mining
key), restore from a phrase (bad words at the field, nothing written) and import (private key
and keystore file, wrong password at the field)."""

from __future__ import annotations

import pytest

from app.context import AppContext
from app.first_run import FirstRun, needs_first_run
from app.account import WalletSession
from tests.ui.layout_checks import clipped_labels
from tests.wallet.conftest import free_port
from ui.background import Background
from ui.first_run import (
    ADDRESS, BENCH, CREATE, DEVICES, FLOORS, IMPORT, NETWORK, PHRASE, QUIZ, RESTORE, FirstRunWizard,
)
from wallet.deploy import FAUCET_NTK_WEI
from wallet.keystore import Keystore, KeyringPasswords

PW = "correct horse battery"
KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
KEY_ADDRESS = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"


@pytest.fixture
def make_wizard(qtbot, ctx, devices):
    runners = [Background("first-run"), Background("chain")]
    made = []

    def make(context=None):
        c = context or ctx
        flow = FirstRun(c, keystore=Keystore(c.paths.keystore_dir, scrypt_n=2**10, allow_weak_kdf=True))
        w = FirstRunWizard(flow=flow, devices=devices, runner=runners[0], chain_runner=runners[1])
        qtbot.addWidget(w)
        w.show()
        made.append(w)
        return w

    yield make
    for w in made:
        w.reject()
    for r in runners:
        r.shutdown(wait=True)


def go_next(qtbot, w, expect: int, timeout: int = 20000) -> None:
    w.next()
    qtbot.waitUntil(lambda: w.currentId() == expect, timeout=timeout)


def test_create_path_to_a_funded_local_wallet(qtbot, make_wizard, ctx, devices, tmp_path):
    w = make_wizard()
    assert needs_first_run(ctx, w.flow.keystore)
    go_next(qtbot, w, CREATE)
    page = w.create_page
    qtbot.waitUntil(page.remember.isEnabled, timeout=10000)  # the test keyring (a file backend) is found
    assert "At least 8 characters" in page.password.placeholderText() and page.strength_hint.text() == ""  # once
    page.password.setText("short")
    w.next()
    assert page.fields_["password"].text() == "At least 8 characters." and w.currentId() == CREATE
    assert page.strength.value() == 0 and "Too short" in page.strength_hint.text()
    page.password.setText(PW)
    page.again.setText(PW + "!")
    w.next()
    assert page.fields_["again"].text() == "The two passwords differ." and w.currentId() == CREATE
    assert needs_first_run(ctx, w.flow.keystore)  # nothing written
    page.again.setText(PW)
    page.remember.setChecked(True)
    go_next(qtbot, w, PHRASE)
    words = [lab.text().split("<b>")[1].split("</b>")[0] for lab in w.phrase_page.words]
    assert words == w.flow.phrase and len(words) == 12
    assert clipped_labels(w) == []  # every word reads whole
    assert not w.phrase_page.isComplete()  # not before "I wrote them down"
    w.phrase_page.confirm.setChecked(True)
    assert w.button(FirstRunWizard.WizardButton.NextButton).isEnabled()
    go_next(qtbot, w, QUIZ)
    quiz = w.quiz_page
    first, *rest = w.flow.quiz_positions
    for pos, e in quiz.edits.items():
        e.setText(words[pos - 1])
    quiz.edits[first].setText("wrong")
    w.next()
    assert w.currentId() == QUIZ and quiz.fields_[f"quiz:{first}"].text().startswith(f"That is not word {first}")
    quiz.edits[first].setText(" " + words[first - 1].upper())
    go_next(qtbot, w, ADDRESS)
    assert w.flow.phrase == []  # checked: forgotten
    address = w.flow.address
    assert ctx.settings.wallet.remember_password and KeyringPasswords().get(address) == PW
    assert w.address_page.address.text() == address and not w.address_page.qr.pixmap().isNull()
    w.address_page.save_backup(tmp_path / "backup.json")
    qtbot.waitUntil(lambda: w.address_page.backup_status.text().startswith("Saved to"), timeout=10000)
    w.address_page.save_backup(tmp_path / "backup.json")  # never overwrites
    qtbot.waitUntil(w.address_page.fields_["backup"].isVisible, timeout=10000)

    go_next(qtbot, w, NETWORK)
    net = w.network_page
    net.combo.setCurrentIndex(net.combo.findData("devnet"))
    net.rpc_edit.setText(f"http://127.0.0.1:{free_port()}")
    w.next()
    qtbot.waitUntil(net.fields_["rpc_url"].isVisible, timeout=15000)
    assert "Cannot reach" in net.fields_["rpc_url"].text() and w.currentId() == NETWORK
    net.combo.setCurrentIndex(net.combo.findData("local"))
    go_next(qtbot, w, DEVICES)
    assert net.chain_id == 27501

    # whoever runs the wizard wants to mine: every device starts at mining while the user is away
    assert w.devices_page.modes() == {"cpu": "auto", "cuda:0": "auto", "cuda:1": "auto"}
    for d, mode in {"cpu": "mining", "cuda:0": "idle", "cuda:1": "idle"}.items():
        w.devices_page.combos[d].setCurrentIndex(w.devices_page.combos[d].findData(mode))
    go_next(qtbot, w, BENCH)
    assert devices.state("cpu").mode == "mining" and ctx.settings.device("cpu").mode == "mining"
    bench = w.bench_page
    assert bench.selected() == ["cpu"]  # the devices set to mine are ticked
    bench.start()
    assert not bench.isComplete()  # no Finish while it runs
    qtbot.waitUntil(lambda: bench.progress.value() > 0, timeout=30000)
    bench.cancel()
    qtbot.waitUntil(lambda: bench.status.text().startswith("Cancelled"), timeout=10000)
    assert bench.isComplete() and bench.progress.value() == 0 and devices.benchmark("cpu") is None
    bench.start()  # again, to the end: a real benchmark child on the CPU
    qtbot.waitUntil(lambda: bench.status.text().startswith("Done"), timeout=90000)
    assert "GFLOP/s" in bench.results["cpu"].text() and devices.benchmark("cpu")["matmul"]["gflops"] > 0
    go_next(qtbot, w, FLOORS)
    floors = w.floors_page
    qtbot.waitUntil(lambda: "cpu" in floors.spins, timeout=10000)
    assert list(floors.spins) == ["cpu"] and floors.spins["cpu"].value() > 0  # the default, never 0
    assert "measured" in floors.bases["cpu"].text()
    assert clipped_labels(w) == [] and w.width() < 900  # the long texts wrap: the wizard keeps its size
    floors.spins["cpu"].setValue(0.75)
    assert floors.mining_key.isChecked()
    w.next()  # Finish: the floor saved and the mining key made, then the wizard closes
    qtbot.waitUntil(lambda: w.result() == FirstRunWizard.DialogCode.Accepted, timeout=60000)
    assert w.flow._password is None and ctx.settings.device("cpu").price_floor_ntk_per_hour == 0.75
    change = floors.key_change
    assert change.key.payout == address and not change.left

    assert not needs_first_run(ctx)
    assert (ctx.settings.wallet.account, ctx.settings.wallet.network) == (address, "local")
    s = WalletSession(AppContext.open(), keystore=w.flow.keystore)
    try:
        assert s.snapshot().ntk_wei == FAUCET_NTK_WEI  # the wizard deployed and funded the local chain
    finally:
        s.close()


def test_import_private_key_and_keystore_file(qtbot, make_wizard, ctx, tmp_path):
    w = make_wizard()
    w.welcome.import_radio.setChecked(True)
    go_next(qtbot, w, IMPORT)
    page = w.import_page
    w.next()
    assert page.fields_["file"].text() == "Choose a keystore file."
    page.key_radio.setChecked(True)
    assert page.key_box.isEnabled() and not page.file_box.isEnabled()
    page.key_edit.setText("0xnot-a-key")
    page.password.setText(PW)
    page.again.setText(PW)
    w.next()
    qtbot.waitUntil(page.fields_["key"].isVisible, timeout=10000)
    assert "not a valid private key" in page.fields_["key"].text() and w.currentId() == IMPORT
    page.key_edit.setText(KEY)
    go_next(qtbot, w, ADDRESS)
    assert w.address_page.address.text() == KEY_ADDRESS
    exported = w.flow.backup(tmp_path / "k.json")

    other = AppContext.open(ctx.paths.__class__(*(tmp_path / "home2" / d for d in ("c", "d", "l", "x"))))
    w2 = make_wizard(other)
    w2.welcome.import_radio.setChecked(True)
    go_next(qtbot, w2, IMPORT)
    p2 = w2.import_page
    p2.file_edit.setText(str(exported))
    p2.file_password.setText("not the password")
    w2.next()
    qtbot.waitUntil(p2.fields_["file_password"].isVisible, timeout=10000)
    assert p2.fields_["file_password"].text() == "Wrong password for that keystore file."
    assert needs_first_run(other, w2.flow.keystore)
    p2.file_password.setText(PW)
    go_next(qtbot, w2, ADDRESS)
    assert w2.flow.address == KEY_ADDRESS and not needs_first_run(other, w2.flow.keystore)


def test_restore_from_a_recovery_phrase(qtbot, make_wizard, ctx):
    """Bad words: one line at the field and nothing written; the right words: the same address."""
    phrase = "test test test test test test test test test test test junk"
    w = make_wizard()
    w.welcome.restore_radio.setChecked(True)
    go_next(qtbot, w, RESTORE)
    page = w.restore_page
    page.password.setText(PW)
    page.again.setText(PW)
    page.phrase.setPlainText(phrase.replace("junk", "junkk"))
    w.next()
    qtbot.waitUntil(page.fields_["phrase"].isVisible, timeout=10000)
    assert page.fields_["phrase"].text() == "Word 12 is not in the BIP-39 English word list: check its spelling."
    page.phrase.setPlainText(phrase.replace("junk", "test"))
    w.next()
    qtbot.waitUntil(lambda: "checksum" in page.fields_["phrase"].text(), timeout=10000)
    assert needs_first_run(ctx, w.flow.keystore) and w.currentId() == RESTORE
    page.phrase.setPlainText(phrase.upper())
    go_next(qtbot, w, ADDRESS)
    assert w.flow.address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266" and not needs_first_run(ctx, w.flow.keystore)
