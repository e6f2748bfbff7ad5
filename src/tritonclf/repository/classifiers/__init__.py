"""The classifier backends: one module each, listed once in ``BACKENDS``.

    backend = classifiers.get("python-ort")      # ValueError naming the choices for anything else
    backend.config_fields(metadata, options, {}) # what the classifier's config.pbtxt says
    classifiers.of_config(parsed_config)         # which backend a config in a repository is, or None

A backend (``base.ClassifierBackend``) says its config fields, its version files, which
parsed config is one of its own and what preflight checks for it, and whether
``--backend auto`` picks it. Adding one is a module beside these and a line below.
"""

from __future__ import annotations

from tritonclient.grpc import model_config_pb2 as pb

from tritonclf.repository.classifiers import (
    onnxruntime_onnx,
    python_ort,
    python_torch,
    pytorch_libtorch,
    tensorrt_plan,
)
from tritonclf.repository.classifiers.base import ClassifierBackend, Machine

# In --backend's order; --backend auto asks each in turn, then falls back to the auto_fallback one.
BACKENDS: dict[str, ClassifierBackend] = {
    backend.name: backend
    for backend in (
        tensorrt_plan.BACKEND,
        onnxruntime_onnx.BACKEND,
        python_ort.BACKEND,
        python_torch.BACKEND,
        pytorch_libtorch.BACKEND,
    )
}
(AUTO_FALLBACK,) = (backend for backend in BACKENDS.values() if backend.auto_fallback)

__all__ = ["AUTO_FALLBACK", "BACKENDS", "ClassifierBackend", "Machine", "choose_auto", "get", "names", "of_config"]


def names() -> tuple[str, ...]:
    """Every backend's ``--backend`` name."""
    return tuple(BACKENDS)


def get(name: str) -> ClassifierBackend:
    """The backend of that name; ValueError naming the choices otherwise."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {name!r}") from None


def of_config(config: pb.ModelConfig) -> ClassifierBackend | None:
    """The backend whose classifier this parsed config is; None for other models (ensemble, preprocessing)."""
    return next((backend for backend in BACKENDS.values() if backend.serves(config)), None)


def choose_auto(machine: Machine) -> tuple[ClassifierBackend, str]:
    """(backend, why): the first backend that claims this machine, else the fallback with what the others lacked."""
    declined = []
    for backend in BACKENDS.values():
        picked, why = backend.auto_choice(machine)
        if picked:
            return backend, why
        if why:
            declined.append(why)
    return AUTO_FALLBACK, f"{' and '.join(declined)} on this machine"
