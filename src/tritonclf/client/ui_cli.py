"""A page to try the served model in a browser: drop photos, see the top-k labels, scores and latency.

    tritonclf ui                                   # the Triton at localhost:8000; open http://127.0.0.1:8080/
    tritonclf ui --url triton.internal:8000 --model catsdogs
    tritonclf ui --repository model_repository     # start Triton on that repository too, stop it on exit
    tritonclf ui --host 0.0.0.0 --port 8080        # reachable from other machines (a phone on the LAN)

The page talks only to this server (its own origin), which forwards to Triton's HTTP API
and holds each image to the model's own byte limit first. It needs nothing from the
internet. Exit status: 2 when it cannot start (port taken, server failed to start), 130
on Ctrl-C.
"""

from __future__ import annotations

import argparse
import secrets
import signal
import sys
import tempfile
from pathlib import Path

from tritonclf.cli_options import EXIT_INTERRUPTED, EXIT_OK, add_server_arguments, add_timeout, fail
from tritonclf.client.triton_client import default_url

DEFAULT_PORT = 8080


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    add_server_arguments(
        parser,
        url_help="HOST:PORT of Triton's HTTP endpoint (default: localhost:8000)",
        protocols=None,
        model_help="offer only this model (default: every ready ensemble in the repository index)",
    )
    parser.add_argument(
        "--repository", type=Path, help="start tritonserver on this model repository (free ports) instead of --url"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address the page listens on (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="the page's port; 0 picks a free one (default: %(default)s)"
    )
    add_timeout(parser)
    args = parser.parse_args(argv)
    if args.repository and args.url:
        parser.error("give --url (a running server) or --repository (start one), not both")
    return args


def stop_on_sigterm(signum, frame) -> None:
    """SIGTERM ends the page like Ctrl-C, so a tritonserver it started is stopped too."""
    raise KeyboardInterrupt


def announce(page, forwarder, host: str) -> None:
    """What the page will show, and where to open it."""
    from tritonclf.client.forwarding import Refused
    from tritonclf.client.ui_server import is_loopback

    try:
        models = forwarder.models()
        print(f"ui: Triton at {forwarder.url} serves {', '.join(m.name for m in models)}", flush=True)
    except Refused as err:
        print(f"ui: warning: {err.message} (the page says so until Triton answers)", file=sys.stderr, flush=True)
    if not is_loopback(host):
        print(f"ui: warning: listening on {host}: whoever reaches this address can use the model", flush=True)
    print(f"ui: open {page.url} (Ctrl-C stops)", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Serve the page until Ctrl-C or SIGTERM."""
    args = parse_args(argv)
    from tritonclf.client.forwarding import Forwarder
    from tritonclf.client.ui_server import UiServer
    from tritonclf.serving.process import ServerStartError, TritonProcess

    log = Path(tempfile.gettempdir()) / "tritonclf-ui-server.log"
    # The page needs none of Triton's admin APIs: they get a key nobody holds.
    triton = TritonProcess(args.repository, log_path=log, admin_key=secrets.token_hex(32)) if args.repository else None
    url = triton.http_url if triton else args.url or default_url("http")
    try:
        # Listening first: a taken port fails before a server is started for nothing.
        page = UiServer((args.host, args.port), Forwarder(url, args.model, timeout_s=args.timeout_s))
    except OSError as err:
        return fail("ui", f"cannot listen on {args.host}:{args.port}: {err.strerror or err}")
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    with page:
        try:
            if triton is not None:
                print(f"ui: starting tritonserver --model-repository {args.repository} (log: {log})", flush=True)
                triton.start()
            announce(page, page.forwarder, args.host)
            page.serve_forever()
        except ServerStartError as err:
            return fail("ui", err)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        finally:
            if triton is not None:
                # make passes Ctrl-C and SIGTERM on too: a second one must not cut the server's stop short.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                triton.stop()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
