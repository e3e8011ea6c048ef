"""The buyer: posts render and train orders, verifies every result in the sandbox before
paying, merges the verified shards, keeps an order book (service, verify, book).

Other packages use these public names, never the modules inside (import-linter checks it).
"""

from app.buyer.book import ORDER_STATES, SHARD_STATES, OrderStatus, ShardStatus
from app.buyer.service import BuyerError, BuyerService

__all__ = ["ORDER_STATES", "SHARD_STATES", "BuyerError", "BuyerService", "OrderStatus", "ShardStatus"]
