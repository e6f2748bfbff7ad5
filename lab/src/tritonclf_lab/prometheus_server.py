"""A real Prometheus (Debian's ``prometheus`` package) scraping Triton servers, for tests and the dashboard picture.

    with PrometheusProcess(["127.0.0.1:8002"], rule_files=[Path("deploy/monitoring/alerts.yaml")], workdir=tmp) as p:
        p.query('sum(tritonclf_predictions_total)')

It scrapes and evaluates its rules every ``interval_s`` seconds, keeps its data in
``workdir`` and listens on a free loopback port. ``alert_for_s`` rewrites every rule's
``for:`` to that many seconds in a copy of the rule files: the expressions stay as written,
only the wait before an alert fires is shortened so that a test can see it fire.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import yaml

from tritonclf.serving.process import free_port


class PrometheusError(RuntimeError):
    """Prometheus is missing, did not start, or refused a query."""


def prometheus_binary() -> str:
    """The ``prometheus`` on PATH (``make monitoring-tools`` installs it)."""
    found = shutil.which("prometheus")
    if not found:
        raise PrometheusError("no prometheus on PATH: make monitoring-tools (apt-get install prometheus)")
    return found


def shorten_for(rules_text: str, seconds: float) -> str:
    """The rules with every ``for:`` duration replaced by ``seconds``."""
    rules = yaml.safe_load(rules_text)
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = f"{seconds:g}s"
    return yaml.safe_dump(rules, sort_keys=False)


class PrometheusProcess:
    """A Prometheus child process; stopped on exit."""

    def __init__(
        self,
        targets: Sequence[str],
        *,
        workdir: Path,
        rule_files: Sequence[Path] = (),
        interval_s: float = 1.0,
        alert_for_s: float | None = None,
        ready_timeout_s: float = 60.0,
    ):
        self.targets = list(targets)
        self.workdir = Path(workdir)
        self.rule_files = [Path(p) for p in rule_files]
        self.interval_s = interval_s
        self.alert_for_s = alert_for_s
        self.ready_timeout_s = ready_timeout_s
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = self.workdir / "prometheus.log"

    @property
    def url(self) -> str:
        """Base URL of its HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        rules = []
        for i, path in enumerate(self.rule_files):
            text = path.read_text()
            if self.alert_for_s is not None:
                text = shorten_for(text, self.alert_for_s)
            copy = self.workdir / f"rules-{i}-{path.name}"
            copy.write_text(text)
            rules.append(str(copy))
        interval = f"{self.interval_s:g}s"
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": rules,
            "scrape_configs": [{"job_name": "triton", "static_configs": [{"targets": self.targets}]}],
        }
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def start(self) -> PrometheusProcess:
        """Start and wait until it answers /-/ready."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        command = [
            prometheus_binary(),
            f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
        ]
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child writes to it until stop()
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PrometheusError(f"prometheus exited ({self.process.returncode}): {self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise PrometheusError(f"prometheus not ready in {self.ready_timeout_s:.0f} s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-5:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def __enter__(self) -> PrometheusProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def api(self, path: str, **params: str) -> dict:
        """GET /api/v1/PATH -> its ``data``."""
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.loads(response.read())
        except (urllib.error.URLError, OSError) as err:
            raise PrometheusError(f"{url}: {err}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{url}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """An instant query's result vector."""
        return self.api("query", query=expr)["result"]

    def query_range(self, expr: str, start: float, end: float, step_s: float) -> list[dict]:
        """A range query's result matrix."""
        return self.api("query_range", query=expr, start=str(start), end=str(end), step=f"{step_s:g}")["result"]

    def firing(self, alertname: str) -> list[dict]:
        """The alerts of that name now firing."""
        alerts = self.api("alerts")["alerts"]
        return [a for a in alerts if a["labels"].get("alertname") == alertname and a["state"] == "firing"]

    def wait_for_scrapes(self, count: int = 2, timeout_s: float = 60.0) -> None:
        """Until every target has been scraped healthily ``count`` times (its ``up`` has that many samples)."""
        deadline = time.monotonic() + timeout_s
        window = f"[{max(2, round(count * self.interval_s * 3))}s]"
        while time.monotonic() < deadline:
            found = self.query(f"count_over_time(up{window})")
            healthy = self.query("up == 1")
            if len(healthy) == len(self.targets) and all(float(r["value"][1]) >= count for r in found):
                return
            time.sleep(self.interval_s / 2)
        raise PrometheusError(f"targets not scraped {count} times in {timeout_s:.0f} s: {self._log_tail()}")
