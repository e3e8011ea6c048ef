"""Model market fixtures: a user with a wallet on a new embedded chain (real py-evm, our
contracts, the demo models listed at bootstrap), keystore with a light KDF for speed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NTK = 10**18
PASSWORD = "correct horse"
SHELF_PHOTO = ROOT / "resources" / "examples" / "infer_shelf.png"


@dataclass
class MarketUser:
    ctx: object
    wallet: object
    address: str
    models: object


def open_user(ctx, *, bootstrap: bool = True) -> MarketUser:
    from app.models import ModelService
    from app.account import WalletService
    from wallet.keystore import Keystore

    ks = Keystore(ctx.paths.keystore_dir, scrypt_n=2**10, allow_weak_kdf=True)
    address = ks.list()[0].address if ks.list() else ks.create(PASSWORD)
    if not ctx.settings.wallet.account:
        ctx.settings.wallet.account = address
        ctx.save_settings()
    wallet = WalletService(ctx, keystore=ks, passwords=[lambda a: PASSWORD])
    if bootstrap:
        wallet.deployment()
    return MarketUser(ctx, wallet, address, ModelService(ctx, wallet))


@pytest.fixture
def user():
    """A new user on a new local chain (demo models listed); closed after the test."""
    from app.context import AppContext

    u = open_user(AppContext.open())
    yield u
    u.wallet.close()


def own_model_folder(demo: str, dest: Path) -> Path:
    """A copy of demo model `demo` as the user's own model: its card names no seller (listing
    it adds the user's address). Its weights are the demo's, so the market shows it as copied."""
    import json
    import shutil

    shutil.copytree(ROOT / "resources" / "models" / demo, dest)
    card = json.loads((dest / "model_card.json").read_text())
    card.pop("seller", None)
    (dest / "model_card.json").write_text(json.dumps(card, indent=2))
    return dest
