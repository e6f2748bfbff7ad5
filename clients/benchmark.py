"""Benchmark the served ensemble against the limit, in-process and naive references: the same as ``tritonclf bench``.

python clients/benchmark.py --help
"""

import sys

from tritonclf.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
