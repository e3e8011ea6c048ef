"""Earnings arithmetic: coin mining (Ethash/Etchash) per GPU, and the data tables it reads.

Pure functions and frozen dataclasses; no I/O except `load_*`, which read a JSON data file.

Units and money:
- hashrate in H/s (tables hold MH/s: `mh_s`), power in W, energy in Wh or kWh as named,
  time in seconds, difficulty in hashes per block.
- NTK is money the app moves: always integer wei (18 decimals), never a float.
- USD is never moved by the app; it is an estimate for display (prices come from settings or a
  feed as floats), so USD values are floats and are rounded only when shown.
- Coin amounts from the mining formula (ETC, ETH) are expectations, floats.

Formula (FACTS.md): coins/day = H x 86400 x R / D, equivalently
(H / network_hashrate) x (86400 / block_time) x R; net USD/day =
coins x price x (1 - pool_fee) - watts x 24 / 1000 x usd_per_kwh.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

__all__ = [
    "DataFileError", "Network", "GpuHashrate", "GpuLookup", "CoinMiningDay", "SECONDS_PER_DAY",
    "coins_per_day", "coins_per_day_from_difficulty", "coin_mining_day", "power_cost_usd",
    "ecip1017_block_reward", "normalize_gpu_name", "lookup_gpu", "load_networks", "load_gpus",
    "parse_networks", "parse_gpus", "ratio",
]

SECONDS_PER_DAY = 86400


class DataFileError(ValueError):
    """A data file (or a feed's answer) is missing, not JSON, or lacks a required field."""


# ---- values ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Network:
    """One Ethash-family network's figures at a date. Either `network_hashrate_hs` or
    `difficulty` must be set (the other is derived with `block_time_s`)."""

    key: str
    label: str
    coin: str
    algorithm: str
    historical: bool
    as_of: str
    block_time_s: float
    block_reward: float
    price_usd: float
    network_hashrate_hs: float | None = None
    difficulty: float | None = None
    sources: Mapping[str, str] | None = None
    estimates: Mapping[str, str] | None = None

    @property
    def hashrate_hs(self) -> float:
        """The network's hashrate in H/s (given, or difficulty / block time)."""
        if self.network_hashrate_hs is not None:
            return self.network_hashrate_hs
        assert self.difficulty is not None
        return self.difficulty / self.block_time_s

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "coin": self.coin, "algorithm": self.algorithm,
                "historical": self.historical, "as_of": self.as_of, "block_time_s": self.block_time_s,
                "block_reward": self.block_reward, "price_usd": self.price_usd,
                "network_hashrate_hs": self.hashrate_hs, "difficulty": self.difficulty,
                "sources": dict(self.sources or {}), "estimates": dict(self.estimates or {})}


@dataclass(frozen=True)
class GpuHashrate:
    """A GPU's Ethash hashrate (MH/s) and power while mining (W), from a table with a source."""

    name: str
    mh_s: float
    watts: float
    source: str
    alt_mh_s: float | None = None
    alt_watts: float | None = None
    alt_source: str | None = None

    @property
    def hashrate_hs(self) -> float:
        return self.mh_s * 1e6


@dataclass(frozen=True)
class GpuLookup:
    """The table row for a GPU name, or None with the reason there is no comparison."""

    query: str
    gpu: GpuHashrate | None
    reason: str | None = None


@dataclass(frozen=True)
class CoinMiningDay:
    """A day of coin mining on one GPU and one network: expected coins, USD gross (before the
    pool fee), pool fee, energy (kWh) and its cost, net USD. USD floats, for display."""

    coins: float
    gross_usd: float
    pool_fee_usd: float
    energy_kwh: float
    power_cost_usd: float

    @property
    def net_usd(self) -> float:
        return self.gross_usd - self.pool_fee_usd - self.power_cost_usd

    def to_json(self) -> dict[str, float]:
        return {"coins": self.coins, "gross_usd": self.gross_usd, "pool_fee_usd": self.pool_fee_usd,
                "energy_kwh": self.energy_kwh, "power_cost_usd": self.power_cost_usd, "net_usd": self.net_usd}


