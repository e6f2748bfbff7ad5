"""``tritonclf train``'s shell: options, the data folder and the run folder are checked before torch
is imported; a folder holding a run is never overwritten unasked; --resume reads the run's own config."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import yaml

from tritonclf.training.config import ConfigError, check_run_folder, parse_config, save_config

from ..conftest import ROOT
from ..training_data import write_colour_dataset

# Runs one entry script as `python SCRIPT ARGS` would and says on stderr whether torch was imported.
DRIVER = textwrap.dedent(
    """
    import atexit, runpy, sys
    atexit.register(lambda: print("torch imported" if "torch" in sys.modules else "no torch", file=sys.stderr))
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
    """
)


def run_script(*argv: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", DRIVER, *argv], capture_output=True, text=True, cwd=cwd, timeout=300, check=False
    )


def a_run_folder(path):
    """What a training run leaves: its config and checkpoints (contents do not matter to the check)."""
    path.mkdir(parents=True)
    save_config(parse_config(["--data", "photos", "--output", str(path), "--epochs", "6"]), path / "config.yaml")
    for name in ("best.pth", "last.pth", "labels.txt"):
        (path / name).write_bytes(b"x")
    return path


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["training/train.py", "--help"], "usage:"),
        (["training/export.py", "--help"], "usage:"),
        (["training/evaluate.py", "--help"], "usage:"),
        (["training/train.py", "--data", "phtoos", "--output", "runs/x"], "train: error: data folder phtoos does not"),
        (["training/evaluate.py", "--data", "phtoos", "--onnx", "m.onnx"], "evaluate: error: data folder phtoos"),
        (["training/export.py", "--weights", "runs/x/bst.pth"], "export: error: --weights runs/x/bst.pth: no such"),
    ],
)
def test_help_and_argument_errors_come_before_torch_is_imported(argv, expected, tmp_path):
    result = run_script(*[str(ROOT / a) if a.startswith("training/") else a for a in argv], cwd=tmp_path)
    assert expected in result.stdout + result.stderr
    assert result.stderr.rstrip().endswith("no torch"), result.stderr


def test_training_into_a_folder_that_holds_a_run_is_refused_and_changes_nothing(tmp_path):
    data = write_colour_dataset(tmp_path / "photos", train_per_class=2, val_per_class=1)
    run = a_run_folder(tmp_path / "runs" / "gu")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    result = run_script(str(ROOT / "training/train.py"), "--data", str(data), "--output", str(run), cwd=tmp_path)
    assert result.returncode == 2
    assert f"train: error: {run} already holds a training run (config.yaml, labels.txt, best.pth)" in result.stderr
    assert "--resume" in result.stderr and "--force" in result.stderr
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_force_and_resume_are_the_two_ways_into_an_existing_run(tmp_path):
    data = write_colour_dataset(tmp_path / "photos", train_per_class=2, val_per_class=1)
    run = a_run_folder(tmp_path / "gu")
    check_run_folder(parse_config(["--data", str(data), "--output", str(run), "--force"]))
    check_run_folder(parse_config(["--data", str(data), "--output", str(run), "--resume"]))
    with pytest.raises(ConfigError, match="pass one of them"):
        parse_config(["--data", str(data), "--output", str(run), "--resume", "--force"])
    empty = tmp_path / "empty"
    empty.mkdir()
    check_run_folder(parse_config(["--data", str(data), "--output", str(empty)]))  # an empty folder is no run
    with pytest.raises(ConfigError, match=r"nothing to resume: .*last\.pth does not exist"):
        check_run_folder(parse_config(["--data", str(data), "--output", str(empty), "--resume"]))


def test_resume_reads_the_run_folders_own_config_and_flags_change_only_what_they_name(tmp_path):
    run = a_run_folder(tmp_path / "runs" / "gu")
    config = parse_config(["--output", str(run), "--resume"])
    assert (str(config.data), config.epochs, config.resume) == ("photos", 6, "auto")
    assert parse_config(["--output", str(run), "--resume", "--epochs", "9"]).epochs == 9
    from_checkpoint = parse_config(["--resume", str(run / "last.pth")])
    assert (str(from_checkpoint.data), from_checkpoint.output) == ("photos", run)
    moved = tmp_path / "moved"
    run.rename(moved)  # its config.yaml still names the old folder: the checkpoint's folder wins
    assert parse_config(["--resume", str(moved / "last.pth")]).output == moved
    moved.rename(run)
    with pytest.raises(ConfigError, match=r"nothing to resume in .*no config\.yaml"):
        parse_config(["--output", str(tmp_path / "nothing"), "--resume"])
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["resume"] is None and "force" not in saved
