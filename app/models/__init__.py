"""The model market: listings with their checked cards, buying, and "try it" on photos in a
sandboxed worker (service, try_run, types).

Other packages use these public names, never the modules inside (import-linter checks it).
"""

from app.models.service import DEMO_MODELS, ModelService, demo_seller_account, list_demo_models
from app.models.try_run import TryHandle, TryResult
from app.models.types import BuyQuote, ModelError, ModelListing, OwnedModel, Purchase, SellerReputation

__all__ = ["DEMO_MODELS", "BuyQuote", "ModelError", "ModelListing", "ModelService", "OwnedModel", "Purchase",
           "SellerReputation", "TryHandle", "TryResult", "demo_seller_account", "list_demo_models"]
