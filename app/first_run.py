"""The first-run flow without Qt (Electrum's wizard habit): create the wallet (its recovery
phrase shown once and three of its words asked back), restore it from a phrase or import it,
pick the network, set device modes, benchmark the chosen devices, set their price floors
and make the mining key that lets the rig mine with the wallet locked.

`needs_first_run(ctx)` says whether to show it (no account in the keystore). `FirstRun`
holds the choices and does each step; every input error is a `FieldError` naming its field,
and a failed step changes nothing on disk. `BenchmarkRun` benchmarks devices one after the
other in child processes (gpu.bench_child) and can be cancelled (the child's process group
is killed).

Threading: the keystore steps block for the KDF (~1 s with the real cost) and the network
step may open a chain (the local one is deployed and funded on first use, a few seconds):
run them off the GUI thread, the network step on the GUI's "chain" runner. `FirstRun` keeps
no chain open between calls. `BenchmarkRun.run` blocks; `cancel()` may be called from any
thread.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import gpu
from app.account import WalletService, create_mining_key
from app.amounts import FieldError
from app.context import AppContext
from app.floors import floor_views, set_floor
from app.market_networks import NetworkMarket, describe, market_networks, real_jobs_summary
from app.settings import check_url
from gpu.bench import BenchError, BenchStore, child_command, child_device, spread_warnings
from gpu.modes import AUTO, IDLE, MINING
from wallet.errors import KeystoreError, WalletError, WrongPassword
from wallet.keystore import KeyringPasswords, Keystore
from wallet.networks import NETWORKS
from wallet.recovery_phrase import PhraseError, check_phrase, quiz_positions, wrong_positions

log = logging.getLogger(__name__)

MIN_PASSWORD = 8
QUICK_BENCH_EXPECTED_S = 8.0
"""Wall time of one quick benchmark child here (about 6.5 s on the CPU, 2 cores), for progress."""


@dataclass(frozen=True)
class NetworkOption:
    """One network as the first-run page offers it."""

    market: NetworkMarket
    title: str  # "Base · chain id 8453 · main network · L2 (OP-stack: L1 data fee)"
    rpc_url: str | None

    @property
    def name(self) -> str:
        return self.market.name

    @property
    def embedded(self) -> bool:
        return self.market.embedded

    @property
    def label(self) -> str:
        """The combo box line: the network, and whether jobs can be found there."""
        m = self.market
        tail = ("test market on this computer" if m.embedded else "market: " + m.market if m.has_market
                else "no market: no jobs")
        return f"{self.title} · {tail}"


def needs_first_run(ctx: AppContext, keystore: Keystore | None = None) -> bool:
    """True when the keystore holds no account: the app should show the first-run flow."""
    ks = keystore or Keystore(ctx.paths.keystore_dir)
    return not ks.list()


def password_strength(password: str) -> tuple[int, str]:
    """(score 0-4, one-line hint). Length counts most; character classes help a little."""
    if not password:
        return 0, ""  # nothing typed yet: the field's placeholder already states the rule
    classes = sum(any(f(c) for c in password) for f in (str.islower, str.isupper, str.isdigit,
                                                         lambda c: not c.isalnum()))
    n = len(password)
    if n < MIN_PASSWORD:
        return 0, f"Too short: at least {MIN_PASSWORD} characters."
    score = min(1 + (n >= 12) + (n >= 16) + (classes >= 3), 4)
    if len(set(password)) <= 3:  # "aaaaaaaa", "abababab"
        score = 1
    hints = {1: "Weak: a longer passphrase of several words is much stronger.",
             2: "Fair: longer is stronger.",
             3: "Good.",
             4: "Strong."}
    return score, hints[score]


@dataclass(frozen=True)
class ModeSuggestion:
    """The modes the devices step starts with, and a line saying why when it is not `auto`."""

    modes: dict[str, str]
    note: str | None


AWAY_UNKNOWN_NOTE = ("This session cannot tell when you are away from the keyboard and mouse (Wayland or no "
                     "display), so Auto would never mine: your devices are set to mine always. Choose Idle for any "
                     "you need for yourself.")


def suggest_modes(devices) -> ModeSuggestion:
    """What each device starts with on the wizard's devices step. Whoever runs the wizard wants
    to mine, so a device still at the default `idle` is offered `auto`, mining while the user
    is away (Salad's "start when idle", NiceHash's "mine when idle"): the computer stays
    responsive while it is used (a CPU job takes every core). Where the app cannot tell when
    the user is away, `auto` would never mine, so `mining` is offered instead, with a note.
    A mode other than idle (set before, e.g. with `kminer devices`) is kept."""
    can_tell = devices.user_away() is not None
    modes = {s.info.id: s.mode if s.mode != IDLE else (AUTO if can_tell else MINING) for s in devices.states()}
    return ModeSuggestion(modes, None if can_tell else AWAY_UNKNOWN_NOTE)


def check_new_password(password: str, again: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise FieldError("password", f"At least {MIN_PASSWORD} characters.")
    if password != again:
        raise FieldError("again", "The two passwords differ.")
    return password


@dataclass
class FirstRun:
    """The choices of the flow and its steps. See the module docstring for threading."""

    ctx: AppContext
    keystore: Keystore | None = None
    keyring: KeyringPasswords | None = None
    address: str | None = None
    network: str = "local"
    rpc_url: str | None = None
    _password: str | None = field(default=None, repr=False)
    _phrase: str | None = field(default=None, repr=False)
    quiz_positions: list[int] = field(default_factory=list)
    """The word positions (1-based) asked back before the flow goes on."""

    def __post_init__(self) -> None:
        self.keystore = self.keystore or Keystore(self.ctx.paths.keystore_dir)
        self.keyring = self.keyring or KeyringPasswords()
        self.network = self.ctx.settings.wallet.network

    # --- wallet -----------------------------------------------------------------------

    def create(self, password: str, again: str, *, remember: bool = False) -> str:
        """A new account from a fresh recovery phrase, encrypted with `password`; its address.
        The phrase is kept in memory for `phrase` and the quiz, never written."""
        check_new_password(password, again)
        address, phrase = self.keystore.create_with_phrase(password)
        self._phrase = phrase
        self.quiz_positions = quiz_positions(len(phrase.split()))
        return self._adopt(address, password, remember)

    @property
    def phrase(self) -> list[str]:
        """The new wallet's recovery phrase, shown once (empty once checked or for an import)."""
        return self._phrase.split() if self._phrase else []

    def check_quiz(self, answers: dict[int, str]) -> None:
        """The words asked back: FieldError("quiz:N") naming the first wrong one; all right:
        the phrase is forgotten."""
        if not self._phrase:
            return
        for pos in self.quiz_positions:
            if not (answers.get(pos) or "").strip():
                raise FieldError(f"quiz:{pos}", f"Enter word {pos}.")
        wrong = wrong_positions(self._phrase, {p: answers.get(p, "") for p in self.quiz_positions})
        if wrong:
            raise FieldError(f"quiz:{wrong[0]}", f"That is not word {wrong[0]}: look at the phrase again (Back).")
        self._phrase = None

    def restore(self, phrase: str, password: str, again: str, *, remember: bool = False) -> str:
        """The wallet of a recovery phrase: bad words are a FieldError("phrase") and nothing is written."""
        try:
            words = check_phrase(phrase)
        except PhraseError as e:
            raise FieldError("phrase", _sentence(e)) from None
        check_new_password(password, again)
        return self._store_as("phrase", lambda: self.keystore.import_mnemonic(words, password), password, remember)

    def import_private_key(self, key_hex: str, password: str, again: str, *, remember: bool = False) -> str:
        key = (key_hex or "").strip()
        if not key:
            raise FieldError("key", "Paste the private key (64 hex digits).")
        check_new_password(password, again)
        return self._store_as("key", lambda: self.keystore.import_private_key(key, password), password, remember)

    def _store_as(self, field_name: str, store, password: str, remember: bool) -> str:
        """Run `store()` (a keystore import); its KeystoreError is a FieldError at `field_name`."""
        try:
            address = store()
        except KeystoreError as e:
            raise FieldError(field_name, _sentence(e)) from None
        return self._adopt(address, password, remember)

    def import_keystore(self, path: str | Path, password: str, *, remember: bool = False) -> str:
        """Import a keystore V3 file that opens with `password` (kept as its password)."""
        if not str(path).strip():
            raise FieldError("file", "Choose a keystore file.")
        p = Path(path)
        if not p.is_file():
            raise FieldError("file", f"No such file: {p}.")
        if not password:
            raise FieldError("file_password", "Enter the password of that keystore file.")
        try:
            address = self.keystore.import_keystore(p, password)
        except WrongPassword:
            raise FieldError("file_password", "Wrong password for that keystore file.") from None
        except KeystoreError as e:
            raise FieldError("file", _sentence(e)) from None
        return self._adopt(address, password, remember)

    def _adopt(self, address: str, password: str, remember: bool) -> str:
        self.address = address
        self._password = password
        ws = self.ctx.settings.wallet
        ws.account = address
        if remember and self.keyring.set(address, password):
            ws.remember_password = True
        self.ctx.save_settings()
        log.info("first run: wallet account %s", address)
        return address

    def backup(self, dest: str | Path) -> Path:
        """Save a copy of the keystore file (encrypted) to `dest`; never overwrites."""
        if self.address is None:
            raise FieldError("backup", "Create or import the wallet first.")
        try:
            return self.keystore.export_keystore(self.address, Path(dest))
        except KeystoreError as e:
            raise FieldError("backup", _sentence(e)) from None

    # --- network ----------------------------------------------------------------------

    def network_options(self) -> list[NetworkOption]:
        """The networks to offer, those with a market first (the local chain, then any the user
        deployed or the project knows), then those with none, each saying so."""
        ws = self.ctx.settings.wallet
        out = []
        for r in market_networks(self.ctx.paths.chain_dir):
            net = NETWORKS[r.name]
            url = None if net.embedded else (ws.url_for(net.name) or net.default_rpc_url)
            out.append(NetworkOption(r, describe(net), url))
        return sorted(out, key=lambda o: not o.market.has_market)

    def where_jobs_come_from(self) -> str:
        """Plain sentences for the network page: which networks have a market, the token rule."""
        return real_jobs_summary(market_networks(self.ctx.paths.chain_dir))

    def choose_network(self, name: str, rpc_url: str | None = None, *, retry_delays_s: Sequence[float] = (0.2,)) -> int:
        """Check and save the network; returns its chain id. Local: deploys and funds the
        embedded chain on first use (needs the password given earlier in this flow). RPC
        networks: the URL must answer with the expected chain id (FieldError("rpc_url") if not)."""
        if name not in NETWORKS:
            raise FieldError("network", f"Unknown network {name!r}.")
        net = NETWORKS[name]
        url = None
        if not net.embedded:
            try:
                url = check_url(rpc_url) or net.default_rpc_url
            except ValueError as e:
                raise FieldError("rpc_url", f"The RPC URL {e}.") from None
            if not url:
                raise FieldError("rpc_url", f"{name} needs an RPC URL (your node or a provider's endpoint).")
            if not url.startswith(("http://", "https://")):
                raise FieldError("rpc_url", "Only http:// and https:// endpoints are supported.")
        if self.address is None:
            raise FieldError("network", "Create or import the wallet first.")
        pw = self._password
        svc = WalletService(self.ctx, network=name, rpc_url=url, account=self.address, keystore=self.keystore,
                            passwords=[lambda a: pw] if pw else [], retry_delays_s=retry_delays_s)
        try:
            chain_id = svc.chain.chain_id
            if net.embedded:
                dep = svc.deployment()  # deploy + faucet on a new local chain
                if dep.deployer != self.address and svc.chain.balance_wei(self.address) == 0:
                    raise WalletError(
                        f"the local chain on this computer was set up for another account ({dep.deployer}) and this "
                        f"one holds nothing on it; import that account's key instead, or move the folder "
                        f"{self.ctx.paths.chain_dir} away to start a new local chain")
        except WalletError as e:
            if net.embedded:
                raise FieldError("network", _sentence(e)) from None
            raise FieldError("rpc_url", _sentence(e) + " Check the URL, or choose local to start right away.") from None
        finally:
            svc.close()
        ws = self.ctx.settings.wallet
        ws.use_network(name, url if url and url != net.default_rpc_url else None)
        self.ctx.save_settings()
        self.network, self.rpc_url = name, url
        return chain_id

    # --- devices ----------------------------------------------------------------------

    @staticmethod
    def set_modes(devices, modes: dict[str, str]) -> None:
        """Apply {device id: "idle" | "mining" | "auto"} through the DeviceService (saved at once)."""
        for device_id, mode in modes.items():
            try:
                devices.set_mode(device_id, mode)
            except ValueError as e:
                raise FieldError(f"mode:{device_id}", str(e)) from None

    # --- price floors and the mining key ----------------------------------------------

    def floors(self, devices) -> dict:
        """{device id: app.floors.FloorView} for the floors step (reads the benchmarks)."""
        return floor_views(self.ctx, list(devices.devices))

    def set_floors(self, devices, floors: dict[str, float]) -> None:
        """Save {device id: NTK per device-hour}; FieldError("floor:ID") on a bad one (nothing saved after it)."""
        for device_id, value in floors.items():
            try:
                set_floor(self.ctx, devices.device(device_id).key, value)
            except ValueError as e:
                raise FieldError(f"floor:{device_id}", _sentence(e)) from None

    def create_mining_key(self):
        """Make and fund the mining key with the wallet given in this flow (app.account.create_mining_key);
        runs on the chain runner. Returns the KeyChange."""
        if self.address is None or not self._password:
            raise FieldError("mining_key", "Create or import the wallet first.")
        pw = self._password
        svc = WalletService(self.ctx, account=self.address, keystore=self.keystore, passwords=[lambda a: pw])
        try:
            return create_mining_key(svc, storage=self.ctx.settings.mining_key.storage)
        except WalletError as e:
            raise FieldError("mining_key", _sentence(e)) from None
        finally:
            svc.close()

    def forget_password(self) -> None:
        """Drop the password and phrase kept in memory (call when the flow ends)."""
        self._password = None
        self._phrase = None

    def take_password(self) -> str | None:
        """The password, handed over once (the app unlocks the wallet with it, so a new user is
        not asked again right after the wizard), then forgotten."""
        pw, self._password = self._password, None
        return pw


