"""The app's orders on OrderMarket, built from the settings: what the agent and `kminer order`
run (the GUI next).

- `open_peer(ctx, key, role)`: this home's transport peer for a role ("miner" or "buyer"),
  as Settings → Transfers say (listen address, public address, ports, rate caps, quota,
  relays). The miner's peer takes `transport.port` (its key service the next port), the
  buyer's `transport.port + 2` (and + 3), the model market's + 4 (and + 5), so an agent, a
  buyer and a model seller run side by side; the
  buyer's order desk listens on `transport.desk_port`. Each role keeps its transfers under
  `<data>/p2p/<role>/transport` (`kminer transfers` reads them).
- `OrderMinerRunner`: OrderMiner on the deployment's OrderMarket whose render and train shards
  run as jobs in the miner's queue (the MinerService's scheduler starts them on its devices;
  its quote takes an order only when a free device can run the kind at its floor, so a rig
  that cannot train never claims a train order, as on the job market). What the rig shows of
  it: `queue_work(queue id)` / `views()` (ShardView: order p2p:N, shard, kind, reward, stage),
  joined into MinerService.device_lines, the agent's status line and the GUI's Jobs page; each
  pass books what the order market paid (`shards_paid` over the indexer's VoucherRedeemed and
  ResultReleased events, per shard) in the earnings ledger.
- `OrderBuyerRunner`: OrderBuyer with its desk, sampling (render: a few frames; train: the
  card and weights) and verify jobs (`verify-render`, `verify-train` on data the miner never
  saw) in the buyer's own queue and scheduler (`<data>/buyer-jobs.sqlite`, the CPU).
- `post_cost(...)`: what posting an order costs (escrow, network fee), for confirmation.

Threading: each runner's methods run on one thread (the chain's); jobs and transfers run in
their own threads and processes.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from app.amounts import ntk_text
from app.context import AppContext
from app.costs import CostBreakdown, CostLine
from app.home_lock import HomeLock
from app.orders.buyer import OrderError, OrderBuyer
from app.orders.miner import OrderMiner
from app.orders.rig import PAID_EVENTS, SETTLED_STAGES, ShardView, shards_paid
from app.orders.peer import Peer, free_port
from app.orders.render import ASSETS, QueueSampleCheck, QueueShardWork, RenderSampler, render_order, render_shard_spec
from app.orders.train import (DATA, ModelPicker, QueueModelCheck, check_train_inputs, train_images, train_order,
                              train_shard_spec)
from app.runtime import local_market, runtime_config
from common.device_id import DeviceId
from common.fsutil import atomic_write_text
from jobs.execute import Device
from jobs.queue import JobQueue
from jobs.scheduler import Scheduler
from wallet.order_market import OrderMarketClient

log = logging.getLogger(__name__)

NO_ORDER_MARKET = "no order market is known on this network (kminer market deploy --network NAME, or kminer market networks)"
MIN_STAKE_WEI = 10**18
_ROLE_PORT = {"miner": 0, "buyer": 2, "models": 4}
"""Each role's offset from Settings → Transfers → Port (its key service on the next port)."""


def order_market(market) -> OrderMarketClient:
    """The OrderMarket of `market`'s deployment (a wallet.market.MarketClient)."""
    d = market.deployment
    if not d.order_market:
        raise ValueError(NO_ORDER_MARKET)
    return OrderMarketClient(market.chain, d.order_market, token_address=market.token.address)


def peer_dir(ctx: AppContext, role: str) -> Path:
    return ctx.paths.data_dir / "p2p" / role


def public_host(ctx: AppContext) -> str:
    """The address written into what this home publishes: Settings → Transfers → Public address,
    else the listen address, else (listening everywhere) this host's name as it resolves."""
    t = ctx.settings.transport
    if t.advertise:
        return t.advertise
    if t.listen_host not in ("0.0.0.0", "::", ""):
        return t.listen_host
    try:
        addr = socket.gethostbyname(socket.gethostname())
    except OSError:
        addr = "127.0.0.1"
    if addr.startswith("127."):
        log.warning("peers elsewhere cannot reach %s: set Settings → Transfers → Public address", addr)
    return addr


