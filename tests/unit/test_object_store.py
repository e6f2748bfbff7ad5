"""Upload planning for S3 repositories: URL parsing as Triton does it, write order, immutability (no server)."""

from __future__ import annotations

import hashlib
import json

import pytest

from tritonclf.repository.object_store import (
    Model,
    Operation,
    S3Location,
    UploadError,
    Version,
    models_from_paths,
    parse_s3_url,
    plan_upload,
    read_local,
)

ENSEMBLE_CONFIG = b'name: "clf"\nplatform: "ensemble"\n'
PYTHON_CONFIG = b'name: "clf_model"\nbackend: "python"\n'


def version(*names: str, manifest: bytes | None = b'{"v": 1}') -> Version:
    files = frozenset(names) | ({"manifest.json"} if manifest is not None else frozenset())
    return Version(files, manifest)


def repository(classifier_versions: dict, ensemble_versions: dict | None = None, labels=b"cat\n") -> dict:
    return {
        "clf": Model({"config.pbtxt": ENSEMBLE_CONFIG, "labels.txt": labels}, ensemble_versions or {1: version()}),
        "clf_model": Model({"config.pbtxt": PYTHON_CONFIG, "labels.txt": labels}, classifier_versions),
    }


def paths(ops: list[Operation], action: str = "put") -> list[str]:
    return [op.path for op in ops if op.action == action]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://127.0.0.1:9000/models/prod", S3Location("models", "prod", "http://127.0.0.1:9000")),
        ("s3://https://minio.internal:443/models/a/b_c/", S3Location("models", "a/b_c", "https://minio.internal:443")),
        ("s3://http://localhost:9000//models//x", S3Location("models", "x", "http://localhost:9000")),
        ("s3://my-bucket/classifier/2026-11-28", S3Location("my-bucket", "classifier/2026-11-28")),
        ("s3://my-bucket", S3Location("my-bucket", "")),
    ],
)
def test_s3_urls_are_read_as_triton_reads_them(url, expected):
    assert parse_s3_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "model_repository",
        "gs://bucket/path",
        "s3://",
        "s3://127.0.0.1:9000/Models/prod",  # Triton would take "127.0.0.1:9000" for the bucket
        "s3://http://host/bucket",
    ],
)
def test_urls_triton_would_misread_are_refused_in_one_line(url):
    with pytest.raises(UploadError) as err:
        parse_s3_url(url)
    assert "\n" not in str(err.value)


def test_location_keys_join_the_prefix():
    assert S3Location("b", "a/b").key("m/1/model.py") == "a/b/m/1/model.py"
    assert S3Location("b", "").key("m/config.pbtxt") == "m/config.pbtxt"


def test_new_repository_uploads_versions_manifest_last_then_configs_ensemble_last():
    ops = plan_upload(repository({1: version("model.onnx", "model.py"), 2: version("model.onnx", "model.py")}), {})
    assert paths(ops) == [
        "clf_model/1/model.onnx",
        "clf_model/1/model.py",
        "clf_model/1/manifest.json",
        "clf_model/2/model.onnx",
        "clf_model/2/model.py",
        "clf_model/2/manifest.json",
        "clf/1/manifest.json",  # the ensemble's version holds only its manifest, so it exists in the store
        "clf_model/labels.txt",
        "clf_model/config.pbtxt",
        "clf/labels.txt",
        "clf/config.pbtxt",
    ]
    assert paths(ops, "delete") == []


def test_second_upload_of_the_same_build_writes_nothing():
    built = repository({1: version("model.onnx")})
    assert plan_upload(built, built) == []


def test_a_new_version_goes_up_before_its_changed_config():
    stored = repository({1: version("model.onnx")})
    built = repository({1: version("model.onnx"), 2: version("model.onnx", manifest=b'{"v": 2}')})
    built["clf_model"] = Model(
        {**built["clf_model"].files, "config.pbtxt": PYTHON_CONFIG + b"#2\n"}, built["clf_model"].versions
    )
    assert paths(plan_upload(built, stored)) == [
        "clf_model/2/model.onnx",
        "clf_model/2/manifest.json",
        "clf_model/config.pbtxt",
    ]


def test_a_different_version_under_the_same_number_is_refused():
    stored = repository({1: version("model.onnx", manifest=b'{"other": true}')})
    with pytest.raises(UploadError, match=r"clf_model/1 .*immutable"):
        plan_upload(repository({1: version("model.onnx")}), stored)


def test_an_interrupted_version_is_uploaded_again_in_full():
    stored = repository({1: version("model.onnx", manifest=None)})
    assert paths(plan_upload(repository({1: version("model.onnx", "model.py")}), stored)) == [
        "clf_model/1/model.onnx",
        "clf_model/1/model.py",
        "clf_model/1/manifest.json",
    ]


