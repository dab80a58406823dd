#!/usr/bin/python3
"""The peer of the team-health tests: a gst-launch-1.0 -e that prints the
elements' stats as JSON at the end, and timestamped events (see runner.py).

  peer.py p2pspsrc name=src uri=p2psp://HOST:PORT [PROPS] ! filesink location=FILE
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
