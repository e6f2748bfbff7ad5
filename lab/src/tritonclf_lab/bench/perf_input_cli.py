"""Write perf_analyzer ``--input-data`` JSON from real images.

    python clients/perf_input.py photos/ --output perf/ensemble.json                 # BYTES "image" per entry
    python clients/perf_input.py photos/ --pixels --output perf/classifier.json      # preprocessed FP32 tensors
    python clients/perf_input.py --generated-mix 10 --output perf/ensemble.json      # the benchmark's photo mix
    perf_analyzer -m efficientnet_lite0 -i grpc -u localhost:8001 --input-data perf/ensemble.json

For the ensemble each entry is one encoded file as a BYTES tensor (with the 4-byte
length prefix Triton's wire format needs). With ``--pixels`` each image goes through
the export's preprocessing (``tritonclf.preprocess``), so the classifier alone gets
the tensors it would get inside the ensemble.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from tritonclf import contract
from tritonclf.cli_options import EXIT_OK, fail
from tritonclf.export_metadata import load_metadata
from tritonclf.files import write_atomic
from tritonclf.image_files import ImageFilesError, image_paths
from tritonclf.preprocess import DecodeLimits, ImageRejected, preprocess_image
from tritonclf.samples import sample_photos
from tritonclf_lab.bench.images import generate_mix
from tritonclf_lab.bench.perf_data import bytes_entry, input_data, tensor_entry


class InputError(RuntimeError):
    """A user mistake, reported in one line."""


def read_images(paths: Sequence[Path]) -> list[tuple[str, bytes]]:
    """(name, bytes) of every image file given, folders expanded (sorted, not recursive)."""
    try:
        return [(str(p), p.read_bytes()) for p in image_paths(paths, recursive=False)]
    except ImageFilesError as err:
        raise InputError(str(err)) from None


def ensemble_document(images: Sequence[tuple[str, bytes]], input_name: str) -> dict:
    """One BYTES entry per image."""
    return input_data([bytes_entry(input_name, data) for _, data in images])


def classifier_document(images: Sequence[tuple[str, bytes]], export: Path, input_name: str) -> dict:
    """One preprocessed FP32 entry per image, with the export's preprocessing spec."""
    try:
        metadata = load_metadata(export / contract.METADATA_FILENAME)
    except (FileNotFoundError, ValueError) as err:
        raise InputError(f"{err} (pass --export)") from None
    entries = []
    for name, data in images:
        try:
            pixels = preprocess_image(data, metadata.preprocess, DecodeLimits())
        except ImageRejected as err:
            raise InputError(f"{name}: {err}") from None
        entries.append(tensor_entry(input_name, pixels))
    return input_data(entries)


def build_document(args: argparse.Namespace) -> tuple[dict, int]:
    """The JSON document and how many images it holds."""
    if args.generated_mix:
        sources = [p.read_bytes() for p in sample_photos()]
        images = [(f"mix-{i}", image.data) for i, image in enumerate(generate_mix(sources, count=args.generated_mix))]
    else:
        images = read_images(args.images)
    if args.pixels:
        return classifier_document(images, args.export, args.input_name or contract.PIXELS), len(images)
    return ensemble_document(images, args.input_name or contract.IMAGE_INPUT), len(images)


def main(argv: list[str] | None = None) -> int:
    """Write the JSON file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", type=Path, nargs="*", help="image files or folders")
    parser.add_argument(
        "--generated-mix", type=int, metavar="N", help="N photos of the benchmark's default mix instead"
    )
    parser.add_argument("--pixels", action="store_true", help="preprocessed FP32 tensors for the classifier alone")
    parser.add_argument("--export", type=Path, default=Path("exports/efficientnet_lite0"), help="for --pixels")
    parser.add_argument("--input-name", help=f"tensor name (default: {contract.IMAGE_INPUT}, or {contract.PIXELS})")
    parser.add_argument("--output", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    if bool(args.images) == bool(args.generated_mix):
        parser.error("give image files/folders or --generated-mix N (one of them)")
    try:
        document, count = build_document(args)
    except (InputError, ValueError) as err:
        return fail("perf-input", err)
    write_atomic(args.output, json.dumps(document))
    print(f"wrote {args.output}: {count} entries, {args.output.stat().st_size / 1e6:.1f} MB")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
