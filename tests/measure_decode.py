"""Peak memory and CPU time of one ``preprocess_image`` call, measured in a fresh process.

    python tests/measure_decode.py IMAGE_FILE [--exact]

Prints one JSON object: ``peak_growth_bytes`` (``ru_maxrss`` after the call minus
before it: the process high-water mark, so it counts Pillow's C allocations that
tracemalloc cannot see) and ``cpu_s``. A fresh process matters: ``ru_maxrss`` never
goes down, so anything allocated earlier (e.g. by encoding the test image) would hide
the decode.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "build"))

from tritonclf.preprocess import DecodeLimits, PreprocessSpec, preprocess_image

MAX_ADDRESS_SPACE_BYTES = 3 * 1024**3


def main(argv: list[str] | None = None) -> int:
    """Decode the file once with the default spec and limits; print the measurement."""
    args = sys.argv[1:] if argv is None else argv
    # A regression must fail here with MemoryError, not take the machine's memory (one bug asked for 16 GB).
    resource.setrlimit(resource.RLIMIT_AS, (MAX_ADDRESS_SPACE_BYTES, MAX_ADDRESS_SPACE_BYTES))
    data = Path(args[0]).read_bytes()
    limits = DecodeLimits(jpeg_draft="--exact" not in args)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.process_time()
    preprocess_image(data, PreprocessSpec(input_size=(224, 224)), limits)
    cpu_s = time.process_time() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_growth_bytes": (after - before) * 1024, "cpu_s": cpu_s}))  # ru_maxrss is in KiB
    return 0


if __name__ == "__main__":
    sys.exit(main())