# ---- formulas -------------------------------------------------------------------------------
def coins_per_day_from_difficulty(hashrate_hs: float, block_reward: float, difficulty: float) -> float:
    """Expected coins per day: H x 86400 x R / D (H in H/s, D in hashes per block)."""
    if difficulty <= 0:
        raise ValueError("difficulty must be > 0")
    return hashrate_hs * SECONDS_PER_DAY * block_reward / difficulty


def coins_per_day(hashrate_hs: float, network: Network) -> float:
    """Expected coins per day on `network`: (H / nethash) x (86400 / block_time) x R."""
    return hashrate_hs / network.hashrate_hs * (SECONDS_PER_DAY / network.block_time_s) * network.block_reward


def power_cost_usd(watts: float, usd_per_kwh: float, hours: float = 24.0) -> float:
    """What `watts` drawn for `hours` cost at `usd_per_kwh`."""
    return watts * hours / 1000.0 * usd_per_kwh


def coin_mining_day(hashrate_hs: float, watts: float, network: Network, *, usd_per_kwh: float,
                    pool_fee: float, price_usd: float | None = None) -> CoinMiningDay:
    """One day of mining `network` with a card of `hashrate_hs` drawing `watts`.
    price_usd overrides the network's own price (e.g. from a price feed)."""
    if not 0 <= pool_fee < 1:
        raise ValueError("pool_fee must be in [0, 1)")
    coins = coins_per_day(hashrate_hs, network)
    price = network.price_usd if price_usd is None else price_usd
    gross = coins * price
    return CoinMiningDay(coins=coins, gross_usd=gross, pool_fee_usd=gross * pool_fee,
                         energy_kwh=watts * 24 / 1000.0, power_cost_usd=power_cost_usd(watts, usd_per_kwh))


def ecip1017_block_reward(block_number: int) -> float:
    """ETC's base block reward (ETC) at `block_number` under ECIP-1017: 5 x 0.8^era with
    era = (block - 1) // 5,000,000 (block 5,000,000 is still era 0; 5,000,001 starts era 1)."""
    if block_number < 0:
        raise ValueError("block number must be >= 0")
    era = max(block_number - 1, 0) // 5_000_000
    return 5.0 * 0.8**era


def ratio(knowledge_net_usd: float, coin_net_usd: float) -> tuple[float | None, str | None]:
    """knowledge : coin mining, both net USD/day. (None, why) when a ratio would mislead:
    coin mining nets nothing or loses money, so there is no positive figure to divide by."""
    if coin_net_usd <= 0:
        return None, f"coin mining nets {coin_net_usd:.2f} USD/day (no profit to compare against)"
    return knowledge_net_usd / coin_net_usd, None


# ---- GPU names ------------------------------------------------------------------------------
_VENDOR = re.compile(r"\b(nvidia|geforce|amd|radeon|ati|graphics|gpu|laptop|mobile|series)\b")


def normalize_gpu_name(name: str) -> str:
    """The model part of a GPU name, lower case, single spaces: "NVIDIA GeForce RTX 3070" ->
    "rtx 3070", "GeForce GTX 1080 Ti" -> "gtx 1080 ti", "AMD Radeon RX 6800 XT" -> "rx 6800 xt"."""
    s = name.lower().replace("(tm)", " ").replace("(r)", " ")
    s = re.sub(r"[^a-z0-9]+", " ", s)
    s = _VENDOR.sub(" ", s)
    s = re.sub(r"\b(rtx|gtx|rx)(\d)", r"\1 \2", s)  # "rtx3070" -> "rtx 3070"
    return " ".join(s.split())


def lookup_gpu(name: str, table: list[GpuHashrate]) -> GpuLookup:
    """The table row whose model equals `name`'s model exactly (so "RTX 3070 Ti" never takes
    "RTX 3070"'s figures). Unknown: gpu None with a reason; the app never guesses a hashrate."""
    want = normalize_gpu_name(name)
    if not want:
        return GpuLookup(name, None, "no GPU name given")
    for g in table:
        if normalize_gpu_name(g.name) == want:
            return GpuLookup(name, g)
    known = ", ".join(g.name for g in table)
    return GpuLookup(name, None, f"no Ethash hashrate on record for {name!r} (known: {known}); "
                                 "no comparison rather than a guess")


