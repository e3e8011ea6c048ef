"""The miner: claims paying market jobs the devices can run at or above their price floor,
runs them sandboxed, submits the results and is paid. MinerService (service) composes Fleet
(the devices), Claims, Submission, Release and AutoPricing, over the miner DB (db) and the
job pricing model (pricing).

Other packages use these public names, never the modules inside (import-linter checks it).
"""

from app.miner.claims import KINDS
from app.miner.db import FINAL, STATES, FloorChangeRow, MarketJobRow, MinerJobView, PricingDecision
from app.miner.service import MinerService, work_text
from app.miner.transient import is_transient

__all__ = ["FINAL", "KINDS", "STATES", "FloorChangeRow", "MarketJobRow", "MinerJobView", "MinerService",
           "PricingDecision", "is_transient", "work_text"]
