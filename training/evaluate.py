"""Score a checkpoint, an ONNX file or a served model on labelled images: the same as ``tritonclf evaluate``.

python training/evaluate.py --help
"""

import sys

from tritonclf.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
