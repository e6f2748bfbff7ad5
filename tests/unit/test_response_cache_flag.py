"""Our tritonserver passes Triton the response cache size a repository was built with."""

from __future__ import annotations

from tritonclf.repository.models import BuildOptions
from tritonclf.repository.pbtxt import ModelSpec, Tensor, render, to_model_config
from tritonclf.serving.launcher import server_command
from tritonclf.serving.response_cache import cache_flag, repositories


def write_ensemble(repository, name, cache_bytes):
    spec = ModelSpec(
        name=name,
        platform="ensemble",
        max_batch_size=8,
        inputs=(Tensor("image", "TYPE_STRING", (1,)),),
        outputs=(Tensor("probabilities", "TYPE_FP32", (2,)),),
        response_cache=cache_bytes > 0,
        parameters={"response_cache_bytes": str(cache_bytes)} if cache_bytes else {},
    )
    (repository / name).mkdir(parents=True)
    (repository / name / "config.pbtxt").write_text(render(to_model_config(spec)))


def test_the_largest_budget_of_a_local_repository_becomes_the_flag(tmp_path):
    write_ensemble(tmp_path, "a", 1 << 20)
    write_ensemble(tmp_path, "b", 1 << 24)
    write_ensemble(tmp_path, "c", 0)
    assert cache_flag(["--model-repository", str(tmp_path)]) == f"--cache-config=local,size={1 << 24}"
    assert f"--cache-config=local,size={1 << 24}" in server_command([f"--model-repository={tmp_path}"], gpu=False)


def test_no_flag_without_a_budget_or_when_the_caller_set_one(tmp_path):
    write_ensemble(tmp_path, "c", 0)
    assert cache_flag([f"--model-repository={tmp_path}"]) is None
    write_ensemble(tmp_path, "a", 1 << 20)
    assert cache_flag([f"--model-repository={tmp_path}", "--cache-config=local,size=5"]) is None
    assert cache_flag(["--model-repository=s3://bucket/path"]) is None


def test_every_spelling_of_the_repository_flag_is_read():
    args = ["--model-repository=/a", "--model-repository", "/b", "--model-store=/c", "--other"]
    assert repositories(args) == ["/a", "/b", "/c"]


def test_the_build_default_leaves_the_cache_off():
    assert BuildOptions().response_cache_bytes == 0
