"""Peak memory and CPU time of one ``preprocess_image`` call, measured in a fresh process.

    tritonclf measure-decode IMAGE_FILE [--exact]

Prints one JSON object: ``peak_growth_bytes`` (the resident high-water mark ``VmHWM``
after the call, minus ``VmRSS`` before it: it counts Pillow's C allocations, which
tracemalloc cannot see) and ``cpu_s``. Not ``ru_maxrss``: Linux carries the parent's peak
into a child over fork and exec, so under pytest it would hide the decode entirely.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from tritonclf.preprocess import DecodeLimits, PreprocessSpec, preprocess_image

MAX_ADDRESS_SPACE_BYTES = 3 * 1024**3


def status_bytes(field: str) -> int:
    """A ``kB`` field of /proc/self/status, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def main(argv: list[str] | None = None) -> int:
    """Decode the file once with the default spec and limits; print the measurement."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help"}:
        print(__doc__.strip())
        return 0 if args else 2
    # A regression must fail here with MemoryError, not take the machine's memory (one bug asked for 16 GB).
    resource.setrlimit(resource.RLIMIT_AS, (MAX_ADDRESS_SPACE_BYTES, MAX_ADDRESS_SPACE_BYTES))
    data = Path(args[0]).read_bytes()
    limits = DecodeLimits(jpeg_draft="--exact" not in args)
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
    before = status_bytes("VmRSS")
    start = time.process_time()
    preprocess_image(data, PreprocessSpec(input_size=(224, 224)), limits)
    cpu_s = time.process_time() - start
    print(json.dumps({"peak_growth_bytes": status_bytes("VmHWM") - before, "cpu_s": cpu_s}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
