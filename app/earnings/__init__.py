"""Earnings: the payments ledger with energy from telemetry (ledger), the comparison with
Ethash/Etchash mining after electricity (coin_mining), and the reports the views show (service).

Other packages use these public names, never the modules inside (import-linter checks it).
"""

from app.earnings.ledger import Ledger, LedgerConflict
from app.earnings.service import EarningsReport, EarningsService, FeedError

__all__ = ["EarningsReport", "EarningsService", "FeedError", "Ledger", "LedgerConflict"]
