"""Preflight: check a model repository before Triton loads it, one clear line per problem.

Triton's own load errors come late and cryptic ("plan file is not compatible",
"unable to find ... in the model", an ensemble stuck UNAVAILABLE). This checks,
for every model: the config parses and names its folder; every file it needs
exists; files match the hashes in the version's manifest; names and the repository's path are
ones Triton's Python backend can start a model under (``model_names``); the ensemble's steps
wire up (names, data types, shapes); for TensorRT engines, that this
machine's TensorRT version and GPU match the ones the engine was built for; and for
TorchScript classifiers (``pytorch_libtorch``), that the config's tensor names follow
the PyTorch backend's rules and, where torch is importable, match the file's ``forward``.
Which of these a classifier gets is its backend's choice (``classifiers/``, ``preflight``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as pb

from tritonclf import contract
from tritonclf.files import sha256_file
from tritonclf.repository import classifiers
from tritonclf.repository.backends import GpuInfo
from tritonclf.repository.model_names import model_name_problem, repository_path_problem
from tritonclf.repository.pbtxt import parse


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem (``error``) or a check that could not be made here (``warning``)."""

    model: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.severity}: {self.model}: {self.message}"


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A model folder with its parsed config and numeric versions."""

    path: Path
    config: pb.ModelConfig
    versions: tuple[int, ...]


def load_models(repository: Path) -> tuple[dict[str, LoadedModel], list[Finding]]:
    """Parse every model folder's config; folders that do not parse become findings."""
    models, findings = {}, []
    for folder in sorted(p for p in Path(repository).iterdir() if p.is_dir() and not p.name.startswith(".")):
        config_path = folder / "config.pbtxt"
        if not config_path.is_file():
            findings.append(Finding(folder.name, "no config.pbtxt: not a model folder, remove it or rebuild"))
            continue
        try:
            config = parse(config_path.read_text())
        except Exception as err:  # protobuf's ParseError and friends
            findings.append(Finding(folder.name, f"config.pbtxt does not parse ({_one_line(err)}): rebuild it"))
            continue
        if config.name and config.name != folder.name:
            findings.append(
                Finding(folder.name, f"config names the model {config.name!r}, its folder is {folder.name!r}")
            )
        versions = tuple(sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()))
        if not versions:
            findings.append(Finding(folder.name, "no version folder (1/, 2/...): rebuild the repository"))
        models[folder.name] = LoadedModel(folder, config, versions)
    return models, findings


def check_names(repository: Path, models: dict[str, LoadedModel]) -> list[Finding]:
    """Model names, and the repository's path, that Triton's Python backend cannot start a model under."""
    findings = []
    for name, model in models.items():
        problem = model_name_problem(name)
        if problem and (model.config.backend == "python" or model.config.platform == "ensemble"):
            findings.append(Finding(name, f"the model name {problem}; rebuild with such a --name"))
    if any(model.config.backend == "python" for model in models.values()):
        path_problem = repository_path_problem(repository)
        if path_problem:
            findings.append(Finding(str(repository), path_problem))
    return findings


def required_files(config: pb.ModelConfig) -> list[str]:
    """Files a version folder must contain for this config: its classifier backend's, else its own model's."""
    backend = classifiers.of_config(config)
    if backend is not None:
        return backend.required_files(config)
    if config.platform == "ensemble":
        return []
    if config.backend == "python":
        return ["model.py"]
    return [config.default_model_filename] if config.default_model_filename else []


# A backend model's own imports from its version folder, at module level: every start needs them.
_LOADED_BESIDE = re.compile(r'^\S.*\b_load_beside\("(\w+)"\)', flags=re.MULTILINE)


def loaded_beside(model_py: Path) -> list[str]:
    """The files a Python-backend ``model.py`` loads from beside itself on every start (``_load_beside``)."""
    try:
        return [f"{module}.py" for module in _LOADED_BESIDE.findall(model_py.read_text())]
    except OSError:
        return []  # a missing model.py is reported as such


