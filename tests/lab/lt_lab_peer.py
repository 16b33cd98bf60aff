#!/usr/bin/python3
"""tests/interop/lt_peer.py as a peer on the internet would run: for the network lab.

Same command line and stdout lines as lt_peer.py (`peer --dir D --torrent T --bind IP
--port P --tracker URL`). The difference: the lab's private addresses (10.x) would put
every peer in libtorrent's "local" peer class, which is never choked and ignores rate
limits; here every address is mapped to the global class instead, so libtorrent chokes
and unchokes as it would between homes. lt_peer.py already binds to --bind and turns
DHT, LSD, UPnP, NAT-PMP and uTP off. Run with Debian's /usr/bin/python3.
"""

import faulthandler
import os
import sys

# libtorrent's Python binding has segfaulted here in 3 of 10 runs of 8 leechers, each time just after dropping a connection to itself (its own address, learnt by PEX):
# leave a Python stack in the log when it does.
faulthandler.enable()
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))

import lt_peer  # noqa: E402

_session_for = lt_peer.session_for


def internet_session(bind, port, internet=False, *args, **kwargs):
    """lt_peer's session (its other settings passed through), always with every address in
    the global peer class."""
    return _session_for(bind, port, True, *args, **kwargs)


lt_peer.session_for = internet_session

if __name__ == "__main__":
    sys.exit(lt_peer.main())
