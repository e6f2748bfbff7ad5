"""Security defaults in the compose file: the admin APIs it turns on are restricted."""

from __future__ import annotations

import yaml

from ..conftest import ROOT

RESTRICTED = "model-repository,shared-memory,trace,logging"


def test_compose_file_restricts_the_admin_apis_it_turns_on():
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    command = compose["services"]["triton"]["command"]
    assert "--model-control-mode=explicit" in command
    http = next(arg for arg in command if arg.startswith("--http-restricted-api="))
    grpc = next(arg for arg in command if arg.startswith("--grpc-restricted-protocol="))
    for flag in (http, grpc):
        apis, _, header = flag.split("=", 1)[1].partition(":")
        assert set(apis.split(",")) == set(RESTRICTED.split(","))
        assert header == "admin-key=${TRITON_ADMIN_KEY:?set TRITON_ADMIN_KEY (docs/SECURITY.md)}"
