"""Where Knowledge Miner keeps its files.

platformdirs picks the per-user folders; `KMINER_HOME` puts everything under one folder
instead (tests, portable installs): `$KMINER_HOME/{config,data,logs,cache}`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import platformdirs

APP_NAME = "knowledge-miner"
HOME_ENV = "KMINER_HOME"


@dataclass(frozen=True)
class Paths:
    config_dir: Path
    data_dir: Path
    log_dir: Path
    cache_dir: Path

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def keystore_dir(self) -> Path:
        return self.data_dir / "keystore"

    @property
    def chain_dir(self) -> Path:
        return self.data_dir / "chain"

    @property
    def jobs_db(self) -> Path:
        return self.data_dir / "jobs.sqlite"

    @property
    def jobs_dir(self) -> Path:
        """Work folders of jobs (one per attempt)."""
        return self.data_dir / "jobs"

    @property
    def ledger_db(self) -> Path:
        return self.data_dir / "ledger.sqlite"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def transport_dir(self) -> Path:
        """A transport node made with app.orders.Peer.open(data_dir) (tools and tests)."""
        return self.data_dir / "transport"

    def transport_dirs(self) -> list[tuple[str, Path]]:
        """(role, folder) of every transport node of this home that has run: one per role
        (`<data>/p2p/<role>/transport`: miner, buyer, models; app.orders.service.open_peer)
        and the plain one; `kminer transfers` and the GUI read them."""
        found = [(p.parent.name, p) for p in sorted((self.data_dir / "p2p").glob("*/transport")) if p.is_dir()]
        if self.transport_dir.is_dir():
            found.insert(0, ("node", self.transport_dir))
        return found

    @property
    def bench_file(self) -> Path:
        return self.data_dir / "benchmarks.json"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "kminer.log"

    def ensure(self) -> "Paths":
        for d in (self.config_dir, self.data_dir, self.log_dir, self.cache_dir):
            d.mkdir(parents=True, exist_ok=True)
        return self


def resolve_paths(env: Mapping[str, str] | None = None) -> Paths:
    """The app's folders: under `$KMINER_HOME` when set, else the platform's user folders."""
    env = os.environ if env is None else env
    home = env.get(HOME_ENV)
    if home:
        root = Path(home).expanduser().absolute()
        return Paths(root / "config", root / "data", root / "logs", root / "cache")

    return Paths(
        Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
    )
