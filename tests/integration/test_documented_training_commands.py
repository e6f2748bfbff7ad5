"""The training commands README.md, docs/*.md and the Makefile show answer ``--help`` and pass their
parsers as written (they import torch: seconds each)."""

from __future__ import annotations

import pytest

from ..doc_commands import (
    documented_commands,
    documented_invocations,
    is_torch_command,
    makefile_invocations,
    parse_failures,
    run_helps,
)

pytestmark = pytest.mark.integration

COMMANDS = documented_commands()


def test_documented_training_commands_answer_help():
    torch_commands = [command for command in COMMANDS if is_torch_command(command)]
    assert "python training/train.py" in torch_commands
    results = run_helps(torch_commands)
    failed = {c: r for c, r in results.items() if r["code"] not in (0, None) or "usage:" not in r["stdout"]}
    assert not failed, "\n".join(f"{c} --help (shown as {COMMANDS[c][0]}): {r}" for c, r in failed.items())


def test_documented_training_commands_pass_their_parsers():
    invocations = [i for i in documented_invocations() + makefile_invocations() if i.is_torch]
    assert {"train", "export", "evaluate", "bench-train"} <= {i.job for i in invocations}
    failures = parse_failures(invocations)
    assert not failures, "refused by the job's parser:\n" + "\n".join(failures)
