"""Same as `rlrobot train`: `python scripts/train.py --help` lists the options."""

import sys

from rlrobot.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train", *sys.argv[1:]]))
