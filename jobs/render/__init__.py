"""Synthetic data: scene specs (`spec`), the render engine (`dataset`, `renderer`) and its
verification (`verify`). GL code lives only in `renderer`/`glpass`, imported lazily."""
