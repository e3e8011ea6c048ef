"""`kminer wallet` / `kminer market` errors are one line, exit 1, and never show secrets."""

from __future__ import annotations

import json

import pytest
from eth_account import Account

from cli.main import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_no_account_yet_says_what_to_do(capsys):
    code, _, err = run(capsys, "wallet", "balance")
    assert code == 1 and "kminer wallet create" in err and err.count("\n") == 1


def test_unknown_network_and_missing_rpc(capsys):
    code, _, err = run(capsys, "wallet", "balance", "--network", "moon", "0x" + "11" * 20)
    assert code == 1 and "unknown network 'moon'" in err
    code, _, err = run(capsys, "wallet", "balance", "--network", "sepolia", "0x" + "11" * 20)
    assert code == 1 and "needs an RPC URL" in err


def test_rpc_down_is_one_line(capsys, anvil_factory):
    port = anvil_factory.free_port()
    code, _, err = run(capsys, "wallet", "balance", "--network", "devnet", "--rpc-url", f"http://127.0.0.1:{port}",
                       "0x" + "11" * 20)
    assert code == 1 and "cannot reach" in err and "Traceback" not in err


def test_bad_private_key_file_is_refused_without_echoing_it(capsys, tmp_path, monkeypatch):
    key = Account.create().key.hex().removeprefix("0x")
    bad = key[:-1] + "g"
    (tmp_path / "k").write_text(bad)
    monkeypatch.setenv("KMINER_PASSWORD", "pw-for-test")
    code, out, err = run(capsys, "wallet", "import", "--private-key-file", str(tmp_path / "k"), "--network", "devnet")
    assert code == 1 and "not a valid private key" in err
    assert bad[:-1] not in out + err


def test_import_then_address_and_export(capsys, tmp_path, monkeypatch):
    acct = Account.create()
    (tmp_path / "k").write_text(acct.key.hex())
    monkeypatch.setenv("KMINER_PASSWORD", "pw-for-test")
    code, out, _ = run(capsys, "wallet", "import", "--private-key-file", str(tmp_path / "k"), "--network", "devnet", "--json")
    assert code == 0 and json.loads(out)["address"] == acct.address
    code, out, _ = run(capsys, "wallet", "address", "--json")
    assert json.loads(out) == [{"address": acct.address, "current": True}]
    code, out, _ = run(capsys, "wallet", "export", str(tmp_path / "backup.json"))
    assert code == 0 and Account.decrypt(json.loads((tmp_path / "backup.json").read_text()), "pw-for-test") == acct.key
    code, _, err = run(capsys, "wallet", "export", str(tmp_path / "backup.json"))
    assert code == 1 and "already exists" in err
    # neither the key nor the password is in the settings or the log
    from app.paths import resolve_paths

    paths = resolve_paths()
    written = paths.settings_file.read_text() + (paths.log_file.read_text() if paths.log_file.exists() else "")
    assert acct.address in written  # the settings do name the account...
    assert acct.key.hex().removeprefix("0x") not in written and "pw-for-test" not in written  # ...never its secrets


@pytest.mark.parametrize("argv", [["market", "post", "--kind", "bake"], ["wallet", "send", "--to", "x"]])
def test_bad_arguments_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
