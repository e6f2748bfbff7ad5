"""Every command README.md and docs/*.md show runs as written: its ``--help`` exits 0, without torch.

A job's ``--help`` must not import torch (the job shells check their options first), the
training jobs included: they answer in a fraction of a second.
"""

from __future__ import annotations

import importlib.util

from ..doc_commands import ROOT, documented_commands, documented_python_runs, run_helps

COMMANDS = documented_commands()


def test_docs_show_the_client_build_and_training_commands():
    assert {"python clients/infer.py", "python build/build_repository.py", "python training/train.py"} <= set(COMMANDS)
    assert {"python training/train.py", "python training/export.py", "python training/evaluate.py"} <= set(COMMANDS)


def test_documented_commands_answer_help_without_importing_torch():
    results = run_helps(list(COMMANDS))
    failed = {c: r for c, r in results.items() if r["code"] not in (0, None) or "usage:" not in r["stdout"]}
    assert not failed, "\n".join(f"{c} --help (shown as {COMMANDS[c][0]}): {r}" for c, r in failed.items())
    # In one interpreter torch stays imported once loaded: the first command that loads it is the culprit.
    with_torch = [command for command, result in results.items() if result["torch"]]
    assert not with_torch, f"{with_torch[0]} --help imports torch"


def module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def test_every_python_file_and_module_the_docs_run_exists():
    missing = []
    for target, line in documented_python_runs():
        if target.startswith("-m "):
            module = target.removeprefix("-m ")
            ours = module.split(".")[0] in {"tritonclf", "build", "clients", "training", "tests"}
            if ours and not module_exists(module):
                missing.append(line)
        elif not (ROOT / target).is_file():
            missing.append(line)
    assert not missing, "the docs run files or modules that do not exist:\n" + "\n".join(missing)
