"""Is every Python-backend stub of a running Triton alive? A probe that does not trust Triton's readiness.

    python3 stub_health.py --url 127.0.0.1:8000            # exit 0: all stubs alive
    python3 stub_health.py --url 127.0.0.1:8000 --ready    # also require /v2/health/ready

Since 24.06 (server#7347) Triton no longer restarts a Python stub that died (OOM killer,
a decoder crash, a native bug): the instance fails every request routed to it with
"Stub process ... is not healthy" while ``/v2/health/ready`` and the model's own ready
endpoint still answer 200. This check compares what the server's loaded models declare
(instance groups of every ``backend: "python"`` model, from Triton's model-config API)
with the stub processes that are children of the server listening on that port
(``/proc``: a stub's argv ends with its instance name, e.g.
``efficientnet_lite0_preprocess_0_1``). A stopped stub (SIGSTOP) holds its instance's requests
as a dead one does, so it counts as dead too. One line says which instance is dead.

Stdlib only and self-contained on purpose: the deployments copy this file into NVIDIA's
container (no tritonclf installed there) and run it as the Kubernetes liveness and
readiness probe; the embedded launcher imports it to heal (serving/launcher.py).
Exit codes: 0 healthy, 1 a stub is dead or stopped (or, with --ready, the server is not ready),
2 the server cannot be asked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

PROC = Path("/proc")
STUB_EXECUTABLE = "triton_python_backend_stub"
_TCP_LISTEN = "0A"
# /proc/PID/stat states: stopped by a signal or by a tracer; zombie or dead.
STOPPED = frozenset("Tt")
NOT_RUNNING = STOPPED | frozenset("ZX")


class ServerUnreachable(RuntimeError):
    """Triton's HTTP API did not answer."""


def instance_names(model: str, config: Mapping) -> list[str]:
    """The instance names Triton gives a model's instances: ``{model}_{group}_{index}``.

    A config without instance groups gets one group of one instance (on the CPU, as here;
    Triton fills the group in before the config API shows it, so this is a fallback).
    """
    groups = config.get("instance_group") or [{"count": 1}]
    return [f"{model}_{g}_{i}" for g, group in enumerate(groups) for i in range(int(group.get("count", 1)))]


def expected_stubs(configs: Mapping[str, Mapping]) -> dict[str, list[str]]:
    """{model: instance names} for the Python-backend models among ``configs``."""
    return {
        name: instance_names(name, config)
        for name, config in configs.items()
        if config.get("backend") == "python" or config.get("platform") == "python"
    }


def dead_stubs(expected: Mapping[str, Iterable[str]], alive: Iterable[str]) -> dict[str, list[str]]:
    """{model: its instances with no live stub}; empty when all is well."""
    alive = set(alive)
    dead = {model: [name for name in names if name not in alive] for model, names in expected.items()}
    return {model: names for model, names in dead.items() if names}


def stat_fields(pid: int | str, proc: Path = PROC) -> list[str] | None:
    """/proc/PID/stat from field 3 (the state letter) on; None once the process is gone."""
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:  # exited while we looked
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return text[text.rfind(")") + 2 :].split()


def process_state(pid: int | str, proc: Path = PROC) -> str | None:
    """The state letter of /proc/PID/stat (R, S, T when stopped, Z for a zombie...); None once gone."""
    fields = stat_fields(pid, proc)
    return fields[0] if fields else None


def cmdline(pid: int | str, proc: Path = PROC) -> list[str]:
    """A process's argv; empty once it is gone (or for a kernel thread)."""
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def child_pids(parent: int, proc: Path = PROC) -> list[int]:
    """The processes whose parent is ``parent``."""
    children = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            fields = stat_fields(entry.name, proc)
            if fields and int(fields[1]) == parent:
                children.append(int(entry.name))
    return children


def group_pids(pgid: int, proc: Path = PROC) -> list[int]:
    """The running (not zombie, not exited) processes of process group ``pgid``."""
    members = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            fields = stat_fields(entry.name, proc)
            if fields and int(fields[2]) == pgid and fields[0] not in {"Z", "X"}:
                members.append(int(entry.name))
    return members


def stub_states(server_pid: int, proc: Path = PROC) -> dict[str, tuple[int, str]]:
    """{instance name: (pid, state letter of /proc/PID/stat)} of the stubs that ``server_pid`` started."""
    stubs = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        fields = stat_fields(entry.name, proc)
        if not fields or int(fields[1]) != server_pid:
            continue
        argv = cmdline(entry.name, proc)
        if argv and os.path.basename(argv[0]) == STUB_EXECUTABLE and len(argv) >= 3:
            # ... <instance name> <device kind>: see python_backend's stub_launcher.cc.
            stubs[argv[-2]] = (int(entry.name), fields[0])
    return stubs


