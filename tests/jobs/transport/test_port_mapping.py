"""Port mapping (UPnP / NAT-PMP through libtorrent) for the ports beside the engine's own."""

from __future__ import annotations


def test_asking_the_router_for_more_ports_is_harmless_without_a_router():
    """Port mapping on and no UPnP / NAT-PMP router (this machine): asking for the key service
    and desk ports too changes nothing and raises nothing; with mapping off nothing is asked."""
    from jobs.transport.engine import EngineConfig
    from jobs.transport.lt_engine import LibtorrentEngine

    for mapping in (True, False):
        eng = LibtorrentEngine(EngineConfig(listen="127.0.0.1:0", dht=False, port_mapping=mapping))
        try:
            eng.map_ports((eng.listen_port() + 1, eng.listen_port() + 2))
            assert eng.listen_port() > 0
        finally:
            eng.close()
