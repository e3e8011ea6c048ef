"""`kminer settings`: show, get, set (checked like the dialog), unset; one-line errors; the file
is changed only by a valid value."""

from __future__ import annotations

import json

from cli.main import main
from app.context import AppContext


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(["settings", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def saved() -> dict:
    return json.loads(AppContext.open().paths.settings_file.read_text())


def test_show_lists_every_setting_and_get_reads_one(capsys):
    code, out, _ = run(capsys)
    assert code == 0
    keys = [line.split(" = ")[0].strip() for line in out.splitlines()]
    assert {"jobs.sandbox", "wallet.network", "earnings.electricity_usd_per_kwh", "jobs.artifact_store_url"} <= set(keys)
    assert "wallet.account" not in keys and "general.window_geometry" not in keys  # app state, not settings
    assert run(capsys, "get", "earnings.pool_fee")[1].strip() == "0.01"
    assert run(capsys, "get", "jobs.artifact_store_url", "--json")[1].strip() == "null"
    assert json.loads(run(capsys, "show", "--json")[1])["jobs"]["sandbox"] == "auto"


def test_set_checks_like_the_dialog_and_saves_only_good_values(capsys):
    assert run(capsys, "set", "jobs.sandbox", "strict")[0] == 0
    assert saved()["jobs"]["sandbox"] == "strict"
    assert run(capsys, "set", "devices.cpu.price_floor_ntk_per_hour", "0.5")[0] == 0
    assert run(capsys, "set", "devices.cpu.auto_price", "yes")[0] == 0
    dev = saved()["devices"]["cpu"]
    assert dev["price_floor_ntk_per_hour"] == 0.5 and dev["auto_price"] is True
    assert "devices.cpu.mode" in run(capsys, "show")[1]
    before = saved()
    for args, message in [
        (("jobs.sandbox", "nope"), "jobs.sandbox: Input should be 'auto', 'strict' or 'basic'"),
        (("jobs.cpu_slots", "0"), "jobs.cpu_slots: Input should be greater than or equal to 1"),
        (("devices.cpu.auto_price", "maybe"), "devices.cpu.auto_price: use true or false"),
        (("jobs.artifact_store_url", "https://example.com/x"), "jobs.artifact_store_url: plain HTTP cannot take uploads"),
        (("wallet.account", "0x12"), "wallet.account is app state, not a setting"),
        (("general.nope", "1"), "general.nope is not a setting"),
        (("nope", "1"), "nope: no such setting"),
        (("devices.gpu7.mode", "mining"), "no device 'gpu7'"),
        (("wallet.network", "moon"), "unknown network 'moon'"),
        (("jobs.sandbox", ""), "jobs.sandbox cannot be empty"),
    ]:
        code = main(["settings", "set", *args])
        err = capsys.readouterr().err
        assert code == 1 and len(err.strip().splitlines()) == 1 and message in err, (args, err)
    assert saved() == before  # nothing written by a refused value


def test_clear_unset_and_network_switch_keep_each_networks_url(capsys):
    assert run(capsys, "set", "jobs.artifact_store_url", "file:///mnt/shared/kminer/")[0] == 0
    assert saved()["jobs"]["artifact_store_url"] == "file:///mnt/shared/kminer"
    assert run(capsys, "set", "jobs.artifact_store_url", "")[0] == 0
    assert saved()["jobs"]["artifact_store_url"] is None
    run(capsys, "set", "earnings.pool_fee", "0.2")
    assert run(capsys, "unset", "earnings.pool_fee")[1].startswith("earnings.pool_fee = 0.01")
    run(capsys, "set", "wallet.network", "devnet")
    run(capsys, "set", "wallet.rpc_url", "http://127.0.0.1:9545")
    run(capsys, "set", "wallet.network", "sepolia")
    assert saved()["wallet"]["rpc_url"] is None  # devnet's node is never used for sepolia
    run(capsys, "set", "wallet.network", "devnet")
    assert saved()["wallet"]["rpc_url"] == "http://127.0.0.1:9545"
    assert run(capsys, "path")[1].strip() == str(AppContext.open().paths.settings_file)


def test_a_running_process_takes_settings_changed_by_another():
    """What `kminer agent` does each pass: the file changed by `kminer settings set` (another
    process) is taken; its own saves do not count as changes; a broken file is not taken."""
    agent, other = AppContext.open(), AppContext.open()
    assert agent.reload_settings_if_changed() is False
    other.settings.device("cpu").price_floor_ntk_per_hour = 2.5
    other.save_settings()
    assert agent.reload_settings_if_changed() is True
    assert agent.settings.device("cpu").price_floor_ntk_per_hour == 2.5
    assert agent.reload_settings_if_changed() is False
    agent.settings.general.away_minutes = 3
    agent.save_settings()
    assert agent.reload_settings_if_changed() is False
    assert other.reload_settings_if_changed() is True and other.settings.general.away_minutes == 3
    agent.paths.settings_file.write_text("{ not json")
    assert agent.reload_settings_if_changed() is False
    assert agent.settings.general.away_minutes == 3  # the settings in use stay
