"""The app's settings: one versioned pydantic model, stored as JSON, written atomically.

Every field carries a title, a description and a default, so the settings dialog can be
generated from the model. A file we cannot read (corrupt JSON, invalid values, or written
by a newer version of the app) is renamed aside with a clear message and never silently
overwritten.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from typing_extensions import Annotated

from common.fieldwise import Fallback, FieldwiseError, validate_fieldwise
from common.fsutil import atomic_write_text
from common.safejson import SPEC_LIMITS, loads_bounded
from jobs.level_policy import MARKET_BASIC_RISK
from common.schedule import check_schedule

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
NTK_MAINNET_ADDRESS = "0x69beab403438253f13b6e92db91f7fb849258263"

Mode = Literal["idle", "mining", "auto"]

SETTINGS_LIMITS = SPEC_LIMITS.but(duplicate_keys="last")
"""A settings file is decoded within these (a deep one is refused, never a crash)."""

HIDDEN = {"hidden": True}
"""`json_schema_extra` of fields that are app state, not choices: the settings dialog skips them."""


def check_url(value: str | None) -> str | None:
    """An RPC or store URL as typed (trimmed; None when empty); ValueError in one line if it is not one."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if not value.startswith(("http://", "https://", "ws://", "wss://", "file://")) or " " in value:
        raise ValueError("must be a URL starting with http://, https://, ws:// or wss://")
    return value


Url = Annotated[str | None, AfterValidator(check_url)]
"""An optional URL setting; blank means not set."""


def _check_store_url(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip().rstrip("/")
    scheme, sep, rest = value.partition("://")
    if not sep or not scheme.isidentifier() or not rest or " " in value:
        raise ValueError("must be a storage URL such as file:///mnt/shared/kminer or s3://bucket/kminer")
    if scheme in ("http", "https"):
        raise ValueError("plain HTTP cannot take uploads: use a shared folder (file:///...) or s3://, gs://, sftp://...")
    return value


StoreUrl = Annotated[str | None, AfterValidator(_check_store_url)]
"""An optional fsspec URL the app can upload to; blank means not set."""


def _check_hosts(value: str) -> str:
    """Comma-separated host names or literal addresses, as typed (trimmed)."""
    hosts = [h.strip() for h in value.split(",") if h.strip()]
    bad = next((h for h in hosts if len(h) > 253 or any(c in h for c in "/@ ?#")), None)
    if bad is not None or len(hosts) > 64:
        raise ValueError("must be up to 64 host names or addresses separated by commas (no URLs)")
    return ", ".join(hosts)


_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:.]{2,45}\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):(\d{1,5})$")


def check_relays(value: str) -> str:
    """Comma-separated host:port of relays ([v6]:port for IPv6), as typed (trimmed)."""
    items = [h.strip() for h in value.split(",") if h.strip()]
    for h in items:
        m = _HOST_PORT.match(h)
        if m is None or not 0 < int(m.group(2)) < 65536:
            raise ValueError(f"{h[:60]!r} is not host:port (e.g. relay.example.org:6881 or [2001:db8::1]:6881)")
    if len(items) > 16:
        raise ValueError("at most 16 relays")
    return ", ".join(items)


class _Section(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=True)


