"""A dishonest peer for the tests: serves a tampered copy of content under its real info hash.

    python evil_seeder.py META.torrent TAMPERED_FILE PORT

It tells libtorrent every piece is already verified, so the bad bytes go out as they are;
the fetching side must catch them block by block and get the content from an honest peer.
"""

import sys
import time
from pathlib import Path

import libtorrent as lt

meta, bad, port = Path(sys.argv[1]).read_bytes(), Path(sys.argv[2]), int(sys.argv[3])
ses = lt.session({"listen_interfaces": f"0.0.0.0:{port}", "enable_dht": False, "enable_lsd": False,
                  "enable_upnp": False, "enable_natpmp": False, "enable_outgoing_utp": False,
                  "enable_incoming_utp": False})
atp = lt.add_torrent_params()
atp.ti = lt.torrent_info(meta)
atp.save_path = str(bad.parent)
atp.flags = lt.torrent_flags.seed_mode
atp.verified_pieces = [True] * atp.ti.num_pieces()
ses.add_torrent(atp)
print("ready", flush=True)
time.sleep(120)