def check_files(model: LoadedModel) -> list[Finding]:
    """Model-level files (labels, warmup data) and each version's files against its manifest."""
    findings = []
    name, config = model.path.name, model.config
    for output in config.output:
        if output.label_filename and not (model.path / output.label_filename).is_file():
            findings.append(Finding(name, f"label file {output.label_filename} is missing: rebuild the repository"))
    for sample in config.model_warmup:
        for tensor in sample.inputs.values():
            if tensor.input_data_file and not (model.path / "warmup" / tensor.input_data_file).is_file():
                findings.append(Finding(name, f"warmup file warmup/{tensor.input_data_file} is missing: rebuild"))
    for version in model.versions:
        folder = model.path / str(version)
        needed = required_files(config)
        if config.backend == "python":
            needed += [f for f in loaded_beside(folder / "model.py") if f not in needed]
        for file in needed:
            if not (folder / file).is_file():
                findings.append(Finding(name, f"version {version} has no {file}: rebuild the repository"))
        findings += _check_manifest(name, folder)
    if model.versions:
        findings += _check_config_is_the_latest_versions(model)
    return findings


def _check_config_is_the_latest_versions(model: LoadedModel) -> list[Finding]:
    """The build writes config.pbtxt just before renaming the new version into place: a kill in between shows."""
    latest = model.path / str(model.versions[-1])
    try:
        recorded = json.loads((latest / contract.MANIFEST_FILENAME).read_text()).get("config_sha256")
    except (FileNotFoundError, json.JSONDecodeError):
        return []  # reported by _check_manifest
    config = (model.path / "config.pbtxt").read_bytes()
    if recorded and hashlib.sha256(config).hexdigest() != recorded:
        return [
            Finding(
                model.path.name,
                f"config.pbtxt is newer than version {latest.name} (an interrupted build, or an edit): "
                "rerun the build, which completes it",
                # A warning: the other checks catch what would fail (wiring, shapes, files); an
                # old version often serves fine under the new config, but is not what was built.
                "warning",
            )
        ]
    return []


def _check_manifest(name: str, folder: Path) -> list[Finding]:
    manifest_path = folder / contract.MANIFEST_FILENAME
    if not manifest_path.is_file():
        return [Finding(name, f"version {folder.name} has no manifest.json: cannot verify it", "warning")]
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError:
        return [Finding(name, f"version {folder.name}: manifest.json is not JSON: rebuild")]
    findings = []
    for file, digest in manifest.get("files", {}).items():
        path = folder / file
        if not path.is_file():
            findings.append(Finding(name, f"version {folder.name}: {file} listed in the manifest is missing: rebuild"))
        elif sha256_file(path) != digest:
            findings.append(
                Finding(name, f"version {folder.name}: {file} does not match its manifest hash (corrupted?): rebuild")
            )
    return findings


def _tensors(config: pb.ModelConfig, kind: str) -> dict[str, tuple[int, tuple[int, ...]]]:
    return {t.name: (t.data_type, tuple(t.dims)) for t in getattr(config, kind)}


def check_ensemble(model: LoadedModel, models: dict[str, LoadedModel]) -> list[Finding]:
    """Every step's model exists and its tensors connect with matching names, types and shapes."""
    name, config = model.path.name, model.config
    findings = []
    available = _tensors(config, "input")  # tensors known so far: ensemble inputs, then step outputs
    for index, step in enumerate(config.ensemble_scheduling.step, start=1):
        where = f"step {index} ({step.model_name})"
        target = models.get(step.model_name)
        if target is None:
            findings.append(Finding(name, f"{where}: no model {step.model_name!r} in the repository"))
            continue
        step_inputs, step_outputs = _tensors(target.config, "input"), _tensors(target.config, "output")
        for model_tensor, ensemble_tensor in step.input_map.items():
            if model_tensor not in step_inputs:
                findings.append(Finding(name, f"{where}: the model has no input {model_tensor!r}"))
            elif ensemble_tensor not in available:
                findings.append(Finding(name, f"{where}: {ensemble_tensor!r} is produced by no earlier step"))
            elif available[ensemble_tensor] != step_inputs[model_tensor]:
                findings.append(
                    Finding(
                        name,
                        f"{where}: {ensemble_tensor!r} is {_describe(available[ensemble_tensor])}, "
                        f"the model takes {_describe(step_inputs[model_tensor])}",
                    )
                )
        for model_tensor, ensemble_tensor in step.output_map.items():
            if model_tensor not in step_outputs:
                findings.append(Finding(name, f"{where}: the model has no output {model_tensor!r}"))
            else:
                available[ensemble_tensor] = step_outputs[model_tensor]
    for tensor, spec in _tensors(config, "output").items():
        if tensor not in available:
            findings.append(Finding(name, f"output {tensor!r} is produced by no step"))
        elif available[tensor] != spec:
            findings.append(
                Finding(name, f"output {tensor!r} is {_describe(available[tensor])}, declared {_describe(spec)}")
            )
    return findings


