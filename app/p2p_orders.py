"""The buyer's orders on the order market (peer to peer) as the GUI shows them: plain reads of
the OrderBuyer's state files, the cost of posting, posting, and saving a finished order's
merged dataset (what `kminer order render|watch|fetch --p2p` do in the CLI).

    p2p = P2POrders.of_session(session)       # the desktop app's MarketSession
    p2p.available()                            # the network has an order market
    p2p.orders()                               # [P2POrder], read from <buyer home>/orders/*.json
    p2p.cost(shards, reward_each_wei)          # app.costs.CostBreakdown (escrow, network fee   *(chain)*
                                               #  as `kminer market fees` prices it: app.order_fees.post_fee)
    p2p.post_render(scene, count=..., ...)     # the order id                                   *(chain)*
    p2p.check_train(data, params=..., ...)     # TrainInputs: datasets resolved, terms checked  *(files)*
    p2p.train_cost(reward_wei)                 # the same, for a one-shard train order          *(chain)*
    p2p.post_train(inputs, reward_wei=..., ...)  # a model on finished render orders / folders  *(chain)*
    p2p.save_dataset(order_id, dest)           # merged dataset folder                          *(files)*
    p2p.save_model(order_id, dest)             # a train order's verified model folder          *(files)*

Reads never open the buyer (no ports, no lock): the state files are written atomically by the
OrderBuyer on the chain thread, so the view can list orders while the wallet is locked.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from app.costs import CostBreakdown

log = logging.getLogger(__name__)

SHARD_STATES = ("open", "granted", "confirmed", "fetching", "verifying", "paid", "done", "rejected")
"""A shard's states in the buyer's state file, in order (`open`: nobody has claimed it yet)."""


@dataclass(frozen=True)
class P2PShard:
    shard: int
    state: str
    miner: str = ""
    reason: str = ""
    payout: str = ""
    result_dir: str = ""
    """The unsealed, verified result folder (state `done`), else ""."""


@dataclass(frozen=True)
class P2PTrain:
    """What a train order asks and, once checked, what its model measured on the held-out
    images this home kept (`measured` vs the card's `claimed`, in `metric`; None until then)."""

    arch: str
    epochs: int | None
    images: int
    """Training images sent to the miner."""
    holdout_images: int
    """Held-out images kept here (never sent)."""
    classes: tuple[str, ...]
    tolerance: float
    min_metric: float | None
    metric: str = ""
    claimed: float | None = None
    measured: float | None = None
    passed: bool | None = None
    model_dir: str = ""
    """The unsealed, verified model folder (card, weights, curves) once done, else ""."""

    def least_text(self) -> str:
        """The least metric ordered, "" when none ("map50 0.20")."""
        return "" if self.min_metric is None else f"{self.metric or 'metric'} {self.min_metric:.2f}"

    def figures(self) -> str:
        """"map50 0.571 measured on 30 held-out images (card 0.562)", or "" while unchecked."""
        if self.measured is None:
            return ""
        card = f" (card {self.claimed:.3f})" if self.claimed is not None else ""
        return f"{self.metric or 'metric'} {self.measured:.3f} measured on {self.holdout_images} held-out images{card}"


@dataclass(frozen=True)
class P2POrder:
    id: int
    name: str
    count: int
    shards: tuple[P2PShard, ...]
    refunded: bool
    posted_ts: float
    reward_each_wei: int = 0
    """From the chain (the state file does not hold it); 0 while unknown."""
    kind: str = "render"
    train: P2PTrain | None = None
    """A train order's terms and figures (None: a render order)."""

    @property
    def done(self) -> int:
        return sum(1 for s in self.shards if s.state == "done")

    @property
    def escrow_wei(self) -> int:
        """What is still escrowed: every shard not paid, until the rest is refunded (0 while the reward is unknown)."""
        return 0 if self.refunded else self.reward_each_wei * sum(1 for s in self.shards if s.state not in ("paid", "done"))

    @property
    def finished(self) -> bool:
        return self.done == len(self.shards) or self.refunded

    @property
    def state(self) -> str:
        """done (every shard unsealed), refunded, rejected (some shard), in progress, or open."""
        if self.done == len(self.shards):
            return "done"
        if self.refunded:
            return "refunded"
        if any(s.state == "rejected" for s in self.shards):
            return "rejected"
        return "in progress" if any(s.state != "open" for s in self.shards) else "open"


def read_order(doc: dict[str, Any]) -> P2POrder:
    """One order's state document (app.orders.buyer) as a P2POrder; ValueError when malformed."""
    try:
        spec = json.loads(doc["spec"])
        n = int(spec["shards"])
        job = spec.get("job") or {}
        shards = []
        for i in range(n):
            sh = doc["shards"].get(str(i)) or {}
            state = str(sh.get("state", "open"))
            shards.append(P2PShard(i, state, str(sh.get("miner") or ""), str(sh.get("reason") or ""),
                                   str(sh.get("payout") or ""), str(sh.get("result_dir") or "") if state == "done" else ""))
        kind = str(spec.get("kind") or "render")
        if kind == "train":
            train = _train_of(job, shards[0] if shards else None)
            return P2POrder(int(doc["order_id"]), f"{train.arch} on {train.images} images", 0, tuple(shards),
                            bool(doc.get("refunded")), float(doc.get("posted_ts") or 0), kind=kind, train=train)
        scene = job.get("scene") if isinstance(job.get("scene"), dict) else {}
        count = int(job.get("count") or 0)
        return P2POrder(int(doc["order_id"]), str(scene.get("name") or spec.get("kind") or "order"), count,
                        tuple(shards), bool(doc.get("refunded")), float(doc.get("posted_ts") or 0), kind=kind)
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise ValueError(f"unreadable order state ({type(e).__name__}: {e})") from None


MAX_CARD_BYTES = 1 << 20


def _train_of(job: dict, shard: P2PShard | None) -> P2PTrain:
    """A train order's job document (app.orders.train.train_order) as a P2PTrain; once done,
    the card's claim is read from the verified model folder."""
    params = job.get("params") if isinstance(job.get("params"), dict) else {}
    held = job.get("holdout") if isinstance(job.get("holdout"), dict) else {}
    epochs = params.get("epochs")
    mm = job.get("min_metric")
    t = P2PTrain(str(params.get("arch") or DEFAULT_ARCH), int(epochs) if isinstance(epochs, int) else None,
                 int(job.get("images") or 0), int(held.get("images") or 0),
                 tuple(str(c) for c in job.get("classes") or ()), float(job.get("tolerance") or 0),
                 float(mm) if isinstance(mm, (int, float)) else None)
    t = replace(t, metric="accuracy" if t.arch.startswith("classifier") else "map50")
    if shard is None or not shard.result_dir:
        return t
    metric, claimed = _card_claim(Path(shard.result_dir) / "model_card.json")
    return replace(t, model_dir=shard.result_dir, metric=metric, claimed=claimed)


DEFAULT_ARCH = "centernet-s"
"""jobs.estimate.DEFAULT_ARCH: what a miner trains when the order names no architecture."""


def _card_claim(card: Path) -> tuple[str, float | None]:
    """(metric name, the value the model card claims for it); ("", None) when unreadable."""
    try:
        with open(card, "rb") as f:
            doc = json.loads(f.read(MAX_CARD_BYTES))
        metric = str(doc["metric"])[:32]
        value = doc["metrics"][metric]
        return metric, float(value) if isinstance(value, (int, float)) else None
    except (OSError, ValueError, KeyError, TypeError):
        return "", None


def with_check(o: P2POrder, check: dict | None) -> P2POrder:
    """`o` with a finished verify-train check's figures (OrderBuyerRunner.check_result)."""
    if o.train is None or not check or check.get("measured") is None:
        return o
    t = o.train
    claimed = check.get("claimed")
    return replace(o, train=replace(t, metric=str(check.get("metric") or t.metric)[:32],
                                    measured=float(check["measured"]), passed=bool(check.get("passed")),
                                    claimed=float(claimed) if isinstance(claimed, (int, float)) else t.claimed))


def read_orders(orders_dir: Path | None) -> list[P2POrder]:
    """Every order whose state file is in `orders_dir`, by id; unreadable files are skipped."""
    if orders_dir is None or not orders_dir.is_dir():
        return []
    out = []
    for p in orders_dir.glob("*.json"):
        try:
            out.append(read_order(json.loads(p.read_text(encoding="utf-8"))))
        except (OSError, ValueError) as e:
            log.warning("order state %s skipped: %s", p.name, e)
    return sorted(out, key=lambda o: o.id)


def result_dirs(orders_dir: Path, order_id: int) -> list[Path]:
    """The unsealed, verified result folder of every shard; ValueError (one line) when some
    shard is not done yet or the order is unknown."""
    p = orders_dir / f"{int(order_id)}.json"
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ValueError(f"order {order_id} is not one of yours on this network's order market") from None
    order = read_order(doc)
    missing = [s.shard for s in order.shards if s.state != "done"]
    if missing:
        raise ValueError(f"shard(s) {missing} are not verified and unsealed yet")
    return [Path(doc["shards"][str(i)]["result_dir"]) for i in range(len(order.shards))]


def order_kind(orders_dir: Path, order_id: int) -> str:
    """"render" or "train": what the order's state file says (ValueError if not ours)."""
    try:
        return read_order(json.loads((orders_dir / f"{int(order_id)}.json").read_text(encoding="utf-8"))).kind
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"order {order_id} is not one of yours on this network's order market") from None


