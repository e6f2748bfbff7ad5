"""When the launcher starts a tritonserver again that exited without being asked to.

    policy = RestartPolicy()
    decision = policy.after_exit(-11, was_up=True, up_s=42.0)   # killed by SIGSEGV after 42 s up
    decision.restart, decision.delay_s, decision.line           # True, 1.0, "tritonserver killed by ..."

- A death by a signal (a crash, the OOM killer, SIGKILL) is followed by a restart, whenever it
  comes: a client can kill a server the moment it starts listening. The delay doubles from
  1 s to 60 s with each failure in a row; 60 s up resets it.
- A crash loop ends it: 5 deaths by a signal with no 60 s up in between, and the launcher
  gives up with the last code (a server that crashes right after each start serves nobody,
  and an outer supervisor, or the user, should see it).
- A first start that exits with a code before it was up is not restarted: a repository that
  does not load or a flag Triton refuses is the user's to fix, and they see it at once.
- A later start that exits with a code before it is up could not load its models (an
  unreadable repository, a full disk): it is retried, for as long as it takes, since the
  server it replaces was serving. So is a non-zero exit after the server was up.
- Exit code 0 is Triton's answer to a SIGTERM or SIGINT sent to it directly: a stop, not a failure.
"""

from __future__ import annotations

import dataclasses
import signal

FIRST_DELAY_S = 1.0
MAX_DELAY_S = 60.0
# Up this long and the server counts as stable again: the delay and the crash count start over.
STABLE_S = 60.0
MAX_CRASHES_IN_A_ROW = 5


def exit_code(returncode: int) -> int:
    """Popen's returncode -> a shell's exit status (-11 -> 139)."""
    return 128 - returncode if returncode < 0 else returncode


def how_it_ended(returncode: int) -> str:
    """``killed by SIGSEGV`` or ``exit 1``."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit {returncode}"


@dataclasses.dataclass(frozen=True)
class Decision:
    """Start again after ``delay_s``, or end the launcher with ``code``; ``line`` says which and why."""

    restart: bool
    delay_s: float
    code: int
    line: str


@dataclasses.dataclass
class RestartPolicy:
    """Backoff and a crash-loop limit over the exits of one launcher's servers."""

    first_delay_s: float = FIRST_DELAY_S
    max_delay_s: float = MAX_DELAY_S
    stable_s: float = STABLE_S
    max_crashes: int = MAX_CRASHES_IN_A_ROW
    ever_up: bool = False
    failures: int = 0  # exits in a row without a stable run, crashes and failed loads alike
    crashes: int = 0  # deaths by a signal among them

    def after_exit(self, returncode: int, was_up: bool, up_s: float) -> Decision:
        """What to do about a server that exited unasked: ``returncode`` as Popen gives it."""
        code = exit_code(returncode)
        ended = how_it_ended(returncode)
        if returncode == 0:
            return Decision(False, 0.0, 0, "tritonserver stopped (exit 0): stopping too")
        if returncode > 0 and not self.ever_up and not was_up:
            return Decision(False, 0.0, code, f"tritonserver never became ready ({ended}): not restarting it")
        self.ever_up = self.ever_up or was_up
        if was_up and up_s >= self.stable_s:
            self.failures = self.crashes = 0
        self.failures += 1
        if returncode < 0:
            self.crashes += 1
        if self.crashes >= self.max_crashes:
            return Decision(
                False,
                0.0,
                code,
                f"tritonserver {ended}: {self.crashes} crashes in a row without {self.stable_s:.0f} s up, giving up",
            )
        delay = min(self.first_delay_s * 2 ** (self.failures - 1), self.max_delay_s)
        if was_up:
            what = f"tritonserver {ended} after {up_s:.0f} s up"
        elif returncode > 0:
            what = f"restarted tritonserver could not load its models ({ended}; its log says why)"
        else:
            what = f"tritonserver {ended} before it was ready"
        crashes = f", crash {self.crashes} of {self.max_crashes} in a row" if returncode < 0 else ""
        return Decision(True, delay, code, f"{what}: starting it again in {delay:.0f} s{crashes}")

    def healed(self) -> None:
        """The watchdog restarted a server whose stub died: it was up, so a later failure counts as after one."""
        self.ever_up = True
