"""Orders on OrderMarket between strangers: the buyer's order desk and service, the miner's
order service, and the transport peer they share (docs/order-protocol.md, docs/transport.md)."""

from app.orders.buyer import OrderBuyer, OrderError, spec_document
from app.orders.desk import DeskClient, DeskError, OrderDesk
from app.orders.miner import OrderMiner
from app.orders.peer import Peer, free_port

__all__ = ["DeskClient", "DeskError", "OrderBuyer", "OrderDesk", "OrderError", "OrderMiner", "Peer", "free_port",
           "spec_document"]