def _sentence(e: Exception) -> str:
    s = str(e).strip()
    s = s[:1].upper() + s[1:]
    return s if s.endswith((".", "?", "!")) else s + "."


# --- benchmark ------------------------------------------------------------------------------

@dataclass(frozen=True)
class BenchProgress:
    index: int
    """Device being benchmarked (0-based)."""
    total: int
    device_id: str
    elapsed_s: float

    @property
    def fraction(self) -> float:
        """0..1 over all devices; within a device by time against the expected wall time (capped)."""
        inner = min(self.elapsed_s / QUICK_BENCH_EXPECTED_S, 0.95)
        return min((self.index + inner) / max(self.total, 1), 1.0)


@dataclass(frozen=True)
class BenchOutcome:
    device_id: str
    result: dict | None
    error: str | None

    @property
    def summary(self) -> str:
        if self.error:
            return self.error
        r = self.result or {}
        m, g = r.get("matmul", {}), r.get("render", {})
        parts = [f"{m['gflops']:.1f} GFLOP/s" if "gflops" in m else "matmul failed",
                 f"{g['fps']:.1f} labelled frames/s" if "fps" in g else "render failed"]
        return " · ".join(parts)

    @property
    def warnings(self) -> list[str]:
        """Parts whose timed runs disagreed by more than 20% (gpu.bench.spread_warnings)."""
        return spread_warnings(self.result) if self.result else []


