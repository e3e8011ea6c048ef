"""OrderBuyer: the buyer's side of an order on OrderMarket, peer to peer.

    buyer = OrderBuyer(om, account, peer, home, desk_host="10.0.0.1", verify=check)
    order_id = buyer.post(spec, shards=2, reward_each_wei=..., deadline_s=..., inputs={...})
    while not buyer.done(order_id): buyer.step()        # grants, fetches, samples, pays
    buyer.result(order_id, shard)                         # the unsealed, verified folder

`post` seals the inputs (readable by a miner once its claim is confirmed), writes the spec
document (job spec, shard count, input references; its sha256 is the order's specHash),
escrows the order in one transaction and names the desk (`spec_uri`). `step` (the chain
thread) answers the desk's queue (the granted miners' messages first, then claims: at most
`MAX_CLAIM_CHECKS` a pass are read against the chain, so strangers' claims cannot hold the
thread): a claim is granted when the shard is free (or its grant lapsed) and the miner's stake
covers it; a result commitment is fetched (ciphertext, v2
merkle-verified), then the buyer picks sample items *after* the commitment, gets only their
keys from the miner's key service, checks them against the committed header and calls
`verify(spec, shard, {name: path})` (None: good; else the reason). A good shard gets the
ack and a cumulative voucher; a bad one a signed rejection whose evidence is the reason. Once
the miner redeems, it releases the whole key to us at its key service (dialed directly, or,
when the miner is behind NAT, asked through our desk: see `_keys`);
the buyer checks keccak256(key) against the commitment and the key against every item, and
unseals: the result is verified bytes. After `hold_until` what nobody delivered is refunded.

State is one JSON file per order (`<home>/orders/<id>.json`, atomic writes); a restarted
buyer carries on. Money is wei; times are chain seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.fsutil import atomic_write_json
from jobs.transport.keys import KeyRefused, KeyUnreachable, open_key_reply, request_key, signed_key_request
from jobs.transport.ref import parse_ref
from jobs.transport.sampling import SAMPLE_UNITS, sample_budget
from jobs.transport.sealed import SealError, check_content_key, open_item, read_header, unseal
from app.orders.claims import MAX_CLAIM_CHECKS, ClaimGate, OrderError
from app.orders.desk import OrderDesk
from app.orders.peer import Peer
from app.orders.sampling import too_small_to_sample
from wallet.errors import ContractRevert
from wallet.order_market import OrderMarketClient, OrderTerms, RecordStatus
from wallet.order_messages import Claim, ResultAck, Signed, Rejection, Voucher, key_hash

log = logging.getLogger(__name__)

SAMPLE_ITEMS = SAMPLE_UNITS
MAX_RESULT_BYTES = 8 << 30
KEY_POLL_S = 1.0
KEY_DEMAND_S = 3600
"""Chain seconds after a shard is paid on chain before a missing key is demanded on chain."""
CHAIN_LOOK_S = 5.0
"""How often a waiting shard's chain state is read (one call each)."""
SPEC_VERSION = 2
"""The order protocol's version, in every spec document: 2 = results sampled by unit, a quarter at
most (`jobs.transport.sampling`), keys by key protocol v2 (`jobs.transport.keys.KEY_PROTOCOL`).
A miner skips an order of another version, saying which side is older (`OrderMiner`)."""
DIRECT_KEY_TIMEOUT_S = 5.0
FETCH_GIVE_UP_S = 3600.0
"""A committed result not fetched and opened for sampling this long after its commitment is
rejected (wall-clock: the buyer's own patience, within the miner's review window on chain)."""
KEY_REQUEST_RENEW_S = 120.0
"""A key request waiting at our desk this long is signed again (the key service refuses
requests more than 10 minutes old)."""

Verify = Callable[[dict, int, dict[str, Path]], "str | None"]
"""verify(spec document + order_id, shard, {item name: opened file}) -> None (good), the reason
it is bad, or PENDING (still checking: asked again on the next pass)."""
Pick = Callable[[dict, int, list[str]], list[str]]
"""pick(spec document + order_id, shard, item names of the sealed result) -> the items to open."""
PENDING = "pending"


