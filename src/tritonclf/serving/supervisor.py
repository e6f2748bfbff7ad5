"""Run tritonserver as a child and heal it when a Python-backend stub dies.

Triton (since 24.06) never restarts a dead stub, and its health endpoints stay green,
so the embedded launcher watches for itself (serving/stub_health.py, every
``TRITONCLF_STUB_CHECK_S`` seconds, default 2) and heals:

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

Signals sent to the launcher go to Triton, and the launcher exits with Triton's code.
``TRITONCLF_STUB_CHECK_S=0`` turns the watchdog off (the launcher then ``exec``s Triton).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

from tritonclf.serving import stub_health

RELOAD_PARAMETER = "tritonclf_reload"
DEFAULT_CHECK_INTERVAL_S = 2.0
# A model that keeps losing stubs right after each heal is not healed by healing again.
MAX_HEALS_PER_WINDOW = 5
HEAL_WINDOW_S = 300.0
# How long a restart lets Triton finish the requests its healthy instances hold.
RESTART_GRACE_S = 5.0
_FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def flag_values(args: Sequence[str]) -> dict[str, list[str]]:
    """Triton's ``--flag=value`` and ``--flag value`` arguments -> {flag: [values]}."""
    values: dict[str, list[str]] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            if "=" in arg:
                flag, value = arg.split("=", 1)
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                flag, value = arg, args[i + 1]
                i += 1
            else:
                flag, value = arg, ""
            values.setdefault(flag, []).append(value)
        i += 1
    return values


def _last(values: Mapping[str, list[str]], flag: str, default: str) -> str:
    return values.get(flag, [default])[-1]


def http_address(args: Sequence[str]) -> str | None:
    """``host:port`` of Triton's HTTP endpoint from its arguments; None with ``--allow-http=false``."""
    values = flag_values(args)
    if _last(values, "--allow-http", "true").lower() in {"false", "0", "no"}:
        return None
    host = _last(values, "--http-address", "0.0.0.0")
    host = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host
    return f"{host}:{_last(values, '--http-port', '8000')}"


def model_control_mode(args: Sequence[str]) -> str:
    """``none``, ``poll`` or ``explicit``."""
    return _last(flag_values(args), "--model-control-mode", "none").lower()


def repository_api_header(args: Sequence[str]) -> tuple[str, str] | None:
    """The (header, value) that ``--http-restricted-api`` requires for the model-repository API, if any."""
    for spec in flag_values(args).get("--http-restricted-api", []):
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
    print(f"tritonclf watchdog: {message}", file=sys.stderr, flush=True)


class Supervisor:
    """One tritonserver child, restarted or partly reloaded when its stubs die."""

    def __init__(self, command: list[str], env: Mapping[str, str], interval_s: float):
        self.command = command
        self.env = dict(env)
        self.args = command[1:]
        self.http_url = http_address(self.args)
        self.interval_s = interval_s
        self.child: subprocess.Popen | None = None
        self.stopping = threading.Event()  # a signal came: let Triton exit, start nothing
        self.restart = threading.Event()  # the watchdog stopped Triton to start it again
        self.heals: list[float] = []

    def run(self) -> int:
        """Start Triton, watch it until it exits on its own or by a signal; Triton's exit code."""
        for signum in _FORWARDED_SIGNALS:
            signal.signal(signum, self._forward)
        self.child = subprocess.Popen(self.command, env=self.env)
        if self.http_url:
            threading.Thread(target=self._watch, name="stub-watchdog", daemon=True).start()
        while True:
            code = self.child.wait()
            if not self.restart.is_set() or self.stopping.is_set():
                return 128 - code if code < 0 else code
            self.child = subprocess.Popen(self.command, env=self.env)
            self.restart.clear()

    def _forward(self, signum, _frame) -> None:
        self.stopping.set()
        if self.child and self.child.poll() is None:
            self.child.send_signal(signum)

    def _watch(self) -> None:
        while not self.stopping.wait(self.interval_s):
            child = self.child
            if child is None or child.poll() is not None or not stub_health.is_ready(self.http_url):
                continue
            try:
                dead = stub_health.check(self.http_url, server_pid=child.pid)
            except stub_health.ServerUnreachable:
                continue  # starting, stopping, or between two checks of a reload
            if dead and not self.stopping.is_set() and not self._heal(dead):
                return

    def _heal(self, dead: Mapping[str, list[str]]) -> bool:
        """Reload or restart; False when healing keeps failing and the watchdog should stop."""
        now = time.monotonic()
        self.heals = [t for t in self.heals if now - t < HEAL_WINDOW_S] + [now]
        if len(self.heals) > MAX_HEALS_PER_WINDOW:
            _say(f"{stub_health.describe(dead)}; {MAX_HEALS_PER_WINDOW} heals in {HEAL_WINDOW_S:.0f} s, giving up")
            return False
        if model_control_mode(self.args) == "explicit" and self._reload(dead):
            return True
        _say(f"{stub_health.describe(dead)}: restarting tritonserver")
        self.restart.set()
        self._stop_child(self.child)
        # The next check must see the new server, not the old one's missing stubs.
        while self.restart.is_set() and not self.stopping.is_set():
            time.sleep(0.1)
        return True

    @staticmethod
    def _stop_child(child: subprocess.Popen) -> None:
        """SIGTERM, a short drain, then SIGKILL for Triton and its stubs.

        With a dead stub Triton never finishes its own shutdown: the broken instance does
        not unload, so it waits out all of ``--exit-timeout-secs``. The grace period lets the
        requests held by healthy instances finish.
        """
        stubs = stub_health.child_pids(child.pid)
        child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + RESTART_GRACE_S
        while child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if child.poll() is None:
            child.kill()
        for pid in stubs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

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
    """Supervise Triton, or ``exec`` it where there is nothing to watch."""
    interval = check_interval_s(env)
    args = command[1:]
    passthrough = interval <= 0 or http_address(args) is None or any(a in {"--help", "--version"} for a in args)
    if passthrough:
        os.execve(command[0], command, dict(env))
    return Supervisor(command, env, interval).run()
