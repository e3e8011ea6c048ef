"""EarningsService: what knowledge mining earned per device and day, against mining coins.

Knowledge mining: NTK per device per day from the ledger (payments joined to devices by job
id), energy per device per day integrated from telemetry (`record_states`, fed by
DeviceService.poll()), priced with the NTK and electricity prices from the settings or the
optional price feed. Coin mining: the Ethash comparison per GPU from the bundled hashrate table
and network figures (ETC now; ETH's last PoW months, historical), pool fee and power.

Price feed (settings earnings.price_feed_url), a JSON object:
    {"ntk_usd": 0.0123,                      required, USD per NTK
     "electricity_usd_per_kwh": 0.11,        optional, else the setting
     "coins_usd": {"ETC": 8.5},              optional, current coin prices (never applied to a
                                             historical network)
     "as_of": "2026-11-22T06:00:00Z"}        optional, shown with the prices
A feed that fails (down, timeout, not JSON, wrong fields) keeps the last good answer (kept in
memory and in `<data>/price_feed.json` across restarts) and says so in `Prices.message`.

Network figures (settings earnings.network_feed_url or a URL given): a JSON document in the
layout of resources/data/ethash_networks.json; `refresh_network` validates it and writes it
atomically to `<data>/ethash_networks.json`, which then wins over the bundled file. A user
file that no longer parses falls back to the bundled one, with a message.

Money: NTK in integer wei; USD as floats, estimates for display (see app.earnings.coin_mining).
Threading: methods may be called from any one thread at a time per instance, except that
`record_states` and the ledger's methods are thread-safe; fetches block (timeout_s each), so
the GUI calls `refresh_*` from an executor.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any, Iterable, Mapping

from app.amounts import ntk_float
from app.context import AppContext
from app.earnings.coin_mining import (
    CoinMiningDay, DataFileError, GpuHashrate, GpuLookup, Network, coin_mining_day, load_gpus, load_networks,
    lookup_gpu, parse_networks, ratio,
)
from app.earnings.ledger import ImportResult, Ledger
from app.resources import resource_path
from common.fsutil import atomic_write_json

log = logging.getLogger(__name__)

__all__ = ["EarningsService", "FeedError", "Prices", "NetworkData", "GpuComparison", "NetworkComparison",
           "DeviceDay", "DeviceEarnings", "EarningsReport", "DailySeries", "RigComparison", "parse_price_feed", "MAX_FEED_BYTES"]

MAX_FEED_BYTES = 1 << 20
NETWORKS_FILE = "ethash_networks.json"
GPUS_FILE = "ethash_gpus.json"
PRICE_CACHE_FILE = "price_feed.json"


class FeedError(Exception):
    """A feed could not be fetched or its answer is not usable; the message is one line."""


# ---- values ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Prices:
    ntk_usd: float
    electricity_usd_per_kwh: float
    coins_usd: Mapping[str, float]
    source: str
    """"settings", "feed URL", or "last good feed answer from URL (fetched ...)"."""
    as_of: str | None = None
    message: str | None = None
    """Set when the feed failed: what happened and what is used instead."""

    def to_json(self) -> dict[str, Any]:
        return {"ntk_usd": self.ntk_usd, "electricity_usd_per_kwh": self.electricity_usd_per_kwh,
                "coins_usd": dict(self.coins_usd), "source": self.source, "as_of": self.as_of, "message": self.message}


@dataclass(frozen=True)
class NetworkData:
    networks: Mapping[str, Network]
    origin: str
    """"bundled" or "refreshed <date> from <url>"."""
    path: Path
    message: str | None = None


@dataclass(frozen=True)
class NetworkComparison:
    network: Network
    day: CoinMiningDay
    price_usd: float
    price_source: str

    def to_json(self) -> dict[str, Any]:
        return {"label": self.network.label, "coin": self.network.coin, "historical": self.network.historical,
                "as_of": self.network.as_of, "price_usd": self.price_usd, "price_source": self.price_source,
                **self.day.to_json()}


@dataclass(frozen=True)
class GpuComparison:
    """Coin mining on one GPU per network, or no comparison (`reason`)."""

    query: str
    gpu: GpuHashrate | None
    watts: float | None
    networks: Mapping[str, NetworkComparison] = field(default_factory=dict)
    reason: str | None = None

    @property
    def available(self) -> bool:
        return self.gpu is not None

    def to_json(self) -> dict[str, Any]:
        gpu = None
        if self.gpu is not None:
            gpu = {"name": self.gpu.name, "mh_s": self.gpu.mh_s, "table_watts": self.gpu.watts, "source": self.gpu.source}
        return {"query": self.query, "available": self.available, "reason": self.reason, "gpu": gpu,
                "watts": self.watts, "networks": {k: v.to_json() for k, v in self.networks.items()}}


@dataclass(frozen=True)
class DeviceDay:
    device_key: str
    day: str
    ntk_wei: int
    energy_wh: float
    covered_s: float
    ntk_usd: float
    energy_usd: float

    @property
    def net_usd(self) -> float:
        return self.ntk_usd - self.energy_usd

    def to_json(self) -> dict[str, Any]:
        return {"day": self.day, "ntk_wei": str(self.ntk_wei), "ntk": ntk_float(self.ntk_wei), "ntk_usd": self.ntk_usd,
                "energy_wh": self.energy_wh, "covered_s": self.covered_s, "energy_usd": self.energy_usd,
                "net_usd": self.net_usd}


@dataclass(frozen=True)
class DeviceEarnings:
    key: str
    id: str | None
    name: str
    kind: str
    days: tuple[DeviceDay, ...]
    period_days: int
    cumulative_wei: int
    coin: GpuComparison

    @property
    def period_wei(self) -> int:
        return sum(d.ntk_wei for d in self.days)

    @property
    def net_usd_per_day(self) -> float:
        """Knowledge mining's realised net USD per day, averaged over the whole period."""
        return sum(d.net_usd for d in self.days) / self.period_days

    def ratios(self) -> dict[str, tuple[float | None, str | None]]:
        """knowledge : coin mining (net USD/day) per network; (None, why) where it would mislead."""
        if not self.coin.available:
            return {}
        return {k: ratio(self.net_usd_per_day, c.day.net_usd) for k, c in self.coin.networks.items()}

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "id": self.id, "name": self.name, "kind": self.kind,
                "days": [d.to_json() for d in self.days], "period_ntk_wei": str(self.period_wei),
                "period_ntk": ntk_float(self.period_wei), "cumulative_ntk_wei": str(self.cumulative_wei),
                "cumulative_ntk": ntk_float(self.cumulative_wei), "net_usd_per_day": self.net_usd_per_day,
                "coin_mining": self.coin.to_json(),
                "ratio": {k: {"knowledge_to_coin": r, "reason": why} for k, (r, why) in self.ratios().items()}}


