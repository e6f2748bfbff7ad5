"""The container files, checked without Docker: one Triton tag pin, pinned packages, compose settings.

`docker build` and `docker compose up` need a Docker engine and a GPU, which CI does not
have; these tests check what can be checked from the files themselves.
"""

from __future__ import annotations

import ast
import re
import sys

import yaml

from ..conftest import ROOT

DEPLOY = ROOT / "deploy"
PACKAGE = ROOT / "src" / "tritonclf"
BACKEND_SOURCES = [
    *sorted((PACKAGE / "serving" / "backend_models").glob("*.py")),
    PACKAGE / "preprocess.py",
    PACKAGE / "torch_preprocess.py",
]
# Import name -> the distribution the container installs for it.
DISTRIBUTIONS = {"numpy": "numpy", "PIL": "pillow", "onnxruntime": "onnxruntime"}
# The PYTHON_ORT=gpu image: the same, with the CUDA build of ONNX Runtime.
GPU_DISTRIBUTIONS = {**DISTRIBUTIONS, "onnxruntime": "onnxruntime-gpu"}
LOCKS = {"requirements.in": "requirements.txt", "requirements-gpu.in": "requirements-gpu.txt"}
# Provided inside Triton (the backend's utilities) or copied beside model.py by the build.
NOT_INSTALLED = {"triton_python_backend_utils", "preprocess", "torch_preprocess"}
# Only the --preprocess torch / --backend torch models import these; the default image leaves
# them out (several GB) and deploy/requirements.in says how to add them.
TORCH_MODELS_ONLY = {"torch", "torchvision", "timm", "safetensors"}
TAG = re.compile(r"\b\d\d\.\d\d-py3\b")


def pins(text: str) -> dict[str, str]:
    """``name==version`` lines -> {name: version} (comments and hashes ignored)."""
    found = {}
    for line in text.splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.\-\[\],]+?)(?:\[[^\]]*\])?==([^\s;#]+)", line)
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def triton_tag() -> str:
    return re.search(r"^TRITON_TAG=(\S+)$", (DEPLOY / "triton.env").read_text(), re.MULTILINE).group(1)


def test_triton_tag_is_pinned_once_and_matches_the_embedded_triton_release():
    assert triton_tag() == "24.10-py3"  # Triton 2.51.0, the nvidia-pytriton wheel's binary
    for path in (DEPLOY / "Dockerfile", DEPLOY / "compose.yaml", ROOT / "Makefile"):
        code = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        assert not TAG.search(code), f"{path.name} repeats a Triton tag: read deploy/triton.env instead"


def test_dockerfile_builds_on_nvidias_triton_image_as_non_root_with_a_readiness_healthcheck():
    text = (DEPLOY / "Dockerfile").read_text()
    instructions = [line for line in text.splitlines() if line and not line.startswith(("#", " "))]
    assert instructions[0] == "ARG TRITON_TAG"  # no default: triton.env is the one pin
    assert instructions[1] == "FROM nvcr.io/nvidia/tritonserver:${TRITON_TAG}"
    assert "USER triton-server" in instructions
    assert re.search(r"HEALTHCHECK .*\n?.*stub_health.py.*--ready", text)
    # The script the healthcheck and the Kubernetes probes run is in the image and in the build context.
    assert "COPY src/tritonclf/serving/stub_health.py /opt/tritonclf/stub_health.py" in text
    assert "!src/tritonclf/serving/stub_health.py" in (ROOT / ".dockerignore").read_text()
    assert '--require-hashes -r "$lock"' in text
    assert "cpu) lock=/tmp/requirements.txt" in text and "gpu) lock=/tmp/requirements-gpu.txt" in text


def test_image_packages_match_the_project_pins():
    # pyproject.toml gives ranges; the exact versions the server environment runs are in constraints.txt.
    project_pins = pins((ROOT / "constraints.txt").read_text())
    for source, distributions in (("requirements.in", DISTRIBUTIONS), ("requirements-gpu.in", GPU_DISTRIBUTIONS)):
        wanted = pins((DEPLOY / source).read_text())
        assert set(wanted) == set(distributions.values())
        for name in ("numpy", "pillow"):
            assert wanted[name] == project_pins[name], f"deploy/{source} pins {name} apart from constraints.txt"
        assert int(wanted["numpy"].split(".")[0]) < 2  # the Python backend breaks BYTES tensors with numpy 2


def test_locked_requirements_pin_every_package_with_a_hash():
    for source, target in LOCKS.items():
        wanted = pins((DEPLOY / source).read_text())
        lines = [line for line in (DEPLOY / target).read_text().splitlines() if not line.startswith("#")]
        locked = pins("\n".join(lines))
        assert wanted.items() <= locked.items(), f"deploy/{target} is stale: run make lock-image"
        assert all(re.search(r" --hash=sha256:[0-9a-f]{64}$", line) for line in lines)


def test_image_packages_cover_every_import_of_the_python_backend_models():
    imported = set()
    for source in BACKEND_SOURCES:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - NOT_INSTALLED - {"__future__", "tritonclf"}
    unknown = third_party - set(DISTRIBUTIONS) - TORCH_MODELS_ONLY
    assert not unknown, f"backend models import {sorted(unknown)}: add them to deploy/requirements.in"
    requirements = (DEPLOY / "requirements.in").read_text()
    assert all(name in requirements for name in TORCH_MODELS_ONLY & third_party), "say how to add the torch packages"


def test_compose_serves_the_repository_read_only_on_one_gpu_with_room_in_shared_memory():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    (service,) = compose["services"].values()
    assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    assert service["build"]["args"]["TRITON_TAG"].startswith("${TRITON_TAG:?")
    assert "../model_repository:/models:ro" in service["volumes"]
    assert {port.split(":")[-1] for port in service["ports"]} == {"8000", "8001", "8002"}
    assert service["shm_size"] == "1gb"
    (device,) = service["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert any(arg.startswith("--model-repository=") for arg in service["command"])


def test_docker_build_context_carries_only_what_the_image_copies():
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    assert sorted(lines[1:]) == sorted(
        [
            "!deploy/requirements.txt",
            "!deploy/requirements-gpu.txt",
            "!deploy/tritonserver-secure",
            "!src/tritonclf/serving/stub_health.py",
        ]
    )