class DeviceSettings(_Section):
    """What the miner chose for one device (keyed by its stable key: GPU uuid or "cpu")."""

    mode: Mode = Field("idle", title="Mode", description="idle: never mine; mining: always; auto: only while you are away.")
    max_temp_c: float = Field(83.0, ge=30, le=110, title="Max temperature (°C)",
                              description="Above this the device is throttled and its job paused.")
    max_power_w: float | None = Field(None, ge=1, title="Max power (W)",
                                      description="Above this the device is throttled; empty for no limit.")
    hysteresis_c: float = Field(5.0, ge=0, le=30, title="Temperature hysteresis (°C)",
                                description="A throttled device resumes only once it is this much below the limit.")
    price_floor_ntk_per_hour: float = Field(0.0, ge=0, title="Price floor (NTK per hour)",
                                            description="The agent claims a market job only if its reward per expected "
                                                        "device-hour is at least this.")
    auto_price: bool = Field(False, title="Auto-price",
                             description="Raise the price floor while the device is fully booked and lower it while "
                                         "it sits idle, within the bounds below.")
    auto_price_min_ntk_per_hour: float = Field(0.0, ge=0, title="Auto-price lowest floor (NTK per hour)",
                                               description="Auto-pricing never lowers the floor below this.")
    auto_price_max_ntk_per_hour: float = Field(100.0, ge=0, title="Auto-price highest floor (NTK per hour)",
                                               description="Auto-pricing never raises the floor above this.")
    auto_price_step: float = Field(0.1, gt=0, le=1, title="Auto-price step",
                                   description="Fraction the floor moves by at each change (0.1 = 10%).")
    auto_price_window_s: float = Field(600.0, ge=1, le=86400, title="Auto-price window (s)",
                                       description="How long a device must stay fully booked or idle before its floor moves.")


class GeneralSettings(_Section):
    away_minutes: float = Field(10.0, ge=0.1, le=1440, title="Away after (minutes)",
                                description="In auto mode a device mines after this long without keyboard or mouse input.")
    telemetry_interval_s: float = Field(1.0, ge=0.2, le=60, title="Telemetry interval (s)",
                                        description="How often device readings refresh.")
    theme: Literal["system", "light", "dark"] = Field("system", title="Theme", description="Follow the system, or force light or dark.")
    tray_notice_shown: bool = Field(False, title="Tray notice shown",
                                    description="Whether the 'still running in the tray' message has been shown once.",
                                    json_schema_extra=HIDDEN)
    window_geometry: str | None = Field(None, title="Window geometry",
                                        description="The main window's size and place (base64 of Qt's geometry).",
                                        json_schema_extra=HIDDEN)
    window_page: str | None = Field(None, title="Window page", description="The section shown when the window closed.",
                                    json_schema_extra=HIDDEN)
    last_folders: dict[str, str] = Field(default_factory=dict, title="Last folders",
                                         description="The folder each file dialog last used, by purpose "
                                                     "(scene, mesh, photos, ...).", json_schema_extra=HIDDEN)
    cpu_power_w: float = Field(65.0, ge=1, le=1000, title="CPU power (W)",
                               description="Power the CPU device draws while mining, for energy costs (no sensor reads it).")


class JobSettings(_Section):
    sandbox: Literal["auto", "strict", "basic"] = Field(
        "auto", title="Sandbox", description="auto: strict (bubblewrap) where available, else basic.")
    allow_code_jobs_basic: bool = Field(
        False, title="Run buyer code without strict sandbox",
        description="Jobs carrying buyer code run only under the strict sandbox unless this is on.")
    cpu_slots: int = Field(1, ge=1, le=64, title="CPU job slots", description="How many jobs the CPU device runs at once.")
    priority: int = Field(10, ge=0, le=19, title="Job priority (nice)",
                          description="Jobs run this much below normal CPU priority (0: normal, 19: lowest), so the "
                                      "desktop and this app stay responsive; a job loses no speed while nothing else "
                                      "wants the CPU.")
    max_output_mb: int = Field(4096, ge=1, title="Max output (MB)", description="Largest output a job may write.")
    artifact_store_url: StoreUrl = Field(
        None, title="Shared artifact store",
        description="Where specs, inputs and results are published so buyers and miners on other machines can fetch "
                    "them: a shared folder (file:///mnt/shared/kminer) or any fsspec URL whose package is installed "
                    "(s3://bucket/prefix with s3fs, ...). Empty: this machine's own store, reachable only from this "
                    "machine (file:// URIs).")
    # --- market jobs from strangers (issue 15): the sandbox level and where inputs may come from
    allow_market_jobs_basic: bool = Field(
        False, title="Run market jobs under the basic sandbox", description="Off (recommended): market jobs run only "
        "under the strict sandbox and are refused where it is unavailable. " + MARKET_BASIC_RISK,
        json_schema_extra={"warning": MARKET_BASIC_RISK})
    input_hosts: Annotated[str, AfterValidator(_check_hosts)] = Field(
        "", title="Trusted input hosts",
        description="Hosts (comma-separated names or addresses) a market job's input URLs may name even when they "
                    "resolve to a loopback, private or link-local address (a file server on your LAN). Every other "
                    "host must be public.")

    def input_host_set(self) -> frozenset[str]:
        return frozenset(h for h in (x.strip() for x in self.input_hosts.split(",")) if h)


