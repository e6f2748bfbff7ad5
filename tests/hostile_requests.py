"""Requests a hostile client sends straight to a classifier model: any declared shape, any bytes.

tritonclient checks that a tensor's data matches its shape; a hostile client does not, so these
build the requests themselves: HTTP with a binary body, gRPC with the shape edited after the data.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from tritonclf import contract
from tritonclf.client.status import HTTP_STATUS_NAMES, OK, status_name

# A path of two or more parts (/site-packages/onnxruntime, /tmp/x/model.py), as a traceback has.
PATH = re.compile(r"(?:/[\w.+-]+){2,}")


def http_pixels(url: str, model: str, shape: list[int], pixels: np.ndarray) -> tuple[str, str]:
    """(status, message) of one request declaring ``shape`` and carrying ``pixels``' bytes."""
    data = np.ascontiguousarray(pixels, dtype=np.float32).tobytes()
    tensor = {
        "name": contract.PIXELS,
        "datatype": "FP32",
        "shape": shape,
        "parameters": {"binary_data_size": len(data)},
    }
    header = json.dumps({"inputs": [tensor]}).encode()
    request = urllib.request.Request(
        f"http://{url}/v2/models/{model}/infer",
        data=header + data,
        method="POST",
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
            return OK, ""
    except urllib.error.HTTPError as err:
        return HTTP_STATUS_NAMES.get(str(err.code), str(err.code)), json.loads(err.read()).get("error", "")


def grpc_pixels(
    url: str, model: str, shape: list[int] | None, pixels: np.ndarray
) -> tuple[str, str, np.ndarray | None]:
    """(status, message, probabilities) of one gRPC request; ``shape`` replaces the declared shape."""
    client = grpcclient.InferenceServerClient(url)
    try:
        tensor = grpcclient.InferInput(contract.PIXELS, list(pixels.shape), "FP32")
        tensor.set_data_from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))
        if shape is not None:
            tensor._input.ClearField("shape")
            tensor._input.shape.extend(shape)
        result = client.infer(model, [tensor], client_timeout=120)
        return OK, "", result.as_numpy(contract.PROBABILITIES)
    except InferenceServerException as err:
        return status_name(err), err.message(), None
    finally:
        client.close()


def hostile_pixel_requests(server, model: str, pixels: np.ndarray) -> dict[str, Callable[[], tuple[str, str]]]:
    """{name: send it} for each hostile kind: (status, message) of the answer. ``pixels``: [1, 3, H, W]."""
    dims = list(pixels.shape[1:])
    broken = pixels.copy()
    broken.flat[broken.size // 2] = np.inf
    return {
        # The batch sizes Triton 2.51's max_batch_size check lets through: it keeps 32 bits of the batch dimension.
        "http batch 2**63": lambda: http_pixels(server.http_url, model, [2**63, *dims], pixels),
        "grpc batch -2**63": lambda: grpc_pixels(server.grpc_url, model, [-(2**63), *dims], pixels)[:2],
        "NaN pixels": lambda: grpc_pixels(server.grpc_url, model, None, np.full_like(pixels, np.nan))[:2],
        "one +Inf pixel": lambda: http_pixels(server.http_url, model, [1, *dims], broken),
    }


def clean_one_line(message: str) -> bool:
    """One line, no traceback, no path: what an error for a client may be."""
    return "\n" not in message and "Traceback" not in message and "At:" not in message and not PATH.search(message)
