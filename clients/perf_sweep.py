"""Run perf_analyzer on the ensemble and the classifier alone: the same as ``tritonclf perf``.

python clients/perf_sweep.py --help
"""

import sys

from tritonclf.cli import main

if __name__ == "__main__":
    sys.exit(main(["perf", *sys.argv[1:]]))
