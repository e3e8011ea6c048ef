"""Models sold peer to peer: the card in the open, the weights sealed, keys only to buyers.

A P2P listing's URI is the card's reference (a magnet link: the card file, published in the
clear so anyone can read what is for sale) with one more parameter, `x.kmw`, the info hash of
the sealed model folder (card + weights, `jobs.transport.sealed`) served by the same peer:

    magnet:?xt=urn:btmh:1220<card>&dn=model_card.json&xl=..&x.pe=host:port&x.km=host:port&x.kmw=<sealed>

The chain vouches for the card (its sha256 is the listing's card hash), the card for the
weights (their sha256), and the reference pins the ciphertext (a v2 info hash covers every
byte). Anyone may fetch the ciphertext; the content key goes only to an address that bought
the listing: the seller's `ModelSeller.step()` (the chain's thread) reads `ModelPurchased`
events and grants each buyer the key of what they bought; the buyer's key request (signed
with its Ethereum key, answered in an envelope only it can open) succeeds from then on. A
stranger who learns the hashes gets the card and ciphertext only.

The seller's machine must be online for buyers to fetch. A seller behind NAT names relays
(Settings → Transfers → Relays): they mirror the ciphertext, and a buyer that cannot dial the
seller's key service leaves its signed key request in the relays' mailboxes; the seller takes
it on its next pass, answers it with its key service and leaves the reply (sealed to the buyer)
there for the buyer. State: `<peer dir>/listings.json`.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from common.fsutil import atomic_write_json, sha256_file
from jobs.transport.keys import (MAIL_KEY_REQUEST, MAIL_REPLY_TO_MAX, KeyRefused, KeyUnreachable, KeyVersionMismatch,
                                 control_of, mail_reply_to, open_key_reply, post_mail, request_key, signed_key_request,
                                 take_mail)
from jobs.transport.ref import ContentRef, RefError, is_ref, parse_ref
from jobs.transport.sealed import SealError, check_content_key, read_header, unseal

log = logging.getLogger(__name__)

CARD = "model_card.json"
KEY_WAIT_S = 120.0
"""How long a buyer asks for the key after buying (the seller grants on its next pass)."""
FETCH_S = 600.0
MAIL_TIMEOUT_S = 3.0
MAIL_PER_PASS = 16
MAIL_LOOK_S = 2.0
"""How often a seller with relays takes its mailboxes (key requests of buyers who cannot dial it)."""


class P2PModelError(ValueError):
    """One line: what went wrong with a peer-to-peer model."""


def weights_ref(uri: str) -> ContentRef:
    """The sealed model folder's reference named by a P2P listing URI (same peers and key service)."""
    card = parse_ref(uri)
    kmw = [v for k, v in parse_qsl(urlsplit(uri).query) if k == "x.kmw"]
    if len(kmw) != 1 or len(kmw[0]) != 64 or any(c not in "0123456789abcdef" for c in kmw[0]):
        raise P2PModelError("the listing's reference names no sealed model (x.kmw)")
    return ContentRef(kmw[0], "model", 0, card.peers, card.key_servers)


def is_p2p_listing(uri: str) -> bool:
    return is_ref(uri) and "x.kmw=" in uri


