"""A killed Python stub, on the real server: the probe fails while it is broken, and the launcher heals it.

Triton 2.51 never restarts a dead stub and keeps answering 200 on every health endpoint;
the requests routed to the dead instance fail forever. These tests SIGKILL one stub of
the served ensemble (preprocessing or classifier) under load and measure: how many
requests failed, how long until every new request succeeds again (the bound is
30 s), and that every request got an answer. Run with ``-s`` to see the numbers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tritonclf.client.status import OK
from tritonclf.serving import stub_health
from tritonclf.serving.process import TritonProcess
from tritonclf_lab.bench.load import BackgroundLoad
from tritonclf_lab.bench.procmem import descendants

from ..conftest import ROOT, SAMPLES

pytestmark = pytest.mark.integration

HEAL_BOUND_S = 30.0
MODEL = "efficientnet_lite0"


def stub_pids(server: TritonProcess) -> dict[str, int]:
    """{instance name: pid} of the live stubs under the launcher."""
    found = {}
    for pid in descendants(server.process.pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        argv = [a.decode() for a in argv if a]
        if argv and argv[0].endswith(stub_health.STUB_EXECUTABLE):
            found[argv[-2]] = pid
    return found


def triton_pid(server: TritonProcess) -> int:
    """The tritonserver process itself (the launcher's child while the watchdog runs)."""
    for pid in descendants(server.process.pid):
        if Path(f"/proc/{pid}/comm").read_text().strip() == "tritonserver":
            return pid
    raise AssertionError("no tritonserver process under the launcher")


def manifest_probe(kind: str, server: TritonProcess) -> list[str]:
    """The k8s base deployment's probe command, pointed at this server and this checkout's script."""
    deployment = yaml.safe_load((ROOT / "deploy" / "k8s" / "base" / "deployment.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    command = list(container[kind]["exec"]["command"])
    script = next(i for i, part in enumerate(command) if part.endswith("stub_health.py"))
    command[: script + 1] = [sys.executable, stub_health.__file__]
    return [part.replace("127.0.0.1:8000", server.http_url) for part in command]


def run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_probes_fail_while_a_stub_is_dead_though_triton_says_ready(repository, tmp_path):
    # The watchdog is off: the broken state stays, as in NVIDIA's container.
    env = {"TRITONCLF_STUB_CHECK_S": "0"}
    with TritonProcess(repository, log_path=tmp_path / "triton.log", env=env) as server:
        for kind in ("livenessProbe", "readinessProbe"):
            assert run(manifest_probe(kind, server)).returncode == 0, kind
        os.kill(stub_pids(server)[f"{MODEL}_preprocess_0_0"], signal.SIGKILL)
        time.sleep(0.5)
        for kind in ("livenessProbe", "readinessProbe"):
            result = run(manifest_probe(kind, server))
            assert result.returncode == 1, kind
            assert f"{MODEL}_preprocess ({MODEL}_preprocess_0_0)" in result.stderr
            assert len(result.stderr.strip().splitlines()) == 1
        # Why the probe exists: every endpoint of Triton's own still says all is well.
        assert server.is_ready()
        assert server.is_live()


@pytest.mark.parametrize(
    ("instance", "mode"),
    [
        # make test heals each kind of stub once, one per model-control mode; make test-long the other two.
        pytest.param(f"{MODEL}_preprocess_0_0", "none", marks=pytest.mark.long),
        (f"{MODEL}_model_0_1", "none"),
        (f"{MODEL}_preprocess_0_1", "explicit"),
        pytest.param(f"{MODEL}_model_0_0", "explicit", marks=pytest.mark.long),
    ],
)
def test_a_stub_killed_under_load_heals_within_30_s(repository, tmp_path, instance, mode):
    explicit = ("--model-control-mode=explicit", "--load-model=*") if mode == "explicit" else ()
    # A reloaded model's old instance, its stub dead, never finishes unloading: the stop at the end
    # would wait out all of Triton's exit timeout (30 s by default).
    args = (*explicit, "--exit-timeout-secs=5")
    env = {"TRITONCLF_STUB_CHECK_S": "1"}
    with TritonProcess(repository, log_path=tmp_path / "triton.log", extra_args=args, env=env) as server:
        server_pid = triton_pid(server)
        images = [("chelsea", (SAMPLES / "chelsea.jpg").read_bytes())]
        with BackgroundLoad(server.grpc_url, images, concurrency=4, timeout_s=30, error_pause_s=0.05) as load:
            time.sleep(2)
            killed_at = time.monotonic()
            os.kill(stub_pids(server)[instance], signal.SIGKILL)
            # Healed = a stretch of 5 s in which every answer is a success, at most 45 s after the kill.
            while time.monotonic() - killed_at < 45:
                time.sleep(1)
                failures = [o.end for o in list(load.outcomes) if o.status != OK]
                quiet_since = max(failures, default=killed_at)
                if time.monotonic() - quiet_since > 5:
                    break
        outcomes = load.outcomes
        failed = [o for o in outcomes if o.status != OK]
        healed_s = max((o.end for o in failed), default=killed_at) - killed_at
        after = [o for o in outcomes if o.start > killed_at + healed_s]
        statuses = sorted({o.status for o in failed})
        print(
            f"\n{mode}: killed {instance}: {len(failed)} of {len(outcomes)} requests failed {statuses}, "
            f"healed {healed_s:.1f} s after the kill, {len(after)} requests after it all OK"
        )
        assert healed_s <= HEAL_BOUND_S, f"still failing {healed_s:.1f} s after the kill"
        assert len(after) >= 10
        assert all(o.status == OK for o in after)
        # Nothing lost without an answer: every failure is an error status with its message.
        assert all(o.message for o in failed)
        assert set(stub_pids(server)) >= {instance}, "the healed server runs every instance again"
        if mode == "explicit":
            assert triton_pid(server) == server_pid, "explicit mode reloads the model, it does not restart Triton"
        log = (tmp_path / "triton.log").read_text()
        assert ("reloading model" if mode == "explicit" else "restarting tritonserver") in log
