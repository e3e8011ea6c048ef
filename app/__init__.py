"""Knowledge Miner application layer: settings, paths, services, CLI."""

__version__ = "0.1.0"
