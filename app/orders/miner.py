"""OrderMiner: the miner's side of orders on OrderMarket, peer to peer.

    miner = OrderMiner(om, mining_key, payout, peer, home, work=run_shard)
    while ...: miner.step()

`step` (one thread: the chain's) does, for every order it may take (kinds it runs, deadline
not too close, the buyer's rejection rate below `max_rejection_rate`):
1. fetches the spec document from the buyer's desk (`spec_uri`) and checks its sha256
   against the order's specHash before parsing it (bounded);
2. claims a free shard with a `ClaimRequest` signed by the mining key, then confirms the
   buyer's grant (checked: signed by the order's buyer, naming this claim);
3. fetches the sealed inputs peer to peer and their keys (granted to the mining key on
   confirmation), runs `work(spec, shard, inputs, out_dir)` in a thread;
4. seals the result with a fresh content key, serves it readable by the buyer (and dials out to
   the buyer's transport addresses from the spec document, so a miner behind NAT still
   delivers), and sends the
   `ResultCommit` (result hash = the v2 info hash of the sealed archive, resultKeyHash =
   keccak256(key)) with the reference; the state is saved before it is sent, so a miner
   killed mid-upload serves the same bytes after a restart and sends the same commitment;
5. takes vouchers (checked: buyer-signed, paying this payout, naming the shard) and redeems
   them in batches (`redeem_after_s` after the oldest, or well before the order closes);
   only then releases the key (key service grant: the buyer asks for it directly or, when we
   cannot be dialed, through its desk; the key never crosses the desk in the clear);
6. a silent buyer: no voucher and no rejection `patience_s` (chain time) after the commitment,
   or `fallback_margin_s` before the deadline, whichever comes first, it submits on chain
   (`submitResult` with the grant) and releases after the review window. Only this path
   costs the miner gas beyond the batched redemption.

State: `<home>/order-claims.json` (atomic). Money in wei; times in chain seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common.fsutil import atomic_write_json
from common.safejson import SafeJsonError, loads_bounded
from jobs.transport.keys import KeyRefused, request_key
from jobs.transport.node import TransportError
from jobs.transport.ref import parse_ref, split_hostport
from jobs.transport.sealed import Header, SealError, read_header, unseal
from app.orders.buyer import SPEC_VERSION
from app.orders.claims import TRY_LATER
from app.orders.desk import SPEC_DOC_LIMITS, DeskClient, DeskError
from app.orders.discovery import DeskDiscovery, InputsPending, NotNow
from app.orders.peer import Peer
from app.orders.sampling import sample_plan, too_small_to_sample
from wallet.errors import ContractRevert
from wallet.order_market import OrderMarketClient, PostedOrder, RecordStatus
from wallet.order_messages import Claim, ClaimRequest, MessageError, ResultCommit, Signed, Voucher, key_hash

log = logging.getLogger(__name__)

Work = Callable[[dict, int, dict[str, Path], Path], None]
CLAIM_TTL_S = 300
CLAIM_AGAIN_S = 60.0
"""A claim refused for a cause that may pass (the buyer's reason says "try later": the stake
does not cover it while other claims are open) is asked again after this long, doubled each
time, at most `MAX_CLAIM_TRIES` times; then the shard is lost."""
MAX_CLAIM_TRIES = 6
MAX_ATTEMPTS = 3
"""Runs of one shard before the miner gives it up (the buyer then refunds it and slashes)."""
DESK_RETRY_S = 10.0
"""How often a miner asks again a desk that did not answer (the buyer may start watching later)."""
RESULT_GRACE_S = 86_400
PAID_FOLLOW_S = 7 * 86_400
"""How long after payment the miner still relays the buyer's key requests (behind NAT)."""
MAX_PRECLAIM_INPUT_BYTES = 4 << 30
"""An input larger than this is not fetched to be checked before a claim (the order is skipped)."""
SPEC_TIMEOUT_S = 5.0
"""A desk that does not send the spec document in this long is away (asked again later)."""


