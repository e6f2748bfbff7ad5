"""The shared flags and exit codes: one spelling, one parser, one meaning in every command. No server."""

from __future__ import annotations

import argparse
import importlib

import pytest

from tritonclf.cli_options import (
    EXIT_FAILED,
    EXIT_UNUSABLE,
    add_concurrency,
    add_server_arguments,
    add_timeout,
    as_range,
    concurrency_levels,
    fail,
)


@pytest.mark.parametrize(
    ("text", "levels"),
    [
        ("8", (8,)),
        ("1,2,4,8", (1, 2, 4, 8)),
        ("1:4", (1, 2, 3, 4)),
        ("1:16:4", (1, 5, 9, 13)),
        ("4:4", (4,)),
    ],
)
def test_concurrency_takes_a_level_a_list_or_a_range(text, levels):
    assert concurrency_levels(text) == levels


@pytest.mark.parametrize("text", ["0", "1,-2", "eight", "8:1", "1:8:0", "1:2:3:4", "", ","])
def test_concurrency_refuses_what_is_not_positive_levels(text):
    with pytest.raises(argparse.ArgumentTypeError, match="--concurrency takes"):
        concurrency_levels(text)


def test_levels_become_perf_analyzers_range_only_when_evenly_spaced():
    assert as_range((1, 2, 3, 4)) == "1:4:1"
    assert as_range((2, 4, 6)) == "2:6:2"
    assert as_range((8,)) == "8:8:1"
    with pytest.raises(ValueError, match="evenly spaced"):
        as_range((1, 2, 8))


def test_shared_flags_parse_the_same_everywhere():
    parser = argparse.ArgumentParser()
    add_server_arguments(parser)
    add_concurrency(parser, 8)
    add_timeout(parser)
    args = parser.parse_args(["--url", "h:9001", "--protocol", "http", "--concurrency", "3", "--timeout-s", "0.5"])
    assert (args.url, args.protocol, args.model, args.concurrency, args.timeout_s) == ("h:9001", "http", None, 3, 0.5)
    defaults = parser.parse_args([])
    assert (defaults.url, defaults.protocol, defaults.concurrency, defaults.timeout_s) == (None, "grpc", 8, 60.0)


@pytest.mark.parametrize("argv", [["--concurrency", "0"], ["--concurrency", "1,2"], ["--timeout-s", "0"]])
def test_bad_shared_flags_are_usage_errors_that_exit_2(argv, capsys):
    parser = argparse.ArgumentParser(prog="x")
    add_concurrency(parser, 8)
    add_timeout(parser)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(argv)
    assert exit_info.value.code == EXIT_UNUSABLE == 2
    assert "x: error: argument" in capsys.readouterr().err


def test_fail_prints_one_line_and_returns_the_code(capsys):
    assert fail("infer", "cannot reach Triton\n  at h:1") == EXIT_UNUSABLE
    assert fail("evaluate", "below threshold", EXIT_FAILED) == 1
    assert capsys.readouterr().err == "infer: error: cannot reach Triton at h:1\nevaluate: error: below threshold\n"


@pytest.mark.parametrize(
    ("module", "argv", "flags"),
    [
        ("tritonclf.client.infer_cli", ["x.jpg"], ("url", "protocol", "model", "concurrency", "timeout_s")),
        ("tritonclf.training.evaluate_cli", ["--data", "d"], ("url", "protocol", "model", "concurrency", "timeout_s")),
        ("tritonclf_lab.soak_cli", [], ("concurrency",)),
        ("tritonclf_lab.bench.perf_cli", [], ("url", "protocol", "model", "concurrency")),
        (
            "tritonclf_lab.bench.bench_cli",
            [],
            ("url", "http_url", "protocols", "model", "concurrency", "timeout_s"),
        ),
    ],
)
def test_commands_that_talk_to_a_server_spell_the_flags_alike(module, argv, flags, monkeypatch):
    """Each command's parser, as the user reaches it, knows the shared flags by the shared names."""
    seen = {}

    def capture(self, args=None, namespace=None):
        seen.update(vars(original(self, args, namespace)))
        raise SystemExit(0)

    original = argparse.ArgumentParser.parse_args
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(SystemExit):
        importlib.import_module(module).main(argv)
    assert set(flags) <= set(seen)
