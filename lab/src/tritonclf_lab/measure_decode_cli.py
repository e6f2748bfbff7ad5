"""Peak memory and CPU time of one ``preprocess_image`` call, measured in a fresh process.

    tritonclf measure-decode photo.jpg [--exact]

Prints one JSON object: ``peak_growth_bytes`` (the resident high-water mark ``VmHWM``
after the call, minus the resident memory before it: it counts Pillow's C allocations,
which tracemalloc cannot see; ``peak_memory`` says why not ``ru_maxrss``) and ``cpu_s``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import psutil

from tritonclf.cli_options import fail
from tritonclf.preprocess import DecodeLimits, PreprocessSpec, preprocess_image
from tritonclf_lab.peak_memory import peak_rss_bytes, reset_peak_rss

MAX_ADDRESS_SPACE_BYTES = 3 * 1024**3


def main(argv: list[str] | None = None) -> int:
    """Decode the file once with the default spec and limits; print the measurement."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2].strip())
    parser.add_argument("image", type=Path, help="the image file to decode")
    parser.add_argument("--exact", action="store_true", help="decode JPEGs at full size (no draft decoding)")
    args = parser.parse_args(argv)
    # A regression must fail here with MemoryError, not take the machine's memory (one bug asked for 16 GB).
    resource.setrlimit(resource.RLIMIT_AS, (MAX_ADDRESS_SPACE_BYTES, MAX_ADDRESS_SPACE_BYTES))
    try:
        data = args.image.read_bytes()
    except OSError as err:
        return fail("measure-decode", f"cannot read {args.image}: {err.strerror}")
    limits = DecodeLimits(jpeg_draft=not args.exact)
    reset_peak_rss()
    before = psutil.Process().memory_info().rss
    start = time.process_time()
    preprocess_image(data, PreprocessSpec(input_size=(224, 224)), limits)
    cpu_s = time.process_time() - start
    print(json.dumps({"peak_growth_bytes": peak_rss_bytes() - before, "cpu_s": cpu_s}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
