"""Turn an export into a Triton model repository: the same as ``tritonclf build``.

python build/build_repository.py --help
"""

import sys

from tritonclf.cli import main

if __name__ == "__main__":
    sys.exit(main(["build", *sys.argv[1:]]))
