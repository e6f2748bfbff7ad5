"""Which model names and repository paths Triton's Python backend can start a model under. No server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tritonclf.repository.model_names import (
    MAX_NAME_LENGTH,
    model_name_problem,
    repository_path_problem,
    suggest_model_name,
)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "gray", "gray-v2", "flowers.2024", "2024_run", "A" * 200])
def test_names_of_ascii_letters_digits_and_separators_are_served(name):
    assert model_name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("gray crème", "has a space and a non-ASCII letter"),  # the server aborts: std::invalid_argument: stol
        ("grayé", "has a non-ASCII letter"),  # every model UNAVAILABLE: UnicodeEncodeError
        ("a;rm -rf", "has a space and shell characters (;)"),
        ("it's", "has shell characters (')"),
        ("a/b", "has the characters '/'"),
        ("a:b", "has the characters ':'"),
        ("-flag", "does not start with a letter or digit"),
        (".hidden", "does not start with a letter or digit"),
        ("", "is empty"),
        ("x" * (MAX_NAME_LENGTH + 1), "is longer than"),
    ],
)
def test_names_the_stub_cannot_start_under_are_refused_with_the_reason(name, why):
    assert model_name_problem(name).startswith(why)


def test_a_suggested_name_keeps_the_letters_without_their_accents():
    assert suggest_model_name("gray crème") == "gray_creme"
    assert suggest_model_name("chat tigré") == "chat_tigre"
    assert suggest_model_name("  --weird!! run  ") == "weird_run"
    assert suggest_model_name("日本") == ""
    assert model_name_problem(suggest_model_name("crème brûlée (v2)")) is None


def test_repository_paths_with_spaces_or_accents_are_refused_and_others_pass(tmp_path):
    assert repository_path_problem(tmp_path / "model_repository") is None
    assert repository_path_problem(tmp_path / "a+b@c,d=e:f" / "repo") is None
    assert "has a space" in repository_path_problem(tmp_path / "my models" / "repo")
    assert "non-ASCII" in repository_path_problem(tmp_path / "modèles")
    assert repository_path_problem(Path("relative path")).startswith(f"its path '{Path.cwd()}/relative path'")
