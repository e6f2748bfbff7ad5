"""A Triton HTTP/REST client on the standard library: the GPU host has no tritonclient.

Speaks KServe v2 with Triton's binary-data extension: the request is a JSON header
followed by the raw BYTES tensor (each element a 4-byte little-endian length, then the
encoded image), ``Inference-Header-Content-Length`` says where the JSON ends, and the
classification extension (``classification: k``) returns only ``score:index:label``
strings, as JSON. One keep-alive connection per client; not thread-safe (use one per
thread or process).
"""

from __future__ import annotations

import http.client
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class TritonHTTPError(RuntimeError):
    """The server answered with an error; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Label:
    """One of the top-k classes."""

    score: float
    index: int
    label: str


def serialize_bytes(elements: Sequence[bytes]) -> bytes:
    """Triton's BYTES tensor wire form: length-prefixed elements, back to back."""
    return b"".join(struct.pack("<I", len(element)) + element for element in elements)


def parse_label(entry: str) -> Label:
    """``score:index:label`` (the label may hold ':'; absent without a label file)."""
    parts = entry.split(":", 2)
    if len(parts) < 2:
        raise ValueError(f"not a classification result: {entry!r}")
    return Label(float(parts[0]), int(parts[1]), parts[2] if len(parts) == 3 else parts[1])


def infer_request(
    input_name: str, input_dims: Sequence[int], output_name: str, images: Sequence[bytes], top_k: int
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one classification request for a batch of encoded images."""
    payload = serialize_bytes(images)
    header = {
        "inputs": [
            {
                "name": input_name,
                "shape": [len(images), *input_dims],
                "datatype": "BYTES",
                "parameters": {"binary_data_size": len(payload)},
            }
        ],
        "outputs": [{"name": output_name, "parameters": {"classification": top_k, "binary_data": False}}],
    }
    head = json.dumps(header, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(head))}
    return head + payload, headers


def parse_infer_response(body: bytes, header_length: str | None, output_name: str, batch: int) -> list[list[Label]]:
    """The JSON part of a response -> top-k labels per image, best first."""
    document = json.loads(body[: int(header_length)] if header_length else body)
    output = next((o for o in document.get("outputs", []) if o["name"] == output_name), None)
    if output is None:
        raise TritonHTTPError(f"the response has no output {output_name!r}", 200)
    entries = [parse_label(entry) for entry in output["data"]]
    per_image = len(entries) // batch
    return [entries[i * per_image : (i + 1) * per_image] for i in range(batch)]


class TritonHTTP:
    """A classifier ensemble over HTTP: ``classify(images)``, plus health and statistics."""

    def __init__(self, host: str, port: int, model: str, *, timeout_s: float = 60.0):
        """Connects lazily; the model's input shape is read from its metadata on first use."""
        self.model = model
        self._connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
        self._io: tuple[str, list[int], str] | None = None

    def _request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        try:
            self._connection.request(method, path, body=body, headers=headers or {})
            response = self._connection.getresponse()
            return response.status, response.read(), response.getheader("Inference-Header-Content-Length")
        except (http.client.HTTPException, OSError):
            self._connection.close()  # the next request reconnects
            raise

    def get_json(self, path: str) -> Any:
        """GET ``path`` -> parsed JSON; TritonHTTPError for a non-200 answer."""
        status, body, _ = self._request("GET", path)
        if status != 200:
            raise TritonHTTPError(_error_text(body, status), status)
        return json.loads(body) if body else None

    def ready(self) -> bool:
        """Whether the server answers ready."""
        try:
            return self._request("GET", "/v2/health/ready")[0] == 200
        except (http.client.HTTPException, OSError):
            return False

    def model_io(self) -> tuple[str, list[int], str]:
        """(input name, input dims without the batch, output name) of the ensemble."""
        if self._io is None:
            meta = self.get_json(f"/v2/models/{self.model}")
            (inp,), out = meta["inputs"], meta["outputs"][0]
            # The metadata's shape starts with -1 for the batch; a variable dim takes one element.
            self._io = (inp["name"], [1 if int(d) < 0 else int(d) for d in inp["shape"][1:]], out["name"])
        return self._io

    def classify(self, images: Sequence[bytes], top_k: int = 1) -> list[list[Label]]:
        """Encoded images (one request, batched) -> top-k labels per image."""
        input_name, dims, output_name = self.model_io()
        body, headers = infer_request(input_name, dims, output_name, images, top_k)
        status, answer, header_length = self._request("POST", f"/v2/models/{self.model}/infer", body, headers)
        if status != 200:
            raise TritonHTTPError(_error_text(answer, status), status)
        return parse_infer_response(answer, header_length, output_name, len(images))

    def statistics(self) -> dict[str, Any]:
        """Triton's per-model statistics for every model (cumulative since the server started)."""
        return self.get_json("/v2/models/stats")

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()


def _error_text(body: bytes, status: int) -> str:
    try:
        return json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {status}: {body[:200]!r}"
