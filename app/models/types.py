"""The model market's records and its error: what ModelService returns and try_run uses.

Frozen dataclasses; amounts are integer wei (NTK has 18 decimals; fees are in ETH wei).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class ModelError(Exception):
    """A model market problem the user can act on (not purchased, bad card, bad image...); one line."""


@dataclass(frozen=True)
class SellerReputation:
    address: str
    completed: int
    """Jobs the seller completed on the job market (JobMarket counters)."""
    rejected: int
    expired: int
    sales: int | None
    """Models this address has sold (ModelPurchased events); None when the index could not be read."""

    @property
    def summary(self) -> str:
        sales = "sales unknown" if self.sales is None else f"{self.sales} model{'s' if self.sales != 1 else ''} sold"
        if self.completed + self.rejected + self.expired == 0:
            return f"{sales} · no jobs done yet"
        return f"{sales} · {self.completed} jobs done, {self.rejected} rejected, {self.expired} expired"


@dataclass(frozen=True)
class ModelListing:
    listing_id: int
    name: str
    owner: str
    active: bool
    price_wei: int
    card_hash: str
    uri: str
    card_ok: bool
    problem: str | None
    """Why the listing cannot be bought or used (card missing or not matching its hash...)."""
    task: str = ""
    arch: str = ""
    classes: tuple[str, ...] = ()
    metrics: tuple[tuple[str, float], ...] = ()
    """(label, value) pairs, the headline first; values are fractions (0-1)."""
    input_size: tuple[int, int] | None = None
    num_params: int | None = None
    weights_bytes: int | None = None
    seller: SellerReputation | None = None
    owned: bool = False
    """Bought by the current account (or listed by it)."""
    mine: bool = False
    provenance: str = "unverified"
    """verified: the card names this listing's seller (whose key signed the listing transaction);
    unverified: the card names no seller (or could not be read); copied: the card names another
    seller, or the same weights were listed earlier by another seller."""
    provenance_note: str = ""
    """One line saying why (which seller the card names, which listing was first)."""
    training_domain: str = ""
    """The card's line on what the model was trained on ("synthetic renders of scene X only"); empty: not stated."""

    @property
    def headline(self) -> tuple[str, float] | None:
        return self.metrics[0] if self.metrics else None


@dataclass(frozen=True)
class BuyQuote:
    """What buying a listing will cost, shown for confirmation before any transaction."""

    listing_id: int
    name: str
    price_wei: int
    """NTK (wei) paid to the seller, exactly."""
    fee_max_wei: int
    """Network fee (ETH wei) at most: gas limits x the max fee per gas now; less is usually paid."""
    transactions: int
    """1 (buy) or 2 (approve NTK, then buy)."""
    ntk_balance_wei: int
    eth_balance_wei: int
    already_owned: bool

    @property
    def enough_ntk(self) -> bool:
        return self.ntk_balance_wei >= self.price_wei

    @property
    def enough_eth(self) -> bool:
        return self.eth_balance_wei >= self.fee_max_wei


@dataclass(frozen=True)
class Purchase:
    listing_id: int
    price_wei: int
    fee_wei: int
    """Network fee actually paid (ETH wei), all transactions."""
    tx_hashes: tuple[str, ...]
    ntk_before_wei: int
    ntk_after_wei: int


@dataclass(frozen=True)
class OwnedModel:
    """A bought model, checked, laid out as a model folder (card + weights)."""

    listing_id: int
    name: str
    folder: Path
    card_sha256: str
    weights_sha256: str
    task: str
    classes: tuple[str, ...]
