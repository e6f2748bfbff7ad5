"""The page's server without a browser or Triton: its files, its host check, and one-line JSON errors.

Triton is a port nobody listens on here; tests/integration/test_ui.py has the real server.
"""

from __future__ import annotations

import gc
import http.client
import json
import re
import socket
import threading

import pytest

from tritonclf.client.forwarding import Forwarder, Refused, parse_top_k, reason
from tritonclf.client.triton_client import ClientError, TritonConnection
from tritonclf.client.ui_server import UiServer, host_name, is_loopback
from tritonclf.serving.process import free_port


@pytest.fixture(scope="module")
def dead_triton() -> str:
    return f"127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def page(dead_triton):
    server = UiServer(("127.0.0.1", 0), Forwarder(dead_triton, timeout_s=5))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def request(page, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """(status, headers, body) of one request on a fresh connection."""
    connection = http.client.HTTPConnection("127.0.0.1", page.server_address[1], timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def error_of(page, method: str, path: str, **kwargs) -> tuple[int, dict]:
    status, headers, body = request(page, method, path, **kwargs)
    assert headers["Content-Type"] == "application/json"
    answer = json.loads(body)
    assert set(answer) == {"error", "status"} and "\n" not in answer["error"]
    return status, answer


def test_serves_the_page_and_its_own_files_only_under_a_strict_policy(page):
    status, headers, html = request(page, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    # Works offline: every file the page loads is this server's.
    linked = re.findall(rb'(?:src|href)="([^"]+)"', html)
    assert set(linked) == {b"ui.js", b"ui.css", b"data:,"}
    for path, kind in [("/ui.js", "text/javascript"), ("/ui.css", "text/css")]:
        status, headers, body = request(page, "GET", path)
        assert status == 200 and headers["Content-Type"].startswith(kind) and body
        assert not re.search(rb"https?://|url\(", body), f"{path} loads something from elsewhere"


def test_an_unreachable_triton_is_one_line_for_the_model_list_and_for_an_upload(page, dead_triton):
    status, answer = error_of(page, "GET", "/api/models")
    assert status == 503 and answer["status"] == "UNAVAILABLE"
    assert answer["error"].startswith(f"cannot reach Triton over http at {dead_triton}: ")
    assert answer["error"].endswith("is the server running (make serve)?")
    # The upload's body is read and dropped first, so a browser gets this answer, not a reset.
    status, answer = error_of(page, "POST", "/api/classify?model=m", body=b"\xff\xd8\xff" + bytes(20_000_000))
    assert status == 503 and answer["error"].startswith("cannot reach Triton over http")


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "expected_status", "message"),
    [
        ("GET", "/nothing", {}, 404, "no such page: /nothing"),
        ("POST", "/api/models", {"body": b"x"}, 404, "no such API: POST /api/models"),
        ("POST", "/api/classify", {"body": b"x"}, 400, "say which model: /api/classify?model=NAME"),
        ("POST", "/api/classify?model=m&top_k=0", {"body": b"x"}, 400, "top_k must be a positive integer, not '0'"),
        ("POST", "/api/classify?model=m&top_k=ten", {"body": b"x"}, 400, "top_k must be a positive integer, not 'ten'"),
        (
            "POST",
            "/api/classify?model=m",
            {"body": iter([b"chunk"]), "headers": {"Transfer-Encoding": "chunked"}},
            411,
            "send the image with a Content-Length, not in chunks",
        ),
        ("PUT", "/", {"body": b"x"}, 501, "Unsupported method ('PUT')"),
        (
            "GET",
            "/",
            {"headers": {"Host": "rebound.example:8080"}},
            403,
            "this page answers only at localhost or 127.0.0.1 (tritonclf ui --host to change)",
        ),
    ],
    ids=["unknown-page", "unknown-api", "no-model", "top-k-zero", "top-k-text", "chunked", "put", "host"],
)
def test_a_bad_request_gets_its_one_line(page, method, path, kwargs, expected_status, message):
    status, answer = error_of(page, method, path, **kwargs)
    assert (status, answer["error"]) == (expected_status, message)


def test_an_upload_without_a_length_is_refused(page):
    with socket.create_connection(("127.0.0.1", page.server_address[1]), timeout=30) as sock:
        sock.sendall(b"POST /api/classify?model=m HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 411 ")
    assert json.loads(body)["error"] == "send the image with a Content-Length"


def test_an_upload_announced_with_expect_100_is_answered_before_its_body(page):
    connection = http.client.HTTPConnection("127.0.0.1", page.server_address[1], timeout=30)
    try:
        connection.putrequest("POST", "/api/classify?model=m&top_k=0")
        connection.putheader("Content-Length", str(50_000_000))
        connection.putheader("Expect", "100-continue")
        connection.endheaders()  # and no body: the answer must come without it
        response = connection.getresponse()
        assert response.status == 400
        assert json.loads(response.read())["error"] == "top_k must be a positive integer, not '0'"
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8080", "127.0.0.1"),
        ("localhost", "localhost"),
        ("[::1]:80", "::1"),
        ("Example.COM:1", "example.com"),
    ],
)
def test_host_name_drops_the_port(header, name):
    assert host_name(header) == name


