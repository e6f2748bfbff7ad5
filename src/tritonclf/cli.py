"""``tritonclf``: one command, one subcommand per job.

    tritonclf infer photo.jpg            # = python clients/infer.py photo.jpg
    tritonclf build --export exports/efficientnet_lite0
    tritonclf JOB --help                 # that job's options
    tritonclf --version

Each subcommand is a module with a ``main(argv)``; it is imported only when named, so
``tritonclf infer`` on a client-only install never touches torch or the server.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from tritonclf import __version__

# cli_options.EXIT_UNUSABLE; not imported from there: it pulls in the client and numpy, and the
# dispatcher answers --help and --version on a bare Python (NVIDIA's container, a fresh venv).
EXIT_UNUSABLE = 2

# subcommand -> (module with main(argv), one-line help). Grouped by the design's folders.
COMMANDS: dict[str, tuple[str, str]] = {
    # clients/
    "infer": ("tritonclf.client.infer_cli", "classify images or folders against a running server (top-k)"),
    "ui": ("tritonclf.client.ui_cli", "a page to try the model in a browser: drop photos, see labels and scores"),
    # training/
    "train": ("tritonclf.training.train_cli", "fine-tune a timm model on an image folder"),
    "export": (
        "tritonclf.training.export_cli",
        "export a timm model + weights to ONNX with its labels and preprocessing",
    ),
    "evaluate": ("tritonclf.training.evaluate_cli", "score a checkpoint, an ONNX file or a served model"),
    "train-demo": ("tritonclf.training.train_demo_cli", "digits: fine-tune, export, build, serve, evaluate"),
    "demo-data": ("tritonclf.training.demo_data_cli", "write the digits demo dataset as an image folder"),
    # build/
    "build": ("tritonclf.repository.build_cli", "turn an export into a Triton model repository"),
    "engine": ("tritonclf.repository.engine_cli", "TensorRT FP16 engine by trtexec in NVIDIA's container"),
    "preflight": ("tritonclf.repository.preflight_cli", "check a repository before Triton loads it"),
    "upload": ("tritonclf.repository.upload_cli", "upload a repository to S3-compatible storage"),
    # serving
    "demo": ("tritonclf.serving.demo_cli", "start the server, classify the sample photos over gRPC and HTTP, stop"),
    "gpu-check": (
        "tritonclf.repository.gpu_check_cli",
        "TensorRT engine, gate and trt repository in NVIDIA's container",
    ),
    "monitor": (
        "tritonclf.monitoring.monitor_cli",
        "compare live predictions with the validation set: class drift, low confidence, rejections",
    ),
}


def jobs() -> dict[str, tuple[str, str]]:
    """Our jobs, then those other installed distributions add (the lab's, in a checkout).

    A distribution adds jobs with an entry point in the ``tritonclf.jobs`` group that names
    a dict in the format of ``COMMANDS``.
    """
    found = dict(COMMANDS)
    for entry in entry_points(group="tritonclf.jobs"):
        for name, job in entry.load().items():
            found.setdefault(name, job)
    return found


def usage(found: dict[str, tuple[str, str]]) -> str:
    """The command list."""
    width = max(map(len, found))
    lines = [
        "usage: tritonclf JOB [options]   (tritonclf JOB --help for a job's options, tritonclf --version)",
        "",
        "jobs:",
    ]
    lines += [f"  {name:<{width}}  {help_line}" for name, (_, help_line) in found.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to the named job's ``main``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in {"-V", "--version"}:
        print(f"tritonclf {__version__}")
        return 0
    found = jobs()
    if not args:
        # Like argparse without its required argument: the usage on stderr, and a usage error's code.
        print(usage(found), file=sys.stderr)
        return EXIT_UNUSABLE
    if args[0] in {"-h", "--help", "help"}:
        print(usage(found))
        return 0
    name, rest = args[0], args[1:]
    if name not in found:
        close = difflib.get_close_matches(name, list(found), n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        print(f"tritonclf: unknown job {name!r}; {hint}tritonclf --help lists them all", file=sys.stderr)
        return EXIT_UNUSABLE
    # argparse names the program after argv[0]: make usage lines read "tritonclf NAME".
    sys.argv[0] = f"tritonclf {name}"
    # Jobs parse and check their options before importing torch or the server's packages, so
    # `--help` works on a client-only install (pip install ".[client]"); the work itself then
    # names what is missing in one line.
    try:
        module = importlib.import_module(found[name][0])
        return module.main(rest) or 0
    except ModuleNotFoundError as err:
        if not err.name or err.name.split(".")[0] == "tritonclf":
            raise
        missing = err.name.split(".")[0]
        print(
            f"tritonclf {name}: needs {missing!r}, which is not installed here; "
            'install the extras for it: make setup, or pip install ".[server,train,client]"',
            file=sys.stderr,
        )
        return EXIT_UNUSABLE