# What torch preprocessing imports in the server's environment; the model is known by the
# torch_preprocess.py in its version. A torch classifier's imports are its backend's.
_TORCH_PREPROCESS_IMPORTS = ("torch", "torchvision")


def check_torch_imports(model: LoadedModel, needed: Sequence[str] | None = None, importable=None) -> list[Finding]:
    """A model that runs torch needs it in the server's Python; say so where it is missing.

    ``needed``: the packages to import; by default torch preprocessing's, where the latest
    version holds ``torch_preprocess.py``. A warning: the server may run elsewhere (NVIDIA's
    container) with another environment.
    """
    importable = importable or (lambda name: importlib.util.find_spec(name) is not None)
    if model.config.backend != "python" or not model.versions:
        return []
    if needed is None:
        manifest_path = model.path / str(model.versions[-1]) / contract.MANIFEST_FILENAME
        try:
            files = json.loads(manifest_path.read_text()).get("files", {})
        except (FileNotFoundError, json.JSONDecodeError):
            return []
        needed = _TORCH_PREPROCESS_IMPORTS if "torch_preprocess.py" in files else ()
    missing = sorted(name for name in set(needed) if not importable(name))
    if not missing:
        return []
    return [
        Finding(
            model.path.name,
            f"runs torch but {', '.join(missing)} cannot be imported here: the server's Python needs them "
            "(docs/GPU.md, deploy/requirements.in)",
            "warning",
        )
    ]


def check_engine(
    model: LoadedModel, gpu: GpuInfo | None, tensorrt_version: str | None, triton_tag: str | None
) -> list[Finding]:
    """A TensorRT engine only loads in the TensorRT version and on the GPU architecture it was built for."""
    name = model.path.name
    if not model.versions:
        return []
    manifest_path = model.path / str(model.versions[-1]) / contract.MANIFEST_FILENAME
    engine = json.loads(manifest_path.read_text()).get("engine", {}) if manifest_path.is_file() else {}
    if not engine:
        return [Finding(name, "the engine's manifest has no build record: cannot check compatibility", "warning")]
    findings = []
    rebuild = (
        "rebuild: make engine TRITON_TAG=<your Triton release> (or build_repository.py --backend trt on this host)"
    )
    built_trt = engine.get("tensorrt_version")
    if tensorrt_version is None:
        findings.append(
            Finding(name, f"engine built with TensorRT {built_trt}; no TensorRT here to compare", "warning")
        )
    elif built_trt and _major_minor_patch(built_trt) != _major_minor_patch(tensorrt_version):
        findings.append(
            Finding(name, f"engine built with TensorRT {built_trt}, this machine has {tensorrt_version}; {rebuild}")
        )
    if triton_tag and engine.get("triton_tag") and engine["triton_tag"] != triton_tag:
        findings.append(
            Finding(
                name, f"engine built in the {engine['triton_tag']} container, deployment pins {triton_tag}; {rebuild}"
            )
        )
    built_cc = engine.get("compute_capability")
    portable = engine.get("builder_flags", {}).get("hardware_compatibility") == "ampere+"
    if gpu is None:
        findings.append(
            Finding(name, f"engine built for compute capability {built_cc}; no GPU here to compare", "warning")
        )
    elif built_cc and gpu.compute_capability not in model.config.cc_model_filenames:
        if portable and float(gpu.compute_capability) < 8.0:
            findings.append(Finding(name, f"ampere+ engine cannot run on compute capability {gpu.compute_capability}"))
        elif not portable and built_cc != gpu.compute_capability:
            findings.append(
                Finding(
                    name,
                    f"engine built for compute capability {built_cc} ({engine.get('gpu_name')}), "
                    f"this GPU is {gpu.compute_capability} ({gpu.name}); {rebuild}",
                )
            )
    return findings


