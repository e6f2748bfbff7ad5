"""What the page of ``tritonclf ui`` asks of Triton: its ensembles, their limits, a classification.

    forwarder = Forwarder("localhost:8000")
    forwarder.models()                               # [ServedModel(name, versions, labels, limits), ...]
    forwarder.admit("efficientnet_lite0", size)      # before reading a body: the model's own byte limit
    forwarder.classify("efficientnet_lite0", image_bytes, top_k=5)

Requests go over Triton's HTTP API with ``ClassifierClient`` (the image as a BYTES tensor in
Triton's binary tensor format, top-k by the classification extension). The byte limit is read
from the served preprocessing model's config: the numbers that model enforces. Every failure
is a :class:`Refused` with an HTTP status for the page and one line to show.
"""

from __future__ import annotations

import dataclasses
import threading
import time

from tritonclf.client.status import HTTP_STATUS_NAMES, UNAVAILABLE
from tritonclf.client.triton_client import ClassifierClient, ClientError, InferenceFailed, TritonConnection
from tritonclf.preprocess import DecodeLimits, ImageRejected, check_image_size

INVALID_ARGUMENT = "INVALID_ARGUMENT"
NOT_FOUND = "NOT_FOUND"
# gRPC status names back to the HTTP statuses Triton uses for them; anything else is a bad gateway.
HTTP_STATUSES = {name: int(code) for code, name in HTTP_STATUS_NAMES.items()}
BAD_GATEWAY = 502


class Refused(Exception):
    """A request the page's server cannot answer with a classification: ``message`` is one line for the page."""

    def __init__(self, http_status: int, message: str, status: str):
        super().__init__(message)
        self.http_status = http_status
        self.message = message
        self.status = status

    def to_json(self) -> dict:
        """The page's error body."""
        return {"error": self.message, "status": self.status}


@dataclasses.dataclass(frozen=True)
class ServedModel:
    """An ensemble as the page shows it."""

    name: str
    versions: tuple[str, ...]
    labels: int
    limits: DecodeLimits

    def to_json(self) -> dict:
        """What the page needs: what to show, and the upload limit it checks before sending."""
        return {
            "name": self.name,
            "versions": list(self.versions),
            "labels": self.labels,
            "max_image_bytes": self.limits.max_image_bytes,
        }


def decode_limits(client: TritonConnection, ensemble: str, input_name: str) -> DecodeLimits:
    """The limits of the step that decodes the ensemble's image input, from that model's served config.

    A model that is no ensemble is read as its own decoder; keys its config lacks keep the
    defaults, as they do in the model.
    """
    config = client.model_config(ensemble)
    decoder = config
    for step in config.get("ensemble_scheduling", {}).get("step", []):
        if input_name in step.get("input_map", {}).values():
            decoder = client.model_config(step["model_name"])
            break
    params = {key: value.get("string_value", "") for key, value in decoder.get("parameters", {}).items()}
    return DecodeLimits.from_parameters(params)


def reason(message: str, model: str) -> str:
    """The model's one-line rejection without the ensemble's ``in ensemble 'NAME', `` prefix."""
    return message.removeprefix(f"in ensemble '{model}', ")


def parse_top_k(text: str | None, default: int = 5) -> int:
    """The page's ``top_k`` query value: a positive integer."""
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise Refused(400, f"top_k must be a positive integer, not {text!r}", INVALID_ARGUMENT)
    return value


class Forwarder:
    """Thread-safe: the page's server calls it from one thread per connection."""

    def __init__(self, url: str, model: str | None = None, timeout_s: float = 60.0):
        self.url = url
        self.pinned = model
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._served: dict[str, tuple[ClassifierClient, ServedModel]] = {}

    def models(self) -> list[ServedModel]:
        """The ready ensembles (or the one model given), read afresh from Triton."""
        served = {}
        try:
            if self.pinned:
                names = [self.pinned]
            else:
                connection = TritonConnection(self.url, "http", self.timeout_s)
                try:
                    ready = connection.ready_models()
                    names = sorted(filter(connection.is_ensemble, ready))
                finally:
                    connection.close()
                if not names:
                    raise Refused(
                        503,
                        f"no ready ensemble on {self.url} (ready models: {', '.join(ready) or 'none'})",
                        UNAVAILABLE,
                    )
            for name in names:
                served[name] = self._load(name)
        except ClientError as err:
            raise Refused(503, str(err), UNAVAILABLE) from None
        with self._lock:
            self._served = served
        return [model for _, model in served.values()]

    def _load(self, name: str) -> tuple[ClassifierClient, ServedModel]:
        client = ClassifierClient(self.url, "http", name, timeout_s=self.timeout_s)
        try:
            model = ServedModel(
                name,
                tuple(client.versions),
                client.num_classes,
                decode_limits(client, name, client.input_name),
            )
        finally:
            client.close()
        return client, model

    def served(self, name: str) -> tuple[ClassifierClient, ServedModel]:
        """The client and description of a model the page may call; read from Triton when not known yet."""
        with self._lock:
            found = self._served.get(name)
        if found is None:
            known = [model.name for model in self.models()]
            with self._lock:
                found = self._served.get(name)
            if found is None:
                raise Refused(
                    404,
                    f"model {name!r} is not a ready ensemble on {self.url} (ready: {', '.join(known) or 'none'})",
                    NOT_FOUND,
                )
        return found

    def admit(self, name: str, size: int) -> tuple[ClassifierClient, ServedModel]:
        """The model, if an image of ``size`` bytes is within its byte limit; else Refused (413)."""
        client, model = self.served(name)
        try:
            check_image_size(size, model.limits)
        except ImageRejected as err:
            raise Refused(413, str(err), INVALID_ARGUMENT) from None
        return client, model

    def classify(self, name: str, image: bytes, top_k: int) -> dict:
        """The image's top-k classes and Triton's round trip, as the page's JSON."""
        client, model = self.admit(name, len(image))
        start = time.perf_counter()
        try:
            predictions = client.classify(image, min(top_k, model.labels))
        except InferenceFailed as err:
            raise Refused(HTTP_STATUSES.get(err.status, BAD_GATEWAY), reason(str(err), name), err.status) from None
        finally:
            # One connection per request: the page's server runs each connection on its own thread.
            client.close()
        elapsed_ms = (time.perf_counter() - start) * 1000
        return {
            "model": name,
            "predictions": [dataclasses.asdict(p) for p in predictions],
            "triton_ms": round(elapsed_ms, 1),
        }
