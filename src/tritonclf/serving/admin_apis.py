"""Which of Triton's admin APIs a tritonserver command line leaves open to anyone who reaches its ports.

NVIDIA's secure-deployment guide tells operators to restrict what a deployment does not
need: client shared-memory registration (it has had memory-safety advisories), and the
trace and logging APIs, which change the server's behaviour at run time (verbose logging
is a cheap denial of service). With model control on, the repository API loads code.
Triton 2.51 restricts an API group with ``--http-restricted-api=<apis>:<key>=<value>``
and ``--grpc-restricted-protocol=<apis>:<key>=<value>``: a request without the header
``<key>: <value>`` (over gRPC ``triton-grpc-protocol-<key>``) is refused.

    >>> open_admin_apis(["--model-repository=m"])
    ['shared-memory', 'trace', 'logging']
"""

from __future__ import annotations

from collections.abc import Sequence

from tritonclf.serving.triton_args import model_control_mode, option_values

# Always open on a plain tritonserver, whatever the model control mode.
ADMIN_APIS = ("shared-memory", "trace", "logging")
# Loads and unloads models (code) when model control is explicit; mode none refuses both anyway.
MODEL_CONTROL_API = "model-repository"
RESTRICTION_FLAGS = ("--http-restricted-api", "--grpc-restricted-protocol")
# The header our deployments name in those flags; Triton prefixes gRPC headers with ``triton-grpc-protocol-``.
KEY_HEADER = "admin-key"
GRPC_KEY_HEADER = f"triton-grpc-protocol-{KEY_HEADER}"


def admin_apis(args: Sequence[str]) -> tuple[str, ...]:
    """The API groups this command line should restrict: the admin set, plus the repository API when it can load."""
    if model_control_mode(args) == "none":
        return ADMIN_APIS
    return (MODEL_CONTROL_API, *ADMIN_APIS)


def restricted_apis(args: Sequence[str], flag: str) -> set[str]:
    """The API groups one restriction flag (HTTP or gRPC) puts behind a key, over all its occurrences."""
    restricted: set[str] = set()
    for value in option_values(args, flag):
        apis, separator, header = value.partition(":")
        if separator and "=" in header:
            restricted.update(api for api in apis.split(",") if api)
    return restricted


def open_admin_apis(args: Sequence[str]) -> list[str]:
    """The admin API groups left open over HTTP or gRPC, in a stable order; empty when all are behind a key."""
    closed = set.intersection(*(restricted_apis(args, flag) for flag in RESTRICTION_FLAGS))
    return [api for api in admin_apis(args) if api not in closed]


def restriction_flags(args: Sequence[str], key: str) -> tuple[str, str]:
    """The HTTP and gRPC flags that put this command line's admin APIs behind ``key`` (header ``admin-key``)."""
    apis = ",".join(admin_apis(args))
    return tuple(f"{flag}={apis}:{KEY_HEADER}={key}" for flag in RESTRICTION_FLAGS)


def key_headers(protocol: str, key: str | None) -> dict[str, str] | None:
    """The request headers that carry ``key`` over ``protocol`` (``grpc`` or ``http``); None without a key."""
    if not key:
        return None
    return {GRPC_KEY_HEADER if protocol == "grpc" else KEY_HEADER: key}


def open_api_notice(args: Sequence[str]) -> str | None:
    """One line for a server started with admin APIs open, or None when every one is restricted."""
    still_open = open_admin_apis(args)
    if not still_open:
        return None
    return (
        f"tritonserver: the {', '.join(still_open)} APIs are open to anyone who reaches these ports "
        "(through shared memory a client reads and overwrites the server's files); `make serve` restricts them "
        "unless SECURE=0, or pass --http-restricted-api/--grpc-restricted-protocol (docs/SECURITY.md)"
    )
