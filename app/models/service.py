"""ModelService: the model market for buyers and sellers, headless (CLI, GUI, tests).

A listing on the ModelMarket contract holds the sha256 of a model card and the card's URI;
the card names its weights file (beside it) and that file's sha256, so the chain vouches for
the card and the card for the weights. Listings are shown with the card fetched and checked;
a bought model is fetched into the artifact store, checked, and laid out as a model folder
under `models_dir`; "try it" runs the `infer` engine on the buyer's photos as a real job in a
sandboxed worker process (torch is only ever imported there).

Threading: the methods marked *(chain)* talk to the wallet's chain, which is single-thread:
call them all from the one thread that owns the chain (in the GUI: the "chain" Background
runner). `try_model`, `save_annotated` and `check_images` never touch the chain: run them on
another thread (the "jobs" runner); `try_model` blocks while the worker runs, and
`TryHandle.cancel()` may be called from any thread. Amounts are integer wei (NTK has 18
decimals; fees are in ETH wei).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Iterable

from app.amounts import ntk_text
from app.context import AppContext
from app.models.p2p import ModelSeller, P2PModelError, fetch_card, fetch_model, is_p2p_listing
from app.models.provenance import FirstListings, provenance
from app.models.try_run import TryHandle, check_images, run_try, save_annotated
from app.models.types import BuyQuote, ModelError, ModelListing, OwnedModel, Purchase, SellerReputation
from app.resources import resource_path
from app.runtime import input_policy, local_market
from common.fsutil import atomic_write_json, sha256_file
from common.safejson import CARD_LIMITS
from common.textsafe import safe_line
from jobs.artifacts import ArtifactError, ArtifactStore
from jobs.train import TrainError
from jobs.cards import CardError, ModelCard, parse_model_card
from jobs.train.card import load_card
from wallet.chain import DEFAULT_PRIORITY_FEE_WEI
from wallet.errors import InsufficientFunds, WalletError

RESOURCE_URI = "kminer-resource:"
"""URI prefix of files shipped with the app (the demo models): `kminer-resource:models/x/model_card.json`."""

DEMO_MODELS: tuple[tuple[str, int], ...] = (("shelf-detector", 25 * 10**18), ("product-classifier", 10 * 10**18))
"""Demo models listed on a new local chain: (folder under resources/models, price in NTK wei)."""

DEMO_SELLER_SEED = b"knowledge-miner demo model seller (local chain only)"
"""The demo seller's key is sha256 of this: a well-known key, only ever funded on the local chain."""
DEMO_SELLER_ETH_WEI = 10**18
"""ETH the user's account gives the demo seller on a new local chain, for its listing gas."""

APPROVE_GAS = 80_000
BUY_GAS = 150_000
"""Gas limits of the approve and buy transactions (as MarketClient sends them on the local chain)."""

MAX_PIXELS = 40_000_000
CARD_FETCH_S = 20.0
"""The most a listing's card (at most CARD_LIMITS.max_bytes) may take to arrive."""


# --- URIs ---------------------------------------------------------------------------------------

def resolve_uri(uri: str) -> str:
    """A listing URI as the artifact store can open it: app resources become absolute paths."""
    if uri.startswith(RESOURCE_URI):
        rel = uri[len(RESOURCE_URI):]
        parts = Path(rel).parts
        if not parts or Path(rel).is_absolute() or ".." in parts:
            raise ModelError(f"bad resource URI {uri!r}")
        return str(resource_path(*parts))
    return uri


def sibling_uri(uri: str, name: str) -> str:
    """The URI of file `name` in the same folder as `uri`."""
    base = uri.rsplit("/", 1)[0] if "/" in uri else ""
    return f"{base}/{name}" if base else name


def display_name(card: ModelCard | None, uri: str, listing_id: int) -> str:
    if card is not None and card.name and card.name.strip():
        return safe_line(card.name.strip()[:80])  # a stranger's text: never a terminal escape
    parts = [p for p in re.split(r"[/\\]", uri.split("#", 1)[0]) if p]
    if len(parts) >= 2 and parts[-1].endswith(".json"):
        folder = safe_line(parts[-2][:80])
        if not re.fullmatch(r"[0-9a-f]{64}", folder):
            return folder.replace("-", " ").replace("_", " ").capitalize()
    return f"Model #{listing_id}"


