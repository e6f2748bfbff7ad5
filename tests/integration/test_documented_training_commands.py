"""The documented commands whose ``--help`` imports torch (``doc_commands.TORCH_JOBS``) answer it: seconds each."""

from __future__ import annotations

import pytest

from ..doc_commands import documented_commands, is_torch_command, run_helps

pytestmark = pytest.mark.integration

COMMANDS = documented_commands()


def test_documented_training_commands_answer_help():
    torch_commands = [command for command in COMMANDS if is_torch_command(command)]
    results = run_helps(torch_commands)
    failed = {c: r for c, r in results.items() if r["code"] not in (0, None) or "usage:" not in r["stdout"]}
    assert not failed, "\n".join(f"{c} --help (shown as {COMMANDS[c][0]}): {r}" for c, r in failed.items())
