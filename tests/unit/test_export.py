"""Export's command line: a model without offline weights says what to pass."""

from __future__ import annotations

from tritonclf.training.export_cli import main


def test_cli_without_weights_for_other_models_explains_what_to_do(tmp_path, capsys):
    assert main(["--model", "resnet18", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pass --weights FILE" in err