def live_stub_instances(server_pid: int, proc: Path = PROC) -> list[str]:
    """Instance names of the running stubs that ``server_pid`` started: not exited, not a zombie, not stopped.

    A stopped stub (SIGSTOP, a debugger) holds its instance's requests as a dead one does.
    """
    return [name for name, (_, state) in stub_states(server_pid, proc).items() if state not in NOT_RUNNING]


def _listening_inodes(port: int, proc: Path) -> set[str]:
    inodes = set()
    for table in ("net/tcp", "net/tcp6"):
        try:
            lines = (proc / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == _TCP_LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def server_pid_for_port(port: int, proc: Path = PROC) -> int | None:
    """The process listening on ``port`` (Triton's HTTP port), found through its socket's inode."""
    inodes = _listening_inodes(port, proc)
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            links = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
        except OSError:  # another user's process, or gone
            continue
        if targets.intersection(links):
            return int(entry.name)
    return None


def _get_json(url: str, timeout_s: float):
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise ServerUnreachable(f"cannot ask Triton at {url}: {err}") from None


def loaded_model_configs(http_url: str, timeout_s: float = 2.0) -> dict[str, dict]:
    """{model: config} of every loaded model, from the statistics and model-config APIs.

    The statistics API lists loaded models without needing the repository API, which
    secure deployments restrict.
    """
    base = http_url if "://" in http_url else f"http://{http_url}"
    stats = _get_json(f"{base}/v2/models/stats", timeout_s)
    names = sorted({entry["name"] for entry in stats.get("model_stats", [])})
    return {name: _get_json(f"{base}/v2/models/{name}/config", timeout_s) for name in names}


def is_ready(http_url: str, timeout_s: float = 2.0) -> bool:
    """Triton's own readiness answer."""
    base = http_url if "://" in http_url else f"http://{http_url}"
    try:
        with urllib.request.urlopen(f"{base}/v2/health/ready", timeout=timeout_s) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def server_pid_for_url(http_url: str) -> int:
    """The pid listening on the port of ``http_url``; raises ServerUnreachable."""
    port = int(http_url.rsplit(":", 1)[1].split("/", maxsplit=1)[0])
    pid = server_pid_for_port(port)
    if pid is None:
        raise ServerUnreachable(f"no process of this user listens on port {port}")
    return pid


def unhealthy_stubs(
    http_url: str, server_pid: int | None = None, timeout_s: float = 2.0
) -> tuple[dict[str, list[str]], dict[str, int]]:
    """({model: instances whose stub is dead or stopped}, {stopped instance: its pid}); raises ServerUnreachable."""
    pid = server_pid or server_pid_for_url(http_url)
    expected = expected_stubs(loaded_model_configs(http_url, timeout_s))
    stubs = stub_states(pid)
    live = [name for name, (_, state) in stubs.items() if state not in NOT_RUNNING]
    stopped = {name: stub_pid for name, (stub_pid, state) in stubs.items() if state in STOPPED}
    return dead_stubs(expected, live), stopped


def check(http_url: str, server_pid: int | None = None, timeout_s: float = 2.0) -> dict[str, list[str]]:
    """{model: instances whose stub is dead or stopped} of the server at ``http_url``; raises ServerUnreachable."""
    return unhealthy_stubs(http_url, server_pid, timeout_s)[0]


def describe(dead: Mapping[str, list[str]], stopped: Iterable[str] = ()) -> str:
    """One line naming every dead instance; those in ``stopped`` are marked as stopped rather than dead."""
    stopped = set(stopped)
    named = {model: [f"{n} stopped" if n in stopped else n for n in names] for model, names in dead.items()}
    parts = [f"{model} ({', '.join(names)})" for model, names in sorted(named.items())]
    return "dead Python-backend stub: " + "; ".join(parts) + " (Triton will not restart it)"


def main(argv: list[str] | None = None) -> int:
    """The probe: one line and an exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="127.0.0.1:8000", help="Triton's HTTP host:port (default: %(default)s)")
    parser.add_argument("--ready", action="store_true", help="also require Triton's /v2/health/ready")
    parser.add_argument("--timeout-s", type=float, default=2.0, help="per HTTP call (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="print nothing when healthy")
    args = parser.parse_args(argv)
    try:
        dead, stopped = unhealthy_stubs(args.url, timeout_s=args.timeout_s)
    except ServerUnreachable as err:
        print(f"stub check: {err}", file=sys.stderr)
        return 2
    if dead:
        print(describe(dead, stopped), file=sys.stderr)
        return 1
    if args.ready and not is_ready(args.url, args.timeout_s):
        print("stub check: Triton is not ready", file=sys.stderr)
        return 1
    if not args.quiet:
        print("all Python-backend stubs alive")
    return 0


if __name__ == "__main__":
    sys.exit(main())
