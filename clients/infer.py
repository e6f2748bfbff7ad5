"""Classify images or folders against a running Triton server: the same as ``tritonclf infer``.

python clients/infer.py --help
"""

import sys

from tritonclf.cli import main

if __name__ == "__main__":
    sys.exit(main(["infer", *sys.argv[1:]]))
