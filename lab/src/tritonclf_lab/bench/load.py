"""The closed-loop load generator that the benchmark, the tuner and the fault/soak checks share.

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
import threading
import time
from collections.abc import Awaitable, Callable, Sequence

import numpy as np

from tritonclf import contract
from tritonclf.client.status import OK, UNAVAILABLE, one_line, status_name
from tritonclf.serving.admin_apis import key_headers
from tritonclf_lab.bench.images import BenchImage
from tritonclf_lab.bench.transfers import BY_NAME, NAMES, wire_protocol

BENCH_PROTOCOLS = NAMES
MODEL = "efficientnet_lite0"


Send = Callable[[int], Awaitable[object]]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One request: which image, when (``time.monotonic()``), and what came back."""

    name: str  # the caller's name for the image (a size label in the benchmark)
    start: float
    end: float
    status: str  # OK, or the gRPC status name: INVALID_ARGUMENT, UNAVAILABLE...
    message: str = ""
    value: object = None  # what ``send`` returned, for an answered request

    @property
    def latency_s(self) -> float:
        """Seconds from sending to the answer."""
        return self.end - self.start


async def drive(
    send: Send,
    names: Sequence[str],
    concurrency: int,
    *,
    running: Callable[[], bool],
    record: Callable[[Outcome], None],
    timeout_s: float = 60.0,
    error_pause_s: float = 0.0,
) -> None:
    """``concurrency`` senders, each sending its next image as soon as the previous answer arrives.

    ``send(i)`` sends image ``i`` (``names[i]`` names it); every request, answered or
    failed, goes to ``record``. Senders stop starting requests once ``running()`` is
    false and wait for the one they have in flight. They stride through the images, so
    at any moment they hold different ones and every kind of the mix is in flight.
    ``error_pause_s`` makes a sender wait after a failure, like a client that backs off.
    """

    async def sender(slot: int) -> None:
        index = slot
        while running():
            position = index % len(names)
            index += concurrency
            start = time.monotonic()
            try:
                value = await asyncio.wait_for(send(position), timeout_s)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a client-side bug must show up as errors, not as a silently dead sender
                record(Outcome(names[position], start, time.monotonic(), status_name(err), one_line(err)))
                if error_pause_s:
                    await asyncio.sleep(error_pause_s)
                continue
            record(Outcome(names[position], start, time.monotonic(), OK, value=value))

    await asyncio.gather(*(sender(slot) for slot in range(concurrency)))


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


