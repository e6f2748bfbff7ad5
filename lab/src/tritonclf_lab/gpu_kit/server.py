"""The carried tritonserver: its backend folder, environment and command line on the host.

The binary finds its libraries through its RPATH (``../lib``); the Python backend's stub
for this interpreter is copied next to ``libtriton_python.so`` (where Triton looks for
it); the stub links this interpreter's ``libpython`` and imports the packages of the
``python3`` first on ``PATH``, so this interpreter's folder goes first, and for Python
3.12 the kit's numpy 1.26 goes first on the stub's ``PYTHONPATH`` (numpy 2 corrupts
BYTES inputs in the Python backend; the phases themselves keep the host's numpy).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from tritonclf.serving.process import TritonProcess
from tritonclf_lab.gpu_kit.context import Context, python_tag

# Triton's CUDA memory pool on GPU 0: the Python backend hands GPU tensors between the
# preprocessing and the classifier through it (64 MiB by default: a few 12 MP-batches' pixels).
CUDA_POOL_BYTES = 1 << 30
HTTP_THREADS = 32
STUB = "triton_python_backend_stub"


class KitServerError(RuntimeError):
    """The kit cannot start its server here (a missing stub or library)."""


def backend_dir(triton: Path, tag: str) -> Path:
    """``triton/backends`` with the stub for Python ``tag`` in ``python/``."""
    stub = triton / "stubs" / tag / STUB
    if not stub.is_file():
        carried = ", ".join(sorted(p.name for p in (triton / "stubs").iterdir()))
        raise KitServerError(f"the kit carries no Python backend stub for Python {tag} (it has {carried})")
    target = triton / "backends" / "python" / STUB
    shutil.copy2(stub, target)
    return triton / "backends"


def server_env(ctx: Context, libpython_dir: str | None, base: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: this Python first on PATH, libpython findable, numpy 1.26 for 3.12."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    libraries = [str(ctx.triton / "lib")] + ([libpython_dir] if libpython_dir else [])
    env["LD_LIBRARY_PATH"] = os.pathsep.join([*libraries, env.get("LD_LIBRARY_PATH", "")]).rstrip(os.pathsep)
    # The kit's src/ is for the phases; the stub needs only numpy 1.26 ahead of the host's numpy 2.
    # Set, not removed: TritonProcess merges this over its own environment.
    carried_numpy = (ctx.numpy_dir / "numpy").is_dir() and python_tag() == "3.12"
    env["PYTHONPATH"] = str(ctx.numpy_dir) if carried_numpy else ""
    return env


def kit_server(ctx: Context, libpython_dir: str | None, *, gpu: bool) -> TritonProcess:
    """A TritonProcess running the kit's binary on the run's repository (not started)."""
    args = [
        f"--backend-directory={backend_dir(ctx.triton, python_tag())}",
        f"--cache-directory={ctx.triton / 'caches'}",
        "--log-verbose=0",
    ]
    if gpu:
        # 8 HTTP threads (the default) would queue the sweep's 128 clients in the front end.
        args += [f"--cuda-memory-pool-byte-size=0:{CUDA_POOL_BYTES}", f"--http-thread-count={HTTP_THREADS}"]
    return TritonProcess(
        ctx.repository,
        executable=str(ctx.triton / "bin" / "tritonserver"),
        env=server_env(ctx, libpython_dir),
        extra_args=tuple(args),
        log_path=ctx.logs / "tritonserver.log",
        # Loading torch in every stub takes long on a busy machine; keep 30 s of the budget for the rest.
        ready_timeout_s=max(30.0, ctx.remaining_s() - 30.0),
    )
