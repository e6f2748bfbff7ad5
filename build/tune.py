"""Sweep serving options on this machine and build the fastest: the same as ``tritonclf tune``.

python build/tune.py --help
"""

import sys

from tritonclf.cli import main

if __name__ == "__main__":
    sys.exit(main(["tune", *sys.argv[1:]]))
