"""A page to try the served model in a browser: the same as ``tritonclf ui``.

python clients/ui.py --help
"""

import sys

from tritonclf.cli import main

if __name__ == "__main__":
    sys.exit(main(["ui", *sys.argv[1:]]))