@dataclass(frozen=True)
class DailySeries:
    """Every day of a period, oldest first, for charts: NTK wei per device and in all, and the
    all-time running total at each day's end. Exact wei; `usd()` prices wei for display."""

    days: tuple[str, ...]
    device_wei: Mapping[str, tuple[int, ...]]
    """device key -> wei per day, aligned with `days` (only devices with a payment in the period)."""
    total_wei: tuple[int, ...]
    cumulative_wei: tuple[int, ...]
    ntk_usd: float

    def usd(self, wei: int) -> float:
        return ntk_float(wei) * self.ntk_usd

    def last(self, n: int) -> "DailySeries":
        """The same series cut to its last `n` days (the running total keeps its all-time base)."""
        n = max(1, min(n, len(self.days)))
        return DailySeries(self.days[-n:], {k: v[-n:] for k, v in self.device_wei.items()}, self.total_wei[-n:],
                           self.cumulative_wei[-n:], self.ntk_usd)


@dataclass(frozen=True)
class RigComparison:
    """Knowledge mining against coin mining on one network, for a set of devices, net USD per
    day after electricity: knowledge from the ledger (average over the period), coin mining as
    if every compared GPU mined this network all day. `ratio` None (with `reason`) where a
    ratio would mislead (coin mining nets nothing or loses money)."""

    network: Network
    knowledge_wei: int
    knowledge_net_usd: float
    coin_net_usd: float
    gpus: tuple[str, ...]
    ratio: float | None
    reason: str | None


