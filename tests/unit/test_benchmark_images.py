"""The benchmark's photo mix: sizes, proportions, EXIF orientation, determinism; folders of JPEGs. No server."""

from __future__ import annotations

import io
import random
import shutil
from collections import Counter

import pytest
from PIL import Image

from tritonclf.preprocess import DecodeLimits, PreprocessSpec
from tritonclf.samples import sample_dir
from tritonclf_lab.bench.images import (
    DEFAULT_MIX,
    EXIF_ORIENTATION_TAG,
    ROTATE_90_CW,
    BenchImage,
    allocate_counts,
    crop_box,
    decodable,
    describe,
    generate_mix,
    load_folder,
    parse_mix,
    size_group,
)

SAMPLES = sample_dir()
SPEC = PreprocessSpec(input_size=(224, 224))
# Small sizes in the default proportions: the generator's logic without 12 MP encodes.
SMALL_MIX = (((64, 48), 0.5), ((128, 96), 0.3), ((200, 150), 0.2))


@pytest.fixture(scope="module")
def sources() -> list[bytes]:
    return [p.read_bytes() for p in sorted(SAMPLES.glob("*.jpg"))]


def test_default_mix_is_half_vga_30_percent_1mp_20_percent_12mp():
    """The phone-photo mix: 50% 640x480, 30% 1280x960, 20% 4032x3024."""
    assert DEFAULT_MIX == (((640, 480), 0.5), ((1280, 960), 0.3), ((4032, 3024), 0.2))
    assert parse_mix("640x480:0.5,1280x960:0.3,4032x3024:0.2") == DEFAULT_MIX


def test_parse_mix_defaults_a_missing_share_to_one():
    """``1280x960`` alone is a mix of one size."""
    assert parse_mix("1280x960") == (((1280, 960), 1.0),)


@pytest.mark.parametrize("text", ["", "640x480:0", "640:0.5", "axb:1", "640x480:-1", "0x480:1"])
def test_parse_mix_rejects_malformed_entries(text):
    """One-line errors for the command line."""
    with pytest.raises(ValueError, match="mix"):
        parse_mix(text)


@pytest.mark.parametrize(
    ("shares", "total", "expected"),
    [
        ([0.5, 0.3, 0.2], 40, [20, 12, 8]),
        ([0.5, 0.3, 0.2], 10, [5, 3, 2]),
        ([0.5, 0.3, 0.2], 7, [4, 2, 1]),  # 3.5, 2.1, 1.4: the largest remainder gets the spare image
        ([0.5, 0.3, 0.2], 3, [1, 1, 1]),  # every size keeps at least one image
        ([5, 3, 2], 20, [10, 6, 4]),  # shares need not sum to 1
        ([0.98, 0.01, 0.01], 5, [3, 1, 1]),
    ],
)
def test_allocate_counts_keeps_proportions_and_the_total(shares, total, expected):
    """Largest remainder, at least one per size, always exactly ``total``."""
    assert allocate_counts(shares, total) == expected


def test_allocate_counts_needs_one_image_per_size():
    """Two images cannot cover three sizes."""
    with pytest.raises(ValueError, match="at least 3"):
        allocate_counts([0.5, 0.3, 0.2], 2)


def test_crop_box_keeps_the_target_aspect_inside_the_image():
    """Any crop fits in the photo and has (about) the output's aspect ratio."""
    for seed in range(50):
        left, top, right, bottom = crop_box(451, 300, 4 / 3, random.Random(seed))
        assert 0 <= left < right <= 451 and 0 <= top < bottom <= 300
        assert (right - left) / (bottom - top) == pytest.approx(4 / 3, rel=0.02)


def test_generate_mix_has_the_sizes_in_proportion_interleaved(sources):
    """20 images of the small mix: 10/6/4, exact sizes, JPEG, and not all of one size in a row."""
    images = generate_mix(sources, SMALL_MIX, count=20)
    assert Counter(image.size_label for image in images) == {"64x48": 10, "128x96": 6, "200x150": 4}
    for image in images:
        with Image.open(io.BytesIO(image.data)) as decoded:
            assert (decoded.format, decoded.size) == ("JPEG", (image.width, image.height))
    labels = [image.size_label for image in images]
    assert labels != sorted(labels, key=labels.index), "sizes should be shuffled, not grouped"


def test_generate_mix_is_deterministic_and_never_repeats_an_image(sources):
    """Same arguments, same bytes; no two images byte-identical; another seed, other images."""
    images = generate_mix(sources, SMALL_MIX, count=12)
    assert [i.data for i in generate_mix(sources, SMALL_MIX, count=12)] == [i.data for i in images]
    assert len({image.data for image in images}) == 12
    other = generate_mix(sources, SMALL_MIX, count=12, seed=1)
    assert not {image.data for image in other} & {image.data for image in images}


def test_generate_mix_tags_every_fourth_image_rotated_like_a_phone(sources):
    """EXIF orientation 6 on a quarter of the images; pixels stay stored landscape."""
    images = generate_mix(sources, SMALL_MIX, count=12)
    rotated = [image for image in images if image.exif_rotated]
    assert len(rotated) == 3
    for image in images:
        with Image.open(io.BytesIO(image.data)) as decoded:
            orientation = decoded.getexif().get(EXIF_ORIENTATION_TAG)
            assert orientation == (ROTATE_90_CW if image.exif_rotated else None)
            assert decoded.width > decoded.height