def open_peer(ctx: AppContext, identity_key: bytes, role: str, *, local: bool = False) -> Peer:
    """`local`: the market is on this machine (the embedded chain, a devnet on loopback), so
    the peer listens on 127.0.0.1 only, on a port of its own kept in `<peer dir>/port` (the
    same after a restart, so references made before it still reach the key service)."""
    t = ctx.settings.transport
    host, adv = ("127.0.0.1", "127.0.0.1") if local else (t.listen_host, public_host(ctx))
    if local:
        port = _kept_port(peer_dir(ctx, role), host)
    else:
        port = t.port + _ROLE_PORT[role] if t.port else _kept_port(peer_dir(ctx, role), host)
    relays = tuple(r.strip() for r in t.relays.split(",") if r.strip())
    return Peer.open(peer_dir(ctx, role), host=host, identity_key=identity_key, port=port,
                     advertise=adv, upload_bytes_s=t.upload_kib_s * 1024,
                     download_bytes_s=t.download_kib_s * 1024, quota_bytes=int(t.quota_gb * 1e9),
                     port_mapping=t.port_mapping, relays=relays)


def by_default(market) -> bool:
    """Whether a new order goes to the order market (the GUI's dataset and training forms,
    `kminer order render|train` alike): wherever the network's deployment has one, the embedded
    chain and loopback devnets included. The job market stays a choice (`--job-market`, the
    form's market box) and the default only where no order market is deployed."""
    return bool(market is not None and getattr(market.deployment, "order_market", None))


def buyer_orders_dir(ctx: AppContext, market) -> Path | None:
    """The buyer's state folder on `market`'s order market (app.p2p_orders reads it), or None
    when the network has no order market."""
    d = None if market is None else getattr(market.deployment, "order_market", None)
    if not d:
        return None
    return peer_dir(ctx, "buyer") / f"{market.chain.chain_id}-{d[2:10].lower()}" / "orders"


def buyer_has_orders(ctx: AppContext, market) -> bool:
    """Whether this home has open orders on `market`'s order market (their desk must be served)."""
    home = buyer_orders_dir(ctx, market)
    if home is None:
        return False
    for p in home.glob("*.json") if home.is_dir() else ():
        try:
            if not OrderBuyer.finished(json.loads(p.read_text(encoding="utf-8"))):
                return True
        except (OSError, ValueError, KeyError, TypeError):
            return True  # unreadable: let the buyer open it and say so
    return False


BUYER_JOBS = "buyer-jobs.sqlite"
"""The buyer's queue of verify jobs, in the data folder."""


def _check_result(queue: JobQueue, chain_id: int, address: str, order_id: int) -> dict | None:
    from jobs.queue import FINAL, QueueError

    try:
        rec = queue.get(f"verify-train-order-{chain_id}-{address[2:10].lower()}-{int(order_id)}-0")
    except QueueError:
        return None
    return dict(rec.result) if rec.state in FINAL and isinstance(rec.result, dict) else None


def buyer_check_result(ctx: AppContext, market, order_id: int) -> dict | None:
    """A train order's finished model check as this home's buyer queue recorded it (what
    OrderBuyerRunner.check_result says, readable without opening the buyer), else None."""
    d = None if market is None else getattr(market.deployment, "order_market", None)
    path = ctx.paths.data_dir / BUYER_JOBS
    if not d or not path.is_file():
        return None
    queue = JobQueue(path)
    try:
        return _check_result(queue, market.chain.chain_id, d, order_id)
    finally:
        queue.close()


def _kept_port(folder: Path, host: str) -> int:
    """A port for this peer (and the next one for its key service) that stays the same across
    restarts: the one saved in `folder/port` while it and the next are free, else a new pair."""
    f = folder / "port"
    try:
        port = int(f.read_text().strip())
        if 1024 <= port < 65535 and _free(host, port) and _free(host, port + 1):
            return port
    except (OSError, ValueError):
        pass
    for _ in range(50):
        port = free_port(host)
        if port < 65535 and _free(host, port + 1):
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(f, f"{port}\n")
            return port
    raise OSError("no two free ports next to each other for the transfers")


