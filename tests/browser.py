"""A real headless Chromium (Debian's ``chromium`` + ``chromium-driver``, `make browser-tools`) and `tritonclf ui`.

    with ui_page(server.http_url) as url, chromium() as browser:
        browser.get(url)

No display is needed. The flags keep Chromium off the network it would reach by itself
(updates, sync, QUIC probes: refused on a closed network) and run it as root in CI.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
CHROMEDRIVER = shutil.which("chromedriver")
MISSING = "Chromium and chromedriver are not installed (make browser-tools)"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
PAGE_LINE = re.compile(r"^ui: open (http://\S+)")


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator:
    """A selenium WebDriver on headless Chromium with an empty profile, quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="tritonclf-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            yield driver
        finally:
            driver.quit()


@contextlib.contextmanager
def ui_page(
    *args: str, python: str = sys.executable, timeout_s: float = 60.0, env: dict | None = None
) -> Iterator[str]:
    """``tritonclf ui ARGS --port 0`` in its own process group: yields the page's URL; SIGTERM on exit.

    Its request log (stderr) goes to a file: a pipe nobody reads would block it once full.
    """
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [python, "-m", "tritonclf", "ui", *args, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        start_new_session=True,
        env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"},
    )
    try:
        yield read_page_url(process, log, timeout_s)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        process.stdout.close()
        log.close()


def read_page_url(process: subprocess.Popen, log, timeout_s: float) -> str:
    """The address ``tritonclf ui`` prints once it listens (its stdout has a few lines only)."""
    output = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"tritonclf ui exited with {process.returncode}: {''.join(output)}{log.read()}")
        output.append(line)
        match = PAGE_LINE.match(line)
        if match:
            return match.group(1)
    raise RuntimeError(f"tritonclf ui printed no address within {timeout_s:.0f} s: {''.join(output)}")


def full_page_png(driver) -> bytes:
    """A PNG of the whole page, below the window's bottom edge too (Chrome DevTools' own capture)."""
    import base64

    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    return base64.b64decode(shot["data"])
