"""Which admin APIs a tritonserver command line leaves open: the launcher's one-line notice depends on it."""

from __future__ import annotations

from tritonclf.serving.admin_apis import (
    admin_apis,
    key_headers,
    open_admin_apis,
    open_api_notice,
    restriction_flags,
)
from tritonclf.serving.triton_args import model_control_mode

HTTP = "--http-restricted-api"
GRPC = "--grpc-restricted-protocol"


def test_model_control_mode_reads_both_spellings_and_defaults_to_none():
    assert model_control_mode(["--model-repository=m"]) == "none"
    assert model_control_mode(["--model-control-mode=explicit"]) == "explicit"
    assert model_control_mode(["--model-control-mode", "poll"]) == "poll"


def test_the_repository_api_is_an_admin_api_only_when_model_control_is_on():
    assert "model-repository" not in admin_apis([])
    assert "model-repository" in admin_apis(["--model-control-mode=explicit"])


def test_a_plain_command_line_leaves_every_admin_api_open():
    assert open_admin_apis(["--model-repository", "m"]) == ["shared-memory", "trace", "logging"]


def test_an_api_restricted_over_http_only_is_still_open_over_grpc():
    assert open_admin_apis([f"{HTTP}=shared-memory,trace,logging:admin-key=k"]) == ["shared-memory", "trace", "logging"]


def test_restrictions_may_be_split_over_several_groups_and_spellings():
    args = [
        f"{HTTP}=shared-memory:admin-key=k",
        HTTP,
        "trace,logging:other-key=v",
        f"{GRPC}=shared-memory,trace,logging:admin-key=k",
    ]
    assert open_admin_apis(args) == []


def test_explicit_model_control_needs_the_repository_api_restricted_too():
    closed = [f"{flag}=shared-memory,trace,logging:admin-key=k" for flag in (HTTP, GRPC)]
    assert open_admin_apis(["--model-control-mode=explicit", *closed]) == ["model-repository"]


def test_notice_is_one_line_naming_the_open_apis_and_the_way_to_restrict_them():
    notice = open_api_notice(["--model-control-mode=explicit"])
    assert "\n" not in notice
    assert "model-repository, shared-memory, trace, logging APIs are open" in notice
    assert "`make serve` restricts them unless SECURE=0" in notice
    closed = [f"{flag}=shared-memory,trace,logging:admin-key=k" for flag in (HTTP, GRPC)]
    assert open_api_notice(closed) is None


def test_restriction_flags_close_every_admin_api_of_the_command_line():
    for args in (["--model-repository=m"], ["--model-control-mode=explicit", "--load-model=*"]):
        assert open_admin_apis([*args, *restriction_flags(args, "k")]) == []
    assert key_headers("grpc", "k") == {"triton-grpc-protocol-admin-key": "k"}
    assert key_headers("http", "k") == {"admin-key": "k"} and key_headers("http", None) is None
