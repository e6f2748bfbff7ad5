"""Reading tritonserver's options as getopt_long does: both spellings, repeats, aliases, the last one wins."""

from __future__ import annotations

from tritonclf.serving import leftovers, response_cache, supervisor
from tritonclf.serving.triton_args import last_value, model_control_mode, option_values


def test_both_spellings_and_every_repeat_in_command_line_order():
    args = ["--backend-config=python,a=1", "--model-repository", "/m", "--backend-config", "python,b=2"]
    assert option_values(args, "--backend-config") == ["python,a=1", "python,b=2"]
    assert option_values(args, "--model-repository") == ["/m"]


def test_a_value_is_the_next_argument_even_when_it_starts_with_dashes():
    # getopt_long with a required argument takes the next word whatever it looks like.
    assert option_values(["--log-file", "--odd-name"], "--log-file") == ["--odd-name"]
    # ... and that word is a value, not an option of its own.
    assert option_values(["--log-file", "--http-port=1", "--http-port", "2"], "--http-port") == ["2"]


def test_an_option_without_a_value_at_the_end_has_none():
    assert option_values(["--http-port"], "--http-port") == []


def test_a_longer_option_with_the_same_start_is_another_option():
    assert option_values(["--http-port-extra=1", "--http-port=2"], "--http-port") == ["2"]


def test_the_last_value_wins_and_the_default_stands_in_for_none():
    assert last_value(["--http-port=1", "--http-port", "2"], "--http-port", "8000") == "2"
    assert last_value([], "--http-port", "8000") == "8000"
    assert model_control_mode(["--model-control-mode=EXPLICIT"]) == "explicit"
    assert model_control_mode([]) == "none"


def test_the_readers_of_one_command_line_agree():
    args = [
        "--model-store=/a",
        "--model-repository",
        "/b",
        "--http-port=9100",
        "--backend-config",
        "python,shm-region-prefix-name=mine_",
        "--http-restricted-api=model-repository:admin-key=k",
        "--cache-config",
        "local,size=1",
    ]
    assert response_cache.repositories(args) == ["/a", "/b"]
    assert response_cache.cache_flag(args) is None
    assert leftovers.region_prefix(args) == "mine_"
    assert supervisor.http_address(args) == "127.0.0.1:9100"
    assert supervisor.repository_api_header(args) == ("admin-key", "k")