def test_generated_photos_have_grain_like_real_photos(sources):
    """Upscales with grain compress like photos (about 1.5-3 bits/pixel at quality 90), not like gradients."""
    info = describe(generate_mix(sources, (((800, 600), 1.0),), count=2))
    assert 1.0 < info["sizes"]["800x600"]["bits_per_pixel"] < 4.0


def test_large_subset_is_12_mp_and_up():
    """The 12 MP comparison runs on phone-sized photos only."""
    assert BenchImage(b"", 4032, 3024).is_large
    assert not BenchImage(b"", 1280, 960).is_large


def test_describe_counts_shares_and_bytes_per_size():
    """What the report prints about the images."""
    images = [
        BenchImage(b"x" * 100, 10, 10),
        BenchImage(b"x" * 300, 10, 10, exif_rotated=True),
        BenchImage(b"y", 20, 20),
    ]
    info = describe(images)
    assert info["count"] == 3 and info["exif_rotated"] == 1
    assert list(info["sizes"]) == ["10x10", "20x20"]  # smallest first
    assert info["sizes"]["10x10"] == {
        "count": 2,
        "share": pytest.approx(2 / 3),
        "mean_bytes": 200,
        "bits_per_pixel": 16.0,
    }


def test_load_folder_reads_images_sorted_with_their_orientation(tmp_path):
    """Image files only, by name; the EXIF orientation is noticed."""
    Image.new("RGB", (40, 30), "red").save(tmp_path / "b.jpg")
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = ROTATE_90_CW
    Image.new("RGB", (40, 30), "blue").save(tmp_path / "a.JPEG", exif=exif.tobytes())
    Image.new("RGB", (20, 10), "green").save(tmp_path / "c.png")
    (tmp_path / "notes.txt").write_text("not an image")
    images, skipped = load_folder(tmp_path, SPEC)
    assert [(i.width, i.height, i.exif_rotated) for i in images] == [(40, 30, True), (40, 30, False), (20, 10, False)]
    assert skipped == [] and {i.size_label for i in images} == {"<0.5 MP"}


def test_load_folder_reads_class_folders_and_names_each_file_the_server_would_reject(tmp_path):
    """As infer reads a folder; a broken file is left out and named instead of stopping the benchmark."""
    good = SAMPLES / "chelsea.jpg"
    for name in ("cats/1.jpg", "cats/2.jpg", "dogs/1.jpg"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copyfile(good, tmp_path / name)
    data = good.read_bytes()
    (tmp_path / "dogs" / "truncated.jpg").write_bytes(data[: len(data) // 2])  # the header reads
    (tmp_path / "dogs" / "text.jpg").write_text("not an image")
    images, skipped = load_folder(tmp_path, SPEC)
    assert len(images) == 3
    assert [(f.path.name, f.reason.split(":")[0]) for f in skipped] == [
        ("text.jpg", "not a decodable image"),
        ("truncated.jpg", "cannot decode JPEG image"),
    ]
    assert str(skipped[1]) == f"{tmp_path / 'dogs' / 'truncated.jpg'}: {skipped[1].reason}"


def test_own_photos_of_many_sizes_are_grouped_by_megapixels():
    sizes = [(300 + 7 * i, 200 + 5 * i) for i in range(60)] + [(1600, 1200), (3000, 2250), (4032, 3024)]
    groups = [size_group(w, h) for w, h in sizes]
    assert set(groups) == {"<0.5 MP", "0.5-2 MP", "2-10 MP", "10+ MP"}
    assert size_group(640, 480) == "<0.5 MP" and size_group(1280, 960) == "0.5-2 MP"
    assert size_group(4032, 3024) == "10+ MP"  # the large subset's size
    images = [BenchImage(b"x", w, h, group=g) for (w, h), g in zip(sizes, groups, strict=True)]
    assert list(describe(images)["sizes"]) == ["<0.5 MP", "0.5-2 MP", "2-10 MP", "10+ MP"]


def test_load_folder_without_images_says_so(tmp_path):
    """Missing folder and empty folder are one-line errors."""
    with pytest.raises(FileNotFoundError, match="no image folder"):
        load_folder(tmp_path / "missing", SPEC)
    with pytest.raises(FileNotFoundError, match=r"no images \(\.jpg, \.jpeg"):
        load_folder(tmp_path, SPEC)


def test_references_keep_only_images_the_servers_limits_accept(tmp_path):
    """A server built with lower limits rejects some images: the in-process references must leave them out."""
    Image.new("RGB", (40, 30), "red").save(tmp_path / "big.png")
    Image.new("RGB", (20, 10), "red").save(tmp_path / "small.png")
    images, _ = load_folder(tmp_path, SPEC)
    kept, rejected = decodable(images, SPEC, DecodeLimits(max_image_pixels=1000))
    assert [(i.width, i.height) for i in kept] == [(20, 10)] and rejected == 1
