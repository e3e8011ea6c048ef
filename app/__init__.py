"""Knowledge Miner application layer: settings, paths and logs at its root, one subpackage
of headless services per domain (miner, buyer, models, account, earnings, devices, runtime,
forms). No Qt here: ui/ shows these services, cli/ drives them from the command line."""

__version__ = "0.1.0"