class ModelSeller:
    """Serves this home's P2P listings and grants keys to their buyers (see the module doc)."""

    def __init__(self, market, peer, folder: Path):
        self.market, self.peer = market, peer
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._path = self.folder / "listings.json"
        try:
            self.state = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.state = {"from_block": None, "listings": {}}
        self._mail_at = 0.0  # when our relays' mailboxes are taken next

    def publish(self, folder: Path) -> str:
        """Publish the card in the clear and the whole folder sealed; the listing URI."""
        card = Path(folder) / CARD
        if not card.is_file():
            raise P2PModelError(f"{folder} has no {CARD}")
        card_ref = self.peer.node.publish(card, kind="model-card")
        sealed = self.peer.node.share(Path(folder), kind="model")
        return f"{card_ref.uri()}&x.kmw={sealed.ref.info_hash}"

    def listed(self, listing_id: int, uri: str) -> None:
        """Remember a listing made with `publish`'s URI (from then on its buyers get keys)."""
        if self.state["from_block"] is None:
            self.state["from_block"] = self.market.chain.read(lambda: self.market.chain.w3.eth.block_number)
        self.state["listings"][str(listing_id)] = {"weights": weights_ref(uri).info_hash}
        self._save()

    def step(self) -> list[str]:
        """Grant the key of each bought listing to its buyer (chain thread); answer key requests
        left in our relays' mailboxes."""
        if not self.state["listings"] or self.state["from_block"] is None:
            return []
        chain = self.market.chain
        head = chain.read(lambda: chain.w3.eth.block_number)
        events: list[str] = []
        if self.state["from_block"] <= head:
            for lid, buyer in self.market.purchases(self.state["from_block"], head):
                mine = self.state["listings"].get(str(lid))
                if mine is None:
                    continue
                self.peer.node.keys.grant(mine["weights"], buyer)
                events.append(f"model #{lid} bought by {buyer}: its key is theirs")
            self.state["from_block"] = head + 1
            self._save()
        self._answer_mail(events)  # after the grants: a buyer whose purchase just landed is answered now
        return events

    def _answer_mail(self, events: list[str]) -> None:
        """Key requests buyers left at our relays (they cannot dial us): our key service answers
        each (the same rules: only a buyer of that model gets its key), the reply goes back
        to the asker's mailbox there, sealed to the asker."""
        relays, me = self.peer.node.config.relays, self.peer.identity_key
        if not relays or time.monotonic() < self._mail_at:
            return
        self._mail_at = time.monotonic() + MAIL_LOOK_S
        for relay in relays:
            try:
                # only key requests: the replies to this address's own purchases (it may buy too) stay
                mail = take_mail(control_of(relay), me, kind=MAIL_KEY_REQUEST, timeout_s=MAIL_TIMEOUT_S)
            except KeyRefused as e:
                log.info("relay %s mailbox: %s", relay, e)
                continue
            for m in mail[:MAIL_PER_PASS]:  # the rest was junk or waits: its senders ask again
                req = m["body"].get("request")
                if m["body"].get("kind") != MAIL_KEY_REQUEST or not isinstance(req, dict):
                    continue
                reply = self.peer.keys.answer(req)  # local: the key ring's rules, no I/O
                if not reply.get("ok"):  # a stranger, or a buyer not granted yet: no round trip for it
                    log.info("relayed key request from %s refused: %s", m["from"], reply.get("error"))
                    continue
                try:
                    nonce = str(req.get("nonce", ""))[:64]  # the asker takes only replies to its own requests
                    post_mail(control_of(relay), m["from"], {"kind": "key_reply", "reply_to": nonce, "nonce": nonce,
                                                             "reply": reply}, me, timeout_s=MAIL_TIMEOUT_S)
                except KeyRefused as e:
                    log.info("relay %s: the key reply to %s not left: %s", relay, m["from"], e)
                    continue
                events.append(f"a key request from {m['from']} through relay {relay}: answered")

    def _save(self) -> None:
        atomic_write_json(self._path, self.state)


class _KeyThroughRelays:
    """A buyer's key request left at the relays named in the reference (for a seller that cannot
    be dialed), and the reply taken from our own mailbox there: only the replies to this fetch's
    requests (by their nonces; other fetches by this address leave theirs there), each checked
    inside its sealed envelope to answer one of them for this content (a relay cannot swap them)."""

    def __init__(self, ref: ContentRef, seller: str, private_key: bytes):
        self.ref, self.seller, self.key = ref, seller, private_key
        self.nonces: list[str] = []  # this fetch's requests (a late reply to an older one is good too)
        self.posted_at = 0.0

    def ask(self) -> bytes | None:
        controls = [control_of(p) for p in self.ref.peers]
        if time.monotonic() - self.posted_at > 15:  # (again) with a fresh signature
            req = signed_key_request(self.ref.info_hash, self.key)
            self.nonces = [*self.nonces, req["nonce"]][-MAIL_REPLY_TO_MAX:]
            self.posted_at = time.monotonic()
            posted = 0
            for c in controls:
                try:
                    post_mail(c, self.seller, {"kind": MAIL_KEY_REQUEST, "request": req}, self.key, timeout_s=MAIL_TIMEOUT_S)
                    posted += 1
                except KeyRefused as e:
                    log.info("no key request left at %s: %s", c, e)
            if not posted:
                raise KeyRefused("the seller cannot be reached, and no relay in the listing took the key request")
        for c in controls:
            try:
                mail = take_mail(c, self.key, reply_to=self.nonces, timeout_s=MAIL_TIMEOUT_S)
            except KeyRefused:
                continue
            for m in mail:
                b = m["body"]
                nonce = mail_reply_to(b)
                if b.get("kind") == "key_reply" and nonce in self.nonces and m["from"].lower() == self.seller.lower():
                    try:
                        got = open_key_reply(b.get("reply"), self.key, f"the seller (through relay {c})",
                                             nonce=nonce, info_hash=self.ref.info_hash)
                    except KeyVersionMismatch:
                        raise
                    except KeyRefused:
                        self.posted_at = time.monotonic() - 12  # not granted yet: ask again in a few seconds
                        raise
                    return got if isinstance(got, bytes) else None
        return None


