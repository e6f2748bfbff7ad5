"""Background load for the fault and soak tests: threads sending images over gRPC, every outcome kept.

    with BackgroundLoad(server.grpc_url, [("cat", jpeg), ("empty", b"")], threads=8) as load:
        time.sleep(10)
    statuses = collections.Counter(o.status for o in load.outcomes)

Each thread has its own connection and sends its next image as soon as the previous
answer arrives (a closed loop), striding through the images so every kind is in flight
at once. Outcomes keep the top-1 class and whether the probabilities matched what the
caller expects, not the probabilities themselves: a long soak makes millions.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

MODEL = "efficientnet_lite0"
OK = "OK"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One request: which image, when (``time.monotonic()``), and what came back."""

    name: str
    start: float
    end: float
    status: str  # OK, or the gRPC status name: INVALID_ARGUMENT, UNAVAILABLE...
    message: str = ""
    top1: int | None = None
    matched: bool | None = None  # the caller's check of the probabilities, when it gave one

    @property
    def latency_s(self) -> float:
        """Seconds from sending to the answer."""
        return self.end - self.start


# (image name, probabilities) -> whether they are the expected answer
Check = Callable[[str, np.ndarray], bool]


class BackgroundLoad:
    """``threads`` closed-loop senders until the ``with`` block ends (or :meth:`stop`)."""

    def __init__(
        self,
        url: str,
        images: Sequence[tuple[str, bytes]],
        threads: int,
        *,
        model: str = MODEL,
        check: Check | None = None,
        timeout_s: float = 30.0,
        error_pause_s: float = 0.0,
    ):
        self.url, self.images, self.model, self.check, self.timeout_s = url, images, model, check, timeout_s
        # Like a client that backs off after an error; 0 keeps the closed loop tight.
        self.error_pause_s = error_pause_s
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i, threads), daemon=True) for i in range(threads)]

    def __enter__(self) -> BackgroundLoad:
        """Start every sender."""
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        """Stop and wait for the requests in flight."""
        self.stop()

    def stop(self) -> None:
        """Let each sender finish its request in flight, then end."""
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout_s + 10)

    def _run(self, slot: int, stride: int) -> None:
        client = grpcclient.InferenceServerClient(self.url)
        tensors = []
        for _, data in self.images:
            tensor = grpcclient.InferInput("image", [1, 1], "BYTES")
            tensor.set_data_from_numpy(np.array([data], dtype=np.object_).reshape(1, 1))
            tensors.append(tensor)
        index = slot
        try:
            while not self._stop.is_set():
                position = index % len(self.images)
                index += stride
                outcome = self._send(client, self.images[position][0], tensors[position])
                with self._lock:
                    self.outcomes.append(outcome)
                if outcome.status != OK and self.error_pause_s:
                    self._stop.wait(self.error_pause_s)
        finally:
            client.close()

    def _send(self, client, name: str, tensor) -> Outcome:
        start = time.monotonic()
        try:
            result = client.infer(self.model, [tensor], client_timeout=self.timeout_s)
        except InferenceServerException as err:
            status = str(err.status() or "UNKNOWN").removeprefix("StatusCode.")
            return Outcome(name, start, time.monotonic(), status, " ".join(str(err.message()).split()))
        probabilities = result.as_numpy("probabilities")
        matched = self.check(name, probabilities) if self.check else None
        return Outcome(name, start, time.monotonic(), OK, top1=int(probabilities.argmax()), matched=matched)
