"""Upload a model repository to S3-compatible storage: the same as ``tritonclf upload``.

python build/upload_repository.py --help
"""

import sys

from tritonclf.cli import main

if __name__ == "__main__":
    sys.exit(main(["upload", *sys.argv[1:]]))
