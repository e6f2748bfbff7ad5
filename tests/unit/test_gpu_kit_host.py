"""What the GPU kit takes from the host, checked with this machine's real loader, interpreter and processes:
the stubs' Python prefix, libpython's source, the ``libcuda.so`` link, the stub probe's verdict, and
ending a phase's process group."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy
import pytest

from tritonclf.serving.stub_health import group_pids
from tritonclf_lab.gpu_kit import host_libs, stub_python
from tritonclf_lab.gpu_kit.context import python_tag
from tritonclf_lab.gpu_kit.probe import judge
from tritonclf_lab.gpu_kit.runner import end_group
from tritonclf_lab.gpu_kit.server import first_error, shm_prefix


def test_stub_prefix_puts_the_carried_folder_before_the_hosts_packages_and_ignores_pythonpath(tmp_path):
    carried = tmp_path / "carried"
    carried.mkdir()
    host_site = stub_python.host_site_packages()
    bin_dir = stub_python.write_prefix(tmp_path / "prefix", python_tag(), carried=[carried], host_site=host_site)
    # -I: the isolated configuration the stub starts its interpreter with.
    script = "import json, sys, numpy; print(json.dumps([sys.prefix, sys.path, numpy.__file__]))"
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "ignored")}
    out = subprocess.run([bin_dir / "python3", "-I", "-c", script], capture_output=True, text=True, env=env, check=True)
    prefix, path, numpy_file = json.loads(out.stdout)
    assert prefix == str(tmp_path / "prefix")
    own_site = str(tmp_path / "prefix" / "lib" / f"python{python_tag()}" / "site-packages")
    assert path.index(own_site) < path.index(str(carried)) < path.index(host_site[0])
    assert str(tmp_path / "ignored") not in path
    # Nothing carried here: the stub finds the host's numpy, through the host's own .pth files too.
    assert numpy_file == numpy.__file__


def _library_copy(folder, name):
    """A real shared library (zlib) under a name no other library has."""
    real, error = host_libs.resolve("libz.so.1", [])
    assert real, error
    folder.mkdir(exist_ok=True)
    shutil.copy(real, folder / name)
    return folder / name


def test_an_unversioned_name_missing_on_the_host_is_linked_to_the_loaded_versioned_library(tmp_path):
    versioned = _library_copy(tmp_path / "driver", "libkitprobe.so.1")
    assert host_libs.resolve("libkitprobe.so", [str(tmp_path / "driver")])[0] is None
    found = host_libs.link_unversioned(
        "libkitprobe.so", "libkitprobe.so.1", [str(tmp_path / "driver")], tmp_path / "links"
    )
    assert (found.ok, found.source, found.library_dir) == (True, "linked", str(tmp_path / "links"))
    assert os.readlink(tmp_path / "links" / "libkitprobe.so") == str(versioned)
    assert host_libs.resolve("libkitprobe.so", [str(tmp_path / "links")])[0] == str(
        tmp_path / "links" / "libkitprobe.so"
    )
    # Once the host has the name itself, the kit's link goes and nothing is added to the path.
    _library_copy(tmp_path / "driver", "libkitprobe.so")
    again = host_libs.link_unversioned(
        "libkitprobe.so", "libkitprobe.so.1", [str(tmp_path / "driver")], tmp_path / "links"
    )
    assert (again.source, again.library_dir, again.path) == ("host", None, str(tmp_path / "driver" / "libkitprobe.so"))
    assert list((tmp_path / "links").iterdir()) == []


def test_no_versioned_library_means_nothing_is_linked(tmp_path):
    found = host_libs.link_unversioned("libtritonclf-absent.so", "libtritonclf-absent.so.1", [], tmp_path / "links")
    assert (found.ok, found.source) == (False, "missing")
    assert "nothing to link" in found.line and not (tmp_path / "links").exists()


def test_libpython_is_the_hosts_own_unless_the_carried_one_is_forced(tmp_path):
    own = host_libs.interpreter_libpython()
    if own is None:
        pytest.skip("this interpreter has no shared libpython")
    carried = tmp_path / "carried"
    carried.mkdir()
    (carried / own.name).symlink_to(own)
    auto = host_libs.choose_libpython(python_tag(), carried, "auto", [])
    assert (auto.source, auto.path, auto.library_dir) == ("host", str(own), str(own.parent))
    forced = host_libs.choose_libpython(python_tag(), carried, "carried", [])
    assert (forced.source, forced.library_dir) == ("carried", str(carried))
    assert "forced by --libpython carried" in forced.line


def test_the_carried_libpython_is_used_only_when_the_host_has_none(tmp_path):
    tag = "3.12" if python_tag() != "3.12" else "3.11"
    if host_libs.resolve(f"libpython{tag}.so.1.0", [])[0]:
        pytest.skip(f"this machine's loader finds a libpython{tag}")
    carried = tmp_path / "carried"
    carried.mkdir()
    (carried / f"libpython{tag}.so.1.0").symlink_to(sys.executable)
    chosen = host_libs.choose_libpython(tag, carried, "auto", [])
    assert (chosen.ok, chosen.source, chosen.library_dir) == (True, "carried", str(carried))
    assert "the host has none" in chosen.line
    refused = host_libs.choose_libpython(tag, carried, "host", [])
    assert (refused.ok, refused.source) == (False, "missing")
    nothing = host_libs.choose_libpython(tag, None, "auto", [])
    assert not nothing.ok and f"the kit carries none for Python {tag}" in nothing.line


def test_stub_probe_fails_numpy_2_and_garbled_bytes_and_passes_the_carried_numpy(tmp_path):
    carried = tmp_path / "numpy"
    report = {"python": "3.12.3", "prefix": "/w/stub-python", "bytes_intact": True}
    good = judge({**report, "numpy": {"version": "1.26.4", "folder": str(carried / "numpy")}}, "", carried)
    assert good["ok"] and "numpy 1.26.4 (the kit's, first in the stubs' prefix" in good["line"]
    crash = "what():  error: unpack_from requires a buffer of at least 3806520038 bytes"
    bad = judge({**report, "bytes_intact": None, "numpy": {"version": "2.5.0", "folder": "/h/numpy"}}, crash, carried)
    assert not bad["ok"] and "numpy 2.5.0 (the host's" in bad["line"]
    assert "it needs numpy < 2" in bad["reason"] and "unpack_from" in bad["reason"]
    never = judge(None, "E1202 12:00:00.000000 1 model_lifecycle.cc:642] failed to load", None)
    assert not never["ok"] and never["reason"].startswith("the probe stub never started: E1202")


def test_first_error_prefers_a_stubs_exception_over_the_servers_lines(tmp_path):
    log = tmp_path / "tritonserver.log"
    log.write_text(
        "I1202 16:14:54.474796 18603 pinned_memory_manager.cc:170] fine\n"
        "terminate called after throwing an instance of 'pybind11::error_already_set'\n"
        "  what():  error: unpack_from requires a buffer of at least 3806520038 bytes\n"
        'E1202 16:14:56.427720 18603 backend_model.cc:692] "ERROR: Failed to create instance"\n'
    )
    assert first_error(log) == "what():  error: unpack_from requires a buffer of at least 3806520038 bytes"
    log.write_text('I1202 fine\nE1202 16:14:56.427720 18603 backend_model.cc:692] "ERROR: Failed"\n')
    assert first_error(log).startswith("E1202 16:14:56")
    assert first_error(tmp_path / "absent.log") == ""


def _wait_for_members(pgid, count, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while len(group_pids(pgid)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(group_pids(pgid)) >= count


def test_end_group_kills_what_ignores_sigterm_after_the_grace_and_removes_only_its_shm_regions(tmp_path):
    process = subprocess.Popen(["bash", "-c", "trap '' TERM; sleep 60 & sleep 60 & wait"], start_new_session=True)
    try:
        _wait_for_members(process.pid, 3)
        ours = tmp_path / f"{shm_prefix(process.pid)}0f3c"
        theirs = tmp_path / f"{shm_prefix(process.pid + 1)}0f3c"
        default = tmp_path / "triton_python_backend_shm_region_0f3c"
        for region in (ours, theirs, default):
            region.write_bytes(b"\0" * 16)
        names = end_group(process.pid, term_grace_s=0.5, shm_dir=tmp_path)
        assert group_pids(process.pid) == []
        assert sorted(name.split(":")[0] for name in names) == ["bash", "sleep", "sleep"]
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([theirs.name, default.name])
    finally:
        process.kill()
        process.wait()


def test_end_group_wakes_a_stopped_process_so_sigterm_ends_it():
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        _wait_for_members(process.pid, 1)
        os.kill(process.pid, signal.SIGSTOP)
        started = time.monotonic()
        end_group(process.pid, term_grace_s=30.0)
        assert process.wait(timeout=5) == -signal.SIGTERM
        assert time.monotonic() - started < 15  # SIGTERM took effect; SIGKILL would come after 30 s
    finally:
        process.kill()
        process.wait()