# ---- data files -----------------------------------------------------------------------------
def _read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataFileError(f"data file {path} is missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataFileError(f"data file {path} is not readable JSON ({e})") from None


def _num(obj: Mapping[str, Any], key: str, where: str, *, positive: bool = True, required: bool = True) -> float | None:
    v = obj.get(key)
    if v is None and not required:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise DataFileError(f"{where}: '{key}' must be a number")
    if positive and not v > 0:
        raise DataFileError(f"{where}: '{key}' must be > 0")
    return float(v)


def _text_map(v: Any) -> Mapping[str, str] | None:
    if isinstance(v, dict):
        return {str(k): str(x) for k, x in v.items()}
    return None


def parse_networks(doc: Any, *, where: str = "network figures") -> dict[str, Network]:
    """Networks from an `ethash_networks` document (the bundled file's layout; a feed answers
    the same). DataFileError naming the first problem."""
    if not isinstance(doc, dict) or not isinstance(doc.get("networks"), dict) or not doc["networks"]:
        raise DataFileError(f"{where}: expected an object with a non-empty 'networks' object")
    out: dict[str, Network] = {}
    for key, n in doc["networks"].items():
        w = f"{where}: network '{key}'"
        if not isinstance(n, dict):
            raise DataFileError(f"{w} is not an object")
        as_of = n.get("as_of")
        if not isinstance(as_of, str) or not as_of.strip():
            raise DataFileError(f"{w}: 'as_of' (the figures' date) is required")
        nethash = _num(n, "network_hashrate_hs", w, required=False)
        diff = _num(n, "difficulty", w, required=False)
        if nethash is None and diff is None:
            raise DataFileError(f"{w}: needs 'network_hashrate_hs' or 'difficulty'")
        out[key] = Network(
            key=key, label=str(n.get("label") or key), coin=str(n.get("coin") or key.upper()),
            algorithm=str(n.get("algorithm") or "Ethash"), historical=bool(n.get("historical", False)),
            as_of=as_of.strip(), block_time_s=_num(n, "block_time_s", w),  # type: ignore[arg-type]
            block_reward=_num(n, "block_reward", w), price_usd=_num(n, "price_usd", w),  # type: ignore[arg-type]
            network_hashrate_hs=nethash, difficulty=diff,
            sources=_text_map(n.get("sources")), estimates=_text_map(n.get("estimates")))
    return out


def load_networks(path: Path) -> dict[str, Network]:
    return parse_networks(_read_json(path), where=str(path))


def parse_gpus(doc: Any, *, where: str = "GPU table") -> list[GpuHashrate]:
    if not isinstance(doc, dict) or not isinstance(doc.get("gpus"), list) or not doc["gpus"]:
        raise DataFileError(f"{where}: expected an object with a non-empty 'gpus' list")
    source = str(doc.get("source") or "unknown source")
    out = []
    for i, g in enumerate(doc["gpus"]):
        w = f"{where}: gpus[{i}]"
        if not isinstance(g, dict) or not isinstance(g.get("name"), str):
            raise DataFileError(f"{w} needs a 'name'")
        alt = g.get("alt") if isinstance(g.get("alt"), dict) else {}
        out.append(GpuHashrate(
            name=g["name"], mh_s=_num(g, "mh_s", w), watts=_num(g, "watts", w), source=source,  # type: ignore[arg-type]
            alt_mh_s=_num(alt, "mh_s", w + ".alt", required=False),
            alt_watts=_num(alt, "watts", w + ".alt", required=False),
            alt_source=str(alt["source"]) if alt.get("source") else None))
    return out


def load_gpus(path: Path) -> list[GpuHashrate]:
    return parse_gpus(_read_json(path), where=str(path))