def _free(host: str, port: int) -> bool:
    """Nothing listens on `port`: connections of the last run still in TIME_WAIT do not count
    (the peer binds with SO_REUSEADDR too), so a restart keeps its port and its references.
    The option is set on Linux only, where a bind with it still fails while any socket listens
    on the port (on macOS/BSD it would succeed beside another process's wildcard listener, on
    Windows it would share the port); and a port that takes a connection is busy anyway."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    near = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    with socket.socket(fam, socket.SOCK_STREAM) as c:
        c.settimeout(0.5)
        if c.connect_ex((near, port)) == 0:
            return False
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        if sys.platform.startswith("linux"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _redeem_after_s(ctx: AppContext, signer, chain) -> float:
    """How long a miner keeps vouchers before redeeming them in one batch: the setting, which
    saves fees; at once on the embedded `local` chain (test money, fees in test ETH) for a
    signer whose payout is this home's wallet (the derived mining account, or a mining key
    paying the wallet): its buyer is the same user, waiting for a result that unlocks only once
    its shard is redeemed. Never on another network."""
    if getattr(chain, "embedded", False):
        if getattr(signer, "source", None) == "local-mining-account":
            return 0.0
        mine = ctx.settings.wallet.account
        if mine and str(signer.payout).lower() == mine.lower():
            return 0.0
    return ctx.settings.transport.redeem_after_minutes * 60


def _prefix(om: OrderMarketClient) -> str:
    return f"order-{om.chain.chain_id}-{om.address[2:10].lower()}"


def _check_inputs(doc: dict, headers: dict) -> str | None:
    """The pre-claim look at an order's sealed inputs, by kind (OrderMiner.check_inputs)."""
    return check_train_inputs(doc, headers) if doc.get("kind") == "train" else None


