"""Closed-loop load from several client processes: images/s and latency percentiles per concurrency.

Each process holds ``threads`` keep-alive HTTP connections (``TritonHTTP``); every
thread sends one image per request, the next as soon as the answer arrives, until the
deadline. Processes, not threads alone: the JSON and socket work of 64 clients would
otherwise share one interpreter lock and measure the client, not the server.

Ours, not perf_analyzer: the GPU host has neither perf_analyzer nor tritonclient, carrying
perf_analyzer 2.41.1 would add 4.2 MB (xz) to a kit close to its size limit, and this loop
needs only the standard library and the host's numpy (the percentiles are numpy's).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tritonclf_lab.gpu_kit.http_client import TritonHTTP


@dataclass(frozen=True)
class Load:
    """One closed-loop measurement."""

    concurrency: int
    images: int
    errors: int
    seconds: float
    latencies_ms: tuple[float, ...]
    first_error: str = ""

    def summary(self) -> dict:
        """The numbers results.json keeps."""
        return {
            "concurrency": self.concurrency,
            "images": self.images,
            "errors": self.errors,
            "seconds": round(self.seconds, 2),
            "images_per_s": round(self.images / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": latency_percentile_ms(self.latencies_ms, 50),
            "p99_ms": latency_percentile_ms(self.latencies_ms, 99),
            "first_error": self.first_error,
        }


def latency_percentile_ms(latencies_ms: Sequence[float], q: float) -> float:
    """The q-th percentile by nearest rank (numpy's ``inverted_cdf``: always a measured latency); 0 for none."""
    if not latencies_ms:
        return 0.0
    return round(float(np.percentile(latencies_ms, q, method="inverted_cdf")), 2)


def split(concurrency: int, cpus: int) -> list[int]:
    """Threads per client process: at most one process per core, the threads spread evenly."""
    processes = max(1, min(concurrency, cpus))
    base, extra = divmod(concurrency, processes)
    return [base + (1 if i < extra else 0) for i in range(processes)]


def _client_process(args) -> tuple[int, int, list[float], str]:
    host, port, model, images, threads, start_at, stop_at, offset = args
    latencies: list[float] = []
    counts = {"images": 0, "errors": 0, "first_error": ""}
    lock = threading.Lock()

    def loop(index: int) -> None:
        client = TritonHTTP(host, port, model)
        position = offset + index * 7
        while time.time() < start_at:
            time.sleep(0.001)
        try:
            while time.time() < stop_at:
                data = images[position % len(images)]
                position += 1
                began = time.perf_counter()
                try:
                    client.classify([data], top_k=1)
                    elapsed = (time.perf_counter() - began) * 1000
                    with lock:
                        latencies.append(elapsed)
                        counts["images"] += 1
                except Exception as err:  # counted and reported, the load goes on
                    with lock:
                        counts["errors"] += 1
                        counts["first_error"] = counts["first_error"] or f"{type(err).__name__}: {err}"
        finally:
            client.close()

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return counts["images"], counts["errors"], latencies, counts["first_error"]


def closed_loop(
    address: tuple[str, int], model: str, images: Sequence[bytes], concurrency: int, seconds: float
) -> Load:
    """``concurrency`` clients for ``seconds``; the clocks start together once every process is up."""
    shares = split(concurrency, os.cpu_count() or 1)
    start_at = time.time() + 1.0 + 0.02 * len(shares)
    stop_at = start_at + seconds
    jobs = [(*address, model, list(images), threads, start_at, stop_at, i * 13) for i, threads in enumerate(shares)]
    # fork: the client processes need nothing but this module, and start in milliseconds.
    with multiprocessing.get_context("fork").Pool(len(jobs)) as pool:
        answers = pool.map(_client_process, jobs)
    latencies = tuple(x for answer in answers for x in answer[2])
    first_error = next((a[3] for a in answers if a[3]), "")
    return Load(
        concurrency,
        sum(a[0] for a in answers),
        sum(a[1] for a in answers),
        seconds,
        latencies,
        first_error,
    )