def save_model(orders_dir: Path, order_id: int, dest: Path) -> Path:
    """Copy a finished train order's verified, unsealed model folder (card, weights, curves) to
    `dest` (new or empty), whole or not at all; the folder."""
    import shutil

    src = result_dirs(orders_dir, order_id)[0]
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ValueError(f"{dest} is not empty")
    tmp = dest.with_name(dest.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        shutil.copytree(src, tmp, symlinks=True)
        if dest.exists():
            dest.rmdir()
        tmp.rename(dest)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(f"cannot write {dest}: {e.strerror or e}") from None
    return dest


def save_dataset(orders_dir: Path, order_id: int, dest: Path) -> Path:
    """Merge a finished order's shards into `dest` (a new or empty folder); the folder."""
    from jobs.render.dataset import RenderError, merge_datasets

    dirs = result_dirs(orders_dir, order_id)
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise ValueError(f"{dest} is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        merge_datasets(dirs, dest, link=False)
    except RenderError as e:
        raise ValueError(str(e)) from None
    return dest


@dataclass(frozen=True)
class TrainInputs:
    """A train order's data, resolved to COCO folders and checked (P2POrders.check_train)."""

    data: tuple[Path, ...]
    holdout: tuple[Path, ...] | None
    """Held-out folders, or None: `holdout_fraction` of the data is kept back."""
    holdout_fraction: float
    params: dict
    tolerance: float
    """How far below its card the model may measure and be paid (the buyer's, else from the
    held-out size: app.orders.train.default_tolerance)."""
    min_metric: float | None
    images: int
    classes: tuple[str, ...]
    held_out: int = 0
    """Images kept here to check the model on (planned, when a share of the data is kept back)."""
    tolerance_chosen: bool = True
    """False: `tolerance` is the default that follows the held-out size."""

    def check_text(self) -> str:
        """The held-out check in one line, as the confirmation shows it (app.orders.train.train_terms)."""
        from app.orders.train import train_terms

        return train_terms(self.held_out, self.tolerance, chosen=self.tolerance_chosen, min_metric=self.min_metric)


def dataset_dirs(orders_dir: Path | None, values, what: str) -> list[Path]:
    """Each value (a finished render order's id on this order market, "p2p:N", or a folder) as
    COCO folders; ValueError (one line) naming `what`."""
    out: list[Path] = []
    for v in values:
        if isinstance(v, str) and v.startswith("p2p:") and v[4:].isdigit():
            v = int(v[4:])
        if isinstance(v, int):
            if orders_dir is None:
                raise ValueError(f"{what}: no order market is open on this network")
            try:
                if order_kind(orders_dir, v) != "render":
                    raise ValueError(f"order {v} is not a dataset order")
                out += result_dirs(orders_dir, v)
            except ValueError as e:
                raise ValueError(f"{what}: {e}") from None
            continue
        p = Path(v).expanduser()
        if not p.is_dir():
            raise ValueError(f"{what}: {p} is not a folder")
        out.append(p)
    if not out:
        raise ValueError(f"{what}: choose a finished dataset order or a folder")
    return out


def posting_cost(chain, *, shards: int, reward_each_wei: int, net=None) -> tuple[CostBreakdown, int]:
    """What posting an order costs (escrow, and the network fee at `chain`'s fees now: gas x
    price and the OP-stack L1 data fee apart, in ETH and USD) and that fee in wei; the one
    estimate the GUI's and the CLI's confirmations show. *(chain)*"""
    from app.costs import reference_coin_usd
    from app.order_fees import post_fee
    from app.orders.service import post_cost

    net = net or network_of(chain)
    fee = post_fee(net, chain=chain)
    return post_cost(shards=shards, reward_each_wei=reward_each_wei, fee=fee,
                     coin_usd=reference_coin_usd(net.native_symbol)), fee.total_wei


def network_of(chain):
    """The known network with `chain`'s id (wallet.networks), else a plain one (no L1 data fee)."""
    from wallet.networks import NETWORKS, Network

    for n in NETWORKS.values():
        if n.chain_id == chain.chain_id and n.embedded == bool(chain.embedded):
            return n
    return Network("chain", chain.chain_id, embedded=bool(chain.embedded))


class P2POrders:
    """See the module docstring. `orders_dir()`: the buyer's state folder (None: no order
    market known yet); `open_buyer()`: the OrderBuyerRunner (or anything with its
    `post_render`), opened on the chain thread; `chain()`: the chain whose fees price posting,
    `network()`: its wallet.networks.Network (OP stack or not; default: read from the chain);
    `available()`: whether the network has an order market (None: not known yet);
    `not_ready()`: why posting cannot be done now (wallet locked...), or None;
    `reward_of(order_id)`: the order's reward per shard on chain (read once per order);
    `check_of(order_id)`: a train order's finished model check (OrderBuyerRunner.check_result)
    or None (kept once found)."""

    def __init__(self, *, orders_dir: Callable[[], Path | None], open_buyer: Callable[[], Any],
                 chain: Callable[[], Any], available: Callable[[], bool | None],
                 not_ready: Callable[[], str | None] = lambda: None,
                 reward_of: Callable[[int], int] | None = None, by_default: Callable[[], bool] = lambda: True,
                 network: Callable[[], Any] | None = None, check_of: Callable[[int], dict | None] | None = None):
        self._orders_dir, self._open_buyer, self._chain, self._available = orders_dir, open_buyer, chain, available
        self._check_of = check_of
        self._checks: dict[tuple[str, int], dict] = {}
        self._network = network
        self._by_default = by_default
        self._not_ready = not_ready
        self._reward_of = reward_of
        self._rewards: dict[tuple[str, int], int] = {}

    @classmethod
    def of_session(cls, session) -> P2POrders:
        """Over the desktop app's app.market_session.MarketSession."""
        def not_ready() -> str | None:
            if session.buyer is None:
                return session.last_reason or "the market is not open yet: unlock the wallet"
            if session.has_order_market() is False:
                return "this network has no order market: choose the job market"
            return None

        def reward_of(order_id: int) -> int:
            from app.orders.service import order_market

            return order_market(session._market).order(order_id).reward_each_wei

        return cls(orders_dir=session.p2p_orders_dir, open_buyer=session.p2p_buyer,
                   chain=lambda: session.wallet.service.chain, network=lambda: session.wallet.service.network,
                   available=session.has_order_market,
                   not_ready=not_ready, reward_of=reward_of, by_default=session.p2p_by_default,
                   check_of=session.p2p_check_result)

    def available(self) -> bool | None:
        return self._available()

    def by_default(self) -> bool:
        """Whether the form starts on peer to peer (MarketSession.p2p_by_default)."""
        return bool(self._by_default())

    def orders_dir(self) -> Path | None:
        return self._orders_dir()

    def orders(self) -> list[P2POrder]:
        """Every order of this network's order market, with its reward when it can be read. *(chain)*"""
        d = self._orders_dir()
        out = [self._checked(d, o) for o in read_orders(d)]
        if self._reward_of is None:
            return out
        for i, o in enumerate(out):
            key = (str(d), o.id)
            if key not in self._rewards:
                try:
                    self._rewards[key] = int(self._reward_of(o.id))
                except Exception as e:  # node down: shown as unknown, asked again next time
                    log.info("order %d: reward not read: %s", o.id, e)
                    continue
            out[i] = replace(o, reward_each_wei=self._rewards[key])
        return out

    def _checked(self, d, o: P2POrder) -> P2POrder:
        """A train order with its model check's figures, once the check has ended."""
        if o.train is None or self._check_of is None or o.state not in ("in progress", "done", "rejected"):
            return o
        key = (str(d), o.id)
        if key not in self._checks:
            try:
                found = self._check_of(o.id)
            except Exception as e:  # noqa: BLE001 - shown without figures, asked again next time
                log.info("order %d: check not read: %s", o.id, e)
                found = None
            if not found:
                return o
            self._checks[key] = found
        return with_check(o, self._checks[key])

    def finished_renders(self, orders: list[P2POrder] | None = None) -> list[P2POrder]:
        """The dataset orders a model can be trained on: render orders whose every shard is verified."""
        return [o for o in (read_orders(self._orders_dir()) if orders is None else orders)
                if o.kind == "render" and o.state == "done"]

    def cost(self, shards: int, reward_each_wei: int) -> CostBreakdown:
        """What posting costs (a train order: 1 shard, its reward); ValueError (one line) when
        posting cannot be done now. *(chain)*"""
        why = self._not_ready()
        if why:
            raise ValueError(why)
        chain = self._chain()
        return posting_cost(chain, shards=shards, reward_each_wei=reward_each_wei,
                            net=self._network() if self._network is not None else None)[0]

    def train_cost(self, reward_wei: int) -> CostBreakdown:
        """What posting a train order costs: `cost(1, reward_wei)` (the same post_fee), its
        escrow line said for a model. *(chain)*"""
        c = self.cost(1, reward_wei)
        escrow = replace(c.lines[0], label="escrow: the reward",
                         note="paid when the model passes the held-out check, else refunded")
        return replace(c, title="Post a training order on the order market", lines=(escrow, *c.lines[1:]),
                       notes=("The training data is sent to the miner that claims the order; the held-out images "
                              "never leave this computer.", *c.notes[1:]))

    @staticmethod
    def scene(scene):
        """A scene spec dict or .json path, checked (a SceneSpec); ValueError in one line."""
        from jobs.render.spec import SceneError, SceneSpec, load_scene, parse_scene

        if isinstance(scene, SceneSpec):
            return scene
        try:
            return parse_scene(scene) if isinstance(scene, dict) else load_scene(scene)
        except SceneError as e:
            raise ValueError(f"scene: {str(e).splitlines()[0] if str(e) else e}") from None

    def post_render(self, scene, **kw) -> int:
        """`scene`: a SceneSpec, a scene spec dict or a .json path. *(chain)*"""
        return self._open_buyer().post_render(self.scene(scene), **kw)

    def check_train(self, data, *, params: dict, holdout=None, holdout_fraction: float = 0.2,
                    tolerance: float | None = None, min_metric: float | None = None) -> TrainInputs:
        """A train order's data (finished render orders' ids or folders; `holdout` likewise, else
        `holdout_fraction` of the data stays here) resolved and read, its terms checked
        (`tolerance` None: the default for the held-out size, app.orders.train.planned_tolerance,
        refused when WIDE_TOLERANCE or more; `min_metric` required: app.orders.train.train_terms):
        ValueError (one line) before any cost is asked. *(files)*"""
        from app.orders.train import check_min_metric, planned_tolerance, train_terms
        from jobs.train import BUYER_PARAMS
        from jobs.train.subset import DatasetError, coco_summary

        bad = sorted(set(params) - BUYER_PARAMS)
        if bad:
            raise ValueError(f"train parameter {bad[0]!r} is not one a buyer sets")
        if not holdout and not 0 < holdout_fraction < 1:
            raise ValueError("the held-out share must be between 0 and 100 %")
        if tolerance is not None and not 0 <= tolerance <= 1:
            raise ValueError("the tolerance must be between 0 and 1")
        check_min_metric(min_metric)  # required: without it a card that claims 0.0 is paid
        d = self._orders_dir()
        dirs = dataset_dirs(d, list(data), "data")
        held = dataset_dirs(d, list(holdout), "held-out data") if holdout else None
        if held and {p.resolve() for p in held} & {p.resolve() for p in dirs}:
            raise ValueError("the held-out data is also in the training data: choose other data to hold out")
        try:
            images, classes = coco_summary(dirs)
            n_held = coco_summary(held)[0] if held else None
        except DatasetError as e:
            raise ValueError(f"not a dataset: {str(e).splitlines()[0] if str(e) else e}") from None
        if images < 2:
            raise ValueError(f"the data holds {images} image(s): too few to train on and hold some out")
        planned, n_held, _ = planned_tolerance(images, params, held_out=n_held, holdout_fraction=holdout_fraction)
        train_terms(n_held, planned if tolerance is None else tolerance, chosen=tolerance is not None,
                    min_metric=min_metric)  # too few held-out images for the default tolerance: refused here
        return TrainInputs(tuple(dirs), tuple(held) if held else None, holdout_fraction, dict(params),
                           planned if tolerance is None else tolerance, min_metric, images, tuple(classes),
                           held_out=n_held, tolerance_chosen=tolerance is not None)

    def post_train(self, inputs: TrainInputs, *, reward_wei: int, deadline_s: int, review_window_s: int) -> int:
        """Post a one-shard train order on checked `inputs` (OrderBuyerRunner.post_train: the
        held-out images stay in this home's store). *(chain)*"""
        if reward_wei <= 0:
            raise ValueError("the reward must be more than 0 NTK")
        kw = {} if inputs.holdout else {"holdout_fraction": inputs.holdout_fraction}
        return self._open_buyer().post_train(list(inputs.data), params=dict(inputs.params), reward_wei=reward_wei,
                                             deadline_s=deadline_s, review_window_s=review_window_s,
                                             holdout=list(inputs.holdout) if inputs.holdout else None,
                                             tolerance=inputs.tolerance, min_metric=inputs.min_metric, **kw)

    def save_model(self, order_id: int, dest: Path) -> Path:
        """A finished train order's verified model folder copied to `dest` (new or empty). *(files)*"""
        d = self._orders_dir()
        if d is None:
            raise ValueError("no order market is open on this network")
        if order_kind(d, order_id) != "train":
            raise ValueError(f"order {order_id} is a dataset order: save its dataset")
        return save_model(d, order_id, dest)

    def save_dataset(self, order_id: int, dest: Path) -> Path:
        """*(files)*"""
        d = self._orders_dir()
        if d is None:
            raise ValueError("no order market is open on this network")
        if order_kind(d, order_id) == "train":
            raise ValueError(f"order {order_id} is a train order: save its model")
        return save_dataset(d, order_id, dest)

