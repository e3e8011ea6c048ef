"""The app's settings: one versioned pydantic model, stored as JSON, written atomically.

Every field carries a title, a description and a default, so the settings dialog can be
generated from the model. A file we cannot read (corrupt JSON, invalid values, or written
by a newer version of the app) is renamed aside with a clear message and never silently
overwritten.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from typing_extensions import Annotated

from common.fsutil import atomic_write_text

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
NTK_MAINNET_ADDRESS = "0x69beab403438253f13b6e92db91f7fb849258263"

Mode = Literal["idle", "mining", "auto"]

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


class Settings(_Section):
    schema_version: int = Field(SCHEMA_VERSION, title="Schema version", description="Version of this file's layout.")
    general: GeneralSettings = Field(default_factory=GeneralSettings, title="General", description="General behaviour.")
    devices: dict[str, DeviceSettings] = Field(default_factory=dict, title="Devices",
                                               description="Per-device mode and limits, keyed by device key.")
    jobs: JobSettings = Field(default_factory=JobSettings, title="Jobs", description="Job runtime and sandbox.")
    wallet: WalletSettings = Field(default_factory=WalletSettings, title="Wallet", description="Wallet and network.")
    earnings: EarningsSettings = Field(default_factory=EarningsSettings, title="Earnings", description="Prices for earnings.")
    mining_key: MiningKeySettings = Field(default_factory=MiningKeySettings, title="Mining key",
                                          description="The signing key of an unattended rig.")

    def device(self, key: str) -> DeviceSettings:
        """The settings of device `key`, created with defaults on first use."""
        if key not in self.devices:
            self.devices[key] = DeviceSettings()
        return self.devices[key]


# Migrations from older schema versions: version N -> N+1, applied in order.
_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


@dataclass(frozen=True)
class LoadResult:
    settings: Settings
    message: str | None = None
    """Set when the file could not be used and was kept aside; show it to the user once."""


class SettingsStore:
    """Loads and saves `Settings` at one path. Not thread-safe: the owner serialises calls."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> LoadResult:
        if not self.path.exists():
            return LoadResult(Settings())
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
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
            return LoadResult(Settings.model_validate(raw))
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return self._set_aside("invalid", f"has an invalid value at {where}: {first['msg']}")

    def save(self, settings: Settings) -> None:
        atomic_write_text(self.path, settings.model_dump_json(indent=2) + "\n")

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
