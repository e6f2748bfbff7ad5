"""Closed-loop load with tritonclient's asyncio gRPC and HTTP clients.

``concurrency`` coroutines on one event loop each send their next image as soon as
the previous answer arrives, until time is up. One thread drives every request, so
the client costs little CPU on a machine it shares with the server (the loop
reports the CPU it used). Requests are built once per image before the clock
starts, as perf_analyzer does: the loop measures the server, not numpy.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import dataclasses
import os
import time
from collections.abc import Awaitable, Callable, Sequence

import numpy as np

from tritonclf.bench.images import BenchImage
from tritonclf.bench.perf_data import serialize_bytes_tensor

UNAVAILABLE = "UNAVAILABLE"
# "grpc-shm": gRPC carrying only the request; the image bytes wait in a system shared-memory
# region the server reads (same host only). The cheapest transfer a local client has.
SHM_SUFFIX = "-shm"
# "http-json": the image as base64 in plain JSON, as a client without Triton's binary
# extension sends it (curl, a browser); answers come back as JSON too.
JSON_SUFFIX = "-json"
BENCH_PROTOCOLS = ("grpc", "grpc-shm", "http", "http-json")


def wire_protocol(protocol: str) -> str:
    """The protocol the requests travel on: ``grpc-shm`` -> ``grpc``, ``http-json`` -> ``http``."""
    return protocol.removesuffix(SHM_SUFFIX).removesuffix(JSON_SUFFIX)


# Triton's HTTP status codes back to the gRPC status names both protocols are reported in.
_HTTP_STATUS_NAMES = {
    "400": "INVALID_ARGUMENT",
    "404": "NOT_FOUND",
    "429": "RESOURCE_EXHAUSTED",
    "500": "INTERNAL",
    "503": UNAVAILABLE,
    "504": "DEADLINE_EXCEEDED",
}

Send = Callable[[int], Awaitable[object]]


@dataclasses.dataclass
class LoadResult:
    """One closed-loop run: every answered request's latency and size, and every failure's status."""

    concurrency: int
    elapsed_s: float
    latencies_s: list[float]
    size_labels: list[str]  # of each answered request, in the order of latencies_s
    errors: dict[str, int]
    first_error: str | None
    request_bytes: float | None = None  # mean HTTP request body per image; None over gRPC

    @property
    def unavailable(self) -> int:
        """Requests the server turned away (queue full, not ready): overload, not a bug."""
        return self.errors.get(UNAVAILABLE, 0)

    @property
    def other_errors(self) -> int:
        """Every failure that is not an UNAVAILABLE rejection."""
        return sum(self.errors.values()) - self.unavailable

    def latencies_by_size(self) -> dict[str, list[float]]:
        """{size label: latencies} of the answered requests."""
        grouped: dict[str, list[float]] = collections.defaultdict(list)
        for label, latency in zip(self.size_labels, self.latencies_s, strict=True):
            grouped[label].append(latency)
        return dict(grouped)


def error_status(err: BaseException) -> str:
    """A failure as a gRPC status name (``UNAVAILABLE``, ``INVALID_ARGUMENT``...), else the exception's type."""
    if isinstance(err, TimeoutError):
        return "DEADLINE_EXCEEDED"
    status = getattr(err, "status", None)
    value = status() if callable(status) else status
    text = str(value or "").removeprefix("StatusCode.")
    return _HTTP_STATUS_NAMES.get(text, text) or type(err).__name__


def error_message(err: BaseException) -> str:
    """One line: tritonclient's message without its status, else ``str(err)``."""
    message = getattr(err, "message", None)
    text = message() if callable(message) else str(err)
    return " ".join(str(text or type(err).__name__).split())[:300]


