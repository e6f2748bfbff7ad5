"""Build a TensorRT FP16 engine from the export with trtexec in NVIDIA's container: the same as ``tritonclf engine``.

python build/onnx2trt.py --help
"""

import sys

from tritonclf.cli import main

if __name__ == "__main__":
    sys.exit(main(["engine", *sys.argv[1:]]))