async def closed_loop(
    send: Send, images: Sequence[BenchImage], concurrency: int, duration_s: float, timeout_s: float = 60.0
) -> LoadResult:
    """Run ``concurrency`` senders until ``duration_s`` is up; ``send(i)`` sends image ``i``.

    Requests in flight at the deadline are waited for and counted, so ``elapsed_s``
    runs to the last answer. Answers are reduced to their latency as they come.
    """
    latencies: list[float] = []
    labels: list[str] = []
    errors: collections.Counter[str] = collections.Counter()
    first_error: list[str] = []

    def record(outcome: Outcome) -> None:
        if outcome.status == OK:
            latencies.append(outcome.latency_s)
            labels.append(outcome.name)
            return
        errors[outcome.status] += 1
        if not first_error:
            first_error.append(f"{outcome.status}: {outcome.message}")

    begin = time.monotonic()
    deadline = begin + duration_s
    names = [image.size_label for image in images]
    await drive(
        send, names, concurrency, running=lambda: time.monotonic() < deadline, record=record, timeout_s=timeout_s
    )
    return LoadResult(
        concurrency=concurrency,
        elapsed_s=time.monotonic() - begin,
        latencies_s=latencies,
        size_labels=labels,
        errors=dict(errors),
        first_error=first_error[0] if first_error else None,
    )


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Where and what to send: a model that takes one BYTES image per request."""

    protocol: str  # a transfer's name (transfers.NAMES)
    url: str  # host:port
    model: str
    input_name: str
    input_shape: tuple[int, ...]  # with the batch dimension, e.g. (1, 1)
    output_name: str
    top_k: int = 5
    # The server's admin key, for grpc-shm's region registration where shared memory is restricted.
    admin_key: str | None = None


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
        transfer = BY_NAME[endpoint.protocol]
        if transfer.wire == "grpc":
            import tritonclient.grpc as module
            from tritonclient.grpc import aio

            self._client = aio.InferenceServerClient(endpoint.url)
            binary = {}
        else:
            import tritonclient.http as module
            from tritonclient.http import aio

            # One connection per sender: aiohttp would otherwise queue requests behind its pool limit.
            self._client = aio.InferenceServerClient(endpoint.url, conn_limit=max(self._concurrency, 1))
            binary = {"binary_data": not transfer.base64_json}
        if transfer.shared_memory:
            await self._inputs_in_shared_memory(module)
            return self._with_outputs(module, binary)
        for image in self._images:
            tensor = module.InferInput(endpoint.input_name, list(endpoint.input_shape), "BYTES")
            data = base64.b64encode(image.data) if transfer.base64_json else image.data
            payload = np.array([data], dtype=np.object_).reshape(endpoint.input_shape)
            tensor.set_data_from_numpy(payload, **binary)
            self._inputs.append(tensor)
        self._with_outputs(module, binary)
        if transfer.wire == "http":
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
        from tritonclient.utils import serialize_byte_tensor

        elements = [serialize_byte_tensor(np.array([image.data], dtype=np.object_)).item() for image in self._images]
        key = f"/{self._region_name}"
        self._region = shm.create_shared_memory_region(self._region_name, key, sum(map(len, elements)))
        offset = 0
        for element in elements:
            shm.set_shared_memory_region(self._region, [np.frombuffer(element, dtype=np.uint8)], offset)
            tensor = module.InferInput(self.endpoint.input_name, list(self.endpoint.input_shape), "BYTES")
            tensor.set_shared_memory(self._region_name, len(element), offset)
            self._inputs.append(tensor)
            offset += len(element)
        headers = key_headers(wire_protocol(self.endpoint.protocol), self.endpoint.admin_key)
        await self._client.register_system_shared_memory(self._region_name, key, offset, headers=headers)

    async def __aexit__(self, *exc) -> None:
        """Unregister and free the shared memory (grpc-shm), close the connection."""
        try:
            if self._region is not None:
                import tritonclient.utils.shared_memory as shm

                try:
                    headers = key_headers(wire_protocol(self.endpoint.protocol), self.endpoint.admin_key)
                    await self._client.unregister_system_shared_memory(self._region_name, headers=headers)
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


# (image name, probabilities) -> whether they are the expected answer
Check = Callable[[str, np.ndarray], bool]


@dataclasses.dataclass(frozen=True)
class Checked:
    """What a background request kept of its answer: the top-1 class and the caller's verdict on it."""

    top1: int
    matched: bool | None  # None when the caller gave no check


class BackgroundLoad:
    """The closed loop in a background thread over gRPC until the ``with`` block ends (or :meth:`stop`).

        with BackgroundLoad(server.grpc_url, [("cat", jpeg), ("empty", b"")], concurrency=8) as load:
            time.sleep(10)
        statuses = collections.Counter(o.status for o in load.outcomes)

    For the fault and soak checks: every outcome is kept with its timestamps. An answer
    keeps only its top-1 class and whether ``check`` accepted its probabilities (as
    :class:`Checked` in ``Outcome.value``), not the probabilities: a long soak makes millions.
    """

    def __init__(
        self,
        url: str,
        images: Sequence[tuple[str, bytes]],
        concurrency: int,
        *,
        model: str = MODEL,
        check: Check | None = None,
        timeout_s: float = 30.0,
        error_pause_s: float = 0.0,
    ):
        self.url, self.images, self.model, self.check, self.timeout_s = url, images, model, check, timeout_s
        self.concurrency = concurrency
        self.error_pause_s = error_pause_s
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> BackgroundLoad:
        """Start sending."""
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        """Stop and wait for the requests in flight."""
        self.stop()

    def stop(self) -> None:
        """Let each sender finish its request in flight, then end."""
        self._stop.set()
        self._thread.join(self.timeout_s + 10)

    async def _run(self) -> None:
        import tritonclient.grpc as grpcclient
        from tritonclient.grpc import aio

        client = aio.InferenceServerClient(self.url)
        tensors = []
        for _, data in self.images:
            tensor = grpcclient.InferInput(contract.IMAGE_INPUT, [1, 1], "BYTES")
            tensor.set_data_from_numpy(np.array([data], dtype=np.object_).reshape(1, 1))
            tensors.append(tensor)

        async def send(index: int) -> Checked:
            result = await client.infer(self.model, [tensors[index]])
            probabilities = result.as_numpy(contract.PROBABILITIES)
            matched = self.check(self.images[index][0], probabilities) if self.check else None
            return Checked(int(probabilities.argmax()), matched)

        try:
            await drive(
                send,
                [name for name, _ in self.images],
                self.concurrency,
                running=lambda: not self._stop.is_set(),
                record=self.outcomes.append,  # list.append is atomic; the report reads after stop()
                timeout_s=self.timeout_s,
                error_pause_s=self.error_pause_s,
            )
        finally:
            await client.close()
