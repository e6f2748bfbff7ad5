"""Build a TensorRT FP16 engine for an export, in NVIDIA's Triton container or on this GPU host.

    python build/onnx2trt.py --export exports/efficientnet_lite0                 # trtexec in the pinned container
    python build/onnx2trt.py --export exports/efficientnet_lite0 --dry-run       # print the docker command only
    python build/onnx2trt.py --export exports/efficientnet_lite0 --local         # TensorRT Python API, gated here

Writes ``EXPORT/engine/model.plan`` and ``EXPORT/engine/engine.json``; then
``build/build_repository.py --backend trt`` puts it in the repository. The
container build uses trtexec of the exact Triton release you deploy
(``deploy/triton.env``), so the engine matches that server's TensorRT.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tritonclf import contract
from tritonclf.cli_options import fail
from tritonclf.export_metadata import load_metadata
from tritonclf.files import write_json_atomic
from tritonclf.image_files import list_images
from tritonclf.progress import Progress
from tritonclf.repository.build import BuildError
from tritonclf.repository.engine_args import add_engine_arguments, engine_options, gate_thresholds
from tritonclf.repository.engine_build import ENGINE_DIR, ENGINE_RECORD, container_build_record, prepare_engine
from tritonclf.repository.preflight_cli import pinned_triton_tag
from tritonclf.repository.tensorrt import (
    container_command,
    container_timing_cache,
    fp32_node_names,
    trtexec_command,
)
from tritonclf.repository.tensorrt_versions import container_tensorrt_version
from tritonclf.samples import sample_dir

SAMPLES = sample_dir()
CONTAINER_TRTEXEC = "/usr/src/tensorrt/bin/trtexec"


def container_build(args: argparse.Namespace) -> list[str]:
    """The docker command that builds the engine with trtexec in the Triton container."""
    tensorrt_version = args.tensorrt_version or container_tensorrt_version(args.triton_tag)
    if tensorrt_version is None:
        raise BuildError(
            f"which TensorRT is in nvcr.io/nvidia/tritonserver:{args.triton_tag} is not known here: pass "
            "--tensorrt-version X.Y (its trtexec log starts with [TensorRT vXXYYZZ], e.g. v100500 = 10.5)"
        )
    metadata = load_metadata(args.export / contract.METADATA_FILENAME)
    host_options = engine_options(args)
    # trtexec runs in the container: it must be given the cache where the container sees it.
    options = host_options
    if host_options.timing_cache:
        options = dataclasses.replace(host_options, timing_cache=container_timing_cache(host_options.timing_cache))
    height, width = metadata.preprocess.input_size
    inner = trtexec_command(
        onnx_path=f"/work/{metadata.onnx_filename}",
        engine_path=f"/work/{ENGINE_DIR}/model.plan",
        input_name=metadata.input_name,
        input_chw=(3, height, width),
        options=options,
        fp32_layers=fp32_node_names(args.export / metadata.onnx_filename),
        tensorrt_version=tensorrt_version,
        trtexec=CONTAINER_TRTEXEC,
    )
    user = f"{os.getuid()}:{os.getgid()}"
    return container_command(args.triton_tag, args.export, inner, user=user, timing_cache=host_options.timing_cache)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", type=Path, required=True, help="folder with model.onnx and model.json")
    parser.add_argument(
        "--triton-tag", default=pinned_triton_tag(), help="NVIDIA Triton container tag (deploy/triton.env)"
    )
    parser.add_argument(
        "--tensorrt-version", help="TensorRT in that container (default: known for the pinned tag, e.g. 10.5.0)"
    )
    parser.add_argument("--max-batch-size", type=int, default=32, help="profile max = the model's max_batch_size")
    parser.add_argument("--local", action="store_true", help="build here with the TensorRT Python API and gate it")
    parser.add_argument("--dry-run", action="store_true", help="print what would run, run nothing")
    parser.add_argument("--gate-images", type=Path, default=SAMPLES, help="real photos for the FP16 accuracy gate")
    add_engine_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build in the container (default) or locally; one-line errors."""
    args = parse_args(argv)
    engine_dir = args.export / ENGINE_DIR
    progress = Progress("engine", total=2)
    try:
        if args.local:
            if args.dry_run:
                print(f"would build {engine_dir}/model.plan with the TensorRT Python API, then run the FP16 gate")
                return 0
            metadata = load_metadata(args.export / contract.METADATA_FILENAME)
            photos = list_images(args.gate_images, recursive=False)
            progress.step(f"build with the TensorRT Python API, then the FP16 gate on {len(photos)} photos (minutes)")
            prepared = prepare_engine(args.export, metadata, engine_options(args), gate_thresholds(args), photos)
            progress.step(f"write {engine_dir}/model.plan")
            engine_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(prepared.plan, engine_dir / "model.plan")
            write_json_atomic(engine_dir / ENGINE_RECORD, dict(prepared.record))
        else:
            if not args.triton_tag:
                raise BuildError("no Triton container tag: pass --triton-tag or set TRITON_TAG in deploy/triton.env")
            command = container_build(args)
            print("$ " + shlex.join(command), flush=True)
            if args.dry_run:
                return 0
            if shutil.which("docker") is None:
                raise BuildError("docker is not installed: run this on a GPU host with Docker, or use --local")
            engine_dir.mkdir(parents=True, exist_ok=True)
            progress.step(f"trtexec in the {args.triton_tag} container (minutes)")
            # The container's own output follows: end the status line first.
            progress.close()
            if args.timing_cache:
                args.timing_cache.parent.mkdir(parents=True, exist_ok=True)  # else docker creates it as root
            subprocess.run(command, check=True)
            progress.step(f"write {engine_dir}/{ENGINE_RECORD}")
            metadata = load_metadata(args.export / contract.METADATA_FILENAME)
            record = container_build_record(
                engine_dir, args.triton_tag, engine_options(args), onnx_sha256=metadata.onnx_sha256
            )
            write_json_atomic(engine_dir / ENGINE_RECORD, record)
    except (BuildError, FileNotFoundError, ValueError) as err:
        progress.close()
        return fail("engine", err)
    except subprocess.CalledProcessError as err:
        where = (
            "docker could not start the container (Docker daemon running? NVIDIA Container Toolkit installed?)"
            if err.returncode == 125  # docker's own failure, before anything ran inside
            else f"see {engine_dir}/trtexec.log"
        )
        progress.close()
        return fail("engine", f"the container build failed (exit {err.returncode}): {where}")
    progress.finish(f"{engine_dir}/model.plan (record: {engine_dir}/{ENGINE_RECORD})")
    print(f"next: python build/build_repository.py --export {args.export} --backend trt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
