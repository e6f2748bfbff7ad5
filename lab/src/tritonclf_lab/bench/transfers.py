"""The ways the benchmark sends an image to the server, each named once.

``--protocol`` takes these names; every result level carries one as ``protocol``, and the
report, the comparison and the plot go through this table.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Transfer:
    """One way of sending the image bytes."""

    name: str  # what --protocol and the results say
    wire: str  # the protocol the requests travel on: "grpc" or "http"
    label: str  # how the report names it
    meaning: str  # for --help
    color: str  # its curve in the throughput-latency plot
    shared_memory: bool = False  # the image bytes wait in a registered system shared-memory region
    base64_json: bool = False  # the image as base64 in plain JSON, no binary tensor extension


TRANSFERS = (
    Transfer("grpc", "grpc", "gRPC", "the image bytes in the request", "tab:blue"),
    # The cheapest transfer a local client has: the request carries only a reference.
    Transfer(
        "grpc-shm",
        "grpc",
        "gRPC + system shared memory",
        "image bytes in shared memory, same host only",
        "tab:green",
        shared_memory=True,
    ),
    Transfer("http", "http", "HTTP", "binary tensor extension", "tab:orange"),
    # What a client without Triton's binary extension sends (curl, a browser); answers come back as JSON too.
    Transfer("http-json", "http", "HTTP, base64 in plain JSON", "base64 in plain JSON", "tab:red", base64_json=True),
)
BY_NAME = {transfer.name: transfer for transfer in TRANSFERS}
NAMES = tuple(BY_NAME)


def wire_protocol(name: str) -> str:
    """The protocol a transfer's requests travel on: ``grpc-shm`` -> ``grpc``, ``http-json`` -> ``http``."""
    return BY_NAME[name].wire


def protocol_help() -> str:
    """What --protocol's help says about each name."""
    return "; ".join(f"{t.name}: {t.meaning}" for t in TRANSFERS)
