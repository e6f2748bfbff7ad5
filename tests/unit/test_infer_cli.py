"""The infer command's parsing of Triton's classification strings."""

from __future__ import annotations

import pytest

from tritonclf.client.triton_client import Prediction, parse_classification


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
