"""Every command README.md, docs/*.md and the Makefile show is valid: its ``--help`` exits 0 and
its arguments, as written, pass the job's own parser.

A job's ``--help`` must not import torch (the job shells check their options first), the
training jobs included: they answer in a fraction of a second.
"""

from __future__ import annotations

import importlib.util

from ..doc_commands import (
    ROOT,
    Invocation,
    documented_commands,
    documented_invocations,
    documented_python_runs,
    invocations_in,
    make_invocations,
    makefile_invocations,
    parse_failures,
    run_helps,
)

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


def test_documented_and_makefile_commands_pass_their_jobs_parsers():
    invocations = documented_invocations() + makefile_invocations()
    jobs = {i.job for i in invocations}
    assert {"bench", "build", "infer", "perf", "soak", "upload", "train", "export", "evaluate", "bench-train"} <= jobs
    failures = parse_failures(invocations)
    assert not failures, "refused by the job's parser:\n" + "\n".join(failures)


def test_the_parse_check_refuses_an_unknown_flag_and_a_bad_value_without_running_the_job(tmp_path):
    written = tmp_path / "digits"
    failures = parse_failures(
        [
            Invocation("bench", ("--protocols", "grpc"), "a misspelt flag"),
            Invocation("bench", ("--concurrency", "eight"), "a value its type refuses"),
            Invocation("demo-data", ("--output", str(written)), "parses, and must not run"),
        ]
    )
    assert len(failures) == 2
    assert "unrecognized arguments: --protocols grpc" in failures[0]
    assert "--concurrency" in failures[1]
    assert not written.exists()


def test_commands_are_read_as_the_shell_splits_them():
    (command,) = invocations_in("""docker run img bash -c "pip install x && tritonclf gpu-check --dry-run" """, "x")
    assert (command.job, command.argv) == ("gpu-check", ("--dry-run",))
    (command,) = invocations_in("python clients/infer.py photos/ --json > out.jsonl  # comment", "x")
    assert (command.job, command.argv) == ("infer", ("photos/", "--json"))
    build = [i for i in make_invocations(["repository", "BUILD_ARGS=--device gpu"], "x") if i.job == "build"]
    assert build and build[0].argv[-2:] == ("--device", "gpu")
