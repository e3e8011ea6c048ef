"""Whether a model listing's seller made the card it lists: verified, unverified or copied.

A listing holds the sha256 of its card, and the listing transaction is signed with the
seller's key, so the chain already proves which address listed which card. What it cannot
prove is that this address made the card: anyone can list another seller's card and URI as
their own. So the card names its maker (`seller`, inside the bytes the hash covers), and:

- verified: the card names this listing's seller;
- copied: the card names another address, or the same weights (by sha256) were listed first
  by another seller (the earliest listing of a weights file is taken as its maker's);
- unverified: the card names no seller, or could not be read.

Pure functions over plain values; any thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.textsafe import safe_line

VERIFIED, UNVERIFIED, COPIED = "verified", "unverified", "copied"


@dataclass
class FirstListings:
    """The first listing of each weights file, as listings are read in id order."""

    by_weights: dict[str, tuple[int, str]] = field(default_factory=dict)

    def note(self, listing_id: int, owner: str, weights_sha: str | None) -> None:
        if weights_sha and weights_sha not in self.by_weights:
            self.by_weights[weights_sha] = (listing_id, owner)

    def first(self, weights_sha: str | None) -> tuple[int, str] | None:
        return self.by_weights.get(weights_sha) if weights_sha else None


def provenance(owner: str, card_seller: str | None, weights_sha: str | None, listing_id: int,
               first: FirstListings) -> tuple[str, str]:
    """(verified | unverified | copied, one line saying why) for listing `listing_id` by
    `owner` whose card names `card_seller` and weights `weights_sha`; `first` holds the
    listings before it."""
    if not card_seller:
        return UNVERIFIED, "the card does not name its seller, so nothing shows who made it"
    if card_seller.lower() != owner.lower():
        return COPIED, f"the card names seller {safe_line(card_seller, max_chars=42)}, not this listing's seller"
    earlier = first.first(weights_sha)
    if earlier is not None and earlier[0] != listing_id and earlier[1].lower() != owner.lower():
        return COPIED, f"the same weights were listed first by {earlier[1]} (model #{earlier[0]})"
    return VERIFIED, "the card names this seller, whose key signed the listing"
