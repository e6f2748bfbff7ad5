"""A crashed or killed tritonserver, on the real server: the launcher brings it back and leaves nothing behind.

Each test breaks one launcher's server the way a hostile client, the OOM killer or an operator
would, and measures what happens: how long until it serves again, what it left in the process
table and in ``/dev/shm``, and that another server on the same machine (the session's) keeps
all of its own. Run with ``-s`` for the numbers docs/RELIABILITY.md quotes.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tritonclf.client.status import OK
from tritonclf.serving import leftovers
from tritonclf.serving.process import TritonProcess
from tritonclf.serving.stub_health import process_state
from tritonclf_lab.bench.load import BackgroundLoad
from tritonclf_lab.bench.procmem import descendants

from ..conftest import SAMPLES

pytestmark = pytest.mark.integration
MODEL = "efficientnet_lite0"
IMAGES = [("chelsea", (SAMPLES / "chelsea.jpg").read_bytes())]
# Nested this deep, Triton 2.51's JSON parser runs out of stack; 30,000 deep it still answers 400.
DEEP_JSON_DEPTH = 100_000
BACK_WITHIN_S = 20.0
GONE_WITHIN_S = 15.0


class Launched:
    """The tritonserver binary under a launcher, its stubs and its shared-memory regions, as they are now."""

    def __init__(self, server: TritonProcess):
        self.server = server
        pid = triton_pid(server)
        assert pid is not None, "no tritonserver binary under the launcher"
        self.triton_pid = pid
        argv = Path(f"/proc/{self.triton_pid}/cmdline").read_bytes().decode().split("\0")
        self.prefix = leftovers.region_prefix(argv)
        assert self.prefix, "the launcher names every server's regions"
        self.stubs = set(leftovers.stub_pids(self.prefix))
        self.regions = {path.name for path in leftovers.regions(self.prefix)}
        assert len(self.stubs) == 4 and len(self.regions) == 4, (self.stubs, self.regions)

    def alive_stubs(self) -> set[int]:
        return {pid for pid in self.stubs if process_state(pid) not in (None, "Z")}

    def present_regions(self) -> set[str]:
        return {name for name in self.regions if (leftovers.SHM_DIR / name).exists()}


def triton_pid(server: TritonProcess) -> int | None:
    """The tritonserver binary, the launcher's child; None between a death and a restart."""
    for pid in descendants(server.process.pid):
        try:
            program = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if program.endswith(b"/tritonserver/bin/tritonserver"):
            return pid
    return None