def card_metrics(card: ModelCard) -> tuple[tuple[str, float], ...]:
    """(label, fraction) pairs for display, the card's headline metric first."""
    if card.task == "detect":
        pairs = [("mAP@0.5", card.metric_value("map50")), ("mAP@0.5:0.95", card.metric_value("map")),
                 ("held-out mAP@0.5", card.metric_value("map50", holdout=True))]
    else:
        pairs = [("top-1 accuracy", card.metric_value("accuracy")),
                 ("held-out top-1", card.metric_value("accuracy", holdout=True))]
    return tuple((label, v) for label, v in pairs if v is not None)


# --- the demo seller ------------------------------------------------------------------------------

def demo_seller_account():
    from eth_account import Account  # deferred: eth-account takes ~1 s to load

    return Account.from_key(hashlib.sha256(DEMO_SELLER_SEED).digest())


def list_demo_models(chain, funder, deployment) -> list[int]:
    """On a new local chain: fund the demo seller with ETH for gas (from `funder`) and list the
    demo models at their prices. Returns the listing ids. *(chain)*"""
    from wallet.market import MarketClient  # deferred: loads web3 (~1.5 s)

    if not chain.embedded:
        raise WalletError("demo models are listed on the local chain only")
    seller = demo_seller_account()
    chain.transact(funder, to=seller.address, value_wei=DEMO_SELLER_ETH_WEI, gas=21_000,
                   what="funding the demo model seller")
    market = MarketClient(chain, deployment)
    ids = []
    for folder, price in DEMO_MODELS:
        card = resource_path("models", folder, "model_card.json")
        lid, _ = market.list_model(seller, card_hash="0x" + sha256_file(card),
                                   uri=f"{RESOURCE_URI}models/{folder}/model_card.json", price_wei=price)
        ids.append(lid)
    return ids


# --- the service ------------------------------------------------------------------------------------

