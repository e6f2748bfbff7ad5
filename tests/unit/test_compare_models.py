"""``make compare-models``: the table and plot writers, and the peak-memory sampler, on real values."""

from __future__ import annotations

import os
import time

from PIL import Image

from tritonclf_lab.bench.compare_models_cli import ARTICLE_MODELS, ModelRow, PeakRss, markdown_table, plot

ROWS = [
    ModelRow("mobilenetv3_large_100", 5_483_032, 22_000_000, 180.5, 5.2, 400 * 2**20, 1.9),
    ModelRow("vit_base_patch16_224", 86_567_656, 346_000_000, 6.1, 160.0, 1150 * 2**20),
]


def test_table_has_a_row_per_model_with_numbers_beside_the_articles_words():
    table = markdown_table(ROWS, "loaded machine")
    lines = table.splitlines()
    assert len([line for line in lines if line.startswith("| ")]) == 1 + len(ROWS)
    row = "| MobileNetV3 | `mobilenetv3_large_100` | 5.5 M | 21 | 180.5 | 5.2 | 400 | 1.90 | Very Fast / Low |"
    assert row in table
    assert "| 1,150 | - | Slow / High |" in table  # no CPU figure recorded: a dash
    assert "| ViT-B/16 |" in table and "Slow / High" in table
    assert table.rstrip().endswith("loaded machine")
    assert list(ARTICLE_MODELS.values()) == ["MobileNetV3", "EfficientNet-B0", "ResNet-50", "ViT-B/16"]


def test_plot_writes_a_png(tmp_path):
    plot(ROWS, tmp_path / "models.png")
    with Image.open(tmp_path / "models.png") as image:
        assert image.format == "PNG" and image.width > 600


def test_peak_rss_sees_this_processs_memory():
    with PeakRss(os.getpid(), interval_s=0.01) as peak:
        block = bytearray(64 * 2**20)
        block[::4096] = b"x" * len(block[::4096])
        time.sleep(0.1)
    assert peak.peak >= 64 * 2**20
