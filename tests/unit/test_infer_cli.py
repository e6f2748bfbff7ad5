"""The infer command's parsing of Triton's classification strings, its JSON and its address checks. No server."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tritonclf.client.triton_client import ClassifierClient, ClientError, Prediction, parse_classification


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (b"0.5:281:tabby, tabby cat", Prediction("tabby, tabby cat", 281, 0.5)),
        ("0.25:7:a:b", Prediction("a:b", 7, 0.25)),
        ("0.125:3", Prediction("3", 3, 0.125)),
    ],
)
def test_parse_classification(entry, expected):
    assert parse_classification(entry) == expected


def test_json_lines_keep_non_ascii_labels_readable():
    from tritonclf.client.infer_cli import format_json

    line = format_json(Path("dessert/1.jpg"), [Prediction("crème brûlée", 1, 0.9)])
    assert '"label": "crème brûlée"' in line and "\\u00e8" not in line
    assert json.loads(line)["predictions"][0]["label"] == "crème brûlée"


@pytest.mark.parametrize(
    ("url", "protocol", "message"),
    [
        ("http://localhost:8000", "http", "give the server as HOST:PORT, without http://: localhost:8000"),
        ("https://triton.internal:8000/", "http", "without https://: triton.internal:8000"),
        ("grpc://localhost:8001", "grpc", "without grpc://: localhost:8001"),
        ("localhost:80o1", "grpc", "give the server as HOST:PORT (e.g. localhost:8001), not 'localhost:80o1'"),
    ],
)
def test_a_url_instead_of_host_port_is_one_line_before_any_connection(url, protocol, message, capsys):
    with pytest.raises(ClientError, match=re.escape(message)):
        ClassifierClient(url, protocol)
    assert capsys.readouterr().err == ""  # no "Exception ignored" from a half-made tritonclient
