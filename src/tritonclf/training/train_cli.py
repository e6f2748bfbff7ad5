r"""Fine-tune a timm classifier on an ImageFolder dataset, for serving on Triton.

    python training/train.py --data data/flowers --model efficientnet_lite0 --strategy gradual_unfreeze \
        --epochs 10 --output runs/flowers
    python training/train.py --config training/configs/digits.yaml --epochs 3    # YAML, flags override it
    python training/train.py --config training/configs/digits.yaml --resume      # continue OUTPUT/last.pth
    torchrun --nproc-per-node 2 training/train.py --data ... --output ...       # DDP (gloo on CPU)
    python training/export.py --weights runs/flowers/best.pth                    # then serve it

OUTPUT gets ``best.pth`` and ``last.pth`` (weights, class names, preprocessing
spec, optimizer state), ``config.yaml`` (the resolved options), ``labels.txt``,
``metrics.csv``/``metrics.json`` (one row per epoch) and ``curves.png``.
Validation uses the served preprocessing (``tritonclf.preprocess``), so its
accuracy is what the served model should reach.
"""

from __future__ import annotations

import dataclasses
import os
import random
import sys
from pathlib import Path

import numpy as np
import torch
from timm.utils import ModelEmaV3
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from tritonclf.cli_options import EXIT_INTERRUPTED, fail
from tritonclf.files import write_atomic
from tritonclf.preprocess import DecodeLimits, PreprocessSpec
from tritonclf.training import checkpoint as ckpt
from tritonclf.training.augment import TrainTransform
from tritonclf.training.config import ConfigError, TrainConfig, create_mixer, parse_config, save_config
from tritonclf.training.curves import plot_curves, write_metrics
from tritonclf.training.data import DataError, EvalDataset, Splits, TrainDataset, load_splits
from tritonclf.training.distributed import Distributed, init_distributed, shutdown, wrap_model
from tritonclf.training.loop import CosineSchedule, Step, train_one_epoch, validate
from tritonclf.training.model import ModelError, NoWeights, create_model, resolve_spec
from tritonclf.training.strategies import (
    Stages,
    StrategyError,
    apply_strategy,
    create_param_groups,
    find_stages,
    freeze_frozen_batchnorm,
)
from tritonclf.training.weights import WeightsError


class TrainError(RuntimeError):
    """The run cannot continue as configured."""


def resolve_device(name: str, dist: Distributed) -> torch.device:
    """``auto``: this rank's GPU if there is one, else the CPU."""
    if name == "auto":
        return torch.device(f"cuda:{dist.local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainError(f"--device {name}: no CUDA device is available")
    return device


def _use_device(device: torch.device) -> torch.device:
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL and the caching allocator default to the current device
    return device


def set_cpu_threads(config: TrainConfig, dist: Distributed) -> int:
    """PyTorch's intra-op threads: asked for, or the cores left after the loader workers (per process).

    More busy threads than cores slows a CPU training step several times over
    (OpenMP threads wait on each other), so the workers' cores are not counted twice.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = config.threads or max(1, cores // dist.world_size - config.workers)
    torch.set_num_threads(threads)
    return threads


def seed_everything(seed: int) -> None:
    """Python, numpy and torch generators (model init, head init)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator: derive albumentations' seed from it.
    info = torch.utils.data.get_worker_info()
    info.dataset.transform.set_seed(torch.initial_seed() % 2**32)


def create_train_loader(
    dataset: TrainDataset, config: TrainConfig, dist: Distributed, epoch: int, device: torch.device
) -> DataLoader:
    """This epoch's loader: shuffled by a generator seeded with (seed, epoch), so a resumed run repeats it.

    Augmentation seeds also depend on the rank: each process of a DDP run augments differently.
    """
    epoch_seed = int(np.random.SeedSequence([config.seed, epoch, dist.rank]).generate_state(1)[0])
    generator = torch.Generator().manual_seed(epoch_seed)
    drop_last = len(dataset) > config.batch_size * dist.world_size
    if dist.enabled:
        sampler = DistributedSampler(dataset, dist.world_size, dist.rank, seed=config.seed, drop_last=True)
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(dataset, generator=generator)
    if config.workers == 0:
        dataset.transform.set_seed(epoch_seed)
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=config.workers,
        worker_init_fn=_seed_worker,
        generator=generator,
        drop_last=drop_last,
        pin_memory=device.type == "cuda",
    )


