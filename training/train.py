"""Fine-tune a timm model on an image folder: the same as ``tritonclf train``.

python training/train.py --help
"""

import sys

from tritonclf.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
