"""perf_analyzer input data: the BYTES length prefix, FP32 tensors, the command. No server, no perf_analyzer."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from tritonclient.utils import deserialize_bytes_tensor

from tritonclf.samples import sample_dir
from tritonclf_lab.bench import perf_cli as perf_sweep
from tritonclf_lab.bench import perf_input_cli as perf_input
from tritonclf_lab.bench.perf_data import (
    bytes_entry,
    input_data,
    tensor_entry,
)

SAMPLES = sample_dir()


def _sent_bytes(entry: dict, input_name: str) -> bytes:
    """The raw tensor content perf_analyzer sends for one ``--input-data`` entry."""
    return base64.b64decode(entry[input_name]["b64"])


def test_bytes_entry_is_a_little_endian_length_then_the_bytes():
    """perf_analyzer sends the decoded b64 as is: the server needs the 4-byte length prefix before the image."""
    for data in (b"\xff\xd8\xff\xe0jpeg", b"", b"x" * 300):
        assert _sent_bytes(bytes_entry("image", data), "image") == len(data).to_bytes(4, "little") + data


def test_bytes_entry_round_trips_a_real_jpeg_through_triton_deserialization():
    """What the server's Python backend would read back is the file, unchanged."""
    jpeg = (SAMPLES / "chelsea.jpg").read_bytes()
    entry = bytes_entry("image", jpeg)
    assert entry["image"]["shape"] == [1]
    assert list(deserialize_bytes_tensor(_sent_bytes(entry, "image"))) == [jpeg]


def test_bytes_entry_refuses_more_than_one_image():
    """One image per request: the ensemble's input holds one element."""
    with pytest.raises(ValueError, match="exactly one"):
        bytes_entry("image", b"x", shape=(2,))


def test_tensor_entry_is_little_endian_float32_in_c_order():
    """perf_analyzer sends the decoded bytes as the tensor's raw content."""
    array = np.arange(24, dtype=np.float64).reshape(2, 3, 4) / 7
    entry = tensor_entry("pixel_values", array)
    assert entry["pixel_values"]["shape"] == [2, 3, 4]
    decoded = np.frombuffer(_sent_bytes(entry, "pixel_values"), dtype="<f4").reshape(2, 3, 4)
    np.testing.assert_array_equal(decoded, array.astype(np.float32))


def test_input_data_needs_entries():
    """An empty document would make perf_analyzer fail later with a worse message."""
    assert input_data([{"a": 1}]) == {"data": [{"a": 1}]}
    with pytest.raises(ValueError, match="at least one"):
        input_data([])


def test_command_writes_one_bytes_entry_per_image_of_a_folder(tmp_path):
    """The sample photos, sorted, each a length-prefixed BYTES tensor named ``image``."""
    output = tmp_path / "ensemble.json"
    assert perf_input.main([str(SAMPLES), "--output", str(output)]) == 0
    entries = json.loads(output.read_text())["data"]
    photos = sorted(SAMPLES.glob("*.jpg"))
    assert len(entries) == len(photos)
    for entry, photo in zip(entries, photos, strict=True):
        assert list(deserialize_bytes_tensor(_sent_bytes(entry, "image"))) == [photo.read_bytes()]


def test_command_errors_are_one_line(tmp_path, capsys):
    """A missing folder or export: exit 2 (nothing written), one line, no traceback."""
    assert perf_input.main([str(tmp_path / "nope"), "--output", str(tmp_path / "x.json")]) == 2
    assert perf_input.main([str(SAMPLES), "--pixels", "--export", str(tmp_path), "--output", "x.json"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 2 and "Traceback" not in err
    assert not (tmp_path / "x.json").exists()


def test_perf_sweep_passes_the_levels_as_perf_analyzers_range(tmp_path):
    """--concurrency 1,2,3,4 (or 1:4) reaches perf_analyzer as --concurrency-range 1:4:1, over --protocol."""
    command = perf_sweep.perf_command(
        "pa",
        "m",
        "h:8000",
        protocol="http",
        input_file=None,
        csv_path=tmp_path / "c.csv",
        concurrency=(1, 2, 3, 4),
        extra="",
    )
    assert command[command.index("--concurrency-range") + 1] == "1:4:1"
    assert command[command.index("-i") + 1] == "http"


def test_perf_sweep_refuses_levels_perf_analyzer_cannot_sweep(capsys):
    """Uneven levels are a usage error (exit 2), not a sweep of something else."""
    with pytest.raises(SystemExit) as exit_info:
        perf_sweep.main(["--concurrency", "1,2,8"])
    assert exit_info.value.code == 2
    assert "evenly spaced" in capsys.readouterr().err


def test_perf_sweep_reads_the_levels_perf_analyzer_measured(tmp_path):
    """perf_analyzer stops at the first unstable level; the rows it wrote tell which ones made it."""
    path = tmp_path / "perf.csv"
    path.write_text("Concurrency,Inferences/Second,p99 latency\n2,50.1,90000\n1,41.0,30000\n")
    assert perf_sweep.measured_levels(path) == {1, 2}