def create_val_loader(splits: Splits, spec: PreprocessSpec, config: TrainConfig, dist: Distributed) -> DataLoader:
    """Validation images through the served preprocessing; each rank takes every world_size-th image."""
    dataset = EvalDataset(splits.val[dist.rank :: dist.world_size], spec, DecodeLimits())
    return DataLoader(dataset, batch_size=config.batch_size, num_workers=config.workers)


def _autocast_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    if config.amp == "auto":
        return torch.float16 if device.type == "cuda" else None
    if config.amp == "fp16":
        if device.type != "cuda":
            raise TrainError("--amp fp16 needs a CUDA device; use --amp bf16 on the CPU")
        return torch.float16
    return torch.bfloat16 if config.amp == "bf16" else None


@dataclasses.dataclass
class Progress:
    """What ``--resume`` restores besides weights and optimizer: where the run is, and how it went."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    best: dict | None = None  # val metrics of the best epoch, with "epoch"
    bad_epochs: int = 0  # epochs since the best one
    history: list[dict] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Run:
    """Everything one training run works with, built once by :func:`create_run`."""

    config: TrainConfig
    dist: Distributed
    device: torch.device
    card: ckpt.ModelCard
    model: torch.nn.Module
    stages: Stages
    train_set: TrainDataset
    val_loader: DataLoader
    optimizer: torch.optim.Optimizer
    schedule: CosineSchedule
    step: Step

    @property
    def out(self) -> Path:
        """The run folder."""
        return Path(self.config.output)

    def say(self, message: str) -> None:
        """Print on rank 0 only."""
        if self.dist.is_main:
            print(message, flush=True)


def create_run(config: TrainConfig, dist: Distributed) -> Run:
    """Data, model, stages, optimizer, schedule: checked before the first step."""
    device = _use_device(resolve_device(config.device, dist))
    amp_dtype = _autocast_dtype(config, device)
    threads = set_cpu_threads(config, dist) if device.type == "cpu" else torch.get_num_threads()
    seed_everything(config.seed)
    splits = load_splits(Path(config.data), val_fraction=config.val_fraction, seed=config.seed)
    if dist.is_main:
        for warning in splits.warnings:
            print(f"warning: {warning}", flush=True)
    num_classes = len(splits.class_names)
    try:
        model = create_model(
            config.model, num_classes, init=config.init, weights=config.weights, drop_rate=config.drop_rate
        ).to(device)
    except NoWeights as err:
        raise ModelError(f"{err}; pass --weights FILE, --init hub (needs timm's hub) or --init random") from None
    spec = resolve_spec(model, config.input_size)
    stages = find_stages(model)
    train_set = TrainDataset(splits.train, spec, TrainTransform(spec, config.aug, config.hflip), DecodeLimits())
    groups = create_param_groups(
        model,
        stages,
        config.strategy,
        lr_head=config.lr_head,
        lr_backbone=config.lr_backbone,
        lr_stage_decay=config.lr_stage_decay,
        weight_decay=config.weight_decay,
    )
    steps_per_epoch = len(create_train_loader(train_set, config, dist, 0, device))
    mixer = create_mixer(config, num_classes)
    run = Run(
        config=config,
        dist=dist,
        device=device,
        card=ckpt.ModelCard(config.model, splits.class_names, spec),
        model=model,
        stages=stages,
        train_set=train_set,
        val_loader=create_val_loader(splits, spec, config, dist),
        optimizer=torch.optim.AdamW(groups),
        schedule=CosineSchedule(
            total_steps=config.epochs * steps_per_epoch,
            warmup_steps=round(config.warmup_epochs * steps_per_epoch),
            min_ratio=config.min_lr_ratio,
            steps_per_epoch=steps_per_epoch if config.schedule_unit == "epoch" else 0,
        ),
        step=Step(
            device=device,
            mixer=mixer,
            amp_dtype=amp_dtype,
            scaler=torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None,
            clip_grad=config.clip_grad,
            ema=ModelEmaV3(model, decay=config.ema_decay, use_warmup=True) if config.ema_decay else None,
            dist=dist,
        ),
    )
    run.say(
        f"{config.model}: {num_classes} classes, {len(splits.train)} train / {len(splits.val)} val images, "
        f"{len(stages.stages)} backbone stages, input {spec.input_size[0]}x{spec.input_size[1]}, "
        f"strategy {config.strategy}, {steps_per_epoch} steps/epoch, device {device}"
        + (f" x{dist.world_size}" if dist.enabled else "")
        + (f" ({threads} threads, {config.workers} loader workers)" if device.type == "cpu" else "")
    )
    return run


def checkpoint_state(run: Run, progress: Progress) -> dict:
    """The checkpoint dict: model card, weights, optimizer and progress (weights_only-loadable)."""
    state = {
        **run.card.to_dict(),
        "state_dict": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "config": run.config.to_dict(),
        **dataclasses.asdict(progress),
    }
    if run.step.ema is not None:
        state["state_dict_ema"] = run.step.ema.module.state_dict()
    if run.step.scaler is not None:
        state["scaler"] = run.step.scaler.state_dict()
    return state


def restore(run: Run, path: Path) -> Progress:
    """Load a checkpoint of the same model, classes and preprocessing into the run."""
    state = ckpt.load_checkpoint(path)
    if ckpt.read_model_card(state) != run.card:
        raise TrainError(f"{path} was trained with another model, classes or preprocessing than this run")
    run.model.load_state_dict(state["state_dict"])
    if run.step.ema is not None and "state_dict_ema" in state:
        run.step.ema.module.load_state_dict(state["state_dict_ema"])
    run.optimizer.load_state_dict(state["optimizer"])
    if run.step.scaler is not None and state.get("scaler"):
        run.step.scaler.load_state_dict(state["scaler"])
    return Progress(**{f.name: state[f.name] for f in dataclasses.fields(Progress)})


def train_epoch(run: Run, progress: Progress, train_model: torch.nn.Module) -> dict:
    """Train and validate one epoch; returns its metrics row."""
    config, epoch = run.config, progress.epoch
    run.model.train()
    freeze_frozen_batchnorm(run.model)
    run.step.mixer.rng = np.random.default_rng([config.seed, epoch, run.dist.rank])
    stats = train_one_epoch(
        train_model,
        create_train_loader(run.train_set, config, run.dist, epoch, run.device),
        run.optimizer,
        step=run.step,
        schedule=run.schedule,
        start_step=progress.step,
        description=f"epoch {epoch + 1}/{config.epochs}",
        progress=run.dist.is_main and sys.stderr.isatty(),
    )
    evaluated = run.step.ema.module if run.step.ema is not None else run.model
    val = validate(evaluated, run.val_loader, step=run.step, num_classes=len(run.card.class_names))
    progress.step += stats.steps
    return {
        "epoch": epoch + 1,
        "train_loss": round(stats.loss, 6),
        "train_top1": round(stats.top1, 6),
        "val_loss": round(val["loss"], 6),
        "val_top1": round(val["top1"], 6),
        "val_top5": round(val["top5"], 6),
        "val_images": val["n"],
        "lr_head": run.optimizer.param_groups[0]["lr"],
        "trainable_params": sum(p.numel() for p in run.model.parameters() if p.requires_grad),
        "train_images_per_s": round(stats.images_per_s, 2),
        "seconds": round(stats.seconds, 2),
        "skipped_images": stats.skipped,
    }


def _is_better(row: dict, best: dict | None) -> bool:
    if best is None:
        return True
    return row["val_top1"] > best["top1"] or (row["val_top1"] == best["top1"] and row["val_loss"] < best["loss"])


def fit(run: Run, progress: Progress) -> Progress:
    """Epochs from ``progress.epoch`` to the end (or early stop), checkpointing after each."""
    config, trained_names, train_model = run.config, None, run.model
    while progress.epoch < config.epochs:
        names = apply_strategy(run.model, run.stages, config.strategy, progress.epoch, config.unfreeze_every)
        if names != trained_names:
            trained_names, train_model = names, wrap_model(run.model, run.dist, run.device)
            count = sum(p.numel() for p in run.model.parameters() if p.requires_grad)
            run.say(f"epoch {progress.epoch + 1}: training {count:,} parameters")
        row = train_epoch(run, progress, train_model)
        improved = _is_better(row, progress.best)
        progress.epoch += 1
        progress.history.append(row)
        if improved:
            progress.best = {
                "epoch": row["epoch"],
                "top1": row["val_top1"],
                "top5": row["val_top5"],
                "loss": row["val_loss"],
            }
            progress.bad_epochs = 0
        else:
            progress.bad_epochs += 1
        if run.dist.is_main:
            state = checkpoint_state(run, progress)
            if improved:
                ckpt.save_checkpoint(run.out / "best.pth", state)
            ckpt.save_checkpoint(run.out / "last.pth", state)
            write_metrics(progress.history, run.out)
            plot_curves(progress.history, run.out / "curves.png")
        run.dist.barrier()
        run.say(
            f"epoch {row['epoch']}/{config.epochs}: train loss {row['train_loss']:.4f} top-1 {row['train_top1']:.3f} | "
            f"val loss {row['val_loss']:.4f} top-1 {row['val_top1']:.3f} top-5 {row['val_top5']:.3f} | "
            f"{row['train_images_per_s']:.1f} img/s{' | best' if improved else ''}"
            + (f" | {row['skipped_images']} unreadable images skipped" if row["skipped_images"] else "")
        )
        if config.patience and progress.bad_epochs >= config.patience:
            run.say(f"early stopping: no better val top-1 for {progress.bad_epochs} epochs")
            break
    return progress


def train(config: TrainConfig) -> Progress:
    """Run (or resume) a whole training; returns where it ended, with the best epoch's metrics."""
    dist = init_distributed(torch.device("cuda" if config.device != "cpu" and torch.cuda.is_available() else "cpu"))
    try:
        run = create_run(config, dist)
        progress = Progress()
        if config.resume:
            path = run.out / "last.pth" if config.resume == "auto" else Path(config.resume)
            progress = restore(run, path)
            run.say(f"resumed from {path} after epoch {progress.epoch}")
            if progress.epoch >= config.epochs:
                run.say(f"{path} has already trained {progress.epoch} epochs: raise --epochs to train more")
                return progress
        if dist.is_main:
            run.out.mkdir(parents=True, exist_ok=True)
            save_config(config, run.out / "config.yaml")
            write_atomic(run.out / "labels.txt", "".join(f"{name}\n" for name in run.card.class_names))
        progress = fit(run, progress)
        best = progress.best
        run.say(
            f"best val top-1 {best['top1']:.4f} (epoch {best['epoch']}): {run.out / 'best.pth'}\n"
            f"export it: python training/export.py --weights {run.out / 'best.pth'} --output exports/{run.out.name}"
        )
        return progress
    finally:
        shutdown(dist)


def main(argv: list[str] | None = None) -> int:
    """Train; expected failures print one line and return 2 (``tritonclf.cli_options``)."""
    try:
        config = parse_config(argv)
        train(config)
    except (ConfigError, DataError, ModelError, StrategyError, WeightsError, TrainError, ValueError) as err:
        return fail("train", err)
    except KeyboardInterrupt:
        print("train: interrupted; continue with --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
