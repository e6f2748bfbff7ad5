"""The warmup sample written into the repository: one serialized, decodable JPEG."""

from __future__ import annotations

import struct

from PIL import Image

from tritonclf.repository.build import warmup_image_bytes


def test_warmup_file_is_one_serialized_jpeg():
    data = warmup_image_bytes()
    (length,) = struct.unpack("<I", data[:4])
    assert length == len(data) - 4
    assert data[4:6] == b"\xff\xd8"  # JPEG start-of-image marker


def test_warmup_image_decodes():
    import io

    Image.open(io.BytesIO(warmup_image_bytes()[4:])).verify()
