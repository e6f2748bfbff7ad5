"""A small classification client over Triton's gRPC or HTTP API (no torch, no numpy maths).

    client = ClassifierClient("localhost:8001", protocol="grpc")
    predictions = client.classify(open("cat.jpg", "rb").read(), top_k=5)

It finds the model's input and output from the server's model metadata, so it
works with any model that takes encoded image bytes; with no model name it
picks the repository's only ensemble. Top-k comes from Triton's classification
extension (``class_count``), so only k short strings cross the wire.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading

import numpy as np

from tritonclf.client.status import DEADLINE_EXCEEDED, one_line, status_name

PROTOCOLS = ("grpc", "http")
DEFAULT_PORTS = {"grpc": 8001, "http": 8000}


class ClientError(RuntimeError):
    """Server unreachable, model unknown or unsuitable: one line for the user."""


class InferenceFailed(RuntimeError):
    """The server rejected or failed one request; ``status`` says how (e.g. INVALID_ARGUMENT)."""

    def __init__(self, message: str, status: str):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Prediction:
    """One of the top-k classes."""

    label: str
    index: int
    score: float


def parse_classification(entry: bytes | str) -> Prediction:
    """Triton's ``score:index:label`` (label optional, may contain ':') -> Prediction."""
    text = entry.decode() if isinstance(entry, bytes) else entry
    parts = text.split(":", 2)
    if len(parts) < 2:
        raise ValueError(f"not a classification result: {text!r}")
    label = parts[2] if len(parts) == 3 else parts[1]
    return Prediction(label=label, index=int(parts[1]), score=float(parts[0]))


def default_url(protocol: str) -> str:
    """Triton's default port for the protocol on localhost."""
    return f"localhost:{DEFAULT_PORTS[protocol]}"


def check_address(url: str, protocol: str) -> None:
    """``HOST:PORT`` as tritonclient takes it; a URL or a bad port is a one-line ClientError.

    Checked before tritonclient sees it: its HTTP client, refusing a scheme in its
    constructor, leaves a half-made object whose destructor prints a traceback.
    """
    example = f"e.g. {default_url(protocol)}"
    scheme, sep, rest = url.partition("://")
    if sep:
        raise ClientError(f"give the server as HOST:PORT, without {scheme}://: {rest.rstrip('/') or example}")
    host, sep, port = url.rpartition(":")
    if sep and (not host or not port.isdigit() or not 0 < int(port) < 65536):
        raise ClientError(f"give the server as HOST:PORT ({example}), not {url!r}")


class TritonConnection:
    """One Triton server over gRPC or HTTP, checked live on creation.

    Thread-safe: each thread gets its own underlying tritonclient connection.
    """

    def __init__(self, url: str | None = None, protocol: str = "grpc", timeout_s: float = 60.0):
        if protocol not in PROTOCOLS:
            raise ClientError(f"protocol must be one of {PROTOCOLS}, not {protocol!r}")
        self.protocol = protocol
        self.url = url or default_url(protocol)
        check_address(self.url, protocol)
        self.timeout_s = timeout_s
        self._local = threading.local()
        with self._closed_on_error():
            self._check_live()

    @contextlib.contextmanager
    def _closed_on_error(self):
        """Close this thread's connection when setting up fails: the caller never gets an object to close."""
        try:
            yield
        except BaseException:
            self.close()
            raise

    def _module(self):
        if self.protocol == "grpc":
            import tritonclient.grpc as module
        else:
            import tritonclient.http as module
        return module

    @property
    def raw(self):
        """This thread's tritonclient ``InferenceServerClient``."""
        client = getattr(self._local, "client", None)
        if client is None:
            module = self._module()
            if self.protocol == "grpc":
                client = module.InferenceServerClient(self.url)
            else:
                client = module.InferenceServerClient(
                    self.url, connection_timeout=self.timeout_s, network_timeout=self.timeout_s
                )
            self._local.client = client
        return client

    def _check_live(self) -> None:
        try:
            live = self.raw.is_server_live()
        except Exception as err:  # connection refused, DNS, TLS...: all mean "not reachable"
            raise ClientError(
                f"cannot reach Triton over {self.protocol} at {self.url}: {one_line(err)}; "
                f"is the server running (make serve)?"
            ) from None
        if not live:
            raise ClientError(f"Triton at {self.url} is not live")

    def model_config(self, name: str) -> dict:
        """The model's configuration as Triton serves it (JSON fields)."""
        config = (
            self.raw.get_model_config(name, as_json=True)
            if self.protocol == "grpc"
            else self.raw.get_model_config(name)
        )
        return config.get("config", config)

    def ready_models(self) -> list[str]:
        """Names of the repository's ready models; ClientError when the server does not list them."""
        try:
            index = (
                self.raw.get_model_repository_index(as_json=True)
                if self.protocol == "grpc"
                else self.raw.get_model_repository_index()
            )
        except Exception as err:  # a server that restricts its repository API (docs/SECURITY.md)
            raise ClientError(f"cannot list the models on {self.url} ({one_line(err)}): pass --model") from None
        models = index.get("models", index) if isinstance(index, dict) else index
        return [m["name"] for m in models if m.get("state") == "READY"]

    def is_ensemble(self, name: str) -> bool:
        """Whether the model is an ensemble (the models that take encoded images, in our repositories)."""
        return self.model_config(name).get("platform") == "ensemble"

    def ready_ensembles(self) -> list[str]:
        """The repository's ready ensembles, sorted."""
        return sorted(filter(self.is_ensemble, self.ready_models()))

    def close(self) -> None:
        """Close this thread's connection."""
        client = getattr(self._local, "client", None)
        if client is not None:
            client.close()
            self._local.client = None