class WalletSettings(_Section):
    network: str = Field("local", title="Network",
                         description="local (embedded chain), devnet, or a named public network.")
    rpc_url: Url = Field(None, title="RPC URL", description="JSON-RPC endpoint for devnet and public networks.")
    rpc_urls: dict[str, Url] = Field(default_factory=dict, title="RPC URLs of other networks",
                                     description="The RPC URL last used on each network, kept while another is in use.",
                                     json_schema_extra=HIDDEN)
    ntk_address: str = Field(NTK_MAINNET_ADDRESS, title="NTK token address (mainnet)",
                             description="The NTK ERC-20 contract on Ethereum mainnet (see resources/data).")
    remember_password: bool = Field(False, title="Remember password in the OS keyring",
                                    description="Off: the app asks for the wallet password when it needs it.")
    account: str | None = Field(None, title="Account", description="The address the app uses.",
                                json_schema_extra=HIDDEN)

    def url_for(self, network: str) -> str | None:
        """The RPC URL set for `network`: `rpc_url` for the network in use, else the one it had."""
        return self.rpc_url if network == self.network else self.rpc_urls.get(network)

    def use_network(self, network: str, rpc_url: str | None = None) -> None:
        """Make `network` the one in use; its own URL comes back (or `rpc_url` replaces it), and
        the URL of the network left is kept for when it comes back (never used on another)."""
        if network != self.network:
            if self.rpc_url:
                self.rpc_urls[self.network] = self.rpc_url
            self.network = network
            self.rpc_url = self.rpc_urls.get(network)
        if rpc_url:
            self.rpc_url = rpc_url


class EarningsSettings(_Section):
    electricity_usd_per_kwh: float = Field(0.12, ge=0, le=10, title="Electricity price (USD/kWh)",
                                           description="What your power costs, for net earnings.")
    ntk_usd: float = Field(0.01, ge=0, title="NTK price (USD)", description="Used when no price feed is set.")
    price_feed_url: Url = Field(None, title="Price feed URL", description="Optional JSON endpoint for prices.")
    pool_fee: float = Field(0.01, ge=0, le=0.5, title="Pool fee", description="Fraction a mining pool keeps, for the Ethash comparison.")
    network_feed_url: str | None = Field(
        None, title="Network figures URL",
        description="Optional JSON endpoint with Ethash network figures (the layout of resources/data/ethash_networks.json), "
                    "for `kminer earnings refresh-network`; the bundled file is the fallback.")


# ---- rigs at scale (issue 21): per-device control, the watchdog, fleet metrics and alerts ----
Schedule = Annotated[str, AfterValidator(check_schedule)]
"""Weekly mining hours as typed (see common.schedule); "" allows every hour."""
InUse = Literal["stop", "slow"]


class ControlSettings(_Section):
    schedule: Schedule = Field("", title="Mining hours",
                               description="When devices may take new jobs (cheap-electricity hours), e.g. "
                                           "'mon-fri 23:00-07:00; sat,sun'. Empty: any time. A job that runs when the "
                                           "window closes finishes.")
    while_in_use: InUse = Field("stop", title="While you use the PC (auto mode)",
                                description="stop: a device in auto mode works only while you are away; slow: it "
                                            "keeps working while you are here, at a lower power limit (where the "
                                            "driver allows it) or with fewer jobs at once.")
    slow_power_pct: int = Field(60, ge=20, le=100, title="Slow-down power limit (%)",
                                description="While you use the PC, a slowed GPU's power limit is this share of its "
                                            "default limit.")
    paused: dict[str, float] = Field(default_factory=dict, title="Paused devices",
                                     description="Device key -> when it was paused (unix s).", json_schema_extra=HIDDEN)
    device_schedules: dict[str, Schedule] = Field(default_factory=dict, title="Per-device mining hours",
                                                  description="Device key -> its own schedule (overrides the rig's).",
                                                  json_schema_extra=HIDDEN)
    device_in_use: dict[str, InUse] = Field(default_factory=dict, title="Per-device behaviour while in use",
                                            description="Device key -> stop or slow (overrides the rig's).",
                                            json_schema_extra=HIDDEN)


