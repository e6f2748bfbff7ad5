"""One phase in its own process: ``python -m tritonclf_lab.gpu_kit.phases NAME --work W --results R``.

The runner starts this per phase (with the phase's budget as a hard timeout); exit 0
when the phase passed, 1 when it failed (its reason is on stdout and in results.json).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from pathlib import Path

from tritonclf_lab.gpu_kit.context import Context
from tritonclf_lab.gpu_kit.host_libs import LIBPYTHON_MODES
from tritonclf_lab.gpu_kit.plan import PHASES
from tritonclf_lab.gpu_kit.results import Results


def main(argv: list[str] | None = None) -> int:
    """Run the named phase's ``run(ctx)``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("phase", choices=PHASES)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--budget-s", type=float, required=True)
    parser.add_argument("--cpu-smoke", action="store_true")
    parser.add_argument("--libpython", choices=LIBPYTHON_MODES, default="auto")
    args = parser.parse_args(argv)
    ctx = Context(args.work, Results(args.results), args.budget_s, args.cpu_smoke, args.libpython)
    ctx.logs.mkdir(parents=True, exist_ok=True)
    module = importlib.import_module(f"tritonclf_lab.gpu_kit.phase_{args.phase}")
    try:
        passed = module.run(ctx)
    except Exception as err:  # one phase's crash is recorded and the run goes on
        # The whole traceback goes to the log; the results keep one line.
        (ctx.logs / f"{args.phase}-traceback.txt").write_text(traceback.format_exc())
        line = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        ctx.results.update(args.phase, {"error": line})
        print(f"{args.phase}: error: {line}", flush=True)
        return 1
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