class ModelService:
    """The model market over one WalletService (network + account); see the module docstring
    for the threading rule. `wallet` is an app.account.WalletService."""

    def __init__(self, ctx: AppContext, wallet):
        """wallet: an app.account.WalletService, or anything with a `.service` giving the
        current one (the GUI's WalletSession: a network switch is then followed)."""
        self.ctx = ctx
        self._wallet = wallet
        self.store = ArtifactStore(ctx.paths.artifacts_dir)
        self._cards: dict[str, ModelCard] = {}
        self._peer = None
        self._sellers: dict[str, ModelSeller] = {}

    # -- peer to peer (app.models.p2p) ---------------------------------------------------------------
    def peer(self):
        """This home's transport peer for the model market (opened on first use). *(chain)*"""
        if self._peer is None:
            import os

            from app.orders.service import open_peer

            try:
                key = bytes(self.wallet.signer().key)
            except WalletError:
                key = os.urandom(32)  # only relay requests are signed with it: any key reads and fetches
            self._peer = open_peer(self.ctx, key, "models", local=local_market(self._market().chain))
        return self._peer

    def _seller(self) -> ModelSeller:
        m = self._market()
        k = f"{m.chain.chain_id}-{m.models_contract.address[2:10].lower()}"
        if k not in self._sellers:
            from app.orders.service import peer_dir

            self._sellers[k] = ModelSeller(m, self.peer(), peer_dir(self.ctx, "models") / k)
        return self._sellers[k]

    def serve_step(self) -> list[str]:
        """Give the key of each P2P model this home sells to whoever bought it (its listings are
        served while the app or `kminer models serve` runs). *(chain)*"""
        seller = self._seller()
        return seller.step() if seller.state["listings"] else []

    def selling_p2p(self) -> bool:
        from app.orders.service import peer_dir

        return any((peer_dir(self.ctx, "models")).glob("*/listings.json"))

    @property
    def wallet(self):
        src = self._wallet
        return src.service if hasattr(src, "service") else src

    # -- reading the market (chain) ------------------------------------------------------------
    def _market(self):
        return self.wallet.market()

    def _me(self) -> str | None:
        try:
            return self.wallet.address
        except WalletError:
            return None

    def listing_count(self) -> int:
        """*(chain)*"""
        m = self._market()
        return int(m.chain.call(m.models_contract.functions.listingCount()))

    def listings(self, *, include_inactive: bool = False) -> list[ModelListing]:
        """Every listing with its card fetched and checked, seller reputation, owned flag. *(chain)*"""
        m = self._market()
        me = self._me()
        sales = self._sales()
        reps: dict[str, SellerReputation] = {}
        out = []
        first = FirstListings()
        for lid in range(1, self.listing_count() + 1):
            raw = m.listing(lid)
            self._note_first(first, raw, me)
            if not raw.active and not include_inactive:
                continue
            if raw.owner not in reps:
                r = m.reputation(raw.owner)
                reps[raw.owner] = SellerReputation(raw.owner, r.completed, r.rejected, r.expired,
                                                   None if sales is None else sales.get(raw.owner, 0))
            mine = me is not None and raw.owner.lower() == me.lower()
            owned = mine or (me is not None and m.has_purchased(lid, me))
            out.append(self._describe(raw, reps[raw.owner], owned=owned, mine=mine, first=first))
        return out

    def listing(self, listing_id: int) -> ModelListing:
        """One listing in full. *(chain)*"""
        m = self._market()
        if not 1 <= listing_id <= self.listing_count():
            raise ModelError(f"no model listing #{listing_id} (there are {self.listing_count()})")
        raw = m.listing(listing_id)
        r = m.reputation(raw.owner)
        sales = self._sales()
        rep = SellerReputation(raw.owner, r.completed, r.rejected, r.expired,
                               None if sales is None else sales.get(raw.owner, 0))
        me = self._me()
        mine = me is not None and raw.owner.lower() == me.lower()
        first = FirstListings()
        for lid in range(1, listing_id + 1):  # who listed these weights first (cards are cached)
            self._note_first(first, raw if lid == listing_id else m.listing(lid), me)
        return self._describe(raw, rep, owned=mine or (me is not None and m.has_purchased(listing_id, me)), mine=mine,
                              first=first)

    def _note_first(self, first: FirstListings, raw, me: str | None) -> None:
        try:
            card, _ = self._card(raw.card_hash, raw.uri, mine=me is not None and raw.owner.lower() == me.lower())
        except ModelError:
            return
        first.note(raw.id, raw.owner, card.weights.sha256)

    def _sales(self) -> dict[str, int] | None:
        try:
            idx = self.wallet.indexer()
        except Exception:
            return None
        try:
            idx.sync()
            counts: dict[str, int] = {}
            for e in idx.history(None, names=["ModelPurchased"], limit=1_000_000):
                if e.to_addr:
                    counts[e.to_addr] = counts.get(e.to_addr, 0) + 1
            return counts
        except Exception:
            return None
        finally:
            idx.close()

    def _policy(self, *, mine: bool):
        """What a listing's URIs may name (app.runtime.input_policy): a stranger's never a file
        of this machine (off the embedded chain) nor a private address; the user's own may."""
        from dataclasses import replace

        p = input_policy(self.ctx, local_chain=local_market(self._market().chain))
        return replace(p, allow_local_files=True) if mine else p

    def _card(self, card_hash: str, uri: str, *, mine: bool = False) -> tuple[ModelCard, Path]:
        """The card of a listing, fetched into the store (under the input policy, at most
        CARD_LIMITS.max_bytes) and checked against its hash."""
        sha = card_hash.removeprefix("0x").lower()
        policy = self._policy(mine=mine).capped(max_bytes=CARD_LIMITS.max_bytes, timeout_s=CARD_FETCH_S)
        try:
            if is_p2p_listing(uri) and not self.store.has(sha):
                got = fetch_card(self.peer(), uri, timeout_s=CARD_FETCH_S)
                if sha256_file(got) != sha:
                    raise ModelError("the model card does not match its hash on chain")
                self.store.put_file(got)
            path = self.store.fetch(sha, None if is_p2p_listing(uri) else resolve_uri(uri), policy=policy)
        except (ArtifactError, P2PModelError) as e:
            raise ModelError(f"the model card could not be fetched or does not match its hash: {e}") from None
        if sha not in self._cards:
            try:
                raw, _ = load_card(path)
                card = parse_model_card(raw)
            except (TrainError, CardError) as e:
                raise ModelError(str(e)) from None
            self._cards[sha] = card
        return self._cards[sha], path

    def _describe(self, raw, seller: SellerReputation, *, owned: bool, mine: bool,
                  first: FirstListings | None = None) -> ModelListing:
        base = dict(listing_id=raw.id, owner=raw.owner, active=raw.active, price_wei=raw.price_wei,
                    card_hash=raw.card_hash, uri=safe_line(raw.uri), seller=seller, owned=owned, mine=mine)
        try:
            card, _ = self._card(raw.card_hash, raw.uri, mine=mine)
        except ModelError as e:
            return ModelListing(name=display_name(None, raw.uri, raw.id), card_ok=False, problem=safe_line(str(e)),
                                provenance_note="the card could not be read", **base)
        how, why = provenance(raw.owner, card.seller, card.weights.sha256, raw.id, first or FirstListings())
        return ModelListing(name=display_name(card, raw.uri, raw.id), card_ok=True,
                            problem=None if raw.active else "no longer for sale", task=card.task,
                            arch=safe_line(card.arch), classes=tuple(safe_line(c) for c in card.classes),
                            metrics=card_metrics(card), input_size=card.input_size, num_params=card.num_params,
                            weights_bytes=card.weights.bytes, provenance=how, provenance_note=why,
                            training_domain=safe_line(card.training_domain or "")[:300], **base)

    # -- buying (chain) ------------------------------------------------------------------------------
    def quote(self, listing_id: int) -> BuyQuote:
        """The exact NTK price and the most the network fee can be, before buying. *(chain)*"""
        m = self._market()
        lst = self.listing(listing_id)
        if not lst.active:
            raise ModelError(f"model #{listing_id} is no longer for sale")
        if not lst.card_ok:
            raise ModelError(f"model #{listing_id} cannot be bought: {lst.problem}")
        me = self.wallet.address
        chain = m.chain
        needs_approval = lst.price_wei > 0 and m.token.allowance(me, m.models_contract.address) < lst.price_wei
        gas = BUY_GAS + (APPROVE_GAS if needs_approval else 0)
        base_fee = chain.read(lambda: chain.w3.eth.get_block("latest").get("baseFeePerGas", 0))
        priority = DEFAULT_PRIORITY_FEE_WEI
        if not chain.embedded:
            try:
                priority = int(chain.read(lambda: chain.w3.eth.max_priority_fee))
            except WalletError:
                raise
            except Exception:
                pass
        return BuyQuote(listing_id, lst.name, lst.price_wei, gas * (2 * int(base_fee) + priority),
                        2 if needs_approval else 1, m.token.balance_of(me), chain.balance_wei(me), lst.owned)

    def buy(self, listing_id: int, *, max_price_wei: int) -> Purchase:
        """Buy a listing, paying exactly its price (refused if above `max_price_wei`, the price the
        user confirmed). InsufficientFunds (one line) when the NTK balance is short. *(chain)*"""
        m = self._market()
        me = self.wallet.signer()
        raw = m.listing(listing_id)
        if raw.price_wei > max_price_wei:
            raise ModelError(f"the price of model #{listing_id} changed to {ntk_text(raw.price_wei)}; "
                             "look at it again before buying")
        if raw.owner.lower() == me.address.lower():
            raise ModelError(f"model #{listing_id} is your own listing")
        if m.has_purchased(listing_id, me.address):
            raise ModelError(f"you already own model #{listing_id}")
        before = m.token.balance_of(me.address)
        if before < raw.price_wei:
            raise InsufficientFunds(f"not enough NTK: model #{listing_id} costs {ntk_text(raw.price_wei)}, "
                                    f"you have {ntk_text(before)}")
        try:  # the market cannot refund a sale: never pay for weights that are missing or not the card's
            self._checked_weights(raw)
        except ModelError as e:
            raise ModelError(f"model #{listing_id} was not bought: {e}") from None
        txs = []
        approval = m.token.ensure_allowance(me, m.models_contract.address, raw.price_wei)
        if approval is not None:
            txs.append(approval)
        chain = m.chain
        txs.append(chain.transact(me, m.models_contract.functions.buy(listing_id, max_price_wei),
                                  gas=BUY_GAS if chain.embedded else None, what=f"buying model {listing_id}"))
        after = m.token.balance_of(me.address)
        return Purchase(listing_id, before - after, sum(t.fee_wei for t in txs), tuple(t.tx_hash for t in txs),
                        before, after)

    def list_model(self, folder: Path, *, price_wei: int, uri: str | None = None, p2p: bool = False) -> int:
        """List a model folder (card + weights) for sale; returns the listing id. The card and
        weights are checked and kept in the artifact store; `uri` (default: the card's file URI)
        is where buyers fetch the card, the weights beside it. *(chain)*"""
        if price_wei < 0:
            raise ModelError("the price cannot be negative")
        try:
            raw, weights = load_card(Path(folder))
            card = parse_model_card(raw)
        except (TrainError, CardError) as e:
            raise ModelError(str(e)) from None
        card_path = Path(folder) / "model_card.json" if Path(folder).is_dir() else Path(folder)
        seller = self.wallet.address
        card = self._seal(raw, card, card_path, seller, uri=uri)
        want = card.weights.sha256
        if not weights.is_file():
            raise ModelError(f"weights file {weights.name} named by the card is missing")
        if not isinstance(want, str) or sha256_file(weights) != want:
            raise ModelError(f"weights file {weights.name} does not match the sha256 in the card")
        card_sha = self.store.put_file(card_path)
        self.store.put_file(weights)
        m = self._market()
        if p2p:
            if uri is not None:
                raise ModelError("a peer-to-peer listing makes its own reference; give no --uri")
            stage = Path(tempfile.mkdtemp(prefix="list-", dir=self.ctx.paths.data_dir))
            try:  # exactly the card and its weights are sealed, nothing else in the folder
                shutil.copyfile(card_path, stage / "model_card.json")
                shutil.copyfile(weights, stage / weights.name)
                uri = self._seller().publish(stage)
            except P2PModelError as e:
                raise ModelError(str(e)) from None
            finally:
                shutil.rmtree(stage, ignore_errors=True)
        lid, _ = m.list_model(self.wallet.signer(), card_hash="0x" + card_sha,
                              uri=uri or card_path.resolve().as_uri(), price_wei=price_wei)
        if p2p:
            self._seller().listed(lid, uri)
        return lid

    @staticmethod
    def _seal(raw: dict, card: ModelCard, card_path: Path, seller: str, *, uri: str | None) -> ModelCard:
        """The card as it will be listed: naming `seller` (its maker), so the market can show the
        listing as verified (app.models.provenance). A card without a seller gets this one,
        written into the card file; a card naming another seller is not this seller's to list."""
        if card.seller is not None:
            if card.seller.lower() != seller.lower():
                raise ModelError(f"this card names seller {card.seller}: it is not yours to list (list a model "
                                 "you made; a copy shows as copied on the market)")
            return card
        if uri is not None:
            raise ModelError(f'the card does not name its seller: add "seller": "{seller}" to {card_path.name} '
                             "and publish that file at --uri (or list without --uri, which adds it)")
        try:
            atomic_write_json(card_path, {**raw, "seller": seller})
        except OSError as e:
            raise ModelError(f"cannot write the seller into {card_path}: {e.strerror or e}") from None
        return parse_model_card({**raw, "seller": seller})

    def _checked_weights(self, raw) -> tuple[ModelCard, str, str]:
        """(card, weights sha256, weights file name) of a listing, the weights fetched into the
        store and checked against the card; ModelError if they cannot be had or do not match."""
        mine = raw.owner.lower() == (self._me() or "").lower()
        card, _ = self._card(raw.card_hash, raw.uri, mine=mine)
        wsha, wname = card.weights.sha256, card.weights.file
        if not isinstance(wsha, str) or not re.fullmatch(r"[0-9a-f]{64}", wsha):
            raise ModelError("the model card does not give its weights' sha256; it cannot be checked")
        if is_p2p_listing(raw.uri):  # sealed until bought: here only that its seller serves it
            return card, wsha, wname
        try:
            self.store.fetch(wsha, resolve_uri(sibling_uri(raw.uri, wname)), policy=self._policy(mine=mine))
        except ArtifactError as e:
            raise ModelError(f"the weights could not be fetched or do not match the card: {e}") from None
        return card, wsha, wname

    # -- fetching a bought model (chain) ------------------------------------------------------------
    def fetch(self, listing_id: int) -> OwnedModel:
        """The bought model as a checked folder under models_dir (fetched on first use). *(chain)*"""
        m = self._market()
        me = self.wallet.address
        raw = m.listing(listing_id)
        if raw.owner.lower() != me.lower() and not m.has_purchased(listing_id, me):
            raise ModelError(f"model #{listing_id} is not purchased by {me}; buy it first")
        card, wsha, wname = self._checked_weights(raw)
        csha = raw.card_hash.removeprefix("0x").lower()
        folder = self.ctx.paths.models_dir / f"{listing_id}-{csha[:12]}"
        if is_p2p_listing(raw.uri) and not self.store.has(wsha) and raw.owner.lower() != me.lower():
            self.ctx.paths.models_dir.mkdir(parents=True, exist_ok=True)
            tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}")
            try:
                fetch_model(self.peer(), raw.uri, card_sha=csha, private_key=bytes(self.wallet.signer().key),
                            dest=tmp, weights_file=wname, weights_sha=wsha, seller=raw.owner)
                self.store.put_file(tmp / wname)
            except P2PModelError as e:
                raise ModelError(str(e)) from None
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        if not (folder / "model_card.json").is_file() or not (folder / wname).is_file():
            tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}")
            try:
                self.store.materialize(csha, tmp / "model_card.json")
                self.store.materialize(wsha, tmp / wname)
                if folder.exists():
                    shutil.rmtree(folder)
                tmp.rename(folder)
            except (ArtifactError, OSError) as e:
                shutil.rmtree(tmp, ignore_errors=True)
                raise ModelError(f"could not lay out the model folder: {e}") from None
        return OwnedModel(listing_id, display_name(card, raw.uri, listing_id), folder, csha, wsha, card.task,
                          tuple(card.classes))

    # -- trying a model (no chain) -------------------------------------------------------------------
    @staticmethod
    def new_try():
        """A handle to cancel a `try_model` run from any thread (app.models.TryHandle)."""
        return TryHandle()

    @staticmethod
    def check_images(paths: Iterable[Path], max_pixels: int = MAX_PIXELS) -> list[Path]:
        """Photos as a list of files, each checked on its header; ModelError on the first bad one."""
        return check_images(paths, max_pixels)

    def try_model(self, model: OwnedModel, photos: Iterable[Path], **kw):
        """Run `model` on the photos in a sandboxed worker; returns an app.models.TryResult
        (detections, annotated images). Blocks, never touches the chain; see app.models.try_run.run_try."""
        return run_try(self.ctx, self.store, model, photos, **kw)

    @staticmethod
    def save_annotated(result, folder: Path) -> list[Path]:
        """Copy a TryResult's annotated images to `folder` as `<photo>-detections.png` (never overwriting)."""
        return save_annotated(result, folder)


    def close(self) -> None:
        self._cards.clear()
        self._sellers.clear()
        if self._peer is not None:
            self._peer.close()
            self._peer = None
