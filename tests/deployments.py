"""The tritonserver command line each shipped deployment runs, read from the deployment files themselves.

Kubernetes manifests are rendered with ``kubectl kustomize`` (offline) and their ``$(VAR)``
references expanded as the kubelet does; compose.yaml is interpolated as ``docker compose``
does; the Dockerfile's CMD is its entry script with its arguments. The tests start the real
server with what comes out, so a flag changed in a manifest is a flag changed in the test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
KUSTOMIZATIONS = {"k8s-base": "base", "k8s-gpu": "overlays/gpu", "kserve": "kserve"}
DEPLOYMENTS = (*KUSTOMIZATIONS, "compose", "dockerfile")
# Triton puts this before the key named in --grpc-restricted-protocol to make the gRPC header.
GRPC_HEADER_PREFIX = "triton-grpc-protocol-"


@dataclass(frozen=True)
class Deployment:
    """What one deployment hands tritonserver, with the admin key substituted where it goes."""

    name: str
    args: tuple[str, ...]  # without the program name and --model-repository (the test serves its own)
    executable: Path | None = None  # a script run instead of tritonserver (the Dockerfile's entry)
    env: dict[str, str] = field(default_factory=dict)  # what the process needs set (the key, for the entry)
    headers: tuple[str, str] = ("", "")  # the key's header over HTTP and over gRPC


def restriction_headers(text: str) -> tuple[str, str]:
    """The headers that carry the key, (HTTP, gRPC), from the restriction flags written in ``text``."""
    flags = r"(--http-restricted-api|--grpc-restricted-protocol)=[^:\s]*:([A-Za-z0-9_-]+)="
    keys = dict(re.findall(flags, text))
    return keys["--http-restricted-api"], GRPC_HEADER_PREFIX + keys["--grpc-restricted-protocol"]


def one(docs: list[dict], kind: str) -> dict:
    """The one document of ``kind`` among ``docs``."""
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def kustomize(target: str) -> list[dict]:
    """The documents ``kubectl kustomize deploy/k8s/<target>`` renders."""
    if not shutil.which("kubectl"):
        message = "kubectl is needed to render the kustomizations (kubectl kustomize works offline)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S / target)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def triton_container(docs: list[dict]) -> dict:
    """The container that runs Triton: the Deployment's, or the InferenceService's model."""
    for doc in docs:
        if doc["kind"] == "Deployment":
            (container,) = doc["spec"]["template"]["spec"]["containers"]
            return container
        if doc["kind"] == "InferenceService":
            return doc["spec"]["predictor"]["model"]
    raise AssertionError("no Deployment or InferenceService rendered")


def secret_env(container: dict) -> dict[str, dict]:
    """Environment variables of the container taken from a Secret: name -> its secretKeyRef."""
    return {
        env["name"]: env["valueFrom"]["secretKeyRef"]
        for env in container.get("env", [])
        if "secretKeyRef" in env.get("valueFrom", {})
    }


def expand_kubernetes(arg: str, values: dict[str, str]) -> str:
    """Expand ``$(NAME)`` as the kubelet does in args: defined names only, ``$$`` escapes."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return values.get(match.group(1), match.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", replace, arg)


class ComposeVariableError(ValueError):
    """A required ``${VAR:?message}`` is unset or empty: docker compose refuses to start."""


def interpolate_compose(text: str, env: dict[str, str]) -> str:
    """Interpolate like docker compose: ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``, ``$$``."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, word = match.group(1), match.group(2) or "", match.group(3) or ""
        value = env.get(name)
        missing = value is None or (value == "" and operator.startswith(":"))
        if operator.endswith("?") and missing:
            raise ComposeVariableError(f"{name}: {word}")
        if operator.endswith("-") and missing:
            return word
        return value or ""

    return re.sub(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}", replace, text)


def compose_command(env: dict[str, str]) -> list[str]:
    """The triton service's command in deploy/compose.yaml, interpolated with ``env``."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return [interpolate_compose(arg, env) for arg in compose["services"]["triton"]["command"]]


def dockerfile_instructions(keyword: str) -> list[str]:
    """The arguments of every ``keyword`` instruction in deploy/Dockerfile (no line continuations used there)."""
    pattern = re.compile(rf"^{keyword}\s+(.+)$", re.MULTILINE)
    return pattern.findall((DEPLOY / "Dockerfile").read_text())


def dockerfile_cmd() -> list[str]:
    """The image's default command (the last CMD, exec form)."""
    return json.loads(dockerfile_instructions("CMD")[-1])


def dockerfile_copied_file(destination: str) -> Path:
    """The file of the build context that a COPY puts at ``destination``."""
    for copy in dockerfile_instructions("COPY"):
        *sources, target = copy.split()
        if target == destination and len(sources) == 1:
            return ROOT / sources[0]
    raise AssertionError(f"no COPY puts a file at {destination}")


def server_args(command: list[str]) -> tuple[str, ...]:
    """A command line without the program and the repository, which the test replaces with its own."""
    program, *args = command
    assert Path(program).name in {"tritonserver", "tritonserver-secure"}, command
    return tuple(arg for arg in args if not arg.startswith("--model-repository"))


def load_deployment(name: str, key: str) -> Deployment:
    """What deployment ``name`` runs, with ``key`` as its admin key."""
    if name in KUSTOMIZATIONS:
        container = triton_container(kustomize(KUSTOMIZATIONS[name]))
        values = dict.fromkeys(secret_env(container), key)
        args = [expand_kubernetes(arg, values) for arg in container["args"]]
        if name == "kserve":  # KServe appends these to its runtime's `tritonserver --model-store=...`
            args = ["tritonserver", *args]
        return Deployment(name, server_args(args), headers=restriction_headers(" ".join(args)))
    if name == "compose":
        args = compose_command({"TRITON_ADMIN_KEY": key})
        return Deployment(name, server_args(args), headers=restriction_headers(" ".join(args)))
    if name == "dockerfile":
        program, *args = dockerfile_cmd()
        script = dockerfile_copied_file(program)
        return Deployment(
            name,
            server_args([program, *args]),
            executable=script,
            env={"TRITON_ADMIN_KEY": key},
            headers=restriction_headers(script.read_text()),
        )
    raise ValueError(f"unknown deployment {name!r}")
