"""Phase 3, served: the carried tritonserver on the kit's repository, over HTTP from several processes.

The sample photos first (the expected labels, or the phase fails), then a closed-loop
concurrency sweep on the JPEG mix; per level: images/s, p50/p99, and Triton's
per-model statistics over that level; then served / standalone (phase 1's decode +
model rate in one process) as a ratio.
"""

from __future__ import annotations

import time

from tritonclf.samples import EXPECTED_TOP1, sample_photos
from tritonclf.serving.process import ServerStartError
from tritonclf_lab.gpu_kit.context import Context
from tritonclf_lab.gpu_kit.http_client import TritonHTTP
from tritonclf_lab.gpu_kit.mix import load_mix
from tritonclf_lab.gpu_kit.server import first_error, kit_server, prepare_host
from tritonclf_lab.gpu_kit.sweep import closed_loop

GPU_LEVELS = (1, 8, 32, 64, 128)
SMOKE_LEVELS = (2,)
SMOKE_SECONDS = 2.0
# Seconds kept back from the budget for the server's stop and the last write.
RESERVE_S = 20.0
LOG = "tritonserver.log"


def _nested(stats: dict, path: tuple[str, ...]) -> int:
    for key in path:
        stats = stats.get(key, {})
    return stats or 0


def stats_delta(before: dict, after: dict) -> dict[str, dict]:
    """Per model: requests, executions (batches) and mean queue/compute times over an interval."""
    old = {m["name"]: m for m in before.get("model_stats", [])}
    out = {}
    for model in after.get("model_stats", []):
        name, prev = model["name"], old.get(model["name"], {})

        def diff(path, model=model, prev=prev):
            return _nested(model, path) - _nested(prev, path)

        requests = diff(("inference_stats", "success", "count"))
        executions = model.get("execution_count", 0) - prev.get("execution_count", 0)
        inferences = model.get("inference_count", 0) - prev.get("inference_count", 0)
        if not requests:
            continue
        per_request_us = {
            phase: round(diff(("inference_stats", phase, "ns")) / requests / 1000, 1)
            for phase in ("queue", "compute_input", "compute_infer", "compute_output")
        }
        out[name] = {
            "requests": requests,
            "executions": executions,
            "mean_batch": round(inferences / executions, 2) if executions else None,
            "mean_us_per_request": per_request_us,
        }
    return out


def check_labels(answers: dict[str, tuple[int, str, float]]) -> list[str]:
    """The sample photos whose top-1 is not an expected class (one line each)."""
    return [
        f"{name}: top-1 {answers[name][1]!r} ({answers[name][0]}), expected one of {list(expected)}"
        for name, expected in EXPECTED_TOP1.items()
        if name not in answers or answers[name][0] not in expected
    ]


def run(ctx: Context) -> bool:
    """Start, label the samples, sweep, stop; True when the labels were right and no request failed."""
    model = _ensemble_name(ctx)
    # Loading torch in every stub takes long on a busy machine; keep 30 s of the budget for the rest.
    ready_timeout_s = max(30.0, ctx.remaining_s() - 30.0)
    server = kit_server(
        ctx, prepare_host(ctx), ctx.repository, gpu=not ctx.cpu_smoke, ready_timeout_s=ready_timeout_s, log_name=LOG
    )
    started = time.monotonic()
    try:
        server.start()
    except ServerStartError as err:
        server.stop()  # closes its log
        cause = first_error(ctx.logs / LOG)
        ctx.results.update("served", {"server_error": cause or str(err).splitlines()[0]})
        raise ServerStartError(f"{str(err).splitlines()[0]}: {cause}") from err
    try:
        ctx.results.update("served", {"server_start_s": round(time.monotonic() - started, 1), "model": model})
        ctx.say(f"served: tritonserver ready in {time.monotonic() - started:.1f} s ({ctx.repository.name})")
        client = TritonHTTP("127.0.0.1", server.http_port, model)
        answers = {}
        for photo in sample_photos():
            top = client.classify([photo.read_bytes()], top_k=1)[0][0]
            answers[photo.name] = (top.index, top.label, top.score)
            ctx.say(f"served: {photo.name}: {top.label} ({top.score:.3f})")
        wrong = check_labels(answers)
        ctx.results.update("served", {"samples": answers, "labels_ok": not wrong})
        for line in wrong:
            ctx.say(f"served: WRONG LABEL: {line}")
        images = load_mix(ctx) if not ctx.cpu_smoke else [p.read_bytes() for p in sample_photos()]
        levels = SMOKE_LEVELS if ctx.cpu_smoke else GPU_LEVELS
        sweep, errors = [], 0
        for index, concurrency in enumerate(levels):
            left = ctx.remaining_s() - RESERVE_S
            seconds = SMOKE_SECONDS if ctx.cpu_smoke else min(30.0, left / (len(levels) - index) - 3)
            if seconds < 2:
                ctx.say(f"served: out of time before concurrency {concurrency}")
                break
            before = client.statistics()
            load = closed_loop(("127.0.0.1", server.http_port), model, images, concurrency, seconds)
            row = {**load.summary(), "triton": stats_delta(before, client.statistics())}
            sweep.append(row)
            errors += load.errors
            ctx.results.update("served", {"sweep": sweep})
            ctx.say(
                f"served: concurrency {concurrency}: {row['images_per_s']} images/s, p50 {row['p50_ms']} ms, "
                f"p99 {row['p99_ms']} ms, {load.errors} errors{' (' + load.first_error + ')' if load.errors else ''}"
            )
        client.close()
    finally:
        server.stop()
    best = max((row["images_per_s"] for row in sweep), default=0.0)
    standalone = ctx.results.section("standalone").get("decode_and_model", {}).get("images_per_s")
    ratio = round(best / standalone, 3) if standalone else None
    ctx.results.update("served", {"best_images_per_s": best, "served_over_standalone": ratio})
    if ratio is not None:
        ctx.say(f"served: best {best} images/s = {ratio:.2f} x standalone decode + model ({standalone} images/s)")
    return not wrong and errors == 0


def _ensemble_name(ctx: Context) -> str:
    from tritonclf import contract
    from tritonclf.export_metadata import load_metadata

    return load_metadata(ctx.export / contract.METADATA_FILENAME).model_name
