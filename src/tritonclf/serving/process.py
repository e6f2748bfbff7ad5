"""Start and stop a real tritonserver in the background: for the demo, tests and benchmarks.

    with TritonProcess(Path("model_repository")) as server:
        print(server.grpc_url, server.http_url)

Uses the ``tritonserver`` of this environment (the embedded binary after
``make setup``), on free loopback ports unless ports are given. With ``admin_key`` the
admin APIs (shared memory, trace, logging; model control when on) need that key, as in
every shipped deployment. The server's shared-memory regions are named with a prefix of
this object's own, so a stop that has to SIGKILL everything still removes them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tritonclf.serving import leftovers, stub_health
from tritonclf.serving.admin_apis import restriction_flags


class ServerStartError(RuntimeError):
    """The server exited or never became ready; the message carries the end of its log."""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tritonserver_executable() -> str:
    """This environment's ``tritonserver`` (the venv's console script), else the one on PATH."""
    beside_python = Path(sys.executable).parent / "tritonserver"
    if beside_python.is_file():
        return str(beside_python)
    found = shutil.which("tritonserver")
    if not found:
        raise ServerStartError("no tritonserver found: run `make setup`, or use NVIDIA's Triton container")
    return found


class TritonProcess:
    """A tritonserver child process bound to loopback ports, stopped on exit."""

    def __init__(
        self,
        repository: Path | str,
        *,
        http_port: int | None = None,
        grpc_port: int | None = None,
        metrics_port: int | None = None,
        log_path: Path | None = None,
        extra_args: tuple[str, ...] = (),
        ready_timeout_s: float = 120.0,
        executable: Path | str | None = None,
        env: dict[str, str] | None = None,
        new_session: bool = True,
        admin_key: str | None = None,
    ):
        # A URL (s3://, gs://, as://) stays a string: Path() would fold its "//".
        self.repository = repository if isinstance(repository, str) and "://" in repository else Path(repository)
        self.http_port = http_port or free_port()
        self.grpc_port = grpc_port or free_port()
        self.metrics_port = metrics_port or free_port()
        self.log_path = Path(log_path) if log_path else None
        self.extra_args = extra_args
        self.env = env  # extra variables for the launcher, e.g. TRITONCLF_STUB_CHECK_S
        self.ready_timeout_s = ready_timeout_s
        # Another program that takes tritonserver's arguments, e.g. deploy/tritonserver-secure.
        self.executable = str(executable) if executable else None
        # False: the server (and its stubs) stay in the caller's process group, so whoever
        # ends that group ends them too (the GPU kit's runner does, when a phase times out).
        self.new_session = new_session
        self.admin_key = admin_key
        # The launcher adds its own pid and token after this.
        self.region_prefix_start = f"{leftovers.prefix_start(os.environ)}{os.getpid()}-{secrets.token_hex(4)}-"
        self.process: subprocess.Popen | None = None
        self._log_file = None

    @property
    def http_url(self) -> str:
        """``host:port`` for tritonclient.http."""
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        """``host:port`` for tritonclient.grpc."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        """Prometheus metrics endpoint."""
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def command(self) -> list[str]:
        """The tritonserver command line."""
        return [
            self.executable or tritonserver_executable(),
            f"--model-repository={self.repository}",
            f"--http-port={self.http_port}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-port={self.metrics_port}",
            "--http-address=127.0.0.1",
            "--grpc-address=127.0.0.1",
            *self.extra_args,
            *(restriction_flags(self.extra_args, self.admin_key) if self.admin_key else ()),
        ]

    def start(self) -> TritonProcess:
        """Launch and wait until ``/v2/health/ready`` answers 200."""
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.command(),
            stdout=self._log_file or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=self.new_session,  # our Ctrl-C goes to us; stop() signals the server itself
            env={**os.environ, **(self.env or {}), leftovers.PREFIX_START_VARIABLE: self.region_prefix_start},
        )
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError(f"tritonserver exited with code {self.process.returncode}{self._log_tail()}")
            if self.is_ready():
                return self
            time.sleep(0.2)
        self.stop()
        raise ServerStartError(f"tritonserver was not ready after {self.ready_timeout_s:.0f} s{self._log_tail()}")

    def is_ready(self) -> bool:
        """Whether the server answers ready (every model loaded)."""
        return self._get_status("/v2/health/ready") == 200

    def is_live(self) -> bool:
        """Whether the server process answers at all."""
        return self._get_status("/v2/health/live") == 200

    def _get_status(self, path: str) -> int | None:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}{path}", timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as err:
            return err.code
        except (urllib.error.URLError, OSError):
            return None

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (Triton drains in-flight requests), then SIGKILL if it does not exit in time."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                if self.new_session:
                    os.killpg(self.process.pid, signal.SIGKILL)  # its stubs too
                else:
                    # In the caller's group: the launcher's tree (Triton, its stubs) by hand, the launcher last.
                    for pid in reversed(_tree(self.process.pid)):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                self.process.wait()
                # Nobody is left to remove the regions: the launcher went with the rest. A command
                # that names its own prefix (the GPU kit's binary) has its regions under that one.
                leftovers.remove_leftovers(leftovers.region_prefix(self.command()) or self.region_prefix_start)
        if self._log_file:
            self._log_file.close()
            self._log_file = None
        return self.process.returncode if self.process else None

    def _log_tail(self, lines: int = 20) -> str:
        if not self.log_path or not self.log_path.is_file():
            return ""
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "; end of the server log:\n" + "\n".join(tail)

    def __enter__(self) -> TritonProcess:
        """Start on entering the ``with`` block."""
        return self.start()

    def __exit__(self, *exc) -> None:
        """Stop on leaving it."""
        self.stop()


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants, parents before children."""
    found, i = [pid], 0
    while i < len(found):
        found += stub_health.child_pids(found[i])
        i += 1
    return found