class Cancelled(Exception):
    """The benchmark was cancelled; results of devices finished before stay stored."""


class BenchmarkRun:
    """Benchmarks devices one by one (quick runs), stores each result, can be cancelled."""

    def __init__(self, ctx: AppContext, devices, device_ids: Sequence[str], *, quick: bool = True,
                 timeout_s: float = 300.0, command: Sequence[str] | None = None):
        self.ctx = ctx
        self.devices = devices
        self.device_ids = list(device_ids)
        self.quick = quick
        self.timeout_s = timeout_s
        self.command = list(command or child_command())
        self._cancel = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def cancel(self) -> None:
        """Stop now: the running child's process group is killed. Any thread."""
        self._cancel.set()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self, progress: Callable[[BenchProgress], None] | None = None) -> list[BenchOutcome]:
        """Blocks; raises Cancelled when cancelled. progress(BenchProgress) about twice a second."""
        store = BenchStore(self.ctx.paths.bench_file)
        out = []
        for i, device_id in enumerate(self.device_ids):
            info = self.devices.device(device_id)
            try:
                result, error = self._one(i, info.id, child_device(info.ident), progress)
            except BenchError as e:
                result, error = None, str(e)
            if result is not None:
                result.update(device_key=info.key, device_name=info.name)
                store.add(info.key, result)
            out.append(BenchOutcome(info.id, result, error))
        return out

    def _one(self, index: int, device_id: str, child_arg: str, progress) -> tuple[dict | None, str | None]:
        if self._cancel.is_set():
            raise Cancelled()

        env = dict(os.environ)
        env.setdefault("PYOPENGL_PLATFORM", "egl")
        env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        root = str(Path(gpu.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        cmd = [*self.command, "--device", child_arg] + (["--quick"] if self.quick else [])
        with self._lock:
            self._proc = proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                                 env=env, start_new_session=True)
        t0 = time.monotonic()
        try:
            while True:
                try:
                    out, err = proc.communicate(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    elapsed = time.monotonic() - t0
                    if self._cancel.is_set():
                        self.cancel()
                        proc.communicate()
                        raise Cancelled() from None
                    if elapsed > self.timeout_s:
                        self.cancel()
                        proc.communicate()
                        return None, f"took longer than {self.timeout_s:.0f} s and was stopped"
                    if progress is not None:
                        progress(BenchProgress(index, len(self.device_ids), device_id, elapsed))
        finally:
            with self._lock:
                self._proc = None
        if self._cancel.is_set():
            raise Cancelled()
        for line in reversed(out.splitlines()):
            if line.strip().startswith("{"):
                try:
                    result = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if proc.returncode != 0:
                    errs = "; ".join(f"{p}: {result.get(p, {}).get('error')}" for p in ("matmul", "render"))
                    return None, f"failed: {errs}"
                return result, None
        tail = (err.strip().splitlines() or ["no output"])[-1]
        return None, f"failed (exit {proc.returncode}): {tail}"