@dataclass(frozen=True)
class EarningsReport:
    since: str
    until: str
    period_days: int
    prices: Prices
    network_data: NetworkData
    devices: tuple[DeviceEarnings, ...]
    by_market: Mapping[str, int] = field(default_factory=lambda: {"job": 0, "order": 0})
    """NTK wei paid in the period by each market: "job" (the job market), "order" (the order
    market: vouchers redeemed and releases, per shard)."""
    by_market_total: Mapping[str, int] = field(default_factory=lambda: {"job": 0, "order": 0})
    """The same, all time."""

    def compare_rig(self, keys: Iterable[str] | None = None) -> dict[str, RigComparison]:
        """Per network key, the devices `keys` (None: all) against coin mining with their GPUs;
        empty when none of them has an Ethash comparison (the CPU alone, unknown GPUs)."""
        chosen = [d for d in self.devices if keys is None or d.key in set(keys)]
        gpus = [d for d in chosen if d.coin.available]
        if not gpus:
            return {}
        knowledge = sum(d.net_usd_per_day for d in chosen)
        wei = sum(d.period_wei for d in chosen)
        out: dict[str, RigComparison] = {}
        for key, net in self.network_data.networks.items():
            coin = sum(d.coin.networks[key].day.net_usd for d in gpus if key in d.coin.networks)
            r, why = ratio(knowledge, coin)
            out[key] = RigComparison(net, wei, knowledge, coin, tuple(d.name for d in gpus), r, why)
        return out

    def to_json(self) -> dict[str, Any]:
        nd = self.network_data
        return {"since": self.since, "until": self.until, "days": self.period_days, "prices": self.prices.to_json(),
                "networks": {"origin": nd.origin, "message": nd.message,
                             "figures": {k: n.to_json() for k, n in nd.networks.items()}},
                "devices": [d.to_json() for d in self.devices],
                "by_market": {k: {"period_wei": str(v), "total_wei": str(self.by_market_total.get(k, 0))}
                              for k, v in self.by_market.items()}}


# ---- feeds ----------------------------------------------------------------------------------
def fetch_json(url: str, *, timeout_s: float) -> Any:
    """GET `url` and parse JSON (http/https only, at most MAX_FEED_BYTES). FeedError otherwise."""
    if not url.startswith(("http://", "https://")):
        raise FeedError(f"{url!r} is not an http(s) URL")
    req = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "knowledge-miner"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            body = resp.read(MAX_FEED_BYTES + 1)
    except urllib.error.HTTPError as e:
        raise FeedError(f"{url} answered HTTP {e.code}") from None
    except urllib.error.URLError as e:
        raise FeedError(f"{url} could not be reached ({e.reason})") from None
    except (TimeoutError, OSError) as e:
        raise FeedError(f"{url} could not be read ({e or type(e).__name__})") from None
    if len(body) > MAX_FEED_BYTES:
        raise FeedError(f"{url} answered more than {MAX_FEED_BYTES} bytes")
    from common.safejson import SPEC_LIMITS, SafeJsonError, loads_bounded

    try:  # a stranger's reply: decoded with a depth limit (a deep one must not overflow the C stack)
        return loads_bounded(body, SPEC_LIMITS.but(max_bytes=MAX_FEED_BYTES), what="feed reply")
    except SafeJsonError as e:
        raise FeedError(f"{url} did not answer JSON ({e})") from None


