"""A new user's whole job on their own photos, command by command, as they type them.

Own photos (JPEG and PNG of many sizes, a class named ``crème brûlée``, a few broken files),
the ImageNet model already served; then: train, Ctrl-C, resume, export, build beside the
ImageNet model, preflight, serve, classify the folder over gRPC and HTTP, evaluate, the
in-process API, and ``bench --images`` on the same tree. Minutes: the long tier.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tritonclf.serving.process import TritonProcess

from ..conftest import SAMPLES

pytestmark = pytest.mark.long

# Each class is crops of one sample photo: a pretrained backbone tells them apart in a few epochs.
CLASSES = {"chat tigré": "chelsea", "crème brûlée": "coffee", "fusée": "rocket"}
TRAIN = ["--model", "efficientnet_lite0", "--input-size", "96", "--epochs", "3", "--batch-size", "8"]
TRAIN += ["--workers", "0", "--strategy", "fine_tune_last", "--lr-head", "3e-3", "--warmup-epochs", "0"]


def tritonclf(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tritonclf", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_photos(root: Path) -> dict[str, list[Path]]:
    """``root/{train,val}/<class>/``: varied crops, sizes and formats; and the broken files, by kind."""
    # 3 x 13 + 1 truncated = 40 training images, five batches of 8: drop_last leaves none out of an epoch.
    for split, count in (("train", 13), ("val", 4)):
        for index, (name, sample) in enumerate(CLASSES.items()):
            source = Image.open(SAMPLES / f"{sample}.jpg").convert("RGB")
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                seed = 31 * i + 7 * index + (split == "val")
                left, top = seed % 60, (3 * seed) % 40
                crop = source.crop((left, top, left + source.width - 80, top + source.height - 60))
                if i % 2:
                    crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                size = (320 + 97 * i, 240 + 73 * i) if i != count - 1 else (2400, 1800)
                suffix = "png" if i % 3 == 0 else "jpg"
                crop.resize(size).save(folder / f"IMG_{i:04d}.{suffix}")
    jpeg = (root / "train" / "fusée" / "IMG_0001.jpg").read_bytes()
    broken = {
        "truncated": [root / "train" / "fusée" / "IMG_9998.jpg", root / "val" / "chat tigré" / "IMG_9997.jpg"],
        "not an image": [root / "val" / "crème brûlée" / "notes.jpg"],
        "empty": [root / "train" / "chat tigré" / "empty.png"],
    }
    for path in broken["truncated"]:
        path.write_bytes(jpeg[: len(jpeg) // 2])
    broken["not an image"][0].write_text("shopping list: eggs, cream, sugar")
    broken["empty"][0].write_bytes(b"")
    return broken


def test_own_photos_from_training_to_served_answers_and_a_benchmark(tmp_path):  # noqa: PLR0915 - one user's job
    work = tmp_path / "job"
    work.mkdir()
    broken = write_photos(work / "photos")
    val_images = sorted(p for p in (work / "photos" / "val").rglob("*") if p.is_file())
    broken_val = {str(p.relative_to(work)) for paths in broken.values() for p in paths if "val" in p.parts}

    # The ImageNet model is already served from this repository.
    assert tritonclf("export", "--output", "exports/efficientnet_lite0", cwd=work).returncode == 0
    built = tritonclf("build", "--export", "exports/efficientnet_lite0", "--repository", "model_repository", cwd=work)
    assert built.returncode == 0, built.stderr

    # Train; Ctrl-C once the first epoch is saved; the run folder alone resumes it.
    command = [sys.executable, "-m", "tritonclf", "train", "--data", "photos", "--output", "runs/desserts", *TRAIN]
    training = subprocess.Popen(command, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in training.stdout:
        lines.append(line)
        if line.startswith("epoch 1/3:"):
            training.send_signal(signal.SIGINT)
            break
    _, err = training.communicate(timeout=300)
    assert training.returncode == 130, err
    assert "Traceback" not in err and err.rstrip().endswith("train: interrupted; continue with --resume")
    assert "| 2 unreadable images skipped (1 train, 1 val)" in "".join(lines)
    for path in broken["truncated"]:
        assert err.count(f"warning: skipping {path.relative_to(work)}: cannot decode JPEG image") == 1
    refused = tritonclf("train", "--data", "photos", "--output", "runs/desserts", *TRAIN, cwd=work)
    assert refused.returncode == 2 and "already holds a training run" in refused.stderr
    resumed = tritonclf("train", "--output", "runs/desserts", "--resume", cwd=work)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from runs/desserts/last.pth after epoch 1" in resumed.stdout
    metrics = json.loads((work / "runs" / "desserts" / "metrics.json").read_text())
    assert [row["epoch"] for row in metrics] == [1, 2, 3]
    assert (work / "runs" / "desserts" / "labels.txt").read_text() == "chat tigré\ncrème brûlée\nfusée\n"

    # Export and build beside the ImageNet model: no --name needed.
    exported = tritonclf("export", "--weights", "runs/desserts/best.pth", cwd=work)
    assert exported.returncode == 0, exported.stderr
    assert "served as desserts by: tritonclf build --export exports/desserts" in exported.stdout
    built = tritonclf("build", "--export", "exports/desserts", "--repository", "model_repository", cwd=work)
    assert built.returncode == 0 and "(ensemble: desserts)" in built.stdout
    assert (work / "model_repository" / "efficientnet_lite0" / "labels.txt").read_text().count("\n") == 1000
    preflight = tritonclf("preflight", "--repository", "model_repository", cwd=work)
    assert preflight.returncode == 0 and "is ready to serve" in preflight.stdout

    with TritonProcess(work / "model_repository", log_path=tmp_path / "server.log") as server:
        answers = {}
        for protocol, url in (("grpc", server.grpc_url), ("http", server.http_url)):
            result = tritonclf(
                "infer", "photos/val", "--url", url, "--protocol", protocol, "--model", "desserts", "--json", cwd=work
            )
            assert result.returncode == 1  # the broken files fail alone
            records = [json.loads(line) for line in result.stdout.splitlines()]
            assert [r["path"] for r in records] == [str(p.relative_to(work)) for p in val_images]
            failed = {r["path"] for r in records if "error" in r}
            assert failed == broken_val
            assert '"label": "crème brûlée"' in result.stdout or '"label": "chat tigré"' in result.stdout
            assert result.stderr.startswith(f"infer: {len(failed)} of {len(records)} images failed")
            answers[protocol] = {r["path"]: r["predictions"][0]["label"] for r in records if "error" not in r}
        assert answers["grpc"] == answers["http"]
        right = sum(label == Path(path).parent.name for path, label in answers["grpc"].items())
        assert right >= 0.8 * len(answers["grpc"]), answers["grpc"]

        imagenet = tritonclf(
            "infer", "photos/val/chat tigré", "--url", server.grpc_url, "--model", "efficientnet_lite0", cwd=work
        )
        assert "cat" in imagenet.stdout  # the ImageNet model still answers with ImageNet classes

        evaluated = tritonclf(
            "evaluate", "--data", "photos", "--checkpoint", "runs/desserts/best.pth", "--url", server.grpc_url,
            "--model", "desserts", "--json", "--min-agreement", "1", cwd=work,
        )  # fmt: skip
        assert evaluated.returncode == 0, evaluated.stderr
        assert "skipped 1 file(s): unreadable image" in evaluated.stderr  # the text file in val/, not train's
        assert "crème brûlée" in evaluated.stdout  # JSON keeps the accents

        bench = tritonclf(
            "bench", "--images", "photos", "--url", server.grpc_url, "--protocol", "grpc", "--model", "desserts",
            "--export", "exports/desserts", "--concurrency", "1", "--warmup-s", "0", "--duration-s", "1",
            "--reference-duration-s", "0.5", "--output-dir", "results", cwd=work,
        )  # fmt: skip
    assert bench.returncode == 0, bench.stderr
    for path in [*broken["truncated"], *broken["not an image"], *broken["empty"]]:
        assert f"warning: leaving out {path.relative_to(work)}: " in bench.stderr
    result = json.loads((work / "results" / "latest-desserts.json").read_text())
    assert result["images"]["count"] == len(CLASSES) * (13 + 4)
    assert all(level["errors"] == 0 for level in result["served"])
    assert set(result["images"]["sizes"]) <= {"<0.5 MP", "0.5-2 MP", "2-10 MP", "10+ MP"}

    # The in-process API answers as the server did, and names the broken files by position.
    from tritonclf import Classifier
    from tritonclf.classifier import ImageFailed

    classifier = Classifier.load(work / "exports" / "desserts")
    results = classifier.predict_batch(val_images, top_k=1)
    for path, result_ in zip(val_images, results, strict=True):
        key = str(path.relative_to(work))
        if key in answers["grpc"]:
            assert result_[0].label == answers["grpc"][key]
        else:
            assert isinstance(result_, ImageFailed) and result_.source == str(path)