def spec_version_refusal(version: Any) -> str | None:
    """Why an order whose spec document says `version` is skipped, or None (ours): its buyer would
    sample and take keys another way, so neither side could check the other."""
    if version == SPEC_VERSION:
        return None
    if isinstance(version, int) and not isinstance(version, bool) and version < SPEC_VERSION:
        return (f"made by an older Knowledge Miner (spec v{version}); this one speaks spec v{SPEC_VERSION}, which its "
                "buyer cannot check or pay the way it expects: the buyer must update and post it again")
    if isinstance(version, int) and not isinstance(version, bool):
        return f"made by a newer Knowledge Miner (spec v{version}; this one speaks v{SPEC_VERSION}): update this app to take it"
    return "the order spec names no version"


class OrderMiner(DeskDiscovery):
    def __init__(self, om: OrderMarketClient, mining_key, payout: str, peer: Peer, home: Path, *, work: Work,
                 kinds: tuple[str, ...] = ("render",), slots: int = 1, redeem_after_s: float = 3600,
                 max_rejection_rate: float = 0.5, fallback_margin_s: int = 600, patience_s: int = 1800, input_timeout_s: float = 600,
                 accept: Callable[[PostedOrder, dict], str | None] | None = None,
                 check_inputs: Callable[[dict, dict[str, Header]], str | None] | None = None,
                 clock: Callable[[], int] | None = None,
                 result_grace_s: int = RESULT_GRACE_S, retry_s: float = DESK_RETRY_S):
        self.om, self.key, self.payout, self.peer, self.work = om, mining_key, payout.lower(), peer, work
        self.miner = mining_key.address.lower()
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.kinds, self.slots, self.redeem_after_s = kinds, slots, redeem_after_s
        self.max_rejection_rate, self.fallback_margin_s = max_rejection_rate, fallback_margin_s
        self.patience_s = patience_s
        self.input_timeout_s, self.accept, self.result_grace_s = input_timeout_s, accept, result_grace_s
        self.check_inputs = check_inputs
        self.now = clock or om.chain.latest_timestamp
        self._path = self.home / "order-claims.json"
        try:
            self.state = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.state = {"from_block": 0, "orders": {}, "shards": {}, "skipped": {}}
        waiting = self.state.get("waiting") or {}
        if waiting:  # orders not taken yet when we stopped (desk away, below the floor...): read them again
            self.state["from_block"] = min(self.state["from_block"], min(int(b) for b in waiting.values()))
        self._runs: dict[str, threading.Thread] = {}
        self._run_errors: dict[str, str] = {}
        self._spec: dict[int, str] = {}
        self._unreached: dict[int, PostedOrder] = {}
        self._retry_at, self.retry_s = 0.0, retry_s
        self._next_try: dict[int, float] = {}  # order id -> when its desk is asked again
        self._desk_fails: dict[int, int] = {}
        self._closing = threading.Event()
        self._plan_old_keys()

    def _plan_old_keys(self) -> None:
        """Results shared before sample plans existed (an upgrade with results in flight) keep
        their key without one, so each file would count as a unit and the buyer's sampler is
        refused: they get the plan `share` would give them now (`sample_plan`; a kind without
        one keeps each item one unit, as today), or, where the spec cannot be read, nothing
        before payment."""
        ring = self.peer.node.keys
        for sh in self.state["shards"].values():
            ih = sh.get("info_hash") or sh.get("shared")
            o = self.state["orders"].get(str(sh.get("order")))
            doc = ring.get(ih) if ih and o else None
            if doc is None or "units" in doc or o["buyer"] in doc.get("readers", ()):
                continue
            try:
                plan = sample_plan(json.loads(o["spec"]), list(doc["items"]))
                if plan is None:
                    continue  # a kind without a plan: each item one unit, as `share` does today
            except (ValueError, TypeError, KeyError, AttributeError):
                plan = ({}, ())  # no plan can be derived: nothing opens before payment
            units, free = plan
            ring.limit_samples(ih, units, free)
            log.info("order %s shard %s: the sample plan of a result shared before plans existed set (%d unit items)",
                     sh.get("order"), sh.get("shard"), len(units))

    def close(self) -> None:
        """The rig is closing: a shard's thread that fails now (its queue closed) is not a failure
        of the work; the shard, still "running" in the saved state, runs again on the next start."""
        self._closing.set()

    # --- reads --------------------------------------------------------------------------
    def shards(self) -> dict[str, dict]:
        return {k: dict(v) for k, v in self.state["shards"].items()}

    # --- the loop -----------------------------------------------------------------------
    def step(self, claim: bool = True) -> list[str]:
        """One pass; `claim=False` (the rig is not ready, or stopping) claims nothing new but
        still delivers, collects and releases what it has."""
        events: list[str] = []
        self._discover(events)
        for k, sh in list(self.state["shards"].items()):
            try:
                getattr(self, f"_at_{sh['stage'].replace(' ', '_')}", lambda *_: None)(k, sh, events)
            except (DeskError, KeyRefused, TransportError, SealError, MessageError, ContractRevert) as e:
                log.info("shard %s: %s", k, e)
                sh["last_error"] = str(e)[:300]
            except Exception as e:  # noqa: BLE001 - one shard's surprise must not stop the others' deliveries
                log.exception("shard %s", k)
                sh["last_error"] = f"{type(e).__name__}: {e}"[:300]
        self._redeem(events)
        self._answer_demands(events)
        if claim:
            self._claim_more(events)
        self._save()
        return events

    def _refuse(self, p: PostedOrder) -> str | None:
        if p.kind not in self.kinds:
            return f"kind {p.kind} is not run here"
        if p.deadline < self.now() + 60:
            return "the deadline is too close"
        if self.om.stats(p.buyer).rejection_rate > self.max_rejection_rate:
            return "the buyer rejects too many results"
        raw = DeskClient(p.spec_uri, timeout_s=SPEC_TIMEOUT_S).spec(p.order_id)  # DeskError: asked again later
        if "0x" + hashlib.sha256(raw).hexdigest() != p.spec_hash.lower():
            return "the desk's spec does not match the order's spec hash"
        try:
            doc = loads_bounded(raw, SPEC_DOC_LIMITS, what="order spec")
            if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), dict) or not isinstance(doc.get("job"), dict):
                return "the order spec is malformed"
            for ref in doc["inputs"].values():
                parse_ref(ref)
        except (SafeJsonError, ValueError) as e:
            return f"the order spec is unreadable ({e})"
        if why := spec_version_refusal(doc.get("version")):
            return why
        if why := too_small_to_sample(doc["job"], p.shards):
            return why  # its buyer could only check it by opening all of it: never paid for
        if self.accept is not None:
            why = self.accept(p, doc)
            if why:  # below the floor, no free device...: may pass later (floors and devices change)
                raise NotNow(why)
        if self.check_inputs is not None and doc["inputs"]:
            why = self._check_inputs(doc, max(0, p.deadline - self.now()))
            if why:
                return why
        self._spec[p.order_id] = raw.decode()
        return None

    def _check_inputs(self, doc: dict, open_for_s: int) -> str | None:
        """Before claiming: fetch the inputs' ciphertext (anyone may; the keys come only with a
        confirmed claim) and let `check_inputs` judge their sealed headers (item names and
        sizes), so an order whose inputs are not what it says (more images than it was priced
        by) is skipped before any claim the miner could be slashed for. NotNow while fetching."""
        refs = {name: parse_ref(uri) for name, uri in doc["inputs"].items()}
        headers, waiting = {}, []
        for name, ref in refs.items():
            try:  # bounded: a stranger's order cannot fill the rig's disk before any claim
                self.peer.node.start_fetch(ref, kind="input", max_bytes=MAX_PRECLAIM_INPUT_BYTES,
                                           until_ts=time.time() + open_for_s + 86_400)
            except TransportError as e:
                raise NotNow(f"its inputs cannot be fetched now ({e})") from None
            e = self.peer.find(ref.info_hash)
            if e is not None and e.error:
                self._drop_inputs(refs)
                return f"its input {name!r} cannot be fetched ({e.error})"
            if e is None or not e.done:
                waiting.append(name)
                continue
            try:
                headers[name] = read_header(self.peer.node.home / "data" / ref.info_hash / e.name)
            except SealError as err:
                self._drop_inputs(refs)
                return f"its input {name!r} is not a sealed archive ({err})"
        if waiting:
            raise InputsPending(f"fetching its inputs ({', '.join(waiting)}) to check them before claiming")
        why = self.check_inputs(doc, headers)
        if why:
            self._drop_inputs(refs)
        return why

    def _drop_inputs(self, refs: dict) -> None:
        for ref in refs.values():
            self.peer.node.stop(ref.info_hash)

    def _busy(self) -> int:
        return sum(1 for s in self.state["shards"].values() if s["stage"] in ("requested", "confirmed", "running"))

    def _claim_more(self, events: list[str]) -> None:
        for oid, o in self.state["orders"].items():
            while self._busy() < self.slots and not o["full"]:
                if o["deadline"] < self.now() + 60:
                    o["full"] = True
                    break
                if o["next"] >= o["shards"] and not any(at <= time.time() for at, _ in o.get("again", {}).values()):
                    o["full"] = not o.get("again")
                    break
                again = [int(x) for x, (at, _) in o.get("again", {}).items() if at <= time.time()]
                tries = 0
                if again:  # refused for a cause that may pass (the stake): its turn has come
                    shard = min(again)
                    tries = o["again"].pop(str(shard))[1]
                else:
                    shard = o["next"]
                    o["next"] += 1
                req = self.om.sign(ClaimRequest(int(oid), shard, self.miner, self.payout, self.now() + CLAIM_TTL_S), self.key)
                k = f"{oid}:{shard}"
                self.state["shards"][k] = {"order": int(oid), "shard": shard, "stage": "requested",
                                           "request": req.to_json(), "ts": time.time(),
                                           "tries": tries}
                try:
                    DeskClient(o["desk"]).send("claim", request=req)
                    events.append(f"order {oid}: shard {shard} requested")
                except DeskError as e:
                    self.state["shards"][k]["last_error"] = str(e)

    def _at_requested(self, k: str, sh: dict, events: list[str]) -> None:
        o = self.state["orders"][str(sh["order"])]
        st = DeskClient(o["desk"]).status(sh["order"], sh["shard"], self.miner)
        if st.get("state") == "refused" or time.time() - sh["ts"] > CLAIM_TTL_S:
            sh["stage"] = "lost"
            tries = sh.get("tries", 0) + 1
            if st.get("state") == "refused" and TRY_LATER in str(st.get("reason")) and tries <= MAX_CLAIM_TRIES:
                # the stake does not cover it now (other claims open): not lost, asked again later
                o.setdefault("again", {})[str(sh["shard"])] = [time.time() + CLAIM_AGAIN_S * 2 ** (tries - 1), tries]
                o["full"] = False
            events.append(f"order {sh['order']}: shard {sh['shard']} not granted ({st.get('reason') or 'no answer'})")
            return
        if st.get("state") not in ("granted", "confirmed") or not st.get("grant"):
            if st.get("state") == "unknown":  # the request was lost: send it again
                DeskClient(o["desk"]).send("claim", request=Signed.from_json(sh["request"]))
            return
        grant = Signed.from_json(st["grant"], expect=Claim)
        grant.verify(self.om.domain, o["buyer"])
        if grant.message != Claim(sh["order"], sh["shard"], self.miner, self.payout):
            raise MessageError("the grant does not name this claim")
        confirm = self.om.sign(grant.message, self.key)
        sh.update(stage="confirmed", grant=grant.to_json(), confirm=confirm.to_json())
        self._save()
        DeskClient(o["desk"]).send("confirm", confirm=confirm)
        events.append(f"order {sh['order']}: shard {sh['shard']} granted and confirmed")

    def _at_confirmed(self, k: str, sh: dict, events: list[str]) -> None:
        o = self.state["orders"][str(sh["order"])]
        st = DeskClient(o["desk"]).status(sh["order"], sh["shard"], self.miner)
        if st.get("state") == "granted":  # our confirmation did not arrive yet: send it again
            DeskClient(o["desk"]).send("confirm", confirm=Signed.from_json(sh["confirm"]))
            return
        if st.get("state") != "confirmed":
            return
        doc = {**json.loads(o["spec"]), "order_id": sh["order"]}
        work_dir = self.home / "order-work" / k.replace(":", "-")
        inputs = {}
        for name, uri in doc["inputs"].items():
            ref = parse_ref(uri)
            self.peer.node.start_fetch(ref, kind="input")
            path = self.peer.node.wait(ref.info_hash, timeout_s=self.input_timeout_s)
            key = request_key(ref.key_servers[0], ref.info_hash, bytes(self.key.key))
            dest = work_dir / "inputs" / hashlib.sha256(name.encode()).hexdigest()[:16]
            if not dest.exists():
                unseal(path, key, dest)
            inputs[name] = dest
        out = work_dir / "out"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)

        def run() -> None:
            try:
                self.work(doc, sh["shard"], inputs, out)
            except Exception as e:  # the job's failure, reported on the shard
                if self._closing.is_set():  # the rig is closing: the shard runs again on the next start
                    log.info("shard %s stopped: the miner is closing", k)
                    return
                log.exception("shard %s failed", k)
                self._run_errors[k] = str(e)[:300] or type(e).__name__

        sh.update(stage="running", out=str(out), started_ts=time.time())
        t = threading.Thread(target=run, name=f"order-shard-{k}", daemon=True)
        self._runs[k] = t
        t.start()
        events.append(f"order {sh['order']}: shard {sh['shard']} running")

    def _at_running(self, k: str, sh: dict, events: list[str]) -> None:
        t = self._runs.get(k)
        if t is None:  # restarted while it ran: run it again
            sh["stage"] = "confirmed"
            return
        if t.is_alive():
            return
        if k in self._run_errors:
            why = self._run_errors.pop(k)
            o = self.state["orders"][str(sh["order"])]
            sh["attempts"] = sh.get("attempts", 1) + 1
            if sh["attempts"] <= MAX_ATTEMPTS and self.now() < o["deadline"] - self.fallback_margin_s:
                sh["stage"] = "confirmed"  # run it again: a crash or a lost device is not the buyer's loss
                events.append(f"order {sh['order']}: shard {sh['shard']} failed ({why}); running it again")
                return
            sh.update(stage="failed", reason=why)
            events.append(f"order {sh['order']}: shard {sh['shard']} failed: {sh['reason']}")
            return
        o = self.state["orders"][str(sh["order"])]
        until = time.time() + (o["deadline"] - self.now()) + o["review"] + o["redeem"] + self.result_grace_s
        if sh.get("shared"):  # an earlier share never committed (we stopped in between): its key goes
            self.peer.node.keys.drop(sh["shared"])  # (the buyer must not sample that copy as well)
        spec = json.loads(o["spec"])
        # the plan (the buyer may open only what its sampler needs) is kept with the key in one step,
        # before the result is served or pushed: no moment where each file counts as a unit
        shared = self.peer.node.share(Path(sh["out"]), until_ts=until, reader=o["buyer"], kind="result",
                                      push_to=self._buyer_peers(o), sample_plan=lambda names: sample_plan(spec, names))
        sh["shared"] = shared.ref.info_hash
        self._save()
        commit = self.om.sign(ResultCommit(sh["order"], sh["shard"], self.miner, self.payout,
                                           bytes.fromhex(shared.ref.info_hash), key_hash(shared.content_key)), self.key)
        sh.update(stage="committed", commit=commit.to_json(), ref=shared.ref.uri(), info_hash=shared.ref.info_hash,
                  committed_ts=time.time(), committed_at=self.now())
        sh.pop("shared")  # committed: this share is the shard's result now
        self._save()
        shutil.rmtree(Path(sh["out"]).parent, ignore_errors=True)
        DeskClient(o["desk"]).send("commit", commit=commit, ref=shared.ref.uri())
        events.append(f"order {sh['order']}: shard {sh['shard']} result committed ({shared.ref.size_bytes} bytes sealed)")

    def _at_committed(self, k: str, sh: dict, events: list[str]) -> None:
        o = self.state["orders"][str(sh["order"])]
        try:
            st = DeskClient(o["desk"]).status(sh["order"], sh["shard"], self.miner)
        except DeskError:
            st = {}
        state = st.get("state")
        try:  # a desk that refuses these must not keep us from the on-chain fallback below
            self._relay_keys(o, sh, st, events)
            if state == "confirmed":  # the buyer has not seen our commitment (lost, or we were restarted)
                DeskClient(o["desk"]).send("commit", commit=Signed.from_json(sh["commit"]), ref=sh["ref"])
        except DeskError as e:
            sh["last_error"] = str(e)[:300]
        if state in ("paid", "done") and st.get("voucher"):
            v = Signed.from_json(st["voucher"], expect=Voucher)
            v.verify(self.om.domain, o["buyer"])
            if v.message.order_id != sh["order"] or v.message.payee != self.om.chain.w3.to_checksum_address(self.payout) \
                    or not v.message.shards >> sh["shard"] & 1:
                raise MessageError("the voucher does not pay this shard to this payout")
            sh.update(stage="vouched", voucher=v.to_json(), vouched_ts=time.time())
            if st.get("ack"):
                sh["ack"] = st["ack"]
            events.append(f"order {sh['order']}: shard {sh['shard']} verified by the buyer; voucher kept")
            return
        elif state == "rejected":
            sh.update(stage="rejected", reason=str(st.get("reason", ""))[:300], rejection=st.get("rejection"))
            events.append(f"order {sh['order']}: shard {sh['shard']} rejected by the buyer: {sh['reason']}")
            return
        now = self.now()
        if now > o["deadline"] - self.fallback_margin_s or now >= sh.get("committed_at", now) + self.patience_s:
            self._submit_onchain(sh, events)

    def _submit_onchain(self, sh: dict, events: list[str]) -> None:
        """The silent-buyer fallback: the result goes on chain with the buyer's grant."""
        grant = Signed.from_json(sh["grant"], expect=Claim)
        c = Signed.from_json(sh["commit"]).message
        ack = Signed.from_json(sh["ack"]) if sh.get("ack") else None
        self.om.submit_result(self.key, grant, c.result_hash, c.result_key_hash, ack=ack)
        sh.update(stage="submitted", submitted_at=self.now())
        events.append(f"order {sh['order']}: shard {sh['shard']} submitted on chain (the buyer went silent)")

    def _at_submitted(self, k: str, sh: dict, events: list[str]) -> None:
        o = self.state["orders"][str(sh["order"])]
        try:  # the buyer is back: it may still check the result (and reject it on chain in the window)
            st = DeskClient(o["desk"]).status(sh["order"], sh["shard"], self.miner)
            if st.get("state") == "confirmed":
                DeskClient(o["desk"]).send("commit", commit=Signed.from_json(sh["commit"]), ref=sh["ref"])
            self._relay_keys(o, sh, st, events)
        except DeskError:
            pass
        if self.now() <= sh["submitted_at"] + o["review"]:
            return
        rec = self.om.record(sh["order"], sh["shard"], self.miner)
        if rec.status == RecordStatus.REJECTED:
            sh.update(stage="rejected", reason="rejected on chain by the buyer")
            events.append(f"order {sh['order']}: shard {sh['shard']} was rejected on chain by the buyer")
            return
        grant = Signed.from_json(sh["grant"], expect=Claim)
        key = self._content_key(sh)
        self.om.release(self.key, grant.message, bytes.fromhex(sh["info_hash"]), key)
        events.append(f"order {sh['order']}: shard {sh['shard']} released on chain after the review window")
        self._release_key(sh, events)  # the key is public on chain now; the buyer's key service asks work too

    def _redeem(self, events: list[str]) -> None:
        waiting = [sh for sh in self.state["shards"].values() if sh["stage"] == "vouched"]
        if not waiting:
            return
        oldest = min(sh["vouched_ts"] for sh in waiting)
        closing = min(self.state["orders"][str(sh["order"])]["deadline"] for sh in waiting)
        if time.time() - oldest < self.redeem_after_s and self.now() < closing:
            return
        vouchers = [Signed.from_json(sh["voucher"]) for sh in waiting]
        todo = self.om.redeemable(vouchers)
        paid: set[tuple[int, int]] = set()
        if todo:
            for r in self.om.redeem(self.key, todo):
                for (oid, _payee), bits in r.fresh.items():
                    paid |= {(oid, i) for i in range(128) if bits >> i & 1}
            events.append(f"redeemed {len(todo)} voucher(s) in one batch: {len(paid)} shard(s) paid")
        for sh in waiting:
            order = self.om.order(sh["order"])
            if order.is_paid(sh["shard"]):
                self._release_key(sh, events)

    def _answer_demands(self, events: list[str]) -> None:
        """A buyer who says on chain it never got a paid shard's key: reveal it there (else the
        stake is slashed after the review window)."""
        head = self.om.chain.read(lambda: self.om.chain.w3.eth.block_number)
        start = self.state.setdefault("demand_block", 0)
        if start > head:
            return
        for oid, shard in self.om.key_demands(start, head, self.miner):
            sh = self.state["shards"].get(f"{oid}:{shard}")
            if sh is None or "commit" not in sh:
                continue
            commit = Signed.from_json(sh["commit"]).message
            self.om.reveal_key(self.key, commit, self._content_key(sh))
            events.append(f"order {oid}: shard {shard}: the buyer demanded its key on chain; revealed there")
        self.state["demand_block"] = head + 1

    def _release_key(self, sh: dict, events: list[str]) -> None:
        """Paid: the buyer may have the whole key from our key service (asked directly, or
        relayed through its desk while we cannot be dialed; see `_at_paid`)."""
        o = self.state["orders"][str(sh["order"])]
        self.peer.node.keys.grant(sh["info_hash"], o["buyer"])
        sh.update(stage="paid", paid_ts=time.time())
        events.append(f"order {sh['order']}: shard {sh['shard']} paid; key released to the buyer")

    def _at_paid(self, k: str, sh: dict, events: list[str]) -> None:
        """Until the buyer says it unsealed the result (or a week passed), relay its key requests."""
        if sh.get("buyer_done") or time.time() > sh.get("paid_ts", 0) + PAID_FOLLOW_S:
            return
        if time.time() < sh.get("next_look_ts", 0):
            return
        # soon after payment the buyer asks at once; later, a desk that is gone is asked rarely
        sh["next_look_ts"] = time.time() + min(60.0, 2.0 + (time.time() - sh.get("paid_ts", 0)) / 60)
        o = self.state["orders"][str(sh["order"])]
        st = DeskClient(o["desk"]).status(sh["order"], sh["shard"], self.miner)
        if st.get("state") == "done":
            sh["buyer_done"] = True
            return
        self._relay_keys(o, sh, st, events)

    def _relay_keys(self, o: dict, sh: dict, st: dict, events: list[str]) -> None:
        """The buyer could not dial our key service (we are behind NAT) and left its signed key
        request at its desk: our key service answers it (same rules: sample items before
        payment, the whole key after) and the reply, sealed to the buyer, goes back there."""
        req = st.get("key_request")
        if not isinstance(req, dict) or req.get("nonce") == sh.get("relayed_nonce"):
            return
        if req.get("op") != "key" or req.get("info_hash") != sh["info_hash"]:
            reply = {"ok": False, "error": "a relayed request may ask only for this shard's result"}
        else:
            reply = self.peer.keys.answer(req)
        DeskClient(o["desk"]).relay_keys(sh["order"], sh["shard"], bytes(self.key.key), self.miner,
                                         str(req.get("nonce", ""))[:64], reply)
        sh["relayed_nonce"] = req.get("nonce")
        what = "refused" if not reply.get("ok") else ("whole key" if req.get("items") is None else f"{len(req['items'])} item key(s)")
        events.append(f"order {sh['order']}: shard {sh['shard']}: key request relayed through the buyer's desk ({what})")

    def _buyer_peers(self, o: dict) -> tuple[str, ...]:
        """The buyer's transport addresses from the spec document, which we push results to;
        only those on the desk's own host (a buyer cannot aim miners' dialing at a third party)."""
        peers = json.loads(o["spec"]).get("peers")
        desk_host = urlsplit(o["desk"]).hostname
        if not isinstance(peers, list) or not desk_host:
            return ()
        out = []
        for p in peers[:4]:
            try:
                host, port = split_hostport(str(p))
            except ValueError:
                continue
            if host == desk_host and 0 < port < 65536:
                out.append(str(p))
        return tuple(out)

    def _content_key(self, sh: dict) -> bytes:
        doc = self.peer.node.keys.get(sh["info_hash"])
        if doc is None:
            raise TransportError(f"the content key of shard {sh['order']}:{sh['shard']} is gone")
        return bytes.fromhex(doc["key"])

    def _save(self) -> None:
        atomic_write_json(self._path, self.state)

    def view(self) -> list[dict[str, Any]]:
        return [{"order": s["order"], "shard": s["shard"], "stage": s["stage"], "reason": s.get("reason", "")}
                for s in self.state["shards"].values()]