class OrderMinerRunner:
    """The rig's side of orders, beside MinerService (same queue, same scheduler)."""

    def __init__(self, ctx: AppContext, market, signer, queue: JobQueue, store, *,
                 kinds: tuple[str, ...] = ("render", "train"), quote=None, ledger=None, indexer=None):
        """`quote(order_id, buyer, kind, reward_wei, deadline, spec[, images=N]) -> None or why not`
        (MinerService.quote_spec): an order is taken only when a free device that runs its kind
        values its largest shard at or above its price floor (`images`: a train order's data).
        `ledger` (app.earnings.Ledger) and `indexer` (() -> the deployment's wallet.indexer.Indexer,
        e.g. MinerService.indexer): each pass records what the order market paid this rig there."""
        self.ctx = ctx
        self.queue, self.ledger, self.indexer = queue, ledger, indexer
        self.om = order_market(market)
        self.signer = signer
        self.quote = quote
        self.peer = open_peer(ctx, bytes(signer.account.key), "miner", local=local_market(market.chain))
        try:
            work = QueueShardWork(queue, store, prefix=_prefix(self.om),
                                  specs={"render": render_shard_spec, "train": train_shard_spec})
            grace_s = int(ctx.settings.transport.grace_hours * 3600)
            home = peer_dir(ctx, "miner") / f"{self.om.chain.chain_id}-{self.om.address[2:10].lower()}"
            self.work = work
            self.home = home
            self._rewards: dict[str, int] = {}
            self._kinds: dict[int, str] = {}
            self.paid_wei: list[int] = []
            """Order-market payments newly booked in the last pass, one entry per shard (wei)."""
            self.miner = OrderMiner(self.om, signer.account, signer.payout, self.peer, home, work=work, kinds=kinds,
                                    result_grace_s=grace_s, accept=self._accept if quote else None,
                                    check_inputs=_check_inputs,
                                    redeem_after_s=_redeem_after_s(ctx, signer, market.chain))
        except BaseException:
            self.peer.close()
            raise

    def _accept(self, p, doc: dict) -> str | None:
        """None when a device would take the order's largest shard at its floor, else why not."""
        try:
            spec = self.work.spec({**doc, "order_id": p.order_id}, 0, {})
        except ValueError as e:
            return f"its work cannot be told ({e})"
        images = train_images(doc)
        extra = {"images": images} if images is not None else {}
        return self.quote(p.order_id, p.buyer, p.kind, p.reward_each_wei, p.deadline, spec, **extra)

    def stake_problem(self) -> str | None:
        """Why buyers will not grant claims (no stake on the order market), or None."""
        st = self.om.stake(self.signer.address, self.signer.payout)
        if st.active_wei < MIN_STAKE_WEI:
            return (f"no stake on the order market for {self.signer.address} paid to {self.signer.payout}: buyers "
                    "grant claims only against a stake (fix: kminer wallet stake 50)")
        return None

    def step(self, claim: bool = True) -> list[str]:
        self.paid_wei = []
        events = self.miner.step(claim)
        self._learn_rewards()
        if self.ledger is not None and self.indexer is not None:
            try:  # the pass's own events must still reach the rig's owner
                events += self.record_payments()
            except Exception as e:  # RPC away, ledger busy: read again from the same place next pass
                log.warning("order payments not read this pass: %s", e)
        return events

    def record_payments(self) -> list[str]:
        """Record in the ledger what the order market paid this rig since the last pass, from the
        chain's events (the indexer reads them block range by block range): `VoucherRedeemed` to
        our payout address, for the shards of its set that this rig delivered (a payout shared by
        several rigs counts each rig's own shards), and `ResultReleased` of our mining key. Per
        shard, against the device that ran it; a shard is recorded once however often its event is
        read (the ledger keys order payments by shard). *(chain)*"""
        idx = self.indexer()
        idx.sync()
        cursor_file = self.home / "payments-cursor.json"
        try:
            cur = [int(x) for x in json.loads(cursor_file.read_text(encoding="utf-8"))]
        except (OSError, ValueError, TypeError):
            cur = [-1, -1]
        market = self.om.address.lower()
        events: list[str] = []
        while True:
            evs = idx.events_after(cur[0], cur[1], names=PAID_EVENTS, limit=1000)
            for p in shards_paid(evs, order_market=market, payout=self.signer.payout, miner=self.signer.address,
                                 delivered=self._delivered):
                try:
                    new = self.ledger.record_order_payment(market, p.order_id, p.shard, p.tx_hash, p.amount_wei,
                                                           timestamp=p.timestamp or time.time(),
                                                           device_key=self._device_of(p.order_id, p.shard))
                except ValueError as e:  # LedgerConflict, recorded otherwise before: the ledger keeps its first
                    log.warning("order payment: %s", e)
                    continue
                if new:
                    self.paid_wei.append(p.amount_wei)
                    events.append(f"order {p.order_id}: shard {p.shard} paid {ntk_text(p.amount_wei)} (recorded in earnings)")
            if evs:
                cur = [evs[-1].block, evs[-1].log_index]
                atomic_write_text(cursor_file, json.dumps(cur))
            if len(evs) < 1000:
                return events

    def _delivered(self, order_id: int, shard: int) -> bool:
        sh = self.miner.state["shards"].get(f"{order_id}:{shard}")
        return sh is not None and "commit" in sh

    def _device_of(self, order_id: int, shard: int) -> str:
        """The device key the shard's queue job last ran on ("unknown" when the queue forgot it)."""
        try:
            rec = self.queue.get(self.work.job_id({"order_id": order_id}, shard))
        except Exception:
            return "unknown"
        return rec.device_id or "unknown"

    # --- what the rig shows (any thread: reads the miner's state and cached chain facts) ----
    def _learn_rewards(self) -> None:
        """The reward per shard of each order the miner holds (read once per order; the chain's
        thread), so the views name it without a chain call."""
        for oid, o in list(self.miner.state["orders"].items()):
            if oid not in self._rewards and o.get("reward"):
                self._rewards[oid] = int(o["reward"])  # kept since it was discovered
            if oid not in self._rewards:
                try:
                    self._rewards[oid] = self.om.order(int(oid)).reward_each_wei
                except Exception as e:  # RPC away: asked again next pass
                    log.info("order %s: reward not read yet: %s", oid, e)

    def _order_ref(self, queue_id: str | None) -> tuple[int, int] | None:
        """(order id, shard) of a queue job id of this order market's shards, else None."""
        head = self.work.prefix + "-"
        if not queue_id or not queue_id.startswith(head):
            return None
        oid, _, shard = queue_id[len(head):].partition("-")
        return (int(oid), int(shard)) if oid.isdigit() and shard.isdigit() else None

    def shard_view(self, order_id: int, shard: int) -> ShardView | None:
        """One shard this rig holds on the order market, as the agent and the GUI show it."""
        sh = self.miner.state["shards"].get(f"{order_id}:{shard}")
        if sh is None:
            return None
        o = self.miner.state["orders"].get(str(order_id), {})
        kind = self._kinds.get(order_id)
        if kind is None:  # parsed once per order: the Jobs page asks for every row
            try:
                kind = str(json.loads(o.get("spec") or "{}").get("kind") or "?")[:32]
            except ValueError:
                kind = "?"
            self._kinds[order_id] = kind
        return ShardView(order_id, shard, kind, self._rewards.get(str(order_id)), str(sh.get("stage")),
                         o.get("buyer"), self.work.job_id({"order_id": order_id}, shard),
                         sh.get("paid_ts"), str(sh.get("reason") or sh.get("last_error") or "")[:300] or None)

    def queue_work(self, queue_id: str | None) -> ShardView | None:
        """The order-market shard a job of the miner's queue runs, else None (a job-market job,
        `kminer job run`, another deployment's shard)."""
        ref = self._order_ref(queue_id)
        return self.shard_view(*ref) if ref else None

    def views(self, *, active_only: bool = False) -> list[ShardView]:
        """Every shard this rig holds on the order market (`active_only`: those not yet paid,
        rejected, failed or lost), oldest order first."""
        out = []
        for k in list(self.miner.state["shards"]):
            oid, _, shard = k.partition(":")
            v = self.shard_view(int(oid), int(shard))
            if v is not None and not (active_only and v.stage in SETTLED_STAGES):
                out.append(v)
        return sorted(out, key=lambda v: (v.order_id, v.shard))

    def close(self) -> None:
        self.miner.close()
        self.work.stopped.set()  # its shard threads stop waiting on the queue MinerService closes
        self.peer.close()