def _price(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or v != v or v == float("inf"):
        raise FeedError(f"price feed: '{what}' must be a number >= 0")
    return float(v)


def parse_price_feed(doc: Any) -> dict[str, Any]:
    """The validated price-feed answer (see the module docstring); FeedError names the problem."""
    if not isinstance(doc, dict):
        raise FeedError("price feed: the answer is not a JSON object")
    if "ntk_usd" not in doc:
        raise FeedError("price feed: 'ntk_usd' is missing")
    out: dict[str, Any] = {"ntk_usd": _price(doc["ntk_usd"], "ntk_usd")}
    if doc.get("electricity_usd_per_kwh") is not None:
        out["electricity_usd_per_kwh"] = _price(doc["electricity_usd_per_kwh"], "electricity_usd_per_kwh")
    coins = doc.get("coins_usd") or {}
    if not isinstance(coins, dict):
        raise FeedError("price feed: 'coins_usd' must be an object")
    out["coins_usd"] = {str(k).upper(): _price(v, f"coins_usd.{k}") for k, v in coins.items()}
    if doc.get("as_of") is not None:
        out["as_of"] = str(doc["as_of"])
    return out


# ---- the service ----------------------------------------------------------------------------
class EarningsService:
    """See the module docstring. ledger: an open Ledger (default: one at ctx.paths.ledger_db);
    tz: the zone days are counted in (None: local); clock: time.time (tests pass their own)."""

    def __init__(self, ctx: AppContext, *, ledger: Ledger | None = None, tz: tzinfo | None = None,
                 timeout_s: float = 5.0, clock: Any = time.time):
        self.ctx = ctx
        self.tz = tz
        self.timeout_s = timeout_s
        self.clock = clock
        self._owns_ledger = ledger is None
        self.ledger = ledger if ledger is not None else Ledger(ctx.paths.ledger_db, tz=tz)
        self._lock = threading.Lock()
        self._prices: Prices | None = None
        self._last_good: dict[str, Any] | None = None  # {"url", "fetched_at", "answer"}
        self._gpus: list[GpuHashrate] | None = None

    # ---- paths ---------------------------------------------------------------------------
    @property
    def user_networks_file(self) -> Path:
        return self.ctx.paths.data_dir / NETWORKS_FILE

    @property
    def bundled_networks_file(self) -> Path:
        return resource_path("data", NETWORKS_FILE)

    @property
    def price_cache_file(self) -> Path:
        return self.ctx.paths.data_dir / PRICE_CACHE_FILE

    # ---- prices --------------------------------------------------------------------------
    def _settings_prices(self, message: str | None = None) -> Prices:
        e = self.ctx.settings.earnings
        return Prices(e.ntk_usd, e.electricity_usd_per_kwh, {}, "settings", None, message)

    def _from_answer(self, good: Mapping[str, Any], source: str, message: str | None = None) -> Prices:
        a = good["answer"]
        e = self.ctx.settings.earnings
        return Prices(a["ntk_usd"], a.get("electricity_usd_per_kwh", e.electricity_usd_per_kwh),
                      dict(a.get("coins_usd", {})), source, a.get("as_of"), message)

    def _load_last_good(self, url: str) -> dict[str, Any] | None:
        if self._last_good is not None and self._last_good["url"] == url:
            return self._last_good
        try:
            cached = json.loads(self.price_cache_file.read_text(encoding="utf-8"))
            if cached.get("url") == url:
                cached["answer"] = parse_price_feed(cached.get("answer"))
                return cached
        except (OSError, ValueError, FeedError, AttributeError):
            pass
        return None

    def refresh_prices(self) -> Prices:
        """Prices now: from the feed when one is set (blocking, timeout_s), else the settings.
        A failing feed keeps the last good answer (or the settings) and says so in `message`."""
        url = self.ctx.settings.earnings.price_feed_url
        if not url:
            prices = self._settings_prices()
        else:
            try:
                answer = parse_price_feed(fetch_json(url, timeout_s=self.timeout_s))
            except FeedError as e:
                good = self._load_last_good(url)
                if good is not None:
                    prices = self._from_answer(good, f"last good feed answer from {url} (fetched {good['fetched_at']})",
                                               f"{e}; using the last good answer, fetched {good['fetched_at']}")
                else:
                    prices = self._settings_prices(f"{e}; no earlier answer, using the prices in settings")
                log.warning("price feed: %s", prices.message)
            else:
                good = {"url": url, "fetched_at": _iso(self.clock()), "answer": answer}
                self._last_good = good
                try:
                    atomic_write_json(self.price_cache_file, good)
                except OSError:
                    log.warning("could not keep the price feed answer in %s", self.price_cache_file, exc_info=True)
                prices = self._from_answer(good, f"feed {url}")
        with self._lock:
            self._prices = prices
        return prices

    def prices(self) -> Prices:
        """The prices of the last refresh (refreshing once when there was none)."""
        with self._lock:
            p = self._prices
        return p if p is not None else self.refresh_prices()

    # ---- network figures -----------------------------------------------------------------
    def network_data(self) -> NetworkData:
        """The refreshed figures in the data folder when they parse, else the bundled file."""
        user = self.user_networks_file
        message = None
        if user.exists():
            try:
                doc = json.loads(user.read_text(encoding="utf-8"))
                nets = parse_networks(doc, where=str(user))
                origin = f"refreshed {doc.get('retrieved', '?')} from {doc.get('fetched_from', '?')}"
                return NetworkData(nets, origin, user)
            except (OSError, ValueError) as e:
                message = f"refreshed network figures unusable ({e}); using the bundled ones"
                log.warning("%s", message)
        return NetworkData(load_networks(self.bundled_networks_file), "bundled", self.bundled_networks_file, message)

    def refresh_network(self, url: str | None = None) -> NetworkData:
        """Fetch network figures from `url` (default: settings earnings.network_feed_url), check
        them, and write them atomically to the data folder. FeedError: nothing is changed."""
        url = url or self.ctx.settings.earnings.network_feed_url
        if not url:
            raise FeedError("no network figures URL: pass --url or set earnings.network_feed_url")
        doc = fetch_json(url, timeout_s=self.timeout_s)
        try:
            parse_networks(doc, where=f"answer from {url}")
        except DataFileError as e:
            raise FeedError(str(e)) from None
        doc = dict(doc)
        doc["retrieved"] = _iso(self.clock())
        doc["fetched_from"] = url
        atomic_write_json(self.user_networks_file, doc)
        log.info("network figures refreshed from %s", url)
        return self.network_data()

    def gpu_table(self) -> list[GpuHashrate]:
        if self._gpus is None:
            self._gpus = load_gpus(resource_path("data", GPUS_FILE))
        return self._gpus

    # ---- coin mining ---------------------------------------------------------------------
    def compare_gpu(self, gpu_name: str, *, watts: float | None = None, prices: Prices | None = None,
                    network_data: NetworkData | None = None) -> GpuComparison:
        """Coin mining on `gpu_name` per network: coins/day, USD gross, pool fee, power cost, net.
        watts: the card's power while mining (default: the table's figure). Unknown GPU: no
        comparison, with the reason."""
        if watts is not None and not watts > 0:
            raise ValueError("watts must be > 0")
        found: GpuLookup = lookup_gpu(gpu_name, self.gpu_table())
        if found.gpu is None:
            return GpuComparison(gpu_name, None, None, {}, found.reason)
        prices = prices or self.prices()
        nd = network_data or self.network_data()
        w = watts if watts is not None else found.gpu.watts
        e = self.ctx.settings.earnings
        out: dict[str, NetworkComparison] = {}
        for key, net in nd.networks.items():
            price, src = net.price_usd, f"network figures ({net.as_of})"
            if not net.historical and net.coin.upper() in prices.coins_usd:
                price, src = prices.coins_usd[net.coin.upper()], prices.source
            day = coin_mining_day(found.gpu.hashrate_hs, w, net, usd_per_kwh=prices.electricity_usd_per_kwh,
                                  pool_fee=e.pool_fee, price_usd=price)
            out[key] = NetworkComparison(net, day, price, src)
        return GpuComparison(gpu_name, found.gpu, w, out)

    def compare_device(self, info: Any, **kw: Any) -> GpuComparison:
        """`compare_gpu` for a DeviceInfo; the CPU device has no Ethash comparison."""
        if getattr(info, "kind", None) in (None, "cpu"):
            return GpuComparison(getattr(info, "name", "?"), None, None, {},
                                 "the CPU device has no Ethash comparison (Ethash is mined on GPUs)")
        return self.compare_gpu(info.name, **kw)

    # ---- telemetry -----------------------------------------------------------------------
    def max_gap_s(self) -> float:
        """Longest time between two readings that still counts as continuous power."""
        return max(5.0, 3.0 * self.ctx.settings.general.telemetry_interval_s)

    def record_states(self, states: Iterable[Any]) -> float:
        """Feed one DeviceService.poll() result into the energy ledger; returns Wh added.
        Only power drawn while a device is offered to the market (`DeviceState.active`) is a cost
        of knowledge mining; an inactive device reads 0 W (a game on the GPU is not mining).
        GPUs: Telemetry.power_w (NA or a lost GPU: no reading, a gap). The CPU device: the
        setting general.cpu_power_w (no sensor reads it)."""
        samples = []
        cpu_w = self.ctx.settings.general.cpu_power_w
        for s in states:
            t = s.telemetry
            if t is None:
                continue
            if not s.active:
                watts: float | None = 0.0
            elif s.info.kind == "cpu":
                watts = cpu_w
            elif t.lost or not isinstance(t.power_w, (int, float)) or isinstance(t.power_w, bool):
                watts = None
            else:
                watts = float(t.power_w)
            samples.append((s.info.key, float(t.timestamp), watts))
        return self.ledger.add_power_samples(samples, max_gap_s=self.max_gap_s())

    # ---- payments ------------------------------------------------------------------------
    def import_payment_events(self, events: Iterable[Any], *, miner: str | None = None) -> ImportResult:
        """Record indexer payment events to `miner` for jobs whose device the ledger knows."""
        return self.ledger.import_events(events, miner=miner)

    # ---- knowledge mining ----------------------------------------------------------------
    def today(self) -> date:
        return datetime.fromtimestamp(self.clock(), self.tz).date()

    def device_days(self, days: int, *, prices: Prices | None = None) -> dict[str, list[DeviceDay]]:
        """Per device key, one DeviceDay per day of the last `days` days (today included) that has
        a payment or energy; NTK in wei, USD at the current prices."""
        if days < 1:
            raise ValueError("days must be >= 1")
        prices = prices or self.prices()
        until = self.today()
        since = until - timedelta(days=days - 1)
        s, u = since.isoformat(), until.isoformat()
        wei = self.ledger.wei_by_device_day(since_day=s, until_day=u)
        energy = {(e.device_key, e.day): e for e in self.ledger.energy(since_day=s, until_day=u)}
        out: dict[str, list[DeviceDay]] = {}
        for key, day in sorted(set(wei) | set(energy), key=lambda kd: (kd[0], kd[1])):
            w = wei.get((key, day), 0)
            e = energy.get((key, day))
            wh, cov = (e.wh, e.seconds) if e else (0.0, 0.0)
            out.setdefault(key, []).append(DeviceDay(
                key, day, w, wh, cov, ntk_float(w) * prices.ntk_usd, wh / 1000.0 * prices.electricity_usd_per_kwh))
        return out

    def report(self, devices: Iterable[Any], *, days: int = 7) -> EarningsReport:
        """Earnings of the last `days` days for `devices` (DeviceInfo: the detected ones) and any
        other device the ledger has figures for, each with its Ethash comparison."""
        prices = self.prices()
        nd = self.network_data()
        per = self.device_days(days, prices=prices)
        until = self.today()
        since = until - timedelta(days=days - 1)
        rows: list[DeviceEarnings] = []
        seen = set()
        for info in devices:
            seen.add(info.key)
            rows.append(DeviceEarnings(info.key, info.id, info.name, info.kind, tuple(per.get(info.key, ())), days,
                                       self.ledger.total_wei(info.key),
                                       self.compare_device(info, prices=prices, network_data=nd)))
        for key in sorted(set(per) - seen):
            rows.append(DeviceEarnings(key, None, key, "unknown", tuple(per[key]), days, self.ledger.total_wei(key),
                                       GpuComparison(key, None, None, {}, "device not present now; model unknown")))
        return EarningsReport(since.isoformat(), until.isoformat(), days, prices, nd, tuple(rows),
                              self.ledger.wei_by_market(since_day=since.isoformat(), until_day=until.isoformat()),
                              self.ledger.wei_by_market())

    def daily_series(self, report: EarningsReport, device_key: str | None = None) -> DailySeries:
        """`report`'s period as a DailySeries, for all devices or one (`device_key`)."""
        since = date.fromisoformat(report.since)
        days = tuple((since + timedelta(days=i)).isoformat() for i in range(report.period_days))
        index = {d: i for i, d in enumerate(days)}
        per: dict[str, list[int]] = {}
        for dev in report.devices:
            if device_key is not None and dev.key != device_key:
                continue
            row = [0] * len(days)
            for d in dev.days:
                if d.day in index:
                    row[index[d.day]] += d.ntk_wei
            if any(row):
                per[dev.key] = row
        total = [sum(col) for col in zip(*per.values())] if per else [0] * len(days)
        running = self.ledger.total_wei(device_key) - sum(total)
        cumulative = []
        for w in total:
            running += w
            cumulative.append(running)
        return DailySeries(days, {k: tuple(v) for k, v in per.items()}, tuple(total), tuple(cumulative),
                           report.prices.ntk_usd)

    def close(self) -> None:
        if self._owns_ledger:
            self.ledger.close()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
