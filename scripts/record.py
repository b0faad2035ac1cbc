"""Same as `rlrobot record`: `python scripts/record.py --help` lists the options."""

import sys

from rlrobot.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["record", *sys.argv[1:]]))
