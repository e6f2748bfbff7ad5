"""The ``tritonserver`` launcher: Triton's own command line, with what the wheel leaves out filled in."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tritonclf.serving import launcher as server


def test_backend_directory_has_python_backend_and_this_pythons_stub():
    backends = server.backend_dir()
    assert (backends / "python" / "libtriton_python.so").is_file()
    stub = backends / "python" / "triton_python_backend_stub"
    assert stub.is_file() and os.access(stub, os.X_OK)


def test_command_adds_backend_and_cache_directories_unless_given():
    command = server.server_command(["--model-repository", "model_repository"])
    assert command[0].endswith("/tritonserver/bin/tritonserver")
    assert command[1:3] == ["--model-repository", "model_repository"]
    assert any(a.startswith("--backend-directory=") for a in command)
    assert any(a.startswith("--cache-directory=") for a in command)
    mine = server.server_command(["--backend-directory=/opt/backends"])
    assert [a for a in mine if a.startswith("--backend-directory")] == ["--backend-directory=/opt/backends"]


def test_environment_puts_this_python_first_and_the_wheel_libraries_on_the_path():
    env = server.server_environment({"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/x"})
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert env["LD_LIBRARY_PATH"].split(os.pathsep) == [str(server.library_dir()), "/x"]


def test_command_names_the_python_backend_regions_with_the_prefix_unless_given():
    command = server.server_command(["--model-repository=m"], region_prefix="p_")
    assert "--backend-config=python,shm-region-prefix-name=p_" in command
    mine = ["--model-repository=m", "--backend-config=python,shm-region-prefix-name=mine_"]
    assert [a for a in server.server_command(mine, region_prefix="p_") if "shm-region-prefix" in a] == [mine[1]]
