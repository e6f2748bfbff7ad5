"""Write perf_analyzer --input-data JSON from photos: the same as ``tritonclf perf-input``.

python clients/perf_input.py --help
"""

import sys

from tritonclf.cli import main

if __name__ == "__main__":
    sys.exit(main(["perf-input", *sys.argv[1:]]))