class OrderBuyerRunner:
    """The buyer's side: posts render and train orders and runs the desk, sampling and payments."""

    def __init__(self, ctx: AppContext, market, account, *, sandbox: str | None = None):
        self.ctx = ctx
        self.om = order_market(market)
        self.account = account
        self._lock = HomeLock(ctx.paths.data_dir / "p2p-buyer.lock",
                              "another Knowledge Miner process is serving this home's order desk; try again when it stops")
        self._lock.acquire()
        self.cfg = runtime_config(ctx, sandbox=sandbox)
        self.cfg = replace(self.cfg, jobs_dir=ctx.paths.data_dir / "verify-jobs")
        self.queue = JobQueue(ctx.paths.data_dir / BUYER_JOBS)
        self.scheduler = Scheduler(self.queue, self.cfg, lambda: [Device.of(DeviceId.cpu(), slots=1)])
        self.scheduler.recover()
        try:
            self.peer = open_peer(ctx, bytes(account.key), "buyer", local=local_market(market.chain))
        except BaseException:
            self._lock.release()
            raise
        t = ctx.settings.transport
        local = local_market(market.chain)
        host = "127.0.0.1" if local else t.listen_host
        try:
            samples = ctx.paths.data_dir / "order-samples"
            verify = ByKind({"render": QueueSampleCheck(self.queue, self.cfg.store, samples, prefix="verify-" + _prefix(self.om)),
                             "train": QueueModelCheck(self.queue, self.cfg.store, samples,
                                                      prefix="verify-train-" + _prefix(self.om))},
                            unknown="this home does not check orders of kind {kind}")
            pick = ByKind({"render": RenderSampler(), "train": ModelPicker()}, unknown=[])
            home = peer_dir(ctx, "buyer") / f"{self.om.chain.chain_id}-{self.om.address[2:10].lower()}"
            self.buyer = OrderBuyer(self.om, account, self.peer, home, desk_host=host,
                                    desk_port=_kept_port(peer_dir(ctx, "desk"), host) if local or not t.desk_port
                                    else t.desk_port,
                                    advertise="127.0.0.1" if local else public_host(ctx),
                                    verify=verify, pick=pick)
            self.peer.node.engine.map_ports((self.buyer.desk.port,))  # miners must reach the desk
        except BaseException:
            self.peer.close()
            self._lock.release()
            raise

    def post_render(self, scene, *, count: int, shards: int, reward_each_wei: int, deadline_s: int,
                    review_window_s: int, redeem_window_s: int = 86_400, seed: int | None = None,
                    size: tuple[int, int] | None = None, assets: list[Path] = ()) -> int:
        from common.fsutil import sha256_file

        job, needs = render_order(scene, count=count, seed=seed, size=size)
        given = {sha256_file(Path(p)): Path(p) for p in assets}
        missing = [h for h in needs if h not in given]
        if missing:
            raise ValueError(f"the scene needs {len(missing)} file(s) not given as assets, e.g. sha256 {missing[0][:16]}…")
        inputs = {}
        tmp = None
        if needs:
            tmp = Path(tempfile.mkdtemp(prefix="order-assets-", dir=self.ctx.paths.data_dir))
            for h in needs:
                shutil.copyfile(given[h], tmp / h)
            inputs[ASSETS] = tmp
        try:
            return self.buyer.post(job, kind="render", shards=shards, reward_each_wei=reward_each_wei,
                                   deadline_s=deadline_s, review_window_s=review_window_s,
                                   redeem_window_s=redeem_window_s, inputs=inputs)
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    def post_train(self, datasets: list[Path], *, params: dict, reward_wei: int, deadline_s: int,
                   review_window_s: int, redeem_window_s: int = 86_400, holdout: list[Path] | None = None,
                   holdout_fraction: float | None = None, tolerance: float | None = None, min_metric: float | None = None,
                   seed: int | None = None) -> int:
        """Post a one-shard train order on the COCO folders `datasets` (e.g. finished render
        orders' results); the held-out images (`holdout`, else a share of `datasets`) stay here.
        `tolerance` None: from the held-out size (app.orders.train.default_tolerance)."""
        kw = {} if holdout_fraction is None else {"holdout_fraction": holdout_fraction}
        tmp = Path(tempfile.mkdtemp(prefix="order-train-", dir=self.ctx.paths.data_dir))
        try:
            job, data = train_order([Path(d) for d in datasets], params=params, store=self.cfg.store, work_dir=tmp,
                                    holdout=[Path(h) for h in holdout] if holdout else None, tolerance=tolerance,
                                    min_metric=min_metric, seed=seed, **kw)
            return self.buyer.post(job, kind="train", shards=1, reward_each_wei=reward_wei, deadline_s=deadline_s,
                                   review_window_s=review_window_s, redeem_window_s=redeem_window_s,
                                   inputs={DATA: data})
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def check_result(self, order_id: int) -> dict | None:
        """The finished `verify-train` check of a train order (jobs.train.verify's figures:
        passed, metric, claimed, measured, images, reason), or None while it has not ended."""
        return _check_result(self.queue, self.om.chain.chain_id, self.om.address, order_id)

    def order_kind(self, order_id: int) -> str:
        """"render" or "train": what the order's spec document says."""
        try:
            return self.buyer.kind(int(order_id))
        except OrderError:
            raise ValueError(f"order {order_id} is not one of yours on this network's order market") from None

    def step(self) -> list[str]:
        self.scheduler.tick()
        return self.buyer.step()

    def idle(self) -> bool:
        return all(self.buyer.done(oid) for oid in self.buyer.order_ids())

    def close(self) -> None:
        self.scheduler.shutdown()
        self.buyer.close()
        self.peer.close()
        self._lock.release()