def spec_document(job: dict, *, kind: str, shards: int, inputs: dict[str, str], buyer: str,
                  peers: tuple[str, ...] = ()) -> bytes:
    """The bytes whose sha256 goes on chain as the order's specHash; `peers` are the buyer's
    transport addresses, which a miner that cannot be dialed pushes its results to."""
    doc = {"version": SPEC_VERSION, "kind": kind, "shards": shards, "job": job, "inputs": inputs, "buyer": buyer.lower(),
           "peers": list(peers)}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


class OrderBuyer(ClaimGate):
    def __init__(self, om: OrderMarketClient, account, peer: Peer, home: Path, *, desk_host: str, verify: Verify,
                 desk_port: int = 0, advertise: str | None = None, sample_items: int = SAMPLE_ITEMS,
                 pick: Pick | None = None, clock: Callable[[], int] | None = None,
                 key_demand_s: int = KEY_DEMAND_S, chain_look_s: float = CHAIN_LOOK_S,
                 fetch_give_up_s: float = FETCH_GIVE_UP_S):
        self.om, self.account, self.peer, self.verify = om, account, peer, verify
        self.pick = pick or (lambda doc, shard, names: secrets.SystemRandom().sample(
            names, sample_budget(len(names), sample_items)))  # each item one unit: the key service's rule
        self.home = Path(home) / "orders"
        self.home.mkdir(parents=True, exist_ok=True)
        self.sample_items = sample_items
        self.key_demand_s = key_demand_s
        self.fetch_give_up_s = fetch_give_up_s
        self._last_chain_look: dict[tuple[int, int], float] = {}
        self._chain_look_s = chain_look_s
        self.now = clock or om.chain.latest_timestamp
        self._orders: dict[int, dict] = {}
        for p in self.home.glob("*.json"):
            try:
                doc = json.loads(p.read_text(encoding="utf-8"))
                self._orders[int(doc["order_id"])] = doc
            except (ValueError, KeyError, OSError) as e:
                log.warning("order state %s unreadable (%s); skipped", p.name, e)
        self.desk = OrderDesk((desk_host, desk_port), domain=om.domain, spec_of=self._spec_of,
                              is_ours=lambda oid: oid in self._orders, is_party=self._is_party)
        self.desk_url = f"http://{advertise or desk_host}:{self.desk.port}"
        self._last_key_poll: dict[tuple[int, int], float] = {}
        self._init_claims()
        for o in self._orders.values():
            self._drop_v1_picks(o)
            for s, sh in o["shards"].items():
                self._publish(o, int(s), sh)

    def _drop_v1_picks(self, o: dict) -> None:
        """Sample picks saved by a Knowledge Miner before spec v2 (a v1 order in flight at the
        upgrade) named items the miner's key service no longer opens (e.g. "scene"): chosen again
        by today's sampler, once (`picks_v`), before any of them was opened."""
        try:
            version = json.loads(o["spec"]).get("version")
        except (ValueError, TypeError, KeyError, AttributeError):
            return
        if version == SPEC_VERSION:
            return
        changed = False
        for sh in o["shards"].values():
            if "picks" in sh and sh.get("picks_v") != SPEC_VERSION and sh.get("state") == "fetching":
                for k in ("picks", "key_request", "relayed"):
                    sh.pop(k, None)
                changed = True
        if changed:
            self._save(o)

    # --- posting ------------------------------------------------------------------------
    def terms(self, spec: bytes, *, kind: str, shards: int, reward_each_wei: int, deadline_s: int,
              review_window_s: int, redeem_window_s: int, stake_bps: int) -> OrderTerms:
        return OrderTerms(kind, "0x" + hashlib.sha256(spec).hexdigest(), self.desk_url, shards, reward_each_wei,
                          self.now() + deadline_s, review_window_s, redeem_window_s, stake_bps=stake_bps)

    def prepare(self, job: dict, *, kind: str, shards: int, inputs: dict[str, Path] | None = None,
                serve_until: float = 0) -> tuple[bytes, list[str]]:
        """Seal and serve the inputs; the spec document and the inputs' info hashes."""
        refs, hashes = {}, []
        for name, path in (inputs or {}).items():
            sh = self.peer.node.share(Path(path), until_ts=serve_until, kind="input")
            refs[name], _ = sh.ref.uri(), hashes.append(sh.ref.info_hash)
        return spec_document(job, kind=kind, shards=shards, inputs=refs, buyer=self.account.address,
                             peers=self.peer.node.config.advertise), hashes

    def post(self, job: dict, *, kind: str = "render", shards: int, reward_each_wei: int, deadline_s: int,
             review_window_s: int, redeem_window_s: int, stake_bps: int = 2_000,
             inputs: dict[str, Path] | None = None, approve_wei: int | None = None) -> int:
        if not 1 <= shards <= 128:
            raise OrderError("an order has 1 to 128 shards")
        if why := too_small_to_sample(job, shards):
            raise OrderError(why)
        until = time.time() + deadline_s + review_window_s + redeem_window_s
        spec, input_hashes = self.prepare(job, kind=kind, shards=shards, inputs=inputs, serve_until=until)
        terms = self.terms(spec, kind=kind, shards=shards, reward_each_wei=reward_each_wei, deadline_s=deadline_s,
                           review_window_s=review_window_s, redeem_window_s=redeem_window_s, stake_bps=stake_bps)
        order_id, _res = self.om.post_order(self.account, terms, approve_wei=approve_wei)
        doc = {"order_id": order_id, "spec": spec.decode(), "inputs": input_hashes, "shards": {},
               "posted_ts": time.time(), "refunded": False}
        self._orders[order_id] = doc
        self._save(doc)
        log.info("order %d posted: %d shards, desk %s", order_id, shards, self.desk_url)
        return order_id

    # --- reads --------------------------------------------------------------------------
    def shard_state(self, order_id: int, shard: int) -> dict:
        return dict(self._orders[order_id]["shards"].get(str(shard), {"state": "open"}))

    def done(self, order_id: int) -> bool:
        return self.finished(self._orders[order_id])

    @staticmethod
    def finished(o: dict) -> bool:
        """Every shard unsealed, or what was left refunded (an order's state document)."""
        n = json.loads(o["spec"])["shards"]
        return all(o["shards"].get(str(i), {}).get("state") == "done" for i in range(n)) or o["refunded"]

    def result(self, order_id: int, shard: int) -> Path | None:
        sh = self._orders[order_id]["shards"].get(str(shard), {})
        return Path(sh["result_dir"]) if sh.get("state") == "done" else None

    def kind(self, order_id: int) -> str:
        """"render", "train"...: the order's kind as its spec document says (OrderError if not ours)."""
        return str(json.loads(self._order(order_id)["spec"])["kind"])

    def shard_count(self, order_id: int) -> int:
        return int(json.loads(self._order(order_id)["spec"])["shards"])

    def order_ids(self) -> list[int]:
        return sorted(self._orders)

    # --- the loop -----------------------------------------------------------------------
    def step(self) -> list[str]:
        """One pass on the chain thread; one line per thing that happened."""
        events: list[str] = []
        # the granted miners' messages first: strangers' claims (up to half the desk's inbox)
        # must not keep a confirmation or commitment waiting behind their chain reads
        taken = self.desk.take()
        claims = self._claims_in_turn([m for m in taken if m.kind == "claim"])
        self._claim_checks, self._checks_of, self._pass_now = MAX_CLAIM_CHECKS, {}, None
        refused: list[str] = []  # claims: anyone may send them, so a flood is summed up, not listed
        for m in [*(m for m in taken if m.kind != "claim"), *claims]:
            try:
                getattr(self, f"_on_{m.kind}")(m, events)
            except (OrderError, KeyRefused, SealError, ValueError) as e:
                (refused if m.kind == "claim" else events).append(f"{m.kind} from {m.miner[:10]}… refused: {e}")
        events += refused if len(refused) <= 3 else [*refused[:2], f"… and {len(refused) - 2} more claims refused"]
        for o in self._orders.values():
            for s, sh in list(o["shards"].items()):
                try:
                    if sh["state"] == "fetching":
                        self._check_fetched(o, int(s), sh, events)
                    elif sh["state"] == "verifying":
                        self._check_sample(o, int(s), sh, events)
                    elif sh["state"] in ("paid", "key demanded"):
                        try:
                            self._ask_key(o, int(s), sh, events)
                        except (KeyRefused, OSError) as e:  # the miner's key service: away, or refusing
                            log.info("order %d shard %s: key not given: %s", o["order_id"], s, e)
                        if sh["state"] == "paid":
                            self._maybe_demand_key(o, int(s), sh, events)
                        elif sh["state"] == "key demanded":
                            self._follow_demand(o, int(s), sh, events)
                except (KeyRefused, SealError, OSError) as e:
                    log.info("order %d shard %s: %s", o["order_id"], s, e)
                    sh["last_error"] = str(e)[:300]
                except Exception as e:  # noqa: BLE001 - one shard's surprise must not stop the others, or refunds
                    log.exception("order %d shard %s", o["order_id"], s)
                    sh["last_error"] = f"{type(e).__name__}: {e}"[:300]
            self._maybe_refund(o, events)
        return events

    def _order(self, order_id: int) -> dict:
        o = self._orders.get(order_id)
        if o is None:
            raise OrderError(f"order {order_id} is not ours")
        return o

    def _on_confirm(self, m, events: list[str]) -> None:
        c = m.signed.message
        o = self._order(c.order_id)
        sh = o["shards"].get(str(c.shard))
        if sh is None or sh["state"] != "granted" or (sh["miner"], sh["payout"]) != (c.miner.lower(), c.payout.lower()):
            raise OrderError("no grant of this shard to this miner and payout")
        for ih in o["inputs"]:
            self.peer.node.keys.grant(ih, c.miner)
        sh.update(state="confirmed", confirm=m.signed.to_json())
        self._save(o)
        self._publish(o, c.shard, sh)
        events.append(f"order {c.order_id}: shard {c.shard} confirmed by {c.miner}")

    def _on_commit(self, m, events: list[str]) -> None:
        c = m.signed.message
        o = self._order(c.order_id)
        sh = o["shards"].get(str(c.shard))
        if sh is None or (sh["miner"], sh["payout"]) != (c.miner.lower(), c.payout.lower()):
            raise OrderError("no claim of this shard by this miner and payout")
        if sh["state"] not in ("confirmed", "fetching"):
            self._publish(o, c.shard, sh)
            return
        if sh["state"] == "fetching" and sh["commit"] == m.signed.to_json():
            return
        ref = parse_ref(m.ref)
        if not ref.key_servers:
            raise OrderError("the result's reference names no key service")
        self.peer.node.start_fetch(ref, max_bytes=MAX_RESULT_BYTES, kind="result",
                                   until_ts=time.time() + 7 * 86400)
        sh.update(state="fetching", commit=m.signed.to_json(), ref=m.ref, committed_ts=time.time())
        self._save(o)
        self._publish(o, c.shard, sh)
        events.append(f"order {c.order_id}: shard {c.shard} result committed; fetching")

    def _on_keys(self, m, events: list[str]) -> None:
        """A key-service reply relayed by a miner we cannot dial (behind NAT): kept for the
        request it answers; `_keys` opens it on the next pass (only we can)."""
        d = m.doc
        o = self._order(int(d["order_id"]))
        sh = o["shards"].get(str(d["shard"]))
        if sh is None or sh["miner"] != d["miner"]:
            raise OrderError("no claim of this shard by this miner")
        asked = sh.get("key_request")
        if not asked or asked["nonce"] != d["request_nonce"]:
            return  # an answer to a request we no longer wait for
        sh["relayed"] = {"nonce": d["request_nonce"], "reply": d["reply"]}
        self._save(o)

    def _check_fetched(self, o: dict, shard: int, sh: dict, events: list[str]) -> None:
        ref = parse_ref(sh["ref"])
        e = self.peer.find(ref.info_hash)
        if time.time() > sh.get("committed_ts", time.time()) + self.fetch_give_up_s:
            # never served, or its sample keys never given: rejected (on chain if it was put there),
            # so a miner cannot stall us until its on-chain fallback pays it
            why = sh.get("last_error") or "not served in full"
            return self._reject(o, shard, sh, f"the result was not delivered within {self.fetch_give_up_s / 60:.0f} "
                                              f"minutes of its commitment ({why})", events)
        if e is None or not e.done:
            if e is not None and e.error:
                self._reject(o, shard, sh, f"the result could not be fetched: {e.error}", events)
            return
        path = self.peer.node.home / "data" / ref.info_hash / e.name
        commit = Signed.from_json(sh["commit"]).message
        try:
            header = read_header(path)
        except SealError as err:
            return self._reject(o, shard, sh, f"the result is not a sealed archive ({err})", events)
        names = [it.name for it in header.items]
        if not names:
            return self._reject(o, shard, sh, "the result is empty", events)
        if "picks" not in sh:  # chosen once, after the commitment; kept so a retry asks the same
            sh["picks"], sh["picks_v"] = list(self.pick(self._doc(o), shard, names)), SPEC_VERSION
            self._save(o)
        picks = sh["picks"]
        if not picks:  # (a 1-unit result: nothing of it may be opened before payment)
            return self._reject(o, shard, sh, "the result holds none of the items a check needs, or too few to "
                                              "open any before payment", events)
        keys = self._keys(o, shard, sh, ref, picks)
        if keys is None:
            return  # asked through the desk: the answer comes on a later pass
        if not isinstance(keys, dict) or set(keys) != set(picks):
            return self._reject(o, shard, sh, "the miner's key service did not answer the sample request", events)
        sample_dir = self.home / f"samples-{o['order_id']}-{shard}"
        shutil.rmtree(sample_dir, ignore_errors=True)
        samples = {}
        try:
            for n in picks:
                samples[n] = str(open_item(path, header, n, keys[n], sample_dir / f"{len(samples)}.item"))
        except SealError as err:
            return self._reject(o, shard, sh, f"a sampled item does not open: {err}", events)
        sh.update(state="verifying", samples=samples)
        self._save(o)
        self._check_sample(o, shard, sh, events)

    def _check_sample(self, o: dict, shard: int, sh: dict, events: list[str]) -> None:
        picks = list(sh["samples"])
        why = self.verify(self._doc(o), shard, {n: Path(p) for n, p in sh["samples"].items()})
        if why == PENDING:
            return
        shutil.rmtree(self.home / f"samples-{o['order_id']}-{shard}", ignore_errors=True)
        if why:
            return self._reject(o, shard, sh, why, events)
        commit = Signed.from_json(sh["commit"]).message
        ack = self.om.sign(ResultAck(commit.order_id, shard, commit.miner, commit.payout, commit.result_hash,
                                     commit.result_key_hash), self.account)
        paid = [int(s) for s, x in o["shards"].items() if x["payout"] == sh["payout"] and x["state"] in ("paid", "done")]
        voucher = self.om.sign(Voucher.of(o["order_id"], commit.payout, [*paid, shard]), self.account)
        sh.update(state="paid", ack=ack.to_json(), voucher=voucher.to_json(), samples=picks, verified_ts=time.time())
        self._save(o)
        self._publish(o, shard, sh)
        events.append(f"order {o['order_id']}: shard {shard} sampled {len(picks)} item(s), verified, voucher sent")

    def _ask_key(self, o: dict, shard: int, sh: dict, events: list[str]) -> None:
        k = (o["order_id"], shard)
        if time.monotonic() - self._last_key_poll.get(k, 0) < KEY_POLL_S:
            return
        self._last_key_poll[k] = time.monotonic()
        ref = parse_ref(sh["ref"])
        key = self._keys(o, shard, sh, ref, None)
        if isinstance(key, bytes):
            self._open(o, shard, sh, key, events)

    def _keys(self, o: dict, shard: int, sh: dict, ref, items: list[str] | None):
        """The whole key (`items` None) or {item: key} from the miner's key service; None while
        the answer is still on its way. The service is dialed directly; when it cannot be
        reached (a miner behind NAT) the signed request is published at our desk for the miner
        to relay, and its reply (sealed to our key) comes back as a `keys` message."""
        me = bytes(self.account.key)
        want = None if items is None else sorted(items)
        asked, got = sh.get("key_request"), sh.pop("relayed", None)
        if got is not None and asked is not None and got["nonce"] == asked["nonce"] and asked["items"] == want:
            sh.pop("key_request")
            self._save(o)
            self._publish(o, shard, sh)
            return open_key_reply(got["reply"], me, f"the miner {sh['miner'][:10]}… (through the desk)",
                                  nonce=asked["nonce"], info_hash=ref.info_hash)
        if not sh.get("keys_via_desk"):
            try:
                return request_key(ref.key_servers[0], ref.info_hash, me, items=items, timeout_s=DIRECT_KEY_TIMEOUT_S)
            except KeyUnreachable as e:
                log.info("order %d shard %d: %s; asking through the desk", o["order_id"], shard, e)
                sh["keys_via_desk"] = True
        if asked is None or asked["items"] != want or time.time() - asked["ts"] > KEY_REQUEST_RENEW_S:
            body = signed_key_request(ref.info_hash, me, items=items)
            sh["key_request"] = {"nonce": body["nonce"], "items": want, "ts": time.time(), "body": body}
            self._save(o)
            self._publish(o, shard, sh)
        return None

    def _maybe_demand_key(self, o: dict, shard: int, sh: dict, events: list[str]) -> None:
        """Paid on chain (the miner redeemed our voucher) and still no key after KEY_DEMAND_S of
        chain time: demand it on chain; the miner must reveal it there within the review window."""
        if time.monotonic() - self._last_chain_look.get((o["order_id"], shard), 0) < self._chain_look_s:
            return
        self._last_chain_look[(o["order_id"], shard)] = time.monotonic()
        if not self.om.order(o["order_id"]).is_paid(shard):
            return
        now = self.now()
        seen = sh.setdefault("paid_seen_at", now)
        if now - seen < self.key_demand_s:
            self._save(o)
            return
        commit = Signed.from_json(sh["commit"])
        self.om.demand_key(self.account, commit)
        sh.update(state="key demanded", demanded_at=self.now(), demand_block=self.om.chain.read(
            lambda: self.om.chain.w3.eth.block_number))
        self._save(o)
        self._publish(o, shard, sh)
        events.append(f"order {o['order_id']}: shard {shard} paid but its key never came: demanded on chain")

    def _follow_demand(self, o: dict, shard: int, sh: dict, events: list[str]) -> None:
        if sh.get("state") != "key demanded":
            return  # the key service answered meanwhile
        k = (o["order_id"], shard)
        if time.monotonic() - self._last_chain_look.get(k, 0) < self._chain_look_s:
            return
        self._last_chain_look[k] = time.monotonic()
        commit = Signed.from_json(sh["commit"]).message
        key = self.om.revealed_key(o["order_id"], shard, commit.miner, from_block=max(0, sh["demand_block"] - 1))
        if key is not None:
            self._open(o, shard, sh, key, events)
            return
        order = self.om.order(o["order_id"])
        at = self.om.record(o["order_id"], shard, commit.miner).at  # when the demand was mined
        if self.now() > at + order.review_window_s:
            self.om.slash_for_key(self.account, commit)
            sh.update(state="slashed", reason="paid, but the miner never revealed the key, not even on chain")
            self._save(o)
            self._publish(o, shard, sh)
            events.append(f"order {o['order_id']}: shard {shard}: the key never came; the miner's stake was slashed")

    def _open(self, o: dict, shard: int, sh: dict, key: bytes, events: list[str]) -> None:
        commit = Signed.from_json(sh["commit"]).message
        if key_hash(key) != commit.result_key_hash:  # a wrong key is no key: asked again, then demanded on chain
            raise KeyRefused("the key does not match the committed key hash")
        ref = parse_ref(sh["ref"])
        e = self.peer.find(ref.info_hash)
        path = self.peer.node.home / "data" / ref.info_hash / e.name
        check_content_key(read_header(path), key)
        dest = self.home / f"result-{o['order_id']}-{shard}"
        if dest.exists():
            shutil.rmtree(dest)
        unseal(path, key, dest)
        sh.update(state="done", result_dir=str(dest), done_ts=time.time(), key=key.hex())
        self._save(o)
        self._publish(o, shard, sh)
        events.append(f"order {o['order_id']}: shard {shard} key checked, result unsealed")

    def _reject(self, o: dict, shard: int, sh: dict, why: str, events: list[str]) -> None:
        commit = Signed.from_json(sh["commit"]).message
        evidence = why.encode()[:1000]
        ev_hash, ev_uri = hashlib.sha256(evidence).digest(), "data:text/plain," + evidence.decode(errors="replace")
        rej = self.om.sign(Rejection(o["order_id"], shard, commit.miner, commit.result_hash, ev_hash, ev_uri),
                           self.account)
        onchain = ""
        if self.om.record(o["order_id"], shard, commit.miner).status == RecordStatus.SUBMITTED:
            # the miner put it on chain (we were away): only an on-chain rejection keeps it unpaid
            claim = Claim(o["order_id"], shard, commit.miner, commit.payout)
            self.om.reject(self.account, claim, commit.result_hash, commit.result_key_hash, ev_hash, ev_uri)
            onchain = " (on chain, within its review window)"
        sh.update(state="rejected", rejection=rej.to_json(), reason=why)
        self._save(o)
        self._publish(o, shard, sh)
        events.append(f"order {o['order_id']}: shard {shard} rejected{onchain}: {why}")

    def _maybe_refund(self, o: dict, events: list[str]) -> None:
        if o["refunded"] or self.done(o["order_id"]):
            return
        order = self.om.order(o["order_id"])
        if order.closed or self.now() < order.hold_until:
            return
        if order.escrow_wei:
            self.om.refund(self.account, o["order_id"])
            events.append(f"order {o['order_id']}: refunded {order.escrow_wei} wei for undelivered shards")
        for s, x in o["shards"].items():  # claimed, confirmed, never delivered: the stake answers for it
            if x["state"] == "confirmed" and x.get("confirm"):
                try:
                    self.om.slash(self.account, Signed.from_json(x["confirm"], expect=Claim))
                except ContractRevert as e:
                    log.info("order %d shard %s: not slashed: %s", o["order_id"], s, e)
                    continue
                x.update(state="slashed", reason="claimed and confirmed, never delivered")
                events.append(f"order {o['order_id']}: shard {s} was never delivered: the miner's stake was slashed")
        o["refunded"] = True
        self._save(o)

    # --- plumbing -----------------------------------------------------------------------
    def _publish(self, o: dict, shard: int, sh: dict) -> None:
        keep = {k: sh.get(k) for k in ("grant", "ack", "voucher", "rejection", "reason")}
        asked = sh.get("key_request")
        self.desk.publish(o["order_id"], shard, sh["miner"], state=sh["state"], **keep,
                          key_request=asked["body"] if asked else None)

    @staticmethod
    def _doc(o: dict) -> dict:
        return {**json.loads(o["spec"]), "order_id": o["order_id"]}

    def _is_party(self, order_id: int, shard: int, miner: str) -> bool:
        """For the desk's threads: `miner` holds our grant of that shard (the only miner whose
        confirm, commit and key relays may wait at the desk; every claim that reaches the chain
        carries a grant we recorded here first). Plain dict reads, each atomic."""
        o = self._orders.get(order_id)
        sh = o["shards"].get(str(shard)) if o is not None else None
        return sh is not None and sh.get("miner") == miner.lower()

    def _spec_of(self, order_id: int) -> bytes | None:
        o = self._orders.get(order_id)
        return None if o is None else o["spec"].encode()

    def _save(self, o: dict) -> None:
        atomic_write_json(self.home / f"{o['order_id']}.json", o)

    def close(self) -> None:
        self.desk.close()


def summary(o: dict) -> dict[str, Any]:
    """A plain view of one order's state (CLI, GUI)."""
    return {"order_id": o["order_id"], "shards": {s: x["state"] for s, x in o["shards"].items()}}
