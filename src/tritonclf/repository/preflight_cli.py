"""Check a model repository before serving it; one line per problem, exit 1 if any.

    python build/preflight.py --repository model_repository

Run by ``make serve``. Catches what Triton reports late or cryptically: configs that
do not parse, missing or corrupted files (hashes against each version's manifest),
ensemble steps that do not connect, and TensorRT engines built for another
TensorRT version or GPU.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tritonclf.repository.backends import probe_gpu, probe_tensorrt
from tritonclf.repository.preflight_checks import check_repository

# Relative to where the command runs (the checkout, for make); the tag can always be passed instead.
TRITON_ENV = Path("deploy/triton.env")


def pinned_triton_tag(path: Path = TRITON_ENV) -> str | None:
    """The Triton container tag the deployment pins (deploy/triton.env), if any."""
    if not path.is_file():
        return None
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "TRITON_TAG":
            return value.strip().strip('"')
    return None


def main(argv: list[str] | None = None) -> int:
    """Print findings; exit 1 on errors, 0 when only warnings (checks impossible here) remain."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repository", type=Path, default=Path("model_repository"), help="default: %(default)s")
    parser.add_argument("--quiet", action="store_true", help="print only errors")
    args = parser.parse_args(argv)
    findings = check_repository(args.repository, probe_gpu(), probe_tensorrt(), pinned_triton_tag())
    errors = [f for f in findings if f.severity == "error"]
    for finding in findings:
        if finding.severity == "error" or not args.quiet:
            print(f"preflight: {finding}", file=sys.stderr if finding.severity == "error" else sys.stdout)
    if errors:
        print(f"preflight: {len(errors)} problem(s) in {args.repository}; fix them before serving", file=sys.stderr)
        return 1
    print(f"preflight: {args.repository} is ready to serve")
    return 0


if __name__ == "__main__":
    sys.exit(main())
