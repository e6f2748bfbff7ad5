"""The carried tritonserver on the host: what it needs from the host, its environment and command line.

The binary finds its libraries through its RPATH (``../lib``); the Python backend's stub
for this interpreter is copied next to ``libtriton_python.so`` (where Triton looks for
it). ``prepare_host`` settles the rest once per phase: the stub's libpython (the host's,
else the carried one), ``libcuda.so`` (linked to the host's ``libcuda.so.1`` when only
that exists) and the stubs' own Python prefix (``stub_python.py``: the carried numpy 1.26
ahead of the host's packages). The preflight reports what it chose; the served phase
starts its server the same way.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from tritonclf.serving import leftovers
from tritonclf.serving.process import TritonProcess
from tritonclf_lab.gpu_kit import host_libs, stub_python
from tritonclf_lab.gpu_kit.context import Context, python_tag

# Triton's CUDA memory pool on GPU 0: the Python backend hands GPU tensors between the
# preprocessing and the classifier through it (64 MiB by default: a few 12 MP-batches' pixels).
CUDA_POOL_BYTES = 1 << 30
HTTP_THREADS = 32
# A bounded shutdown: the runner's grace after SIGTERM must cover it.
EXIT_TIMEOUT_S = 10
STUB = "triton_python_backend_stub"
SHM_DIR = leftovers.SHM_DIR


class KitServerError(RuntimeError):
    """The kit cannot start its server here (a missing stub or library)."""


@dataclass(frozen=True)
class HostSetup:
    """What the server's environment takes from this host, and where each piece came from."""

    libpython: host_libs.Resolution
    libcuda: host_libs.Resolution
    stub_bin: Path
    carried_numpy: bool

    def library_path(self, ctx: Context) -> list[str]:
        """The server's LD_LIBRARY_PATH, first entries (the stub's RPATH does not reach the kit's lib/)."""
        extra = [self.libcuda.library_dir, self.libpython.library_dir]
        return [str(ctx.triton / "lib"), *(folder for folder in extra if folder)]


def carried_numpy_fits(numpy_dir: Path, tag: str) -> bool:
    """Whether the carried numpy was built for Python ``tag`` (its extension's ABI tag)."""
    return any((numpy_dir / "numpy").glob(f"**/_multiarray_umath.cpython-{tag.replace('.', '')}-*.so"))


def prepare_host(ctx: Context) -> HostSetup:
    """Choose libpython, link libcuda.so if needed, write the stubs' prefix; idempotent."""
    tag = python_tag()
    carried_lib = ctx.carried_libpython if ctx.carried_libpython.is_dir() else None
    libpython = host_libs.choose_libpython(tag, carried_lib, ctx.libpython_mode, [str(ctx.triton / "lib")])
    library_path = [str(ctx.triton / "lib"), *([libpython.library_dir] if libpython.library_dir else [])]
    libcuda = host_libs.link_unversioned("libcuda.so", "libcuda.so.1", library_path, ctx.driver_links)
    carried_numpy = carried_numpy_fits(ctx.numpy_dir, tag)
    stub_bin = stub_python.write_prefix(
        ctx.stub_prefix,
        tag,
        carried=[ctx.numpy_dir] if carried_numpy else [],
        host_site=stub_python.host_site_packages(),
    )
    return HostSetup(libpython, libcuda, stub_bin, carried_numpy)


def backend_dir(triton: Path, tag: str) -> Path:
    """``triton/backends`` with the stub for Python ``tag`` in ``python/``."""
    stub = triton / "stubs" / tag / STUB
    if not stub.is_file():
        carried = ", ".join(sorted(p.name for p in (triton / "stubs").iterdir()))
        raise KitServerError(f"the kit carries no Python backend stub for Python {tag} (it has {carried})")
    target = triton / "backends" / "python" / STUB
    shutil.copy2(stub, target)
    return triton / "backends"


def server_env(ctx: Context, setup: HostSetup, base: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: the stubs' prefix first on PATH, the chosen libraries on LD_LIBRARY_PATH.

    No PYTHONPATH: the stubs' isolated interpreter ignores it (the prefix is what counts).
    """
    env = dict(os.environ if base is None else base)
    env["PATH"] = os.pathsep.join([str(setup.stub_bin), env.get("PATH", "")]).rstrip(os.pathsep)
    env["LD_LIBRARY_PATH"] = os.pathsep.join([*setup.library_path(ctx), env.get("LD_LIBRARY_PATH", "")]).rstrip(
        os.pathsep
    )
    return env


def shm_prefix(pgid: int) -> str:
    """The name prefix of the Python backend's /dev/shm regions for servers of process group ``pgid``.

    A SIGKILLed server leaves its regions behind; named by the phase's group, the runner
    can remove exactly those, never another server's.
    """
    return f"tritonclf_gpu_kit_{pgid}_"


def server_args(ctx: Context, *, gpu: bool) -> list[str]:
    """The server's options beyond the repository and ports."""
    args = [
        f"--backend-directory={backend_dir(ctx.triton, python_tag())}",
        f"--cache-directory={ctx.triton / 'caches'}",
        "--log-verbose=0",
        # The carried DCGM starts in embedded mode and has crashed servers (triton server PR #7952);
        # the kit reads no GPU metric.
        "--allow-gpu-metrics=false",
        f"--exit-timeout-secs={EXIT_TIMEOUT_S}",
        f"--backend-config=python,shm-region-prefix-name={shm_prefix(os.getpgid(0))}",
    ]
    if gpu:
        # 8 HTTP threads (the default) would queue the sweep's 128 clients in the front end.
        args += [f"--cuda-memory-pool-byte-size=0:{CUDA_POOL_BYTES}", f"--http-thread-count={HTTP_THREADS}"]
    return args


def kit_server(
    ctx: Context, setup: HostSetup, repository: Path, *, gpu: bool, ready_timeout_s: float, log_name: str
) -> TritonProcess:
    """A TritonProcess running the kit's binary on ``repository`` (not started).

    In the phase's own process group (``new_session=False``): a phase that runs out of
    time is ended by the runner with its server and every stub.
    """
    return TritonProcess(
        repository,
        executable=str(ctx.triton / "bin" / "tritonserver"),
        env=server_env(ctx, setup),
        extra_args=tuple(server_args(ctx, gpu=gpu)),
        log_path=ctx.logs / log_name,
        ready_timeout_s=ready_timeout_s,
        new_session=False,
    )


# Triton's error lines (E1202 16:14:56.427720 ...) and a C++ exception's message from a stub.
_ERROR_LINE = re.compile(r"^(E\d{4} |\s*what\(\):|error: )")


def first_error(log_path: Path) -> str:
    """The server log's most telling line: a stub's exception first, else Triton's first error line."""
    if not log_path.is_file():
        return ""
    lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines() if _ERROR_LINE.match(line)]
    thrown = [line for line in lines if line.startswith("what():")]
    return (thrown or lines or [""])[0][:300]