async def closed_loop(
    send: Send, images: Sequence[BenchImage], concurrency: int, duration_s: float, timeout_s: float = 60.0
) -> LoadResult:
    """Run ``concurrency`` senders until ``duration_s`` is up; ``send(i)`` sends image ``i``.

    Requests in flight at the deadline are waited for and counted, so ``elapsed_s``
    runs to the last answer. Senders stride through the images, so at any moment
    they hold different images and every size of the mix is in flight.
    """
    latencies: list[float] = []
    labels: list[str] = []
    failures: list[tuple[str, str]] = []
    begin = time.perf_counter()
    deadline = begin + duration_s

    async def sender(slot: int) -> None:
        index = slot
        while time.perf_counter() < deadline:
            position = index % len(images)
            index += concurrency
            start = time.perf_counter()
            try:
                await asyncio.wait_for(send(position), timeout_s)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a client-side bug must show up as errors, not as a silently dead sender
                failures.append((error_status(err), error_message(err)))
                continue
            latencies.append(time.perf_counter() - start)
            labels.append(images[position].size_label)

    await asyncio.gather(*(sender(slot) for slot in range(concurrency)))
    elapsed = time.perf_counter() - begin
    return LoadResult(
        concurrency=concurrency,
        elapsed_s=elapsed,
        latencies_s=latencies,
        size_labels=labels,
        errors=dict(collections.Counter(status for status, _ in failures)),
        first_error=": ".join(failures[0]) if failures else None,
    )


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Where and what to send: a model that takes one BYTES image per request."""

    protocol: str  # "grpc", "grpc-shm" or "http"
    url: str  # host:port
    model: str
    input_name: str
    input_shape: tuple[int, ...]  # with the batch dimension, e.g. (1, 1)
    output_name: str
    top_k: int = 5


class AsyncSender:
    """An asyncio tritonclient for one endpoint with every image's request prepared; use ``async with``."""

    def __init__(self, endpoint: Endpoint, images: Sequence[BenchImage], concurrency: int = 100):
        self.endpoint = endpoint
        self._images = images
        self._concurrency = concurrency
        self._client = None
        self._inputs: list[object] = []
        self._outputs: list[object] = []
        self._region = None  # shared-memory handle for grpc-shm
        self.request_bytes: float | None = None
        self._region_name = f"bench-images-{os.getpid()}-{id(self)}"

    async def __aenter__(self) -> AsyncSender:
        """Open the connection (inside the running loop: gRPC's aio channel binds to it)."""
        endpoint = self.endpoint
        if wire_protocol(endpoint.protocol) == "grpc":
            import tritonclient.grpc as module
            from tritonclient.grpc import aio

            self._client = aio.InferenceServerClient(endpoint.url)
            binary = {}
        else:
            import tritonclient.http as module
            from tritonclient.http import aio

            # One connection per sender: aiohttp would otherwise queue requests behind its pool limit.
            self._client = aio.InferenceServerClient(endpoint.url, conn_limit=max(self._concurrency, 1))
            binary = {"binary_data": not endpoint.protocol.endswith(JSON_SUFFIX)}
        if endpoint.protocol.endswith(SHM_SUFFIX):
            await self._inputs_in_shared_memory(module)
            return self._with_outputs(module, binary)
        for image in self._images:
            tensor = module.InferInput(endpoint.input_name, list(endpoint.input_shape), "BYTES")
            data = base64.b64encode(image.data) if endpoint.protocol.endswith(JSON_SUFFIX) else image.data
            payload = np.array([data], dtype=np.object_).reshape(endpoint.input_shape)
            tensor.set_data_from_numpy(payload, **binary)
            self._inputs.append(tensor)
        self._with_outputs(module, binary)
        if wire_protocol(endpoint.protocol) == "http":
            bodies = [module.InferenceServerClient.generate_request_body([t], self._outputs)[0] for t in self._inputs]
            self.request_bytes = sum(map(len, bodies)) / len(bodies)
        return self

    def _with_outputs(self, module, binary: dict) -> AsyncSender:
        """Ask for the top-k through Triton's classification extension; ready to send."""
        endpoint = self.endpoint
        self._outputs = [module.InferRequestedOutput(endpoint.output_name, class_count=endpoint.top_k, **binary)]
        return self

    async def _inputs_in_shared_memory(self, module) -> None:
        """Every image in one system shared-memory region, registered with the server; inputs point into it."""
        import tritonclient.utils.shared_memory as shm

        elements = [serialize_bytes_tensor([image.data]) for image in self._images]
        key = f"/{self._region_name}"
        self._region = shm.create_shared_memory_region(self._region_name, key, sum(map(len, elements)))
        offset = 0
        for element in elements:
            shm.set_shared_memory_region(self._region, [np.frombuffer(element, dtype=np.uint8)], offset)
            tensor = module.InferInput(self.endpoint.input_name, list(self.endpoint.input_shape), "BYTES")
            tensor.set_shared_memory(self._region_name, len(element), offset)
            self._inputs.append(tensor)
            offset += len(element)
        await self._client.register_system_shared_memory(self._region_name, key, offset)

    async def __aexit__(self, *exc) -> None:
        """Unregister and free the shared memory (grpc-shm), close the connection."""
        try:
            if self._region is not None:
                import tritonclient.utils.shared_memory as shm

                try:
                    await self._client.unregister_system_shared_memory(self._region_name)
                finally:
                    shm.destroy_shared_memory_region(self._region)
        finally:
            if self._client is not None:
                await self._client.close()

    async def __call__(self, index: int) -> object:
        """Send image ``index``; raises tritonclient's exception when the server rejects it."""
        return await self._client.infer(self.endpoint.model, [self._inputs[index]], outputs=self._outputs)


async def run_levels(
    endpoint: Endpoint,
    images: Sequence[BenchImage],
    levels: Sequence[int],
    *,
    duration_s: float,
    warmup_s: float,
    between: Callable[[str, int, LoadResult | None], None],
    timeout_s: float = 60.0,
) -> list[LoadResult]:
    """Warm up and measure each concurrency level on one connection.

    ``between(phase, concurrency, result)`` runs (synchronously, nothing in flight)
    before and after each measured run: ``"before"`` with None, ``"after"`` with the
    result; it is where the caller snapshots the server's statistics.
    """
    results = []
    async with AsyncSender(endpoint, images, concurrency=max(levels)) as send:
        for concurrency in levels:
            if warmup_s > 0:
                await closed_loop(send, images, concurrency, warmup_s, timeout_s)
            between("before", concurrency, None)
            result = await closed_loop(send, images, concurrency, duration_s, timeout_s)
            result.request_bytes = send.request_bytes
            between("after", concurrency, result)
            results.append(result)
    return results
