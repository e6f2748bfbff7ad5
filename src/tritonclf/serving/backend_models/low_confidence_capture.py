"""Save the images the model was unsure about, for relabelling: off unless the build turns it on.

Copied by the repository build beside the monitor step's ``model.py`` when it is built with
``--capture-dir``. An image whose top-1 score is below the threshold is written to
``DIR/<predicted label>/<sha256 prefix>.<ext>`` (an ImageFolder tree: move the files to their
true class folder and it is training data) and one JSON line per image goes to
``DIR/captures.jsonl`` (file, predicted label, score, model, version, time).

It stores user images: turn it on only where that is allowed, and treat ``DIR`` as user data.

The serving path never waits on the disk: a request only takes a token from a rate limiter
and puts the bytes on a short queue (both in memory, non-blocking); one writer thread does
the file work. A full queue (slow disk), an empty token bucket, a spent byte budget, too
little free space or a failed write skip the image and count why; nothing raises into the
request. The writer learns the tree's size once at start (before that, nothing is written)
and stops at the budget; several instances or servers sharing one directory each keep
their own count, so the budget can be overshot by at most what the others wrote since.
"""

import contextlib
import hashlib
import json
import os
import queue
import re
import shutil
import tempfile
import threading
import time

INDEX_FILENAME = "captures.jsonl"
_EXTENSIONS = ((b"\xff\xd8\xff", "jpg"), (b"\x89PNG", "png"), (b"GIF8", "gif"), (b"BM", "bmp"))
_UNSAFE = re.compile(r"[^\w .,()+-]+")


def folder_name(label):
    """A class label as a folder name: no path separators or control characters, at most 100 characters."""
    name = _UNSAFE.sub("_", label).strip(" .") or "_"
    return name[:100]


def extension(data):
    """The file extension for an image's bytes (as the preprocessing accepted them)."""
    for signature, ext in _EXTENSIONS:
        if data.startswith(signature):
            return ext
    return "webp" if data[8:12] == b"WEBP" else "bin"


class TokenBucket:
    """At most ``per_minute`` takes a minute on average, bursts up to the same number."""

    def __init__(self, per_minute, clock=time.monotonic):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.tokens = self.capacity
        self.stamp = clock()
        self.lock = threading.Lock()

    def take(self):
        """One token if there is one."""
        with self.lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens < 1.0:
                return False
            self.tokens -= 1.0
            return True


def tree_bytes(directory):
    """Total size of the files under ``directory`` (0 if it does not exist)."""
    total = 0
    for root, _, files in os.walk(directory):
        for name in files:
            with contextlib.suppress(OSError):  # removed meanwhile
                total += os.stat(os.path.join(root, name)).st_size
    return total


class LowConfidenceCapture:
    """Non-blocking ``offer``; a writer thread saves within the rate, the queue, the budget and the free space."""

    def __init__(
        self,
        directory,
        *,
        below,
        per_minute,
        max_bytes,
        min_free_bytes,
        labels,
        record,
        queue_size=32,
        log_error=None,
    ):
        """``labels`` are the class names by index; ``record`` is added to every index line (model, version)."""
        self.directory = directory
        self.below = float(below)
        self.max_bytes = int(max_bytes)
        self.min_free_bytes = int(min_free_bytes)
        self.labels = list(labels)
        self.record = dict(record)
        self.log_error = log_error or (lambda message: None)
        # Counted here and sent by the serving thread (drain_counts): metric calls stay off the writer.
        self._counts = {}
        self._counts_lock = threading.Lock()
        self.bucket = TokenBucket(per_minute)
        self.queue = queue.Queue(maxsize=queue_size)
        self.used_bytes = None  # known once the writer has measured the tree
        self.seen = set()
        self._errors_logged = 0
        self.thread = threading.Thread(target=self._write_loop, name="low-confidence-capture", daemon=True)
        self.thread.start()

    def _count(self, what):
        with self._counts_lock:
            self._counts[what] = self._counts.get(what, 0) + 1

    def drain_counts(self):
        """{"saved" or a skip reason: count} since the last call."""
        with self._counts_lock:
            counts, self._counts = self._counts, {}
        return counts

    def wants(self, score):
        """Whether an image with this top-1 score is one to capture."""
        return score < self.below

    def offer(self, data, top1, score):
        """Queue one image if it is below the threshold and the rate allows; never blocks, never raises."""
        if not self.wants(score):
            return
        if not self.bucket.take():
            self._count("rate_limited")
            return
        try:
            self.queue.put_nowait((bytes(data), int(top1), float(score), time.time()))
        except queue.Full:
            self._count("queue_full")

    def close(self, timeout_s=2.0):
        """Stop the writer after what is queued (at most ``timeout_s``)."""
        try:
            self.queue.put(None, timeout=timeout_s)
        except queue.Full:
            return
        self.thread.join(timeout_s)

    def _write_loop(self):
        try:
            os.makedirs(self.directory, exist_ok=True)
            self.used_bytes = tree_bytes(self.directory)
        except OSError as err:
            self._error(f"capture directory {self.directory} unusable: {err}")
            self.used_bytes = self.max_bytes  # nothing will be written
        while True:
            item = self.queue.get()
            if item is None:
                return
            try:
                self._save(*item)
            except Exception as err:  # the writer thread must outlive any one bad write
                self._count("write_error")
                self._error(f"capture write failed: {type(err).__name__}: {err}")

    def _save(self, data, top1, score, stamp):
        digest = hashlib.sha256(data).hexdigest()
        if digest in self.seen:
            return
        label = self.labels[top1] if 0 <= top1 < len(self.labels) else str(top1)
        if self.used_bytes + len(data) > self.max_bytes:
            self._count("disk_budget")
            return
        if shutil.disk_usage(self.directory).free - len(data) < self.min_free_bytes:
            self._count("disk_full")
            return
        folder = os.path.join(self.directory, folder_name(label))
        os.makedirs(folder, exist_ok=True)
        name = f"{digest[:20]}.{extension(data)}"
        fd, tmp = tempfile.mkstemp(prefix=".capture-", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, os.path.join(folder, name))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        line = {"file": f"{folder_name(label)}/{name}", "predicted": label, "score": round(score, 6)}
        line.update(self.record, time=round(stamp, 3))
        with open(os.path.join(self.directory, INDEX_FILENAME), "a") as index:
            index.write(json.dumps(line) + "\n")
        self.seen.add(digest)
        self.used_bytes += len(data)
        self._count("saved")

    def _error(self, message):
        # A failing disk fails every write: the log gets the first few, the counter all of them.
        if self._errors_logged < 5:
            self._errors_logged += 1
            self.log_error(message)
