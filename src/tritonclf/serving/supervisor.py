"""Run tritonserver as a child: restart it when it dies, heal it when a Python-backend stub dies, clean up after it.

What the launcher does for the server it started (and for no other server on the machine):

- **A crash** (any signal, or a non-zero exit after it was up) is followed by a restart, with
  a backoff and a crash-loop limit (serving/restart_policy.py: 1 s doubling to 60 s, five
  crashes in a row without a minute up and it gives up). A restart that cannot load the
  models is retried rather than ending a server that was serving. A server whose first start
  fails is not restarted: that is the user's to fix. One line each.
- **Leftovers.** Each server gets a shared-memory prefix of its own
  (``--backend-config=python,shm-region-prefix-name=...``, serving/leftovers.py): after it
  exits, for whatever reason, the stubs and ``/dev/shm`` regions carrying that prefix are
  killed and removed before anything starts again, with one line saying what went. The
  launcher is a child subreaper, so stubs orphaned by a dead server become its children,
  never init's.
- **It ends with its child**: signals sent to the launcher go to Triton, and the launcher
  exits with Triton's code; Triton gets SIGTERM when the launcher dies, even of SIGKILL
  (``PR_SET_PDEATHSIG``), and shuts down as on any SIGTERM.
- **A dead or stopped stub.** Triton (since 24.06) never restarts a dead stub, and its health
  endpoints stay green, so every ``TRITONCLF_STUB_CHECK_S`` seconds (default 2; 0 turns the
  check off) the launcher looks for itself (serving/stub_health.py) and heals:

  - explicit model control (``--model-control-mode=explicit``): the one broken model is
    reloaded through the repository API, with the key from the command's own
    ``--http-restricted-api=...model-repository...:KEY=VALUE`` when that API is restricted.
    A load request for an unchanged model is a no-op in Triton, so the reload carries the
    model's current config with one extra parameter (``tritonclf_reload``), which makes
    Triton load fresh instances beside the old ones and swap them in: the other models,
    and this model's healthy instances until the swap, keep serving.
  - ``none`` or ``poll`` (no load API): a restart. SIGTERM and a few seconds let Triton
    finish the requests its healthy instances hold (it would otherwise wait out all of
    ``--exit-timeout-secs``: the dead instance never unloads), then the same command starts
    again. Requests that arrive meanwhile are refused (UNAVAILABLE, connection refused).

  A stopped stub is SIGKILLed first: Triton waits forever for a stopped stub to unload.

``--help`` and ``--version`` are the only arguments for which the launcher ``exec``s Triton.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

from tritonclf.serving import leftovers, stub_health
from tritonclf.serving.restart_policy import RestartPolicy, exit_code
from tritonclf.serving.triton_args import last_value, model_control_mode, option_values

RELOAD_PARAMETER = "tritonclf_reload"
DEFAULT_CHECK_INTERVAL_S = 2.0
# A model that keeps losing stubs right after each heal is not healed by healing again.
MAX_HEALS_PER_WINDOW = 5
HEAL_WINDOW_S = 300.0
# How long a restart lets Triton finish the requests its healthy instances hold.
RESTART_GRACE_S = 5.0
_FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
_POLL_S = 0.2
_READY_POLL_S = 0.5
# Without an HTTP endpoint to ask, a server that has run this long counts as up.
_UP_WITHOUT_HTTP_S = 30.0


def http_address(args: Sequence[str]) -> str | None:
    """``host:port`` of Triton's HTTP endpoint from its arguments; None with ``--allow-http=false``."""
    if last_value(args, "--allow-http", "true").lower() in {"false", "0", "no"}:
        return None
    host = last_value(args, "--http-address", "0.0.0.0")
    host = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host
    return f"{host}:{last_value(args, '--http-port', '8000')}"


def repository_api_header(args: Sequence[str]) -> tuple[str, str] | None:
    """The (header, value) that ``--http-restricted-api`` requires for the model-repository API, if any."""
    for spec in option_values(args, "--http-restricted-api"):
        apis, _, credential = spec.partition(":")
        if "model-repository" in apis.split(",") and "=" in credential:
            key, value = credential.split("=", 1)
            return key, value
    return None