def test_leftovers_of_an_interrupted_upload_are_deleted_before_anything_else():
    stored = repository({1: version("model.onnx"), 3: version("model.onnx", manifest=None)})
    built = repository({1: version("model.onnx"), 2: version("model.onnx", manifest=b'{"v": 2}')})
    ops = plan_upload(built, stored)
    assert ops[0] == Operation("delete", "clf_model/3/model.onnx")
    assert paths(ops) == ["clf_model/2/model.onnx", "clf_model/2/manifest.json"]


def test_prune_deletes_removed_versions_manifest_first_after_the_configs():
    stored = repository({1: version("model.onnx"), 2: version("model.onnx", manifest=b'{"v": 2}')})
    built = repository({2: version("model.onnx", manifest=b'{"v": 2}')})
    assert plan_upload(built, stored) == []
    ops = plan_upload(built, stored, prune=True)
    assert ops == [Operation("delete", "clf_model/1/manifest.json"), Operation("delete", "clf_model/1/model.onnx")]


def test_other_models_in_the_store_are_left_alone():
    stored = {**repository({1: version("model.onnx")}), "someone_else": Model({"config.pbtxt": b""}, {1: version()})}
    assert plan_upload(repository({1: version("model.onnx")}), stored, prune=True) == []


def test_store_listing_groups_keys_into_models_and_reads_only_what_is_compared():
    read = []

    def fake_read(path):
        read.append(path)
        return b"content of " + path.encode()

    listing = ["README.md", "m/", "m/config.pbtxt", "m/big.bin", "m/1/model.py", "m/1/manifest.json", "m/2/x/y.txt"]
    models = models_from_paths(listing, fake_read, {"m": Model({"config.pbtxt": b""}, {})})
    assert set(models) == {"m"}
    assert models["m"].files == {"config.pbtxt": b"content of m/config.pbtxt"}
    assert models["m"].versions[1] == Version(frozenset({"model.py", "manifest.json"}), b"content of m/1/manifest.json")
    assert models["m"].versions[2] == Version(frozenset({"x/y.txt"}), None)
    assert sorted(read) == ["m/1/manifest.json", "m/config.pbtxt"]


def write_version(model_dir, number, files: dict[str, bytes]):
    version_dir = model_dir / str(number)
    version_dir.mkdir(parents=True)
    for name, content in files.items():
        (version_dir / name).write_bytes(content)
    digests = {name: hashlib.sha256(content).hexdigest() for name, content in files.items()}
    (version_dir / "manifest.json").write_text(json.dumps({"files": digests}))
    return version_dir


def test_local_repository_is_read_with_its_manifests_checked(tmp_path):
    model_dir = tmp_path / "clf_model"
    write_version(model_dir, 1, {"model.py": b"print()"})
    (model_dir / "config.pbtxt").write_bytes(PYTHON_CONFIG)
    (tmp_path / "README.md").write_text("not a model")
    (tmp_path / ".staging").mkdir()
    models = read_local(tmp_path)
    assert set(models) == {"clf_model"}
    assert models["clf_model"].versions[1].files == {"model.py", "manifest.json"}


def test_a_file_changed_after_the_build_is_refused(tmp_path):
    model_dir = tmp_path / "clf_model"
    version_dir = write_version(model_dir, 1, {"model.onnx": b"weights"})
    (model_dir / "config.pbtxt").write_bytes(PYTHON_CONFIG)
    (version_dir / "model.onnx").write_bytes(b"tampered")
    with pytest.raises(UploadError, match="differs from its manifest"):
        read_local(tmp_path)


def test_a_version_without_manifest_is_refused(tmp_path):
    (tmp_path / "clf" / "1").mkdir(parents=True)
    (tmp_path / "clf" / "config.pbtxt").write_bytes(ENSEMBLE_CONFIG)
    with pytest.raises(UploadError, match=r"no manifest\.json"):
        read_local(tmp_path)


def test_an_empty_folder_is_not_a_repository(tmp_path):
    with pytest.raises(UploadError, match="no models"):
        read_local(tmp_path)


def test_folders_beside_the_versions_are_uploaded_with_the_model(tmp_path):
    # The preprocessing model's warmup/ folder: without it Triton cannot warm (and load) the model.
    model_dir = tmp_path / "clf_preprocess"
    write_version(model_dir, 1, {"model.py": b"print()"})
    (model_dir / "config.pbtxt").write_bytes(PYTHON_CONFIG)
    (model_dir / "warmup").mkdir()
    (model_dir / "warmup" / "image.bytes").write_bytes(b"\x05\x00\x00\x00hello")
    local = read_local(tmp_path)
    assert set(local["clf_preprocess"].files) == {"config.pbtxt", "warmup/image.bytes"}
    ops = plan_upload(local, {})
    assert paths(ops)[-2:] == ["clf_preprocess/warmup/image.bytes", "clf_preprocess/config.pbtxt"]
    listing = ["clf_preprocess/config.pbtxt", "clf_preprocess/warmup/image.bytes", "clf_preprocess/1/manifest.json"]
    remote = models_from_paths(listing, lambda p: local["clf_preprocess"].files.get(p.split("/", 1)[1], b"{}"), local)
    assert set(remote["clf_preprocess"].files) == {"config.pbtxt", "warmup/image.bytes"}
