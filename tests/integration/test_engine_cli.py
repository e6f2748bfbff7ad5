"""``tritonclf engine`` on a real export, as far as it runs without Docker: the container command it renders."""

from __future__ import annotations


def test_make_engine_dry_run_maps_a_host_timing_cache_into_the_container(export_dir, tmp_path):
    from tritonclf.repository import engine_cli

    cache = tmp_path / "cache" / "timing.cache"
    args = engine_cli.parse_args(
        ["--export", str(export_dir), "--triton-tag", "24.10-py3", "--timing-cache", str(cache)]
    )
    docker = engine_cli.container_build(args)
    assert f"{cache.parent.resolve()}:/timing-cache" in docker
    assert "--timingCacheFile=/timing-cache/timing.cache" in docker[-1]


def test_make_engine_refuses_an_unknown_tag_without_a_tensorrt_version(export_dir, capsys):
    from tritonclf.repository import engine_cli

    code = engine_cli.main(["--export", str(export_dir), "--triton-tag", "99.01-py3", "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--tensorrt-version" in err
    assert (
        engine_cli.main(
            ["--export", str(export_dir), "--triton-tag", "99.01-py3", "--tensorrt-version", "11.0", "--dry-run"]
        )
        == 2
    )
    assert "TensorRT 10" in capsys.readouterr().err