def reload_request(
    http_url: str, model: str, config: Mapping, header: tuple[str, str] | None
) -> urllib.request.Request:
    """A repository-API load of ``model`` that Triton cannot treat as a no-op."""
    forced = dict(config)
    forced["parameters"] = {**config.get("parameters", {}), RELOAD_PARAMETER: {"string_value": str(time.time_ns())}}
    body = json.dumps({"parameters": {"config": json.dumps(forced)}}).encode()
    request = urllib.request.Request(f"http://{http_url}/v2/repository/models/{model}/load", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    if header:
        request.add_header(*header)
    return request


def _say(message: str) -> None:
    print(f"tritonclf launcher: {message}", file=sys.stderr, flush=True)


_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> None:
    """Linux's prctl(2); nothing elsewhere (the embedded binary is Linux-only anyway)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def _die_with(parent: int):
    """A ``preexec_fn``: the child gets SIGTERM when ``parent`` dies; it never starts if ``parent`` is gone."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None

    def preexec() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the launcher died between fork and prctl: do not start at all
            os._exit(1)

    return preexec


@dataclasses.dataclass(frozen=True)
class Run:
    """How one server's run ended."""

    returncode: int
    up_s: float | None  # seconds from ready to exit; None when it never was
    healed: bool  # the watchdog stopped it to start it again


class Supervisor:
    """One tritonserver child at a time: restarted when it dies, healed when its stubs die, cleaned up after."""

    def __init__(self, command: list[str], env: Mapping[str, str], interval_s: float):
        self.command = command
        self.env = dict(env)
        self.args = command[1:]
        self.http_url = http_address(self.args)
        self.interval_s = interval_s
        self.prefix = leftovers.region_prefix(self.args)
        self.child: subprocess.Popen | None = None
        self.stop_signal: int | None = None  # a signal came: let Triton exit, start nothing
        self.watching = interval_s > 0 and self.http_url is not None
        self.heals: list[float] = []
        self.policy = RestartPolicy()

    def run(self) -> int:
        """Start Triton and keep it running until it is asked to stop; its exit code (or the last one's)."""
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
        for signum in _FORWARDED_SIGNALS:
            signal.signal(signum, self._forward)
        started_before = False
        while True:
            run = self._run_once(started_before)
            started_before = True
            if self.stop_signal is not None or run.healed:
                self._clean_up()
                if self.stop_signal is not None:
                    return exit_code(run.returncode)
                self.policy.healed()
                continue
            decision = self.policy.after_exit(run.returncode, run.up_s is not None, run.up_s or 0.0)
            _say(decision.line)
            self._clean_up()
            if not decision.restart or not self._pause(decision.delay_s):
                return decision.code

    def _forward(self, signum, _frame) -> None:
        self.stop_signal = signum
        if self.child is not None and self.child.returncode is None:
            self.child.send_signal(signum)

    def _pause(self, seconds: float) -> bool:
        """Sleep, unless a stop signal comes first; whether to go on."""
        deadline = time.monotonic() + seconds
        while self.stop_signal is None and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        return self.stop_signal is None

    def _run_once(self, restarted: bool) -> Run:
        """Start the server, watch it until it exits; how it ended."""
        self.child = subprocess.Popen(self.command, env=self.env, preexec_fn=_die_with(os.getpid()))  # noqa: PLW1509
        if self.stop_signal is not None:  # arrived while it started
            self.child.send_signal(self.stop_signal)
        started = time.monotonic()
        up_at = None
        next_look = started
        while True:
            try:
                return Run(self.child.wait(timeout=_POLL_S), None if up_at is None else time.monotonic() - up_at, False)
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if self.stop_signal is not None or now < next_look:
                continue
            if up_at is None:
                next_look = now + _READY_POLL_S
                if self._is_up(now - started):
                    up_at = now
                    # The first line too: from here a crash counts as a crash of a serving server.
                    _say("tritonserver is ready again" if restarted else "tritonserver is ready")
                continue
            next_look = now + self.interval_s
            if self.watching and self._stubs_need_a_restart():
                self._stop_child(self.child)
                return Run(self.child.wait(), now - up_at, True)

    def _is_up(self, running_s: float) -> bool:
        """Ready over HTTP; without an HTTP endpoint, still running after a while."""
        if self.http_url is None:
            return running_s >= _UP_WITHOUT_HTTP_S
        return stub_health.is_ready(self.http_url, timeout_s=1.0)

    def _stubs_need_a_restart(self) -> bool:
        """Check the stubs, heal by a reload where that works; True when the server has to restart."""
        try:
            dead, stopped = stub_health.unhealthy_stubs(self.http_url, server_pid=self.child.pid)
        except stub_health.ServerUnreachable:
            return False  # starting, stopping, or between two checks of a reload
        if not dead or self.stop_signal is not None:
            return False
        now = time.monotonic()
        self.heals = [t for t in self.heals if now - t < HEAL_WINDOW_S] + [now]
        line = stub_health.describe(dead, stopped)
        if len(self.heals) > MAX_HEALS_PER_WINDOW:
            _say(f"{line}; {MAX_HEALS_PER_WINDOW} heals in {HEAL_WINDOW_S:.0f} s, no more healing")
            self.watching = False
            return False
        # A stopped stub never answers Triton's unload: make it a dead one, which Triton handles.
        leftovers.kill_stubs(stopped.values())
        if model_control_mode(self.args) == "explicit" and self._reload(dead):
            return False
        _say(f"{line}: restarting tritonserver")
        return True

    @staticmethod
    def _stop_child(child: subprocess.Popen) -> None:
        """SIGTERM, a short drain, then SIGKILL (what the stubs leave is cleaned up after).

        With a dead stub Triton never finishes its own shutdown: the broken instance does
        not unload, so it waits out all of ``--exit-timeout-secs``. The grace period lets the
        requests held by healthy instances finish.
        """
        child.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(RESTART_GRACE_S)
        if child.poll() is None:
            child.kill()

    def _clean_up(self) -> None:
        """Kill the exited server's stubs that outlived it and delete its shared-memory regions; one line if any."""
        if self.prefix is not None:
            removed = leftovers.remove_leftovers(self.prefix)
            if removed:
                _say(f"removed what tritonserver left behind: {removed.describe()}")
        _reap_adopted()

    def _reload(self, dead: Mapping[str, list[str]]) -> bool:
        header = repository_api_header(self.args)
        try:
            configs = stub_health.loaded_model_configs(self.http_url)
            for model, instances in sorted(dead.items()):
                _say(f"stub of {', '.join(instances)} died: reloading model {model}")
                request = reload_request(self.http_url, model, configs[model], header)
                with urllib.request.urlopen(request, timeout=300) as response:
                    response.read()
        except (urllib.error.URLError, OSError, KeyError, stub_health.ServerUnreachable) as err:
            _say(f"reload failed ({err}); restarting instead")
            return False
        return True


def check_interval_s(env: Mapping[str, str]) -> float:
    """``TRITONCLF_STUB_CHECK_S`` (seconds between checks; 0 turns the watchdog off)."""
    raw = env.get("TRITONCLF_STUB_CHECK_S", "")
    try:
        return float(raw) if raw else DEFAULT_CHECK_INTERVAL_S
    except ValueError:
        raise ValueError(f"TRITONCLF_STUB_CHECK_S={raw!r} is not a number of seconds") from None


def run(command: list[str], env: Mapping[str, str]) -> int:
    """Supervise Triton, or ``exec`` it for ``--help`` and ``--version``."""
    interval = check_interval_s(env)
    if any(a in {"--help", "--version"} for a in command[1:]):
        os.execve(command[0], command, dict(env))
    return Supervisor(command, env, interval).run()


def _reap_adopted() -> None:
    """Collect the exit status of adopted stubs that ended on their own, so no zombie is left.

    Called between two servers: the server child has been waited for, and no other child runs.
    """
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
