"""Same as `rlrobot plot`: `python scripts/plot.py --help` lists the options."""

import sys

from rlrobot.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["plot", *sys.argv[1:]]))