def test_only_loopback_addresses_count_as_local():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.com")


def test_the_reason_is_the_models_own_line_without_the_ensemble_prefix():
    message = "in ensemble 'catsdogs', empty input: no image bytes were sent"
    assert reason(message, "catsdogs") == "empty input: no image bytes were sent"
    assert reason(message, "other") == message


def test_top_k_defaults_to_five_and_takes_positive_integers():
    assert parse_top_k(None) == 5 and parse_top_k("") == 5 and parse_top_k("3") == 3
    with pytest.raises(Refused, match="not '-1'"):
        parse_top_k("-1")


def test_listens_on_an_ipv6_loopback_address_too():
    try:
        server = UiServer(("::1", 0), Forwarder("127.0.0.1:9"))
    except OSError as err:  # a machine without IPv6
        pytest.skip(f"no IPv6 loopback here: {err}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert server.url == f"http://[::1]:{server.server_address[1]}/"
        connection = http.client.HTTPConnection("::1", server.server_address[1], timeout=30)
        connection.request("GET", "/")
        assert connection.getresponse().status == 200
        connection.close()
    finally:
        server.shutdown()
        server.server_close()


def test_a_taken_port_is_one_line_and_exit_status_2(page, capsys):
    from tritonclf.client import ui_cli

    taken = str(page.server_address[1])
    assert ui_cli.main(["--url", "127.0.0.1:9", "--port", taken]) == 2
    assert capsys.readouterr().err == f"ui: error: cannot listen on 127.0.0.1:{taken}: Address already in use\n"


def test_url_and_repository_together_are_a_usage_error(capsys):
    from tritonclf.client import ui_cli

    with pytest.raises(SystemExit) as exit_:
        ui_cli.main(["--url", "127.0.0.1:9", "--repository", "model_repository"])
    assert exit_.value.code == 2
    assert "give --url (a running server) or --repository (start one), not both" in capsys.readouterr().err


def test_a_connection_that_cannot_be_set_up_closes_its_client_in_its_own_thread(dead_triton):
    # The page's server asks from a thread per connection. A client left open is closed later by
    # the garbage collector, from whichever thread runs it: tritonclient's HTTP client (gevent)
    # then fails in __del__. The failed attempt's exception keeps the client alive to check.
    import tritonclient.http as httpclient

    def clients() -> list:
        # type(), not isinstance(): isinstance reads __class__, which some of torch's deprecated
        # module attributes answer with a FutureWarning.
        return [o for o in gc.get_objects() if issubclass(type(o), httpclient.InferenceServerClient)]

    before = {id(client) for client in clients()}
    errors = []

    def attempt():
        try:
            TritonConnection(dead_triton, "http", timeout_s=5)
        except ClientError as err:
            errors.append(err)

    thread = threading.Thread(target=attempt)
    thread.start()
    thread.join()
    assert "cannot reach Triton" in str(errors[0])
    left = [client for client in clients() if id(client) not in before]
    assert left and all(client._closed for client in left)