_NAMED_INDEX = re.compile(r".+__\d+$")


def libtorch_naming_findings(name: str, config: pb.ModelConfig, forward_args: Sequence[str] | None) -> list[Finding]:
    """The PyTorch backend's tensor-name rules (r24.10 ``GetNamingConvention``).

    Inputs bind by ``forward()`` argument name, else by ``<name>__<index>``, else by
    config order; outputs by ``<name>__<index>``, else by config order. Order is only
    unambiguous for one tensor, so more than one needs names the backend can match.
    ``forward_args`` None: the file could not be read here (no torch).
    """
    findings = []
    inputs = [t.name for t in config.input]
    if forward_args is not None:
        unknown = [n for n in inputs if n not in forward_args]
        if unknown and not all(_NAMED_INDEX.match(n) for n in inputs):
            findings.append(
                Finding(
                    name,
                    f"input {unknown[0]!r} is not an argument of the TorchScript forward({', '.join(forward_args)}): "
                    "re-export the model (tritonclf export --format torchscript) or rename the input",
                )
            )
    elif len(inputs) > 1 and not all(_NAMED_INDEX.match(n) for n in inputs):
        findings.append(Finding(name, "several inputs and no torch here to read forward()'s arguments", "warning"))
    outputs = [t.name for t in config.output]
    if len(outputs) > 1 and not all(_NAMED_INDEX.match(n) for n in outputs):
        findings.append(Finding(name, f"outputs {outputs} must be named <name>__<index> when there is more than one"))
    return findings


def _torchscript_forward_args(path: Path) -> tuple[str, ...] | None:
    if importlib.util.find_spec("torch") is None:
        return None
    from tritonclf.training.torch2torchscript import forward_arguments, load_torchscript

    return forward_arguments(load_torchscript(path))


def check_libtorch(
    model: LoadedModel, read_forward_args: Callable[[Path], tuple[str, ...] | None] = _torchscript_forward_args
) -> list[Finding]:
    """Tensor names of a ``pytorch_libtorch`` model against its latest TorchScript file."""
    config = model.config
    if not model.versions:
        return []
    path = model.path / str(model.versions[-1]) / (config.default_model_filename or contract.TORCHSCRIPT_FILENAME)
    if not path.is_file():
        return []  # reported by check_files
    try:
        forward_args = read_forward_args(path)
    except Exception as err:  # torch.jit.load raises RuntimeError and friends on a bad file
        return [Finding(model.path.name, f"{path.name} does not load as TorchScript ({_one_line(err)}): re-export")]
    findings = libtorch_naming_findings(model.path.name, config, forward_args)
    if forward_args is None:
        findings.append(Finding(model.path.name, "no torch here: forward() argument names not checked", "warning"))
    return findings


def check_repository(
    repository: Path, gpu: GpuInfo | None = None, tensorrt_version: str | None = None, triton_tag: str | None = None
) -> list[Finding]:
    """All checks over a repository folder; empty when it is ready to serve."""
    repository = Path(repository)
    if not repository.is_dir():
        return [Finding(str(repository), "no such repository folder: run make repository")]
    models, findings = load_models(repository)
    if not models and not findings:
        findings.append(Finding(str(repository), "the repository holds no models: run make repository"))
    findings += check_names(repository, models)
    machine = classifiers.Machine(gpu=gpu, tensorrt_version=tensorrt_version, triton_tag=triton_tag)
    for model in models.values():
        findings += check_files(model)
        backend = classifiers.of_config(model.config)
        if model.config.platform == "ensemble":
            findings += check_ensemble(model, models)
        elif backend is not None:
            findings += backend.preflight(model, machine)
        else:
            findings += check_torch_imports(model)
    return findings


def _describe(spec: tuple[int, tuple[int, ...]]) -> str:
    data_type, dims = spec
    return f"{pb.DataType.Name(data_type)}{list(dims)}"


def _major_minor_patch(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:3])


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:200]
