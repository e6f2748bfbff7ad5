"""``make train-demo``: digits dataset -> fine-tune -> export -> build -> serve -> evaluate the served model.

    tritonclf train-demo --repository model_repository --name digits

Every step is the command a user would run, printed before it runs; the training
starts over in ``--run`` each time (``--force``). The served
model is then evaluated on the validation split together with the PyTorch
checkpoint and the ONNX file; the demo fails (exit 1) if the served top-1 is below
``--min-top1`` or the served and PyTorch top-1 agree on fewer than
``--min-agreement`` of the images.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tritonclf.cli_options import fail
from tritonclf.serving.process import ServerStartError, TritonProcess


class StepFailed(RuntimeError):
    """A step exited non-zero; ``code`` is its exit code."""

    def __init__(self, code: int):
        super().__init__(f"exit code {code}")
        self.code = code


def run_step(args: list[str], timings: dict[str, float], name: str) -> None:
    """Print and run one ``tritonclf`` job as a user would type it; raise StepFailed if it fails."""
    print(f"\n$ tritonclf {shlex.join(args)}", flush=True)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "tritonclf", *args], check=False)
    timings[name] = time.perf_counter() - start
    if result.returncode != 0:
        raise StepFailed(result.returncode)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config", default="training/configs/digits.yaml", help="training config (default: %(default)s)"
    )
    parser.add_argument("--data", default="data/digits", help="dataset folder (default: %(default)s)")
    parser.add_argument("--run", default="runs/digits", help="training output folder (default: %(default)s)")
    parser.add_argument("--export", default="exports/digits", help="export folder (default: %(default)s)")
    parser.add_argument("--repository", default="model_repository", help="default: %(default)s")
    parser.add_argument("--name", default="digits", help="ensemble name in the repository (default: %(default)s)")
    parser.add_argument("--epochs", type=int, help="override the demo config's epochs")
    parser.add_argument("--min-top1", type=float, default=0.90, help="default: %(default)s")
    parser.add_argument("--min-agreement", type=float, default=0.99, help="default: %(default)s")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the whole pipeline; the exit code is the first failing step's."""
    args = parse_args(argv)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    train = ["train", "--config", args.config, "--data", args.data, "--output", args.run, "--force"]
    train += ["--epochs", str(args.epochs)] if args.epochs else []
    export = ["export", "--weights", f"{args.run}/best.pth", "--output", args.export]
    build = ["build", "--export", args.export, "--repository", args.repository]
    try:
        run_step(["demo-data", "--output", args.data], timings, "data")
        run_step(train, timings, "train")
        run_step(export, timings, "export")
        run_step([*build, "--name", args.name], timings, "build")
    except StepFailed as err:
        return err.code
    log = Path(tempfile.gettempdir()) / "tritonclf-train-demo-server.log"
    print(f"\nstarting tritonserver --model-repository {args.repository} (log: {log})", flush=True)
    server = TritonProcess(Path(args.repository), log_path=log)
    try:
        server_start = time.perf_counter()
        server.start()
        timings["serve"] = time.perf_counter() - server_start
        evaluate = ["evaluate", "--data", args.data, "--checkpoint", f"{args.run}/best.pth"]
        evaluate += ["--onnx", f"{args.export}/model.onnx", "--url", server.grpc_url, "--model", args.name]
        evaluate += ["--min-top1", str(args.min_top1), "--min-agreement", str(args.min_agreement)]
        run_step(evaluate, timings, "evaluate")
    except ServerStartError as err:
        return fail("train-demo", str(err).splitlines()[0])
    except StepFailed as err:
        return err.code
    finally:
        server.stop()
    total = time.perf_counter() - start
    steps = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings.items())
    print(f"\ntrain-demo passed in {total:.0f} s ({steps}); the server is stopped.")
    print(f"serve it yourself: make serve, then tritonclf infer {args.data}/val/7 --model {args.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
