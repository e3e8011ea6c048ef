"""The model market: listings with their typed, checked cards (jobs.cards.ModelCard), buying,
"try it" on photos in a sandboxed worker, and a trained model's folder as people look at it
(service, try_run, trained, types).

Other packages use these public names, never the modules inside (import-linter checks it).
"""

from app.models.service import DEMO_MODELS, ModelService, demo_seller_account, list_demo_models
from app.models.trained import TrainedModel, read_trained_model
from app.models.try_run import TryHandle, TryResult
from app.models.types import BuyQuote, ModelError, ModelListing, OwnedModel, Purchase, SellerReputation

__all__ = ["DEMO_MODELS", "BuyQuote", "ModelError", "ModelListing", "ModelService", "OwnedModel", "Purchase",
           "SellerReputation", "TrainedModel", "TryHandle", "TryResult", "demo_seller_account", "list_demo_models",
           "read_trained_model"]
