"""The ``tritonclf`` command itself: version, usage, unknown jobs; and a lab job's --help. No server."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tritonclf import __version__, cli
from tritonclf.cli import main


def tritonclf(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tritonclf", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_version_is_printed():
    result = tritonclf("--version")
    assert (result.returncode, result.stdout) == (0, f"tritonclf {__version__}\n")


def test_no_job_is_a_usage_error_with_the_job_list_on_stderr():
    result = tritonclf()
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("usage: tritonclf JOB") and "\n  infer " in result.stderr


def test_help_lists_the_jobs_on_stdout_and_succeeds(capsys):
    assert main(["--help"]) == 0
    assert "\n  train " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("job", "hint"), [("trian", "did you mean train?"), ("bild", "did you mean build?"), ("qqq", "tritonclf --help")]
)
def test_an_unknown_job_suggests_the_closest(job, hint, capsys):
    assert main([job]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tritonclf: unknown job {job!r}") and hint in err and err.count("\n") == 1


def test_measure_decode_answers_help_with_its_usage(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["measure-decode", "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("usage: tritonclf measure-decode [-h] [--exact] image")


@pytest.mark.parametrize(
    "job_source",
    [
        "import tritonclf_absent_package\n\ndef main(argv):\n    return 0\n",  # at import
        "def main(argv):\n    import tritonclf_absent_package\n    return 0\n",  # after its options parsed
    ],
    ids=["at-import", "in-main"],
)
def test_a_job_whose_package_is_missing_names_it_in_one_line(job_source, tmp_path, monkeypatch, capsys):
    (tmp_path / "job_needing_a_package.py").write_text(job_source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "needy", ("job_needing_a_package", "a job needing what is not installed"))
    assert main(["needy"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tritonclf needy: needs 'tritonclf_absent_package', which is not installed here")
    assert err.count("\n") == 1