class WatchdogSettings(_Section):
    enabled: bool = Field(True, title="Watchdog", description="Hold a GPU that is lost, fails its readings or whose "
                                                              "job stops reporting progress; fail that job.")
    stall_minutes: float = Field(10.0, ge=0.01, le=1440, title="Hung after (minutes without progress)",
                                 description="A running job that reports no progress this long counts as hung.")
    error_polls: int = Field(3, ge=1, le=100, title="Driver errors in a row",
                             description="Readings in a row that fail with a driver error before the GPU is held.")
    backoff_first_s: float = Field(60.0, ge=1, le=86400, title="First retry after (s)",
                                   description="A held device is tried again after this; doubled at each fault in a "
                                               "row.")
    backoff_cap_s: float = Field(3600.0, ge=1, le=604800, title="Longest retry wait (s)",
                                 description="The back-off never waits longer than this.")
    hook_script: str | None = Field(None, title="Event script",
                                    description="Optional program run on each watchdog event, with the event and device "
                                                "as arguments and KMINER_* variables (docs/rigs.md); empty: none.")
    hook_timeout_s: float = Field(30.0, ge=1, le=3600, title="Event script time limit (s)",
                                  description="The event script is killed after this long.")


class FleetSettings(_Section):
    metrics_port: int = Field(0, ge=0, le=65535, title="Metrics port",
                              description="`kminer agent` serves Prometheus metrics on this port (0: off).")
    metrics_host: str = Field("127.0.0.1", title="Metrics address",
                              description="The address the metrics listen on; 127.0.0.1 keeps them on this machine.")
    alert_webhook_url: Url = Field(None, title="Alert webhook URL",
                                   description="Alerts (rig offline, device hung, overheating, wallet locked) are "
                                               "POSTed here as JSON; empty: none.")
    alert_interval_s: float = Field(900.0, ge=1, le=86400, title="Repeat an alert after (s)",
                                    description="The same alert is sent at most once per this interval.")
    rigs: list[str] = Field(default_factory=list, title="Watched rigs",
                            description="Metrics URLs of the rigs the Fleet page watches.", json_schema_extra=HIDDEN)


class MiningKeySettings(_Section):
    """Where the mining key of an unattended rig is kept (app.account.mining_key)."""

    storage: Literal["auto", "keyring", "file"] = Field(
        "auto", title="Keep the mining key in",
        description="The mining key signs the miner's claims so the rig mines after a restart with the wallet "
                    "locked. keyring: the OS keyring (opens once you are logged in). file: a file only your user can "
                    "read in the app's data folder: it opens with nobody logged in, and anyone who can read your "
                    "files can sign with it. It holds only gas ETH; earnings go to your wallet. auto: the keyring "
                    "where there is one. Applies to the next key made (Wallet → Mining key).",
        json_schema_extra={"note": True})


