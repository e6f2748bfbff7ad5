"""Low-confidence capture: what it saves where, and how it stays out of the serving path's way."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tritonclf.serving.backend_models import low_confidence_capture as capture_module
from tritonclf.serving.backend_models.low_confidence_capture import LowConfidenceCapture, TokenBucket, folder_name

from ..conftest import SAMPLES

JPEG = (SAMPLES / "chelsea.jpg").read_bytes()
LABELS = ["tabby, tabby cat", "../../etc/passwd", "espresso"]


def make(tmp_path, **overrides):
    settings = {
        "below": 0.5,
        "per_minute": 100,
        "max_bytes": 10 << 20,
        "min_free_bytes": 0,
        "labels": LABELS,
        "record": {"model": "m_monitor", "version": "1"},
    }
    settings.update(overrides)
    return LowConfidenceCapture(str(tmp_path / "captured"), **settings)


def settle(capture, timeout_s=30.0):
    """Close the capture (the writer finishes what is queued first) and return its counts."""
    capture.close(timeout_s)
    assert not capture.thread.is_alive()
    return capture.drain_counts()


def test_unsure_images_land_in_an_image_folder_tree_with_an_index(tmp_path):
    capture = make(tmp_path)
    capture.offer(JPEG, 0, 0.31)
    capture.offer(JPEG, 0, 0.31)  # the same bytes again: one file
    capture.offer(JPEG + b"\0", 2, 0.9)  # confident: not captured
    counts = settle(capture)
    assert counts == {"saved": 1}
    files = sorted(p.relative_to(tmp_path / "captured").as_posix() for p in (tmp_path / "captured").rglob("*.jpg"))
    assert len(files) == 1
    assert files[0].startswith("tabby, tabby cat/")
    line = json.loads((tmp_path / "captured" / "captures.jsonl").read_text())
    assert line["predicted"] == "tabby, tabby cat"
    assert line["score"] == 0.31
    assert line["model"] == "m_monitor"
    assert (tmp_path / "captured" / line["file"]).read_bytes() == JPEG


def test_label_folders_cannot_escape_the_capture_directory():
    assert "/" not in folder_name("../../etc/passwd")
    assert folder_name("..") == "_"


def test_the_rate_limit_skips_images_past_it():
    now = [0.0]
    bucket = TokenBucket(2, clock=lambda: now[0])
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    now[0] = 30.0  # half a minute: one more
    assert [bucket.take(), bucket.take()] == [True, False]


def test_the_byte_budget_and_the_free_space_floor_stop_writes(tmp_path):
    capture = make(tmp_path, max_bytes=len(JPEG) + 10)
    capture.offer(JPEG, 0, 0.1)
    capture.offer(JPEG + b"x", 0, 0.1)
    assert settle(capture) == {"saved": 1, "disk_budget": 1}
    full = make(tmp_path / "other", min_free_bytes=1 << 60)
    full.offer(JPEG, 0, 0.1)
    assert settle(full) == {"disk_full": 1}


def test_a_slow_disk_never_blocks_the_caller(tmp_path, monkeypatch):
    release = threading.Event()
    slow_save = LowConfidenceCapture._save

    def stuck_save(self, *args):
        release.wait(10)
        slow_save(self, *args)

    monkeypatch.setattr(LowConfidenceCapture, "_save", stuck_save)
    capture = make(tmp_path, queue_size=2)
    start = time.perf_counter()
    for i in range(20):
        capture.offer(JPEG + bytes([i]), 0, 0.2)
    assert time.perf_counter() - start < 0.5
    release.set()
    counts = settle(capture)
    assert counts["queue_full"] >= 16
    assert counts["saved"] + counts["queue_full"] == 20


def test_an_unwritable_directory_is_counted_not_raised(tmp_path):
    (tmp_path / "captured").write_text("a file where the directory should be")
    capture = make(tmp_path)
    capture.offer(JPEG, 0, 0.2)
    counts = settle(capture)
    assert counts.get("saved", 0) == 0
    assert set(counts) <= {"disk_budget", "write_error"}


@pytest.mark.parametrize(("data", "ext"), [(JPEG, "jpg"), (b"\x89PNG\r\n", "png"), (b"RIFF1234WEBPVP8 ", "webp")])
def test_files_get_their_format_s_extension(data, ext):
    assert capture_module.extension(data) == ext