class ClassifierClient(TritonConnection):
    """A model that takes encoded images on one server; thread-safe like ``TritonConnection``."""

    def __init__(
        self, url: str | None = None, protocol: str = "grpc", model: str | None = None, timeout_s: float = 60.0
    ):
        super().__init__(url, protocol, timeout_s)
        with self._closed_on_error():
            self.model = model or self._only_ensemble()
            self.metadata = self._ready_metadata(self.model)
            self.input_name, self.input_shape, self.output_name = model_io(self.model, self.metadata)

    def _only_ensemble(self) -> str:
        ready = self.ready_models()
        ensembles = sorted(filter(self.is_ensemble, ready))
        if len(ensembles) == 1:
            return ensembles[0]
        if not ensembles:
            raise ClientError(
                f"no ready ensemble on {self.url} (ready models: {', '.join(ready) or 'none'}); pass --model"
            )
        raise ClientError(f"several ensembles on {self.url} ({', '.join(ensembles)}): pass --model")

    def _ready_metadata(self, name: str) -> dict:
        try:
            ready = self.raw.is_model_ready(name)
        except Exception as err:
            raise ClientError(f"cannot query model {name!r}: {one_line(err)}") from None
        if not ready:
            try:
                ensembles = ", ".join(self.ready_ensembles()) or "none"
                known = f"; ready ensembles: {ensembles}"
            except ClientError:  # a restricted repository API: the models cannot be listed
                known = ""
            raise ClientError(f"model {name!r} is not ready on {self.url} (unknown, or failed to load){known}")
        return (
            self.raw.get_model_metadata(name, as_json=True)
            if self.protocol == "grpc"
            else self.raw.get_model_metadata(name)
        )

    @property
    def versions(self) -> list[str]:
        """The model's loaded versions, as the server lists them."""
        return [str(v) for v in self.metadata.get("versions", [])]

    @property
    def num_classes(self) -> int:
        """Classes the model scores: the last dimension of its output."""
        return int(self.metadata["outputs"][0]["shape"][-1])

    def classify(self, image: bytes, top_k: int = 5) -> list[Prediction]:
        """Encoded image bytes -> the top-k classes, best first."""
        module = self._module()
        tensor = module.InferInput(self.input_name, self.input_shape, "BYTES")
        tensor.set_data_from_numpy(np.array([image], dtype=np.object_).reshape(self.input_shape))
        output = module.InferRequestedOutput(self.output_name, class_count=top_k)
        try:
            if self.protocol == "grpc":
                result = self.raw.infer(self.model, [tensor], outputs=[output], client_timeout=self.timeout_s)
            else:
                result = self.raw.infer(self.model, [tensor], outputs=[output])
        except Exception as err:
            status = status_name(err)
            if status == DEADLINE_EXCEEDED:
                # gRPC says "Deadline Exceeded", HTTP raises a bare "timed out": one clear line for both.
                raise InferenceFailed(
                    f"no answer within {self.timeout_s:g} s (the client's timeout)", DEADLINE_EXCEEDED
                ) from None
            raise InferenceFailed(one_line(err), status) from None
        return [parse_classification(entry) for entry in result.as_numpy(self.output_name).reshape(-1)]


def model_io(name: str, meta: dict) -> tuple[str, list[int], str]:
    """(input name, input shape with batch 1, output name) of a model that takes one BYTES tensor of images."""
    inputs, outputs = meta["inputs"], meta["outputs"]
    if len(inputs) != 1 or inputs[0]["datatype"] != "BYTES":
        raise ClientError(f"model {name!r} does not take one BYTES input of encoded images; call its ensemble instead")
    shape = [1 if int(d) < 0 else int(d) for d in inputs[0]["shape"]]
    return inputs[0]["name"], shape, outputs[0]["name"]
