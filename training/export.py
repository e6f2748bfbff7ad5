"""Export a timm model and its weights to ONNX with labels and preprocessing: the same as ``tritonclf export``.

python training/export.py --help
"""

import sys

from tritonclf.cli import main

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]]))
