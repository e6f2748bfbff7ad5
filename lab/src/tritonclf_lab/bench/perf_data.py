"""perf_analyzer's ``--input-data`` JSON: real encoded images for the ensemble, real tensors for the classifier.

perf_analyzer decodes a ``b64`` value and sends the bytes as the tensor's raw
content. For a BYTES tensor that content is Triton's serialized form: each element
as a 4-byte little-endian length, then its bytes. Without the prefix the server
reads the JPEG's first bytes as a length and rejects the request. For FP32 it is
the little-endian floats in C order. Pure functions; no server, no perf_analyzer.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np
from tritonclient.utils import serialize_byte_tensor


def bytes_entry(input_name: str, data: bytes, shape: Sequence[int] = (1,)) -> dict:
    """One perf_analyzer input: a single encoded image in a BYTES tensor of ``shape`` (no batch dimension)."""
    if int(np.prod(shape)) != 1:
        raise ValueError(f"one image per request: shape {list(shape)} must hold exactly one element")
    serialized = serialize_byte_tensor(np.array([data], dtype=np.object_)).item()  # <u32 length><bytes>
    return {input_name: {"b64": base64.b64encode(serialized).decode("ascii"), "shape": list(shape)}}


def tensor_entry(input_name: str, array: np.ndarray) -> dict:
    """One perf_analyzer input: a float32 tensor (no batch dimension) as little-endian bytes."""
    raw = np.ascontiguousarray(array, dtype="<f4").tobytes()
    return {input_name: {"b64": base64.b64encode(raw).decode("ascii"), "shape": list(array.shape)}}


def input_data(entries: Sequence[dict]) -> dict:
    """The ``--input-data`` document: perf_analyzer cycles through the entries, one per request."""
    if not entries:
        raise ValueError("no inputs: perf_analyzer needs at least one entry")
    return {"data": list(entries)}