def fetch_model(peer, uri: str, *, card_sha: str, private_key: bytes, dest: Path, weights_file: str,
                weights_sha: str, key_wait_s: float = KEY_WAIT_S, timeout_s: float = FETCH_S, seller: str = "") -> Path:
    """Fetch a bought P2P model into folder `dest` (must not exist): the sealed folder, its key
    (asked until the seller grants it), unsealed and checked against the card hash on chain
    and the weights hash in the card. P2PModelError in one line."""
    try:
        ref = weights_ref(uri)
    except RefError as e:
        raise P2PModelError(f"the listing's reference is unreadable: {e}") from None
    if not ref.key_servers:
        raise P2PModelError("the listing's reference names no key service")
    try:
        peer.node.start_fetch(ref, kind="model")
        sealed = peer.node.wait(ref.info_hash, timeout_s=timeout_s)
    except Exception as e:  # transport errors and timeouts: one line
        raise P2PModelError(f"the model could not be fetched from its seller: {e}") from None
    end = time.monotonic() + key_wait_s
    key, relayed = None, None
    while key is None:
        try:
            if relayed is not None:
                key = relayed.ask()
            else:
                got = request_key(ref.key_servers[0], ref.info_hash, private_key, timeout_s=10)
                key = got if isinstance(got, bytes) else None
        except KeyUnreachable as e:
            if seller and ref.peers:  # the seller is behind NAT: ask through its relays
                relayed = _KeyThroughRelays(ref, seller, private_key)
                continue
            if time.monotonic() > end:
                raise P2PModelError(f"the seller's key service did not give the key: {e}") from None
        except KeyVersionMismatch as e:  # asking again does not help: said at once, in one line
            raise P2PModelError(f"the model cannot be unlocked: {e}") from None
        except (KeyRefused, OSError) as e:
            if time.monotonic() > end:
                raise P2PModelError(f"the seller's key service did not give the key: {e}") from None
        if key is None:
            if time.monotonic() > end:
                raise P2PModelError("the seller did not give the key in time (through its relays)")
            time.sleep(1.0)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        check_content_key(read_header(sealed), key)
        unseal(sealed, key, tmp / "m")
        got_card, got_weights = tmp / "m" / CARD, tmp / "m" / weights_file
        if not got_card.is_file() or sha256_file(got_card) != card_sha:
            raise P2PModelError("the sealed model's card is not the listed one")
        if not got_weights.is_file() or sha256_file(got_weights) != weights_sha:
            raise P2PModelError("the sealed model's weights do not match the card")
        dest.mkdir(parents=True)
        for f in (got_card, got_weights):
            shutil.move(str(f), dest / f.name)
    except SealError as e:
        raise P2PModelError(f"the sealed model does not open: {e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def fetch_card(peer, uri: str, *, timeout_s: float = 30.0) -> Path:
    """The listing's card file (public), fetched peer to peer; checked by the caller."""
    try:
        ref = parse_ref(uri)
        peer.node.start_fetch(ref, kind="model-card", max_bytes=1 << 20)
        return peer.node.wait(ref.info_hash, timeout_s=timeout_s)
    except Exception as e:
        raise P2PModelError(f"the model card could not be fetched from its seller: {e}") from None
