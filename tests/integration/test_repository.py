"""Repository build: layout, idempotence, new versions staged atomically, integrity checks."""

from __future__ import annotations

import json
import shutil
import stat

import pytest

from tritonclf.files import sha256_file
from tritonclf.repository.build import BuildError, BuildOptions, build_repository
from tritonclf.repository.pbtxt import parse

NAMES = ("efficientnet_lite0", "efficientnet_lite0_preprocess", "efficientnet_lite0_model")


def test_build_writes_three_models_with_manifests(export_dir, tmp_path):
    repo = tmp_path / "repo"
    built = build_repository(export_dir, repo)
    assert [b.name for b in built] == [NAMES[2], NAMES[1], NAMES[0]]
    for name in NAMES:
        config = parse((repo / name / "config.pbtxt").read_text())
        assert config.name == name
        manifest = json.loads((repo / name / "1" / "manifest.json").read_text())
        for file, digest in manifest["files"].items():
            assert sha256_file(repo / name / "1" / file) == digest
        assert manifest["source"]["onnx_sha256"] == sha256_file(export_dir / "model.onnx")
    assert (repo / NAMES[1] / "1" / "preprocess.py").is_file()
    assert len((repo / NAMES[0] / "labels.txt").read_text().splitlines()) == 1000
    # No staging leftovers beside or inside the repository.
    assert [p.name for p in tmp_path.iterdir()] == ["repo"]


def test_files_are_readable_by_other_users(export_dir, tmp_path):
    repo = tmp_path / "repo"
    build_repository(export_dir, repo)
    for path in repo.rglob("*"):
        assert path.stat().st_mode & stat.S_IROTH, path


def test_rebuilding_unchanged_inputs_writes_nothing(export_dir, tmp_path):
    repo = tmp_path / "repo"
    build_repository(export_dir, repo)
    before = {p: p.stat().st_mtime_ns for p in repo.rglob("*")}
    again = build_repository(export_dir, repo)
    assert not any(b.changed for b in again)
    assert {p: p.stat().st_mtime_ns for p in repo.rglob("*")} == before


def test_changed_options_add_a_version_and_prune_old_ones(export_dir, tmp_path):
    repo = tmp_path / "repo"
    build_repository(export_dir, repo, BuildOptions(keep_versions=2))
    build_repository(export_dir, repo, BuildOptions(max_batch_size=16, keep_versions=2))
    built = build_repository(export_dir, repo, BuildOptions(max_batch_size=8, keep_versions=2))
    assert {b.version for b in built} == {3}
    for name in NAMES:
        assert sorted(p.name for p in (repo / name).iterdir() if p.name.isdigit()) == ["2", "3"]
        assert parse((repo / name / "config.pbtxt").read_text()).max_batch_size == 8


def test_name_option_renames_all_three_models(export_dir, tmp_path):
    repo = tmp_path / "repo"
    build_repository(export_dir, repo, BuildOptions(name="cats"))
    assert sorted(p.name for p in repo.iterdir()) == ["cats", "cats_model", "cats_preprocess"]


def test_tampered_onnx_is_refused(export_dir, tmp_path):
    copy = tmp_path / "export"
    shutil.copytree(export_dir, copy)
    with open(copy / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BuildError, match="does not match the hash"):
        build_repository(copy, tmp_path / "repo")


def test_missing_export_gives_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"run training/export\.py first"):
        build_repository(tmp_path, tmp_path / "repo")
