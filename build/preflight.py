"""Check a model repository before Triton loads it: the same as ``tritonclf preflight``.

python build/preflight.py --help
"""

import sys

from tritonclf.cli import main

if __name__ == "__main__":
    sys.exit(main(["preflight", *sys.argv[1:]]))