class TransportSettings(_Section):
    """The peer-to-peer transport that moves specs, inputs, results and models (jobs.transport)."""

    listen_host: str = Field("0.0.0.0", title="Listen address",
                             description="Where the transport and its key service listen; 0.0.0.0: every address.")
    port: int = Field(6881, ge=0, le=65535, title="Port",
                      description="The transport's TCP port (the key service takes the next free one); 0: any.")
    desk_port: int = Field(6880, ge=0, le=65535, title="Order desk port",
                           description="While you buy, miners reach your order desk (specs, claims, results) on "
                                       "this TCP port; 0: any (it then changes when the app restarts).")
    advertise: str = Field("", title="Public address",
                           description="The host name or address other peers reach this PC at (written into what "
                                       "you publish); empty: the listen address, or what the router mapping finds.")
    port_mapping: bool = Field(True, title="Ask the router to forward the port",
                               description="UPnP / NAT-PMP, so peers behind other routers can reach this PC.")
    upload_kib_s: int = Field(0, ge=0, le=10_000_000, title="Upload limit (KiB/s)",
                              description="Cap on what the transport sends, LAN peers included; 0: no cap.")
    download_kib_s: int = Field(0, ge=0, le=10_000_000, title="Download limit (KiB/s)",
                                description="Cap on what the transport receives; 0: no cap.")
    quota_gb: float = Field(20.0, ge=0.1, le=100_000, title="Disk quota (GB)",
                            description="Most disk the transport may use for what it serves and fetches; a share or "
                                        "fetch beyond it is refused with a message.")
    relays: Annotated[str, AfterValidator(check_relays)] = Field("", title="Relays",
                        description="host:port of relays you run or trust, comma separated, for when nobody can "
                                    "dial this machine (behind NAT): they mirror what you serve and pass buyers' key "
                                    "requests to you (`python -m jobs.transport relay` on a server); empty: none.")
    redeem_after_minutes: float = Field(60.0, ge=0, le=7 * 24 * 60, title="Collect order payments after (minutes)",
                                        description="A miner's vouchers are redeemed on chain in one transaction "
                                                    "this long after the first is kept (fewer fees), or sooner when "
                                                    "an order closes; a buyer's result unlocks once it is redeemed.")
    grace_hours: float = Field(24.0, ge=0, le=24 * 90, title="Serve after payment (hours)",
                               description="How long a result is still served after its payment is released.")

    def relay_list(self) -> tuple[str, ...]:
        """The relays as host:port strings (what jobs.transport takes)."""
        return tuple(h for h in (x.strip() for x in self.relays.split(",")) if h)


class Settings(_Section):
    schema_version: int = Field(SCHEMA_VERSION, title="Schema version", description="Version of this file's layout.")
    general: GeneralSettings = Field(default_factory=GeneralSettings, title="General", description="General behaviour.")
    devices: dict[str, DeviceSettings] = Field(default_factory=dict, title="Devices",
                                               description="Per-device mode and limits, keyed by device key.")
    jobs: JobSettings = Field(default_factory=JobSettings, title="Jobs", description="Job runtime and sandbox.")
    wallet: WalletSettings = Field(default_factory=WalletSettings, title="Wallet", description="Wallet and network.")
    earnings: EarningsSettings = Field(default_factory=EarningsSettings, title="Earnings", description="Prices for earnings.")
    control: ControlSettings = Field(default_factory=ControlSettings, title="Device control",
                                     description="Pause, mining hours, and sharing the PC.")
    watchdog: WatchdogSettings = Field(default_factory=WatchdogSettings, title="Watchdog",
                                       description="Hung and lost GPUs.")
    fleet: FleetSettings = Field(default_factory=FleetSettings, title="Fleet", description="Metrics and alerts.")
    mining_key: MiningKeySettings = Field(default_factory=MiningKeySettings, title="Mining key",
                                          description="The signing key of an unattended rig.")
    transport: TransportSettings = Field(default_factory=TransportSettings, title="Transfers",
                                         description="Peer-to-peer transfers: port, rate caps, disk quota, relays.")

    def device(self, key: str) -> DeviceSettings:
        """The settings of device `key`, created with defaults on first use."""
        if key not in self.devices:
            self.devices[key] = DeviceSettings()
        return self.devices[key]


# Migrations from older schema versions: version N -> N+1, applied in order.
_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


NETWORK_FIELDS = ("wallet.network", "wallet.rpc_url", "wallet.rpc_urls", "wallet.ntk_address")
"""Settings that choose the chain: one that fails validation never falls back silently (a
default here would answer from another chain); the wallet refuses to connect until it is fixed."""


@dataclass(frozen=True)
class LoadResult:
    settings: Settings
    message: str | None = None
    """Set when the file could not be used and was kept aside; show it to the user once."""
    fallbacks: tuple[str, ...] = ()
    """One line per field that failed validation and took its default (every command says them)."""

    def notices(self) -> list[str]:
        """What to tell the user about this load, one line each."""
        return [*([self.message] if self.message else []), *self.fallbacks]