class ByKind:
    """A buyer callback (`verify` or `pick`) chosen by the order's kind; `unknown` answers the
    rest (a text is formatted with the kind)."""

    def __init__(self, table: dict, *, unknown):
        self.table, self.unknown = dict(table), unknown

    def __call__(self, doc: dict, shard: int, arg):
        f = self.table.get(doc.get("kind"))
        if f is not None:
            return f(doc, shard, arg)
        return self.unknown.format(kind=str(doc.get("kind"))[:32]) if isinstance(self.unknown, str) else self.unknown


def post_cost(*, shards: int, reward_each_wei: int, fee_wei: int | None = None, native: str = "ETH",
              fee=None, coin_usd: float | None = None) -> CostBreakdown:
    """What posting an order costs: the escrow (paid out per verified shard, the rest refunded)
    and the network fee of the one posting transaction (with its approval). `fee`: a
    wallet.fees.Cost from app.order_fees.post_fee (gas x price, and the L1 data fee apart on
    OP-stack networks; `coin_usd` values it); `fee_wei`: a single figure instead."""
    from app.order_fees import fee_lines, fee_note

    escrow = CostLine(f"escrow: {shards} × reward", shards * reward_each_wei, "NTK",
                      note="paid per verified shard; what nobody delivers comes back")
    notes = ("Shards are claimed, delivered and paid with signatures off chain; a miner redeems many at once.",)
    if fee is None:
        return CostBreakdown(f"Post an order of {shards} shard(s)",
                             (escrow, CostLine("network fee (post + approval)", int(fee_wei or 0), "ETH",
                                               note=f"paid in {native}", estimate=True)), notes)
    note = fee_note(fee, coin_usd=coin_usd)
    return CostBreakdown(f"Post an order of {shards} shard(s)",
                         (escrow, *fee_lines(fee, "network fee (post + approval)", coin_usd=coin_usd)),
                         notes + ((note,) if note else ()))
