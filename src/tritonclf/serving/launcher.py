"""``tritonserver``: run the real Triton binary shipped in the nvidia-pytriton wheel.

Installed as the ``tritonserver`` console script, so after ``make setup``

    .venv/bin/tritonserver --model-repository model_repository

is the same command line as in NVIDIA's Triton container. Every argument goes to
Triton unchanged; this shell only supplies what the wheel leaves out: its
libraries on ``LD_LIBRARY_PATH``, a backend directory holding the Python backend
with the stub for this interpreter, and this environment's ``python3`` first on
``PATH`` (the stub imports the packages of the ``python3`` it finds there). On a GPU
host it also sizes Triton's CUDA memory pool (``--cuda-memory-pool-byte-size``)
unless the caller did, and it turns on the response cache (``--cache-config``) at the size a
repository was built with (``serving/response_cache.py``), unless the caller set one.
When the arguments leave Triton's admin APIs open (no ``--http-restricted-api`` /
``--grpc-restricted-protocol`` for them), it says so in one line on stderr first.
We run the binary, not PyTriton's Python API: the repository stays a plain Triton
repository that the container serves as it is.

Triton runs as a child under a supervisor (serving/supervisor.py): it restarts a crashed
server (with a backoff and a crash-loop limit), reloads a model or restarts the server when
one of its Python-backend stubs dies or stops (Triton itself no longer does;
``TRITONCLF_STUB_CHECK_S=0`` turns that check off), removes the stubs and ``/dev/shm``
regions a dead server leaves, and takes Triton down with it when it is killed. Each server
gets its own shared-memory region prefix for that (``TRITONCLF_SHM_PREFIX`` sets its start;
``--backend-config=python,shm-region-prefix-name=...`` replaces it), so another server on
the machine is never touched.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

from tritonclf.serving import leftovers, supervisor
from tritonclf.serving.admin_apis import open_api_notice
from tritonclf.serving.response_cache import cache_flag


class EmbeddedServerError(RuntimeError):
    """The embedded Triton cannot be started (a missing install, not a Triton error)."""


def _pytriton_root() -> Path:
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            "the nvidia-pytriton wheel is not installed in this environment; run `make setup` "
            "(or pip install '.[server]')"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def python_tag() -> str:
    """The stub folder name for this interpreter, e.g. ``3.11``."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def binary_path() -> Path:
    """The tritonserver executable inside the wheel."""
    path = _pytriton_root() / "tritonserver" / "bin" / "tritonserver"
    if not path.is_file():
        raise EmbeddedServerError(f"no tritonserver binary at {path}: reinstall nvidia-pytriton")
    return path


def library_dir() -> Path:
    """The shared libraries the wheel's binary links against (auditwheel's ``.libs`` folder)."""
    return _pytriton_root().parent / "nvidia_pytriton.libs"


def backend_dir() -> Path:
    """A backend directory with the Python backend and this Python's stub, made once per install.

    The wheel keeps the stubs for every Python version apart from the backend; Triton
    looks for ``triton_python_backend_stub`` next to ``libtriton_python.so``.
    """
    root = _pytriton_root() / "tritonserver"
    target = Path(sys.prefix) / "share" / "tritonclf" / f"backends-py{python_tag()}"
    stub = root / "python_backend_stubs" / python_tag() / "triton_python_backend_stub"
    if (target / "python" / "triton_python_backend_stub").is_file():
        return target
    if not stub.is_file():
        raise EmbeddedServerError(f"the wheel has no Python backend stub for Python {python_tag()} ({stub})")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Stage then rename: two servers starting at once never see a half-copied folder.
    staging = Path(tempfile.mkdtemp(prefix=".backends-", dir=target.parent))
    shutil.copytree(root / "backends", staging / "backends", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(stub, staging / "backends" / "python" / "triton_python_backend_stub")
    try:
        os.rename(staging / "backends", target)
    except OSError:
        if not (target / "python" / "triton_python_backend_stub").is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def server_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the binary needs: its libraries, and this Python first on PATH."""
    env = dict(os.environ if base is None else base)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(library_dir()), env.get("LD_LIBRARY_PATH", "")) if p)
    python_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in (python_bin, env.get("PATH", "")) if p)
    return env


# Triton's CUDA memory pool on GPU 0 (its default is 64 MiB). The Python backend moves GPU tensors
# between its stubs and the server through this pool: torch preprocessing on a GPU hands each
# batch of pixels (32 x 3 x 224 x 224 FP32 = 19 MB) to the classifier through it, several batches
# in flight. Too small a pool and the tensors go through host copies instead.
CUDA_MEMORY_POOL_BYTES = 256 * 1024 * 1024
_NVIDIA_DEVICE = Path("/dev/nvidiactl")


def server_command(args: list[str], gpu: bool | None = None, region_prefix: str | None = None) -> list[str]:
    """The full command line: the binary, the caller's arguments, and our defaults for what is missing.

    ``gpu`` (default: whether NVIDIA's device node exists) adds the CUDA memory pool size.
    ``region_prefix`` names the Python backend's shared-memory regions, unless the arguments do.
    """
    command = [str(binary_path()), *args]
    given = {a.split("=", 1)[0] for a in args if a.startswith("--")}
    if region_prefix and leftovers.region_prefix(args) is None:
        command.append(f"--backend-config={leftovers.PREFIX_SETTING}{region_prefix}")
    if (_NVIDIA_DEVICE.exists() if gpu is None else gpu) and "--cuda-memory-pool-byte-size" not in given:
        command.append(f"--cuda-memory-pool-byte-size=0:{CUDA_MEMORY_POOL_BYTES}")
    if "--backend-directory" not in given:
        command.append(f"--backend-directory={backend_dir()}")
    if "--cache-directory" not in given:
        command.append(f"--cache-directory={_pytriton_root() / 'tritonserver' / 'caches'}")
    cache = cache_flag(args)  # the response cache size the repository's ensembles were built with
    if cache:
        command.append(cache)
    return command


def main(argv: list[str] | None = None) -> None:
    """Run tritonserver under the supervisor; signals go to Triton and its exit code is ours."""
    args = sys.argv[1:] if argv is None else argv
    notice = None if {"-h", "--help"} & set(args) else open_api_notice(args)
    if notice:
        print(notice, file=sys.stderr, flush=True)
    try:
        prefix = leftovers.new_region_prefix(leftovers.prefix_start(os.environ))
        command = server_command(args, region_prefix=prefix)
        env = server_environment()
        sys.exit(supervisor.run(command, env))
    except (EmbeddedServerError, ValueError) as err:
        sys.exit(f"tritonserver: {err}")


if __name__ == "__main__":
    main()
