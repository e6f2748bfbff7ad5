"""Every shipped deployment restricts Triton's admin APIs with a key it cannot start without (no server here).

tests/integration/test_deployment_restrictions.py starts the real server with the same flags.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tritonclf.serving.admin_apis import open_admin_apis

from ..deployments import (
    KUSTOMIZATIONS,
    ROOT,
    ComposeVariableError,
    compose_command,
    dockerfile_cmd,
    dockerfile_copied_file,
    dockerfile_instructions,
    kustomize,
    load_deployment,
    secret_env,
    triton_container,
)


@pytest.mark.parametrize("name", [*KUSTOMIZATIONS, "compose"])
def test_manifest_leaves_no_admin_api_open(name):
    assert open_admin_apis(load_deployment(name, "k").args) == []


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_kubernetes_takes_the_key_from_a_secret_that_must_exist(name):
    container = triton_container(kustomize(KUSTOMIZATIONS[name]))
    (variable, ref), *others = secret_env(container).items()
    assert not others
    assert ref["name"] and ref["key"] and not ref.get("optional", False)
    restrictions = [arg for arg in container["args"] if "restricted" in arg]
    assert len(restrictions) == 2
    assert all(arg.endswith(f"=$({variable})") for arg in restrictions)


def test_compose_refuses_to_start_without_the_key():
    with pytest.raises(ComposeVariableError, match="TRITON_ADMIN_KEY"):
        compose_command({"TRITON_TAG": "24.10-py3"})
    with pytest.raises(ComposeVariableError, match="TRITON_ADMIN_KEY"):
        compose_command({"TRITON_ADMIN_KEY": ""})


def test_image_default_command_is_the_entry_script_and_the_build_context_carries_it():
    program, *_ = dockerfile_cmd()
    script = dockerfile_copied_file(program)
    assert script.is_file() and os.access(script, os.X_OK)
    # .dockerignore leaves out everything but what it names with "!": every COPY source must be named.
    kept = re.findall(r"^!(\S+)$", (ROOT / ".dockerignore").read_text(), re.MULTILINE)
    sources = [source for copy in dockerfile_instructions("COPY") for source in copy.split()[:-1]]
    assert sorted(sources) == sorted(kept)


def test_entry_script_refuses_to_start_without_the_key():
    program, *args = dockerfile_cmd()
    env = {k: v for k, v in os.environ.items() if k != "TRITON_ADMIN_KEY"}
    for key in (None, ""):
        if key is not None:
            env["TRITON_ADMIN_KEY"] = key
        result = subprocess.run(
            ["sh", str(dockerfile_copied_file(program)), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 2
        (line,) = result.stderr.splitlines()
        assert "set TRITON_ADMIN_KEY" in line
