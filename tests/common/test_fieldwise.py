"""common.fieldwise: a field that fails validation falls back alone and is reported; a
protected field (the network, the RPC URL) never falls back silently."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field

from common.fieldwise import FieldwiseError, validate_fieldwise


class Jobs(BaseModel):
    model_config = ConfigDict(extra="ignore")
    cpu_slots: int = Field(1, ge=1, le=64)
    priority: int = Field(10, ge=0, le=19)


class Wallet(BaseModel):
    model_config = ConfigDict(extra="ignore")
    network: str = Field("local", pattern=r"^(local|devnet|mainnet)$")
    rpc_url: str | None = Field(None, pattern=r"^https?://")


class Device(BaseModel):
    price_floor: float = Field(0.0, ge=0)


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore")
    jobs: Jobs = Field(default_factory=Jobs)
    wallet: Wallet = Field(default_factory=Wallet)
    devices: dict[str, Device] = Field(default_factory=dict)
    tags: list[int] = Field(default_factory=list)


def test_one_bad_field_falls_back_alone_and_is_reported():
    raw = {"jobs": {"cpu_slots": "many", "priority": 5}, "wallet": {"network": "devnet", "rpc_url": "http://10.0.0.2:8545"},
           "devices": {"gpu0": {"price_floor": -3}, "cpu": {"price_floor": 0.5}}, "tags": [1, "x"]}
    s, fb = validate_fieldwise(Settings, raw, protected=("wallet",))
    assert s.jobs.cpu_slots == 1 and s.jobs.priority == 5
    assert s.wallet.network == "devnet" and s.wallet.rpc_url == "http://10.0.0.2:8545"
    assert s.devices["gpu0"].price_floor == 0.0 and s.devices["cpu"].price_floor == 0.5 and s.tags == []
    assert [f.path for f in fb] == ["jobs.cpu_slots", "devices.gpu0.price_floor", "tags.1"]
    assert fb[0].line() == "settings: jobs.cpu_slots Input should be a valid integer, unable to parse string as an integer; using its default"
    assert raw["jobs"]["cpu_slots"] == "many"  # the caller's data is not changed


def test_a_protected_field_never_falls_back_to_another_chain():
    with pytest.raises(FieldwiseError, match=r"^wallet.rpc_url: .* never falls back"):
        validate_fieldwise(Settings, {"wallet": {"network": "devnet", "rpc_url": "ftp://x"}}, protected=("wallet",))


def test_what_no_default_can_mend_is_an_error():
    with pytest.raises(FieldwiseError, match="top level"):
        validate_fieldwise(Settings, ["not", "an", "object"])
