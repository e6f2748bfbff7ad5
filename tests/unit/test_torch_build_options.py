"""What ``--preprocess torch`` and ``--backend torch`` write into the configs, and what preflight says of them."""

from __future__ import annotations

import json

import pytest
from tritonclient.grpc import model_config_pb2 as pb

from tritonclf import contract
from tritonclf.repository.build_cli import parse_args
from tritonclf.repository.models import BuildOptions, classifier_spec, preprocess_spec
from tritonclf.repository.pbtxt import to_model_config
from tritonclf.repository.preflight_checks import LoadedModel, check_torch_imports
from tritonclf.serving import launcher

from ..export_metadata import export_metadata

METADATA = export_metadata(state_dict_filename=contract.WEIGHTS_FILENAME, state_dict_sha256="0" * 64)


def parameters(config: pb.ModelConfig) -> dict[str, str]:
    return {key: value.string_value for key, value in config.parameters.items()}


def test_torch_classifier_takes_its_pixels_where_they_are_and_rebuilds_the_timm_model():
    config = to_model_config(classifier_spec("m", METADATA, BuildOptions(backend="torch")))
    params = parameters(config)
    assert config.backend == "python"
    assert params["FORCE_CPU_ONLY_INPUT_TENSORS"] == "no"
    assert (params["timm_model"], params["num_classes"]) == ("efficientnet_lite0", "3")
    assert params["weights_filename"] == contract.WEIGHTS_FILENAME
    assert "cuda_graph_batch_sizes" not in params  # FP32 on the CPU, no graphs
    assert config.instance_group[0].kind == pb.ModelInstanceGroup.KIND_CPU


def test_torch_classifier_on_a_gpu_captures_graphs_for_padded_batch_sizes_up_to_the_maximum():
    options = BuildOptions(backend="torch", device="gpu", max_batch_size=24)
    config = to_model_config(classifier_spec("m", METADATA, options))
    assert parameters(config)["cuda_graph_batch_sizes"] == "1,2,4,8,16,24"
    assert config.instance_group[0].kind == pb.ModelInstanceGroup.KIND_GPU


def test_other_classifiers_keep_triton_copying_their_input_to_the_host():
    config = to_model_config(classifier_spec("m", METADATA, BuildOptions(backend="python-ort")))
    assert "FORCE_CPU_ONLY_INPUT_TENSORS" not in parameters(config)


@pytest.mark.parametrize(
    ("preprocess", "device", "kind"),
    [("pillow", "gpu", "KIND_CPU"), ("torch", "cpu", "KIND_CPU"), ("torch", "gpu", "KIND_GPU")],
)
def test_only_torch_preprocessing_runs_on_the_gpu(preprocess, device, kind):
    config = to_model_config(preprocess_spec("m", METADATA, BuildOptions(preprocess=preprocess, device=device)))
    assert pb.ModelInstanceGroup.Kind.Name(config.instance_group[0].kind) == kind


def test_unknown_preprocess_is_refused():
    with pytest.raises(ValueError, match="preprocess must be one of pillow, torch"):
        BuildOptions(preprocess="opencv")


def test_build_command_takes_preprocess_and_backend_torch():
    args = parse_args(["--export", "e", "--preprocess", "torch", "--backend", "torch"])
    assert (args.preprocess, args.backend) == ("torch", "torch")
    assert parse_args(["--export", "e"]).preprocess == "pillow"


def test_preflight_warns_when_the_servers_python_cannot_import_torch(tmp_path):
    version = tmp_path / "m_preprocess" / "1"
    version.mkdir(parents=True)
    files = {"model.py": "0", "preprocess.py": "0", "torch_preprocess.py": "0"}
    (version / contract.MANIFEST_FILENAME).write_text(json.dumps({"files": files}))
    config = to_model_config(preprocess_spec("m", METADATA, BuildOptions(preprocess="torch")))
    model = LoadedModel(version.parent, config, (1,))
    [finding] = check_torch_imports(model, importable=lambda name: name != "torchvision")
    assert finding.severity == "warning" and "torchvision cannot be imported here" in finding.message
    assert check_torch_imports(model, importable=lambda name: True) == []


def test_launcher_sizes_the_cuda_memory_pool_on_a_gpu_host_unless_told():

    pool = f"--cuda-memory-pool-byte-size=0:{launcher.CUDA_MEMORY_POOL_BYTES}"
    assert pool in launcher.server_command(["--model-repository", "r"], gpu=True)
    assert pool not in launcher.server_command(["--model-repository", "r"], gpu=False)
    mine = launcher.server_command(["--cuda-memory-pool-byte-size=0:1024"], gpu=True)
    assert pool not in mine and "--cuda-memory-pool-byte-size=0:1024" in mine
