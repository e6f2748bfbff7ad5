"""Every classifier backend is one unit: its config, its files, preflight's view of it and auto's choice.

These run over ``classifiers.BACKENDS``, so a backend added there is held to them without
a line here; backend-specific behaviour has its own tests (test_backends, test_torch_build_options...).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from tritonclient.grpc import model_config_pb2 as pb

from tritonclf import contract
from tritonclf.export_metadata import ExportMetadata
from tritonclf.repository import classifiers
from tritonclf.repository.backends import BACKENDS, choose_backend
from tritonclf.repository.build import PreparedEngine
from tritonclf.repository.build_cli import parse_args
from tritonclf.repository.classifiers.base import Machine
from tritonclf.repository.models import BuildOptions, classifier_spec, ensemble_spec, preprocess_spec
from tritonclf.repository.pbtxt import parse, render, to_model_config
from tritonclf.repository.preflight_checks import required_files

from ..doc_commands import ROOT
from ..export_metadata import export_metadata

NAMES = classifiers.names()


def _export(folder: Path) -> ExportMetadata:
    """An export folder with a file of every format, hashed as model.json records them."""
    folder.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for filename in (contract.ONNX_FILENAME, contract.TORCHSCRIPT_FILENAME, contract.WEIGHTS_FILENAME):
        (folder / filename).write_bytes(filename.encode())
        hashes[filename] = hashlib.sha256(filename.encode()).hexdigest()
    return export_metadata(
        onnx_sha256=hashes[contract.ONNX_FILENAME],
        state_dict_filename=contract.WEIGHTS_FILENAME,
        state_dict_sha256=hashes[contract.WEIGHTS_FILENAME],
        torchscript_filename=contract.TORCHSCRIPT_FILENAME,
        torchscript_sha256=hashes[contract.TORCHSCRIPT_FILENAME],
    )


def _options(name: str) -> BuildOptions:
    return BuildOptions(backend=name, device="gpu" if classifiers.get(name).always_gpu else "cpu")


@pytest.mark.parametrize("name", NAMES)
def test_each_backend_config_round_trips_with_the_served_tensors_and_is_recognized_by_preflight(tmp_path, name):
    metadata = _export(tmp_path / "export")
    config = to_model_config(classifier_spec("m", metadata, _options(name)))
    assert parse(render(config)) == config
    assert [(t.name, list(t.dims)) for t in config.input] == [(contract.PIXELS, [3, 224, 224])]
    assert [(t.name, t.label_filename) for t in config.output] == [(contract.PROBABILITIES, contract.LABELS_FILENAME)]
    assert classifiers.of_config(config) is classifiers.get(name)


@pytest.mark.parametrize("name", NAMES)
def test_each_backend_writes_every_file_preflight_asks_for(tmp_path, name):
    backend = classifiers.get(name)
    metadata = _export(tmp_path / "export")
    plan = tmp_path / "model.plan"
    plan.write_bytes(b"plan")
    engine = PreparedEngine(plan, record={}) if backend.needs_engine else None
    files, cc_map = backend.version_files(tmp_path / "export", metadata, engine)
    assert all(Path(source).is_file() for source in files.values())
    config = to_model_config(classifier_spec("m", metadata, _options(name), cc_map))
    assert set(required_files(config)) <= set(files)


def test_the_other_models_and_unknown_configs_are_no_backend_of_ours(tmp_path):
    metadata = _export(tmp_path / "export")
    options = BuildOptions()
    for spec in (preprocess_spec("m", metadata, options), ensemble_spec("m", metadata, options)):
        assert classifiers.of_config(to_model_config(spec)) is None
    # A config no backend wrote is not taken for TensorRT (or anything else): its own file only.
    openvino = pb.ModelConfig(name="m_model", backend="openvino", default_model_filename="model.xml")
    assert classifiers.of_config(openvino) is None and required_files(openvino) == ["model.xml"]


def test_an_unknown_backend_is_refused_everywhere_with_the_one_list():
    message = f"backend must be one of {', '.join(NAMES)}, not 'openvino'"
    for refuse in (lambda: BuildOptions(backend="openvino"), lambda: classifiers.get("openvino")):
        with pytest.raises(ValueError, match=re.escape(message)):
            refuse()
    with pytest.raises(ValueError, match="backend must be one of auto, "):
        choose_backend("openvino", None, None)
    with pytest.raises(SystemExit):
        parse_args(["--export", "e", "--backend", "openvino"])
    assert ("auto", *NAMES) == BACKENDS


def test_auto_falls_back_to_one_backend_and_says_what_the_others_lacked():
    fallback, why = classifiers.choose_auto(Machine())
    assert fallback is classifiers.AUTO_FALLBACK and [b for b in classifiers.BACKENDS.values() if b.auto_fallback] == [
        fallback
    ]
    assert why.endswith(" on this machine") and "no NVIDIA GPU" in why


def test_the_gpu_guide_lists_every_backend():
    guide = (ROOT / "docs/GPU.md").read_text()
    table = guide[guide.index("| `--backend` |") :].split("\n\n")[0]
    assert re.findall(r"^\| `([a-z][a-z-]*)` \|", table, flags=re.MULTILINE) == [*NAMES, "auto"]
