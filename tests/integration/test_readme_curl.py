"""The README's curl examples, run as written with the real ``curl`` against the real server."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from ..conftest import ROOT, SAMPLES

pytestmark = pytest.mark.integration
README_PORT = "localhost:8000"


def readme_curl_commands() -> list[str]:
    """Every ``bash`` block of the README that posts to a model's ``/infer``."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    return [block for block in blocks if "curl " in block and "/infer" in block]


def test_readme_has_the_base64_json_and_the_binary_data_examples():
    commands = readme_curl_commands()
    assert len(commands) == 2
    assert any('"datatype": "BYTES", "data": [' in command for command in commands)
    assert any("Inference-Header-Content-Length" in command for command in commands)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (Debian package curl)")
@pytest.mark.parametrize("command", readme_curl_commands(), ids=["base64-json", "binary-data"])
def test_readme_curl_example_classifies_the_coffee_photo(server, tmp_path, command):
    assert README_PORT in command
    shutil.copy(SAMPLES / "coffee.jpg", tmp_path / "coffee.jpg")
    script = "set -euo pipefail\n" + command.replace(README_PORT, server.http_url)
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    top = re.search(r'"data":\["([^"]+)"', done.stdout)
    assert top is not None, done.stdout
    score, index, label = top.group(1).split(":", 2)
    assert (index, label) == ("967", "espresso") and float(score) > 0.5
