"""Build (or update) a Triton model repository from an exported classifier.

    python build/build_repository.py --export exports/efficientnet_lite0 --repository model_repository

Writes the ensemble ``NAME`` (image bytes in, probabilities out), its Python-backend
preprocessing model ``NAME_preprocess`` and the classifier ``NAME_model``. Unchanged
inputs write nothing; changed ones get a new version directory, staged and renamed
into place.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the tritonclf package lives beside this file

from tritonclf.metadata import load_metadata
from tritonclf.preprocess import DecodeLimits
from tritonclf.repository import BuildError, BuildOptions, build_repository


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; defaults come from BuildOptions and DecodeLimits."""
    defaults, limits = BuildOptions(), DecodeLimits()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", type=Path, required=True, help="folder with model.onnx and model.json")
    parser.add_argument("--repository", type=Path, default=Path("model_repository"), help="default: %(default)s")
    parser.add_argument("--name", help="ensemble name (default: the exported model's name)")
    parser.add_argument("--max-batch-size", type=int, default=defaults.max_batch_size, help="default: %(default)s")
    parser.add_argument(
        "--preprocess-instances", type=int, default=defaults.preprocess_instances, help="default: %(default)s"
    )
    parser.add_argument(
        "--classifier-instances", type=int, default=defaults.classifier_instances, help="default: %(default)s"
    )
    parser.add_argument(
        "--intra-op-threads",
        type=int,
        default=defaults.intra_op_threads,
        help="ONNX Runtime threads per classifier instance, 0 = its default (default: %(default)s)",
    )
    parser.add_argument(
        "--max-queue-delay-us",
        type=int,
        default=defaults.max_queue_delay_microseconds,
        help="dynamic batching queue delay in microseconds (default: %(default)s)",
    )
    parser.add_argument("--max-image-bytes", type=int, default=limits.max_image_bytes, help="default: %(default)s")
    parser.add_argument("--max-image-pixels", type=int, default=limits.max_image_pixels, help="default: %(default)s")
    parser.add_argument(
        "--allowed-formats", default=",".join(limits.allowed_formats), help="Pillow format names (default: %(default)s)"
    )
    parser.add_argument(
        "--no-jpeg-draft", action="store_true", help="always decode JPEGs at full size (slower, bit-exact with timm)"
    )
    parser.add_argument("--keep-versions", type=int, default=defaults.keep_versions, help="default: %(default)s")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build and print one line per model."""
    args = parse_args(argv)
    options = BuildOptions(
        name=args.name,
        max_batch_size=args.max_batch_size,
        preprocess_instances=args.preprocess_instances,
        classifier_instances=args.classifier_instances,
        intra_op_threads=args.intra_op_threads,
        max_queue_delay_microseconds=args.max_queue_delay_us,
        limits=DecodeLimits(
            max_image_bytes=args.max_image_bytes,
            max_image_pixels=args.max_image_pixels,
            allowed_formats=tuple(f.strip().upper() for f in args.allowed_formats.split(",") if f.strip()),
            jpeg_draft=not args.no_jpeg_draft,
        ),
        keep_versions=args.keep_versions,
    )
    try:
        built = build_repository(args.export, args.repository, options)
    except (BuildError, FileNotFoundError, ValueError) as err:
        print(f"build_repository: error: {err}", file=sys.stderr)
        return 1
    for model in built:
        state = "written" if model.changed else "up to date"
        print(f"{args.repository}/{model.name}/{model.version}: {state}")
    metadata = load_metadata(args.export / "model.json")
    ensemble = options.name or metadata.model_name
    print(f"serve it: tritonserver --model-repository {args.repository}  (ensemble: {ensemble})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
