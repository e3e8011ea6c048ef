"""app.first_run without Qt: create / import / backup, network choice on the real embedded
chain and against a closed port, device modes, and a real benchmark child cancelled midway."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from app.context import AppContext
from app.devices import DeviceService
from app.first_run import (
    AWAY_UNKNOWN_NOTE, BenchmarkRun, Cancelled, FirstRun, needs_first_run, password_strength, suggest_modes,
)
from app.amounts import FieldError
from app.account import WalletSession
from tests.gpu.nvml_standin import RTX_3070_X1, make_standin
from wallet.deploy import FAUCET_NTK_WEI
from wallet.keystore import Keystore

PW = "correct horse battery"
KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"  # a well-known test key
KEY_ADDRESS = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"


@pytest.fixture
def flow():
    ctx = AppContext.open()
    return FirstRun(ctx, keystore=Keystore(ctx.paths.keystore_dir, scrypt_n=2**10, allow_weak_kdf=True))


def field_of(fn, *a, **kw) -> str:
    with pytest.raises(FieldError) as e:
        fn(*a, **kw)
    return e.value.field


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_password_strength_hints():
    assert password_strength("") == (0, "")   # no verdict before typing: the field says the rule once
    assert password_strength("short")[0] == 0
    assert password_strength("aaaaaaaaaaaaaaaaaaaa")[0] == 1
    assert password_strength("Tr0ub4dor&3")[0] == 2
    assert password_strength(PW)[0] == 3
    assert password_strength("Correct-Horse-Battery-9")[0] == 4


def test_create_backup_and_local_network(flow, tmp_path):
    ctx = flow.ctx
    assert needs_first_run(ctx, flow.keystore)
    assert field_of(flow.create, "short", "short") == "password"
    assert field_of(flow.create, PW, PW + "x") == "again"
    assert needs_first_run(ctx, flow.keystore)  # nothing written by the failed tries
    address = flow.create(PW, PW)
    assert not needs_first_run(ctx, flow.keystore) and ctx.settings.wallet.account == address
    dest = flow.backup(tmp_path / "backup.json")
    assert address.lower()[2:] in dest.read_text().lower()
    assert field_of(flow.backup, dest) == "backup"  # never overwrites
    assert field_of(flow.choose_network, "sepolia") == "rpc_url"  # needs a URL
    assert field_of(flow.choose_network, "devnet", "ftp://x") == "rpc_url"
    assert field_of(flow.choose_network, "devnet", f"http://127.0.0.1:{closed_port()}") == "rpc_url"
    assert ctx.settings.wallet.network == "local"  # unchanged by the failures
    assert flow.choose_network("local") == 27501
    flow.forget_password()
    s = WalletSession(ctx, keystore=flow.keystore)
    try:
        snap = s.snapshot()
        assert (snap.address, snap.ntk_wei) == (address, FAUCET_NTK_WEI)  # deployed and funded
    finally:
        s.close()


def test_import_private_key_and_keystore_file(flow, tmp_path):
    assert field_of(flow.import_private_key, "", PW, PW) == "key"
    assert field_of(flow.import_private_key, "0x1234", PW, PW) == "key"
    assert flow.import_private_key(KEY, PW, PW) == KEY_ADDRESS
    exported = flow.backup(tmp_path / "k.json")
    ctx2 = AppContext.open()
    other = FirstRun(ctx2, keystore=Keystore(tmp_path / "ks2", scrypt_n=2**10, allow_weak_kdf=True))
    assert field_of(other.import_keystore, "", PW) == "file"
    assert field_of(other.import_keystore, tmp_path / "missing.json", PW) == "file"
    assert field_of(other.import_keystore, exported, "wrong password") == "file_password"
    (tmp_path / "junk.json").write_text("{not json")
    assert field_of(other.import_keystore, tmp_path / "junk.json", PW) == "file"
    assert other.import_keystore(exported, PW) == KEY_ADDRESS


def test_device_modes_are_applied_and_bad_ones_refused(flow):
    devices = DeviceService(flow.ctx, nvml_module=make_standin(gpus=[RTX_3070_X1]), idle=lambda: 0.0)
    try:
        FirstRun.set_modes(devices, {"cpu": "mining", "cuda:0": "auto"})
        assert {s.info.id: s.mode for s in devices.states()} == {"cpu": "mining", "cuda:0": "auto"}
        assert field_of(FirstRun.set_modes, devices, {"cpu": "turbo"}) == "mode:cpu"
    finally:
        devices.close()


def test_devices_step_suggests_mining_while_away_or_always_when_away_cannot_be_told(flow):
    known = DeviceService(flow.ctx, nvml_module=make_standin(gpus=[RTX_3070_X1]), idle=lambda: 0.0)
    try:
        assert suggest_modes(known) == type(suggest_modes(known))({"cpu": "auto", "cuda:0": "auto"}, None)
        known.set_mode("cuda:0", "mining")   # a mode chosen before is kept
        assert suggest_modes(known).modes == {"cpu": "auto", "cuda:0": "mining"}
    finally:
        known.close()
    unknown = DeviceService(flow.ctx, nvml_module=make_standin(gpus=[RTX_3070_X1]), idle=lambda: None)
    try:
        s = suggest_modes(unknown)   # Wayland: auto would never mine
        assert s.modes == {"cpu": "mining", "cuda:0": "mining"} and s.note == AWAY_UNKNOWN_NOTE
    finally:
        unknown.close()


def test_benchmark_cancel_kills_the_child_and_stores_nothing(flow):
    devices = DeviceService(flow.ctx, nvml_module=make_standin(gpus=[]), idle=lambda: 0.0)
    run = BenchmarkRun(flow.ctx, devices, ["cpu"])
    seen, outcome = [], {}
    first = threading.Event()

    def progress(p):
        seen.append(p)
        first.set()

    def work():
        try:
            outcome["value"] = run.run(progress)
        except Cancelled:
            outcome["cancelled"] = True

    t = threading.Thread(target=work)
    t.start()
    try:
        assert first.wait(30), "no progress from the benchmark child"
        child = run._proc
        assert child is not None and child.poll() is None
        t0 = time.monotonic()
        run.cancel()
        t.join(10)
        assert not t.is_alive() and time.monotonic() - t0 < 5
    finally:
        devices.close()
    assert outcome == {"cancelled": True}
    assert child.poll() is not None  # the child is gone
    assert 0 < seen[0].fraction < 1 and seen[0].device_id == "cpu"
    assert devices.benchmark("cpu") is None  # nothing half-stored


def test_local_chain_of_another_account_is_explained_not_silently_empty(flow, tmp_path):
    flow.create(PW, PW)
    flow.choose_network("local")
    stranger = FirstRun(flow.ctx, keystore=Keystore(tmp_path / "other-keys", scrypt_n=2**10, allow_weak_kdf=True))
    stranger.create(PW, PW)
    with pytest.raises(FieldError, match="set up for another account") as e:
        stranger.choose_network("local")
    assert e.value.field == "network" and str(flow.ctx.paths.chain_dir) in str(e.value)