def _is_network_field(path: str) -> bool:
    return any(path == f or path.startswith(f + ".") or f.startswith(path + ".") for f in NETWORK_FIELDS)


def _lookup(data: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


class SettingsStore:
    """Loads and saves `Settings` at one path. Not thread-safe: the owner serialises calls."""

    def __init__(self, path: Path):
        self.path = path
        self._kept_network: dict[str, tuple[Any, Any]] = {}
        """Network fields that fell back: path -> (the file's value, the default used instead)."""

    def load(self) -> LoadResult:
        if not self.path.exists():
            return LoadResult(Settings())
        try:
            raw = loads_bounded(self.path.read_bytes(), SETTINGS_LIMITS, what="settings")  # SafeJsonError: a ValueError
            if not isinstance(raw, dict):
                raise ValueError("top level is not an object")
        except (OSError, UnicodeDecodeError, ValueError) as e:
            return self._set_aside("corrupt", f"could not be read ({e})")
        version = raw.get("schema_version", 1)
        if not isinstance(version, int):
            return self._set_aside("corrupt", "its schema_version is not a number")
        if version > SCHEMA_VERSION:
            return self._set_aside(
                f"v{version}", f"was written by a newer Knowledge Miner (settings version {version}, this app knows {SCHEMA_VERSION})")
        for v in range(version, SCHEMA_VERSION):
            raw = _MIGRATIONS[v](raw)
            raw["schema_version"] = v + 1
        try:
            settings, fallbacks = validate_fieldwise(Settings, raw)
        except (FieldwiseError, ValidationError) as e:
            return self._set_aside("invalid", f"has an invalid value at {e}")
        return self._fell_back(raw, settings, fallbacks)

    def _fell_back(self, raw: dict, settings: Settings, fallbacks: tuple[Fallback, ...]) -> LoadResult:
        """The load's notices: one line per fallen-back field; a network field is remembered
        (save() writes the file's value back; `network_problem` refuses the network meanwhile)."""
        self._kept_network = {}
        lines = []
        dump = settings.model_dump(mode="json")
        for f in fallbacks:
            lines.append(f.line(f"settings: {self.path.name}"))
            if _is_network_field(f.path):
                self._kept_network[f.path] = (_lookup(raw, f.path), _lookup(dump, f.path))
        for line in lines:
            log.warning("%s", line)
        return LoadResult(settings, fallbacks=tuple(lines))

    def network_problem(self, settings: Settings) -> str | None:
        """Why the wallet must not connect with `settings`: a network field of the file failed
        validation at the last load and still holds the default it fell back to. None when fine."""
        data = settings.model_dump(mode="json")
        left = [p for p, (_, default) in self._kept_network.items() if _lookup(data, p) == default]
        if not left:
            return None
        return (f"the network settings in {self.path} are invalid ({', '.join(left)}); the wallet will not connect "
                f"to another chain instead: fix them (`kminer settings set {left[0]} ...`)")

    def save(self, settings: Settings) -> None:
        data = settings.model_dump(mode="json")
        for path, (kept, default) in self._kept_network.items():
            if _lookup(data, path) == default:  # still unfixed: keep the file's value, never a silent default
                node = data
                *parents, last = path.split(".")
                for key in parents:
                    node = node[key]
                node[last] = kept
        atomic_write_text(self.path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")

    def _set_aside(self, tag: str, why: str) -> LoadResult:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.{tag}-{stamp}")
        n = 1
        while aside.exists():
            aside = self.path.with_name(f"{self.path.name}.{tag}-{stamp}-{n}")
            n += 1
        self.path.rename(aside)
        msg = f"Settings file {self.path} {why}; kept it as {aside.name} and started with defaults."
        log.warning(msg)
        return LoadResult(Settings(), msg)


def is_hidden(field) -> bool:
    """Whether a settings field is app state the settings dialog should not show."""
    extra = field.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("hidden"))
