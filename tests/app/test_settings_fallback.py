"""A settings field that fails validation falls back alone, every command says so on stderr
(one line per field), and a network field never falls back silently to another chain (issue 16)."""

from __future__ import annotations

import json

import pytest

from app.context import AppContext
from cli.main import main

ADDRESS = "0x000000000000000000000000000000000000dEaD"


@pytest.fixture
def anvil():
    """A real anvil on 127.0.0.1 (free port): the devnet node, stopped after the test."""
    from tests.wallet.conftest import start_anvil, stop_anvil

    a = start_anvil()
    yield a
    stop_anvil(a)


def write_settings(doc: dict) -> None:
    path = AppContext.open().paths.settings_file
    path.write_text(json.dumps({"schema_version": 1, **doc}))


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_bad_field_falls_back_alone_and_every_command_says_so(capsys):
    write_settings({"jobs": {"cpu_slots": "many", "priority": 5}, "devices": {"cpu": {"mode": "turbo"}},
                    "wallet": {"network": "devnet", "rpc_url": "http://127.0.0.1:9"}})
    for _ in range(2):  # every command, not once
        code, out, err = run(capsys, "settings", "get", "wallet.rpc_url")
        assert code == 0 and out.strip() == "http://127.0.0.1:9"
        lines = err.strip().splitlines()
        assert len(lines) == 2, err
        assert any("jobs.cpu_slots" in x and "using its default" in x for x in lines)
        assert any("devices.cpu.mode" in x for x in lines)
    assert run(capsys, "settings", "get", "jobs.priority")[1].strip() == "5"  # its neighbour kept its value
    assert run(capsys, "settings", "get", "wallet.network")[1].strip() == "devnet"


def test_the_devnet_is_kept_beside_a_bad_field(capsys, anvil):
    """The issue's case: `jobs.cpu_slots: "many"` next to a devnet RPC URL answered from the
    embedded local chain. Now the balance comes from the devnet node, and stderr says why."""
    write_settings({"jobs": {"cpu_slots": "many"}, "wallet": {"network": "devnet", "rpc_url": anvil.url}})
    code, out, err = run(capsys, "wallet", "balance", ADDRESS, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["network"] == "devnet" and doc["chain_id"] == 31337
    assert len(err.strip().splitlines()) == 1 and "jobs.cpu_slots" in err
    assert not AppContext.open().paths.chain_dir.exists() or not any(AppContext.open().paths.chain_dir.iterdir())


def test_an_invalid_network_field_refuses_the_network_and_is_kept_until_fixed(capsys):
    write_settings({"wallet": {"network": "devnet", "rpc_url": "ftp://node.example/rpc"}})
    code, out, err = run(capsys, "wallet", "balance", ADDRESS)
    lines = err.strip().splitlines()
    assert code == 1 and out == ""
    assert "wallet.rpc_url" in lines[0] and "using its default" in lines[0]
    assert lines[-1].startswith("kminer: error:") and "will not connect to another chain" in lines[-1]
    assert len(lines) == 2
    ctx = AppContext.open()
    assert not ctx.paths.chain_dir.exists() or not any(ctx.paths.chain_dir.iterdir())  # no local chain opened
    ctx.settings.general.away_minutes = 4   # anything saving the settings (the GUI does) keeps the bad URL
    ctx.save_settings()
    saved = json.loads(ctx.paths.settings_file.read_text())
    assert saved["wallet"]["rpc_url"] == "ftp://node.example/rpc" and saved["general"]["away_minutes"] == 4
    assert run(capsys, "settings", "set", "wallet.rpc_url", "http://127.0.0.1:9")[0] == 0
    fixed = AppContext.open()
    assert fixed.network_problem is None and fixed.settings.wallet.rpc_url == "http://127.0.0.1:9"
    assert fixed.settings.wallet.network == "devnet"


@pytest.mark.parametrize("wallet", [{"network": 7}, "devnet"])
def test_a_broken_network_choice_never_becomes_the_local_chain(capsys, wallet):
    write_settings({"wallet": wallet})
    code, _, err = run(capsys, "wallet", "balance", ADDRESS)
    assert code == 1 and "will not connect to another chain" in err
    ctx = AppContext.open()
    assert ctx.network_problem is not None
    assert not ctx.paths.chain_dir.exists() or not any(ctx.paths.chain_dir.iterdir())


def test_a_corrupt_only_keystore_is_an_error_not_no_accounts(capsys):
    ctx = AppContext.open()
    ctx.paths.keystore_dir.mkdir(parents=True, exist_ok=True)
    (ctx.paths.keystore_dir / "UTC--2024--abc.json").write_text("{not a keystore")
    code, out, err = run(capsys, "wallet", "address")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "no usable account" in err and "internal error" not in err
