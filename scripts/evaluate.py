"""Same as `rlrobot eval`: `python scripts/evaluate.py --help` lists the options."""

import sys

from rlrobot.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["eval", *sys.argv[1:]]))
