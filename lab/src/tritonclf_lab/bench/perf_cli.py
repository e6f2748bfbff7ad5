"""Run perf_analyzer's concurrency sweep against the ensemble and against the classifier alone.

    python clients/perf_sweep.py                                  # what `make perf` runs: starts tritonserver
    python clients/perf_sweep.py --url localhost:8001 --concurrency 1:4
    python clients/perf_sweep.py --protocol http --concurrency 1,2,4,8 --model resnet50
    python clients/perf_sweep.py --perf-args "--measurement-interval 5000 --percentile 99"

Inputs: the benchmark's generated photo mix (or ``--images DIR``) as BYTES for the
ensemble, and the same photos preprocessed to FP32 ``pixel_values`` for the
classifier; written with ``clients/perf_input.py`` next to the results. Each model's
perf_analyzer CSV (``-f``) lands in ``--output-dir`` as ``perf-<time>-<model>.csv``.
Needs ``.venv/bin/perf_analyzer`` (``make perf-tools``). Flags and exit codes as every
command's (``tritonclf.cli_options``): ``--concurrency`` levels must be evenly spaced
(perf_analyzer's ``--concurrency-range``); 2 when nothing could be measured.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tritonclf import contract
from tritonclf.cli_options import EXIT_OK, add_concurrency, add_server_arguments, as_range, fail
from tritonclf.serving.process import ServerStartError, TritonProcess
from tritonclf_lab.bench import perf_input_cli as perf_input

# perf_analyzer gives up on a level unless three windows in a row agree within the stability
# percentage (default 10%): on a 2-core machine shared with other work even 20% failed at
# concurrency 1. 50% over up to 8 windows finishes; tighten it on a quiet machine.
DEFAULT_PERF_ARGS = "--measurement-interval 3000 --max-trials 8 --stability-percentage 50"


class SweepError(RuntimeError):
    """A setup problem, reported in one line."""


def perf_analyzer_path(explicit: str | None) -> str:
    """The wrapper in this venv's bin, else one on PATH."""
    candidates = [explicit] if explicit else [str(Path(sys.executable).parent / "perf_analyzer"), "perf_analyzer"]
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    raise SweepError("no perf_analyzer: run `make perf-tools` (or pass --perf-analyzer)")


def perf_command(
    binary: str,
    model: str,
    url: str,
    *,
    protocol: str = "grpc",
    input_file: Path | None,
    csv_path: Path,
    concurrency: tuple[int, ...],
    extra: str,
) -> list[str]:
    """One perf_analyzer invocation; random inputs when ``input_file`` is None."""
    command = [binary, "-m", model, "-u", url, "-i", protocol, "--concurrency-range", as_range(concurrency)]
    command += ["-f", str(csv_path)]
    command += ["--input-data", str(input_file) if input_file else "random"]
    return command + shlex.split(extra)


def measured_levels(csv_path: Path) -> set[int]:
    """Concurrency levels with a row in perf_analyzer's CSV."""
    with open(csv_path, newline="") as f:
        return {int(row["Concurrency"]) for row in csv.DictReader(f)}


def write_inputs(args: argparse.Namespace, folder: Path) -> dict[str, Path | None]:
    """Input-data JSON for the ensemble and the classifier; the classifier's is None without an export."""
    source = [str(args.images)] if args.images else ["--generated-mix", str(args.count)]
    paths: dict[str, Path | None] = {"ensemble": folder / "ensemble.json", "classifier": folder / "classifier.json"}
    if perf_input.main([*source, "--output", str(paths["ensemble"])]) != 0:
        raise SweepError("could not write the ensemble's input data (see above)")
    if perf_input.main([*source, "--pixels", "--export", str(args.export), "--output", str(paths["classifier"])]) != 0:
        print("classifier: random pixel_values instead of preprocessed photos", file=sys.stderr)
        paths["classifier"] = None
    return paths


def run_sweeps(args: argparse.Namespace, url: str, model: str, stamp: str) -> list[Path]:
    """perf_analyzer on the ensemble, then on its classifier; returns the CSV files."""
    binary = perf_analyzer_path(args.perf_analyzer)
    inputs = write_inputs(args, args.output_dir / f"{stamp}-inputs")
    written = []
    targets = ((model, inputs["ensemble"]), (contract.classifier_model_name(model), inputs["classifier"]))
    for target, input_file in targets:
        csv_path = args.output_dir / f"{stamp}-{target}.csv"
        command = perf_command(
            binary,
            target,
            url,
            protocol=args.protocol,
            input_file=input_file,
            csv_path=csv_path,
            concurrency=args.concurrency,
            extra=args.perf_args,
        )
        print(f"$ {shlex.join(command)}", flush=True)
        if subprocess.run(command, check=False).returncode != 0 or not csv_path.is_file():
            raise SweepError(f"perf_analyzer failed on {target} (its output is above)")
        missing = sorted(set(args.concurrency) - measured_levels(csv_path))
        if missing:
            # perf_analyzer stops the sweep at the first level it cannot stabilize, and still exits 0.
            print(f"warning: {csv_path} has no row for concurrency {missing} (unstable: see above)", file=sys.stderr)
        written.append(csv_path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Start a server unless given one, run both sweeps, print where the CSVs are."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repository", type=Path, default=Path("model_repository"), help="default: %(default)s")
    add_server_arguments(
        parser,
        url_help="HOST:PORT of a running server for --protocol (default: start one on --repository)",
        model_default="efficientnet_lite0",
        model_help="ensemble; its classifier is swept too (default: %(default)s)",
    )
    parser.add_argument("--export", type=Path, default=Path("exports/efficientnet_lite0"), help="for the pixels")
    parser.add_argument("--images", type=Path, help="folder of images (default: the generated photo mix)")
    parser.add_argument("--count", type=int, default=10, help="generated photos (default: %(default)s)")
    add_concurrency(parser, (1, 2, 3, 4, 5, 6, 7, 8), levels=True)
    parser.add_argument("--perf-args", default=DEFAULT_PERF_ARGS, help="more perf_analyzer options")
    parser.add_argument("--perf-analyzer", help="binary (default: the venv's, then PATH)")
    parser.add_argument("--output-dir", type=Path, default=Path("benchmarks/results"), help="default: %(default)s")
    args = parser.parse_args(argv)
    try:
        as_range(args.concurrency)
    except ValueError as err:
        parser.error(str(err))
    stamp = f"perf-{datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
    args.output_dir.mkdir(parents=True, exist_ok=True)
    server = None
    try:
        if args.url:
            url = args.url
        else:
            log = args.output_dir / f"{stamp}-tritonserver.log"
            extra = ("--model-control-mode=explicit", f"--load-model={args.model}")
            server = TritonProcess(args.repository, log_path=log, extra_args=extra).start()
            url = server.grpc_url if args.protocol == "grpc" else server.http_url
        written = run_sweeps(args, url, args.model, stamp)
    except ServerStartError as err:
        return fail("perf", f"{str(err).splitlines()[0]} (is the repository built? make repository)")
    except SweepError as err:
        return fail("perf", err)
    finally:
        if server:
            server.stop()
    print("wrote " + ", ".join(str(p) for p in written))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