def wait_for(condition, timeout_s: float, interval_s: float = 0.1) -> float | None:
    """Seconds until ``condition()`` held, None if it did not within ``timeout_s``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if condition():
            return time.monotonic() - start
        time.sleep(interval_s)
    return None


def serving_again_s(load: BackgroundLoad, since: float, timeout_s: float = 60.0, quiet_s: float = 3.0) -> float:
    """Seconds from ``since`` to the last failed request, once ``quiet_s`` pass without one.

    gRPC clients reconnect with a backoff of their own: the first requests after a restart may still fail.
    """
    while time.monotonic() - since < timeout_s:
        time.sleep(0.5)
        last_failure = max((o.end for o in list(load.outcomes) if o.status != OK), default=since)
        if time.monotonic() - last_failure > quiet_s:
            return last_failure - since
    raise AssertionError(f"requests still failing {timeout_s:.0f} s after")


def launcher_lines(log: Path) -> list[str]:
    return [line for line in log.read_text(errors="replace").splitlines() if line.startswith("tritonclf launcher: ")]


def deep_json_body(depth: int) -> bytes:
    nested = "[" * depth + "]" * depth
    return f'{{"inputs":[{{"name":"image","datatype":"BYTES","shape":[1,1],"data":{nested}}}]}}'.encode()


def post(url: str, body: bytes) -> int | str:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except (urllib.error.URLError, OSError) as err:  # the server died with the connection open
        return type(err).__name__


def classify(server: TritonProcess) -> int:
    import numpy as np
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        tensor = grpcclient.InferInput("image", [1, 1], "BYTES")
        tensor.set_data_from_numpy(np.array([IMAGES[0][1]], dtype=np.object_).reshape(1, 1))
        return int(client.infer(MODEL, [tensor], client_timeout=60).as_numpy("probabilities").argmax())
    finally:
        client.close()


def test_a_deeply_nested_json_body_kills_triton_and_the_launcher_brings_it_back_within_20_s(repository, tmp_path):
    log = tmp_path / "triton.log"
    with TritonProcess(repository, log_path=log) as server:
        before = Launched(server)
        # The launcher's own readiness poll can trail the client's: a crash it has not seen ready
        # counts as a crash at start-up, which the assertions below tell apart.
        seen_ready = lambda: any(line.endswith("tritonserver is ready") for line in launcher_lines(log))  # noqa: E731
        assert wait_for(seen_ready, 10) is not None
        url = f"http://{server.http_url}/v2/models/{MODEL}/infer"
        assert post(url, deep_json_body(30_000)) == 400  # Triton's own answer below the depth that kills it
        sent = time.monotonic()
        answer = post(url, deep_json_body(DEEP_JSON_DEPTH))
        # Either this Triton dies of it (2.51 does) and the launcher restarts it, or it refuses the body.
        died = wait_for(lambda: process_state(before.triton_pid) is None, 10) is not None
        back_s = wait_for(server.is_ready, BACK_WITHIN_S + 10)
        assert back_s is not None and time.monotonic() - sent <= BACK_WITHIN_S, f"not serving {BACK_WITHIN_S} s on"
        assert classify(server) in range(281, 286)
        lines = launcher_lines(log)
        if died:
            assert any(
                "tritonserver killed by SIGSEGV after" in line and "starting it again in 1 s" in line for line in lines
            )
            assert any("removed what tritonserver left behind" in line for line in lines)
            assert not before.alive_stubs() and not before.present_regions()
        else:
            assert answer == 400
        print(
            f"\ndeep JSON ({DEEP_JSON_DEPTH} deep): answer {answer}, Triton died: {died}, ready again after "
            f"{time.monotonic() - sent:.1f} s; launcher: {lines}"
        )


def test_tritonserver_sigkilled_under_load_leaves_no_stub_or_region_and_another_server_keeps_its_own(
    repository, server, tmp_path
):
    other = Launched(server)  # the session's server: other ports, another launcher
    log = tmp_path / "triton.log"
    with TritonProcess(repository, log_path=log) as victim:
        before = Launched(victim)
        with BackgroundLoad(victim.grpc_url, IMAGES, concurrency=8, timeout_s=30, error_pause_s=0.05) as load:
            time.sleep(3)
            killed_at = time.monotonic()
            os.kill(before.triton_pid, signal.SIGKILL)
            gone_s = wait_for(lambda: not before.alive_stubs() and not before.present_regions(), GONE_WITHIN_S)
            back_s = wait_for(lambda: triton_pid(victim) not in (None, before.triton_pid) and victim.is_ready(), 60)
            answered_s = serving_again_s(load, killed_at)
        assert gone_s is not None, f"left {before.alive_stubs()} and {before.present_regions()}"
        assert back_s is not None
        # The other server kept every stub and region of its own, and serves.
        assert other.alive_stubs() == other.stubs and other.present_regions() == other.regions
        assert classify(server) in range(281, 286)
        after = Launched(victim)  # the restarted server: four fresh stubs and regions under the same prefix
        assert after.prefix == before.prefix and not after.stubs & before.stubs
        served_after = [o for o in load.outcomes if o.start > killed_at + answered_s]
        assert len(served_after) >= 10 and all(o.status == OK for o in served_after)
        failed = [o for o in load.outcomes if o.status != OK]
        lines = launcher_lines(log)
        assert any("killed by SIGKILL" in line for line in lines)
        (removed,) = [line for line in lines if "removed what tritonserver left behind" in line]
        print(
            f"\nSIGKILL under load: leftovers gone {gone_s:.1f} s after, ready again {back_s:.1f} s after, every "
            f"request answered again {answered_s:.1f} s after ({len(failed)} of {len(load.outcomes)} failed); {removed}"
        )
    # And the last stop leaves nothing either.
    assert wait_for(lambda: not leftovers.stub_pids(before.prefix) and not leftovers.regions(before.prefix), 15)


def test_a_sigkilled_launcher_takes_tritonserver_and_its_stubs_with_it(repository, tmp_path):
    server = TritonProcess(repository, log_path=tmp_path / "triton.log").start()
    try:
        before = Launched(server)
        with BackgroundLoad(server.grpc_url, IMAGES, concurrency=4, timeout_s=30, error_pause_s=0.05):
            time.sleep(2)
            os.kill(server.process.pid, signal.SIGKILL)
            server.process.wait()
            # Triton gets SIGTERM (PR_SET_PDEATHSIG) and shuts down as on any SIGTERM: within its exit timeout.
            gone_s = wait_for(
                lambda: process_state(before.triton_pid) is None and not before.alive_stubs(), 45, interval_s=0.2
            )
        assert gone_s is not None, "tritonserver outlived its launcher"
        assert wait_for(lambda: not before.present_regions(), 10) is not None
        print(f"\nlauncher SIGKILLed under load: tritonserver and its stubs gone after {gone_s:.1f} s, regions too")
    finally:
        server.stop()


@pytest.mark.long  # about 20 s of a stopped stub and a restart
def test_a_stopped_stub_counts_as_dead_and_is_healed(repository, tmp_path):
    log = tmp_path / "triton.log"
    with TritonProcess(repository, log_path=log, env={"TRITONCLF_STUB_CHECK_S": "1"}) as server:
        before = Launched(server)
        stub = min(before.stubs)
        with BackgroundLoad(server.grpc_url, IMAGES, concurrency=4, timeout_s=30, error_pause_s=0.05) as load:
            time.sleep(2)
            stopped_at = time.monotonic()
            os.kill(stub, signal.SIGSTOP)
            healed_s = wait_for(lambda: triton_pid(server) not in (None, before.triton_pid) and server.is_ready(), 45)
            answered_s = serving_again_s(load, stopped_at)
        assert healed_s is not None, "a stopped stub was not noticed"
        assert process_state(stub) in (None, "Z"), "the stopped stub was killed, not left stopped"
        (line,) = [line for line in launcher_lines(log) if "dead Python-backend stub" in line]
        assert " stopped)" in line and "restarting tritonserver" in line
        after = [o for o in load.outcomes if o.start > stopped_at + answered_s]
        assert len(after) >= 10 and all(o.status == OK for o in after)
        failed = [o for o in load.outcomes if o.status != OK]
        print(
            f"\nSIGSTOP of a stub: restarted and ready {healed_s:.1f} s later, every request answered again "
            f"{answered_s:.1f} s later ({len(failed)} of {len(load.outcomes)} failed meanwhile); {line}"
        )


@pytest.mark.long  # several restart rounds with backoff
def test_a_restart_that_cannot_load_the_models_keeps_retrying_until_it_can(repository, tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(repository, copy)
    log = tmp_path / "triton.log"
    with TritonProcess(copy, log_path=log, env={"TRITONCLF_STUB_CHECK_S": "1"}) as server:
        before = Launched(server)
        hidden = tmp_path / "hidden"
        copy.rename(hidden)  # the repository is gone, as an unmounted volume or a full disk would have it
        os.kill(min(before.stubs), signal.SIGKILL)  # a partial failure: one stub of four dead
        failed_twice = wait_for(
            lambda: sum("could not load its models" in line for line in launcher_lines(log)) >= 2, 60
        )
        assert failed_twice is not None, launcher_lines(log)
        assert server.process.poll() is None, "the launcher gave up on a server that was serving"
        hidden.rename(copy)
        back_s = wait_for(server.is_ready, 90)
        assert back_s is not None, launcher_lines(log)
        assert classify(server) in range(281, 286)
        assert wait_for(lambda: "tritonserver is ready again" in launcher_lines(log)[-1], 10) is not None
        print("\nrestart without a repository: " + " | ".join(launcher_lines(log)))
