"""The benchmark command's setup errors: one line each, no server needed."""

from __future__ import annotations

from tritonclf_lab.bench import bench_cli as benchmark

TINY = ["--mix", "96x64:0.5,160x120:0.5", "--count", "4", "--warmup-s", "0", "--duration-s", "0.5"]


def test_benchmark_setup_errors_are_one_line(tmp_path, capsys):
    """No export, no repository: exit 2 (nothing measured) with the fix in one line."""
    assert benchmark.main([*TINY, "--export", str(tmp_path), "--repository", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench: error: no export metadata") and err.count("\n") == 1 and "Traceback" not in err
