"""Failures as gRPC status names, alike for gRPC, HTTP and client-side errors. No server."""

from __future__ import annotations

import pytest
from tritonclient.utils import InferenceServerException

from tritonclf.client.status import one_line, status_name


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("StatusCode.UNAVAILABLE", "UNAVAILABLE"),
        ("503", "UNAVAILABLE"),
        ("StatusCode.INVALID_ARGUMENT", "INVALID_ARGUMENT"),
        ("400", "INVALID_ARGUMENT"),
        ("500", "INTERNAL"),
        ("504", "DEADLINE_EXCEEDED"),
        (None, "InferenceServerException"),
    ],
)
def test_status_name_names_both_protocols_alike(status, expected):
    """gRPC's StatusCode names and HTTP's codes end up as the same gRPC status names."""
    assert status_name(InferenceServerException("x", status=status)) == expected


def test_status_name_and_message_of_client_side_failures():
    """A timeout is DEADLINE_EXCEEDED, anything else its type; messages are one line without the status."""
    assert status_name(TimeoutError()) == "DEADLINE_EXCEEDED"
    assert status_name(ConnectionRefusedError("refused")) == "ConnectionRefusedError"
    err = InferenceServerException("in ensemble 'm',\n  not a decodable image", status="StatusCode.INVALID_ARGUMENT")
    assert one_line(err) == "in ensemble 'm', not a decodable image"
    assert one_line(KeyError("label")) == "'label'"
