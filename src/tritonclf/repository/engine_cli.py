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
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tritonclf import contract
from tritonclf.export_metadata import load_metadata
from tritonclf.files import write_json_atomic
from tritonclf.progress import Progress
from tritonclf.repository.build import BuildError
from tritonclf.repository.engine_args import add_engine_arguments, engine_options, gate_thresholds
from tritonclf.repository.engine_build import ENGINE_DIR, ENGINE_RECORD, container_build_record, prepare_engine
from tritonclf.repository.preflight_cli import pinned_triton_tag
from tritonclf.repository.tensorrt import container_command, fp32_node_names, trtexec_command
from tritonclf.samples import sample_dir

SAMPLES = sample_dir()
CONTAINER_TRTEXEC = "/usr/src/tensorrt/bin/trtexec"


def container_build(args: argparse.Namespace) -> list[str]:
    """The docker command that builds the engine with trtexec in the Triton container."""
    metadata = load_metadata(args.export / contract.METADATA_FILENAME)
    options = engine_options(args)
    height, width = metadata.preprocess.input_size
    inner = trtexec_command(
        onnx_path=f"/work/{metadata.onnx_filename}",
        engine_path=f"/work/{ENGINE_DIR}/model.plan",
        input_name=metadata.input_name,
        input_chw=(3, height, width),
        options=options,
        fp32_layers=fp32_node_names(args.export / metadata.onnx_filename),
        trtexec=CONTAINER_TRTEXEC,
    )
    return container_command(args.triton_tag, args.export, inner, user=f"{os.getuid()}:{os.getgid()}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", type=Path, required=True, help="folder with model.onnx and model.json")
    parser.add_argument(
        "--triton-tag", default=pinned_triton_tag(), help="NVIDIA Triton container tag (deploy/triton.env)"
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
            photos = sorted(args.gate_images.glob("*.jpg"))
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
            subprocess.run(command, check=True)
            progress.step(f"write {engine_dir}/{ENGINE_RECORD}")
            write_json_atomic(
                engine_dir / ENGINE_RECORD, container_build_record(engine_dir, args.triton_tag, engine_options(args))
            )
    except (BuildError, FileNotFoundError, ValueError) as err:
        progress.close()
        print(f"onnx2trt: error: {err}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as err:
        progress.close()
        where = (
            "docker could not start the container (Docker daemon running? NVIDIA Container Toolkit installed?)"
            if err.returncode == 125  # docker's own failure, before anything ran inside
            else f"see {engine_dir}/trtexec.log"
        )
        print(f"onnx2trt: error: the container build failed (exit {err.returncode}): {where}", file=sys.stderr)
        return 1
    progress.finish(f"{engine_dir}/model.plan (record: {engine_dir}/{ENGINE_RECORD})")
    print(f"next: python build/build_repository.py --export {args.export} --backend trt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
