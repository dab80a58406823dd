#!/usr/bin/python3
"""The splitter of the team-health tests: a gst-launch-1.0 -e that prints the
elements' stats as JSON at the end, and timestamped events (see runner.py).

  splitter.py SOURCE-DESCRIPTION ! p2pspsplittersink name=splitter [PROPS]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
