"""Failures as gRPC status names and one-line messages, the same for gRPC, HTTP and client-side errors.

    status_name(err)   # "UNAVAILABLE", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED"...
    one_line(err)      # tritonclient's message without its status, on one line

tritonclient's gRPC client reports ``StatusCode.INVALID_ARGUMENT``, its HTTP client
the HTTP status (``400``); both are reported under the gRPC name so a benchmark, the
``infer`` command and the fault tests count the same failure the same way.
"""

from __future__ import annotations

OK = "OK"
UNAVAILABLE = "UNAVAILABLE"
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"

# Triton's HTTP status codes back to the gRPC status names.
HTTP_STATUS_NAMES = {
    "400": "INVALID_ARGUMENT",
    "404": "NOT_FOUND",
    "429": "RESOURCE_EXHAUSTED",
    "500": "INTERNAL",
    "503": UNAVAILABLE,
    "504": DEADLINE_EXCEEDED,
}


def status_name(err: BaseException) -> str:
    """A failure as a gRPC status name; a timeout is ``DEADLINE_EXCEEDED``; else the exception's type."""
    if isinstance(err, TimeoutError):
        return DEADLINE_EXCEEDED
    status = getattr(err, "status", None)
    value = status() if callable(status) else status
    text = str(value or "").removeprefix("StatusCode.")
    return HTTP_STATUS_NAMES.get(text, text) or type(err).__name__


def one_line(err: BaseException, limit: int = 300) -> str:
    """Tritonclient's message without its status (else ``str(err)``), whitespace folded, at most ``limit`` chars."""
    message = getattr(err, "message", None)
    text = message() if callable(message) else str(err)
    return " ".join(str(text or type(err).__name__).split())[:limit]
