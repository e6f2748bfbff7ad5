"""``make demo``: start the real Triton server, classify the sample photos over gRPC and HTTP, stop.

    tritonclf demo --repository model_repository

It runs ``tritonclf infer`` exactly as a user would, printing each command first.
Exit 1 when a classification failed, 2 when the server could not start.
"""

from __future__ import annotations

import argparse
import secrets
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from tritonclf.cli_options import EXIT_FAILED, EXIT_OK, fail, positive_int
from tritonclf.samples import sample_dir
from tritonclf.serving.process import ServerStartError, TritonProcess


def display_path(path: Path) -> str:
    """``path`` relative to the working directory where it is inside it, else as it is."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def port_in_use(port: int) -> bool:
    """Whether something already listens on this loopback port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repository", type=Path, default=Path("model_repository"))
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--top-k", type=positive_int, default=5)
    # make train-demo adds a second ensemble next to the ImageNet one: then the client needs a name.
    parser.add_argument("--model", help="ensemble to classify with (default: the repository's only ensemble)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve, classify over both protocols, stop; non-zero if any step failed."""
    args = parse_args(argv)
    busy = [p for p in (args.http_port, args.grpc_port, args.metrics_port) if port_in_use(p)]
    if busy:
        return fail(
            "demo",
            f"port {busy[0]} is in use (another tritonserver?): stop it, "
            "or run e.g. make demo HTTP_PORT=9000 GRPC_PORT=9001 METRICS_PORT=9002",
        )
    log = Path(tempfile.gettempdir()) / "tritonclf-demo-server.log"
    print(f"starting tritonserver --model-repository {args.repository} (log: {log})", flush=True)
    server = TritonProcess(
        args.repository,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        log_path=log,
        # Its admin APIs need a key nobody holds: the demo uses none of them.
        admin_key=secrets.token_hex(32),
    )
    try:
        server.start()
    except ServerStartError as err:
        return fail("demo", str(err).splitlines()[0])
    failed = False
    try:
        print(f"server ready: HTTP {server.http_url}, gRPC {server.grpc_url}, metrics {server.metrics_url}\n")
        for protocol, url in (("grpc", server.grpc_url), ("http", server.http_url)):
            command = ["infer", display_path(sample_dir()), "--protocol", protocol, "--url", url]
            command += ["--top-k", str(args.top_k)] + (["--model", args.model] if args.model else [])
            print(f"$ tritonclf {' '.join(command)}", flush=True)
            result = subprocess.run([sys.executable, "-m", "tritonclf", *command], check=False)
            failed |= result.returncode != 0
            print()
    finally:
        code = server.stop()
        print(f"tritonserver stopped (exit code {code})")
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
