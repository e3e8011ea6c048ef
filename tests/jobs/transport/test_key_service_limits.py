"""A key service / relay control port (jobs.transport.keys.KeyServer on 127.0.0.1) against one
address holding connections open: it gets at most MAX_PER_SOURCE of them (the rest are told
busy), and a client at another loopback address is served at once."""

from __future__ import annotations

import os
import socket
import time

from common.guarded_server import MAX_PER_SOURCE, network_of, source_of
from jobs.transport.crypto import address_of, public_key
from jobs.transport.keys import MAX_CONNECTIONS, KeyRing, KeyServer, Mailbox, post_mail, take_mail

ALICE, BOB = os.urandom(32), os.urandom(32)


def test_one_address_cannot_hold_every_key_service_connection(tmp_path):
    ks = KeyServer(KeyRing(tmp_path / "keys"), "127.0.0.1:0", mailbox=Mailbox())
    held = []
    try:
        for _ in range(MAX_CONNECTIONS + 16):  # more than the whole service, idle, from 127.0.0.2
            s = socket.create_connection(("127.0.0.1", ks.port), timeout=5, source_address=("127.0.0.2", 0))
            s.sendall(b'{"op": "take"')  # never ends its line
            held.append(s)
        time.sleep(0.3)
        assert ks._srv.guard.count <= MAX_PER_SOURCE <= 8
        t0 = time.monotonic()
        relay = f"127.0.0.1:{ks.port}"
        post_mail(relay, address_of(public_key(BOB)), {"n": 1}, ALICE)  # from 127.0.0.1: served
        assert len(take_mail(relay, BOB)) == 1 and time.monotonic() - t0 < 2
        extra = socket.create_connection(("127.0.0.1", ks.port), timeout=5, source_address=("127.0.0.2", 0))
        assert b"busy" in extra.makefile("rb").readline()  # told at once, not left hanging
        extra.close()
    finally:
        for s in held:
            s.close()
        ks.close()


def test_sources_and_networks_of_client_addresses():
    assert source_of("127.0.0.2") == "127.0.0.2" != source_of("127.0.0.3")
    assert source_of("::ffff:10.1.2.3") == "10.1.2.3"
    assert source_of("2001:db8:1:2::5") == "2001:db8:1:2::/64"
    assert network_of("10.1.2.3") == network_of("::ffff:10.1.2.200") == "10.1.2.0/24" != network_of("10.1.3.3")
    assert network_of("2001:db8:1:2::5") == network_of("2001:db8:1:ffff::1") == "2001:db8:1::/48"
    assert network_of("2001:db8:2::1") != network_of("2001:db8:1::1")
    assert network_of("not an address") == source_of("not an address") == "not an address"
