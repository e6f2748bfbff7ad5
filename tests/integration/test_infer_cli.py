"""``tritonclf infer`` as a user runs it: output, JSON, and one-line errors with the right exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ..conftest import ROOT, SAMPLES

pytestmark = pytest.mark.integration


def run_infer(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "clients/infer.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_prints_top_k_for_each_image_of_a_folder(server, protocol):
    url = server.grpc_url if protocol == "grpc" else server.http_url
    result = run_infer(str(SAMPLES), "--url", url, "--protocol", protocol, "--top-k", "3")
    assert result.returncode == 0, result.stderr
    blocks = result.stdout.strip().split("\n" + str(SAMPLES))
    assert len(blocks) == 4
    chelsea = result.stdout.split("chelsea.jpg\n", 1)[1].splitlines()[:3]
    assert "tabby, tabby cat  (281)" in chelsea[0]


def test_json_output_has_path_and_predictions_and_errors(server, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"<html>")
    result = run_infer(str(SAMPLES / "coffee.jpg"), str(bad), "--url", server.grpc_url, "--json", "--top-k", "2")
    assert result.returncode == 1
    good_line, bad_line = (json.loads(line) for line in result.stdout.splitlines())
    assert good_line["path"].endswith("coffee.jpg")
    assert good_line["predictions"][0] == {"label": "espresso", "index": 967, "score": pytest.approx(0.86, abs=0.02)}
    assert len(good_line["predictions"]) == 2
    assert bad_line["status"] == "INVALID_ARGUMENT" and "not a decodable image" in bad_line["error"]


def test_uses_the_only_ensemble_when_no_model_is_given(server):
    result = run_infer(str(SAMPLES / "chelsea.jpg"), "--url", server.grpc_url, "--json")
    assert json.loads(result.stdout)["predictions"][0]["index"] in range(281, 286)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jpg"], "no such file or folder: missing.jpg"),
        (["clients/samples/chelsea.jpg", "--url", "127.0.0.1:9"], "cannot reach Triton over grpc at 127.0.0.1:9"),
        (
            ["clients/samples/chelsea.jpg", "--url", "127.0.0.1:9", "--protocol", "http"],
            "cannot reach Triton over http",
        ),
    ],
    ids=["missing-file", "no-grpc-server", "no-http-server"],
)
def test_expected_failures_are_one_line_without_traceback(args, message):
    result = run_infer(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_model_is_one_line(server):
    result = run_infer("clients/samples/chelsea.jpg", "--url", server.grpc_url, "--model", "nope")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"infer: error: model 'nope' is not ready on {server.grpc_url} (unknown, or failed to load); "
        "ready ensembles: efficientnet_lite0"
    )


def test_preprocess_model_is_refused_as_a_target(server):
    result = run_infer("clients/samples/chelsea.jpg", "--url", server.grpc_url, "--model", "efficientnet_lite0_model")
    assert result.returncode == 2 and "call its ensemble instead" in result.stderr


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_client_timeout_is_one_clear_line_per_image(server, protocol):
    # The test server waits 50 ms to form a batch: a 10 ms timeout always expires.
    url = server.grpc_url if protocol == "grpc" else server.http_url
    result = run_infer("clients/samples/chelsea.jpg", "--url", url, "--protocol", protocol, "--timeout-s", "0.01")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "clients/samples/chelsea.jpg: error (DEADLINE_EXCEEDED): no answer within 0.01 s (the client's timeout)"
    )
    assert lines[1].startswith("infer: 1 of 1 images failed (0 classified in ") and len(lines) == 2


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_url_with_a_scheme_is_one_line_without_a_traceback(server, protocol):
    address = server.http_url if protocol == "http" else server.grpc_url
    result = run_infer("clients/samples/chelsea.jpg", "--url", f"http://{address}", "--protocol", protocol)
    assert result.returncode == 2
    assert result.stderr == f"infer: error: give the server as HOST:PORT, without http://: {address}\n"


def test_json_lines_alone_on_stdout_and_the_summary_on_stderr(server, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff truncated")
    result = run_infer(str(SAMPLES), str(bad), "--url", server.grpc_url, "--json")
    assert result.returncode == 1
    assert [json.loads(line)["path"] for line in result.stdout.splitlines()][-1] == str(bad)
    assert result.stderr.startswith("infer: 1 of 5 images failed (4 classified in ")
    assert result.stderr.count("\n") == 1


def test_progress_is_drawn_on_a_terminal_stderr_beside_json_on_stdout(server):
    import os
    import pty

    main_fd, terminal_fd = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "clients/infer.py", str(SAMPLES), "--url", server.grpc_url, "--json"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=terminal_fd,
            timeout=120,
            check=False,
        )
        os.close(terminal_fd)
        terminal = b""
        while chunk := _read(main_fd):
            terminal += chunk
    finally:
        os.close(main_fd)
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 4  # JSON only
    assert b"infer [4/4] " in terminal and b"infer: 4 images classified in " in terminal


def _read(fd: int) -> bytes:
    import os

    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the terminal's other end is closed and drained
        return b""


def test_ctrl_c_stops_a_long_folder_with_one_line_and_no_traceback(server, tmp_path):
    import signal
    import time

    folder = tmp_path / "many"
    folder.mkdir()
    data = (SAMPLES / "chelsea.jpg").read_bytes()
    for i in range(400):
        (folder / f"{i:03d}.jpg").write_bytes(data)
    process = subprocess.Popen(
        [sys.executable, "clients/infer.py", str(folder), "--url", server.grpc_url, "--concurrency", "1", "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = process.stdout.readline()  # the first answer: the loop is running
    assert first.startswith("{")
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert time.monotonic() - started < 30  # the queued requests are dropped, not sent
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.startswith("infer: interrupted after ") and err.count("\n") == 1
    assert len(out.splitlines()) + 1 < 400
