"""The trainer: fine-tune a timm classifier on an ImageFolder dataset, for serving on Triton.

    config = parse_config(["--data", "photos", "--output", "runs/photos"])   # training/config.py
    state = train(config)      # TrainingState: epochs done, best epoch's metrics, history

``tritonclf train`` (``training/train_cli.py``) checks the options and calls :func:`train`.
OUTPUT gets ``best.pth`` and ``last.pth`` (weights, class names, preprocessing
spec, optimizer state), ``config.yaml`` (the resolved options), ``labels.txt``,
``metrics.csv``/``metrics.json`` (one row per epoch) and ``curves.png``.
Validation uses the served preprocessing (``tritonclf.preprocess``), so its
accuracy is what the served model should reach. A file that fails to decode is
reported once, by name, the first epoch it is met, and counted in every epoch's line
(a training file only in the epochs that draw it: ``drop_last`` leaves a few out).
"""

from __future__ import annotations

import dataclasses
import os
import random
import shlex
import sys
from pathlib import Path

import numpy as np
import torch
from timm.utils import ModelEmaV3
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from tritonclf.files import write_atomic
from tritonclf.preprocess import DecodeLimits, PreprocessSpec
from tritonclf.training import checkpoint as ckpt
from tritonclf.training.augment import TrainTransform
from tritonclf.training.config import ConfigError, TrainConfig, clear_run_folder, create_mixer, save_config
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


# What a run reports as one line (``tritonclf train`` prints it and exits 2), not as a traceback.
EXPECTED_ERRORS = (ConfigError, DataError, ModelError, StrategyError, WeightsError, TrainError, ValueError)


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
class TrainingState:
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
    val_images: int  # in the whole validation split, every rank's share together
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
        val_images=len(splits.val),
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


def checkpoint_state(run: Run, state: TrainingState) -> dict:
    """The checkpoint dict: model card, weights, optimizer and training state (weights_only-loadable)."""
    checkpoint = {
        **run.card.to_dict(),
        "state_dict": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "config": run.config.to_dict(),
        **dataclasses.asdict(state),
    }
    if run.step.ema is not None:
        checkpoint["state_dict_ema"] = run.step.ema.module.state_dict()
    if run.step.scaler is not None:
        checkpoint["scaler"] = run.step.scaler.state_dict()
    return checkpoint


def restore(run: Run, path: Path) -> TrainingState:
    """Load a checkpoint of the same model, classes and preprocessing into the run."""
    checkpoint = ckpt.load_checkpoint(path)
    if ckpt.read_model_card(checkpoint) != run.card:
        raise TrainError(f"{path} was trained with another model, classes or preprocessing than this run")
    run.model.load_state_dict(checkpoint["state_dict"])
    if run.step.ema is not None and "state_dict_ema" in checkpoint:
        run.step.ema.module.load_state_dict(checkpoint["state_dict_ema"])
    run.optimizer.load_state_dict(checkpoint["optimizer"])
    if run.step.scaler is not None and checkpoint.get("scaler"):
        run.step.scaler.load_state_dict(checkpoint["scaler"])
    return TrainingState(**{f.name: checkpoint[f.name] for f in dataclasses.fields(TrainingState)})


def train_epoch(run: Run, state: TrainingState, train_model: torch.nn.Module) -> dict:
    """Train and validate one epoch; returns its metrics row."""
    config, epoch = run.config, state.epoch
    run.model.train()
    freeze_frozen_batchnorm(run.model)
    run.step.mixer.rng = np.random.default_rng([config.seed, epoch, run.dist.rank])
    stats = train_one_epoch(
        train_model,
        create_train_loader(run.train_set, config, run.dist, epoch, run.device),
        run.optimizer,
        step=run.step,
        schedule=run.schedule,
        start_step=state.step,
        description=f"epoch {epoch + 1}/{config.epochs}",
        progress=run.dist.is_main and sys.stderr.isatty(),
    )
    evaluated = run.step.ema.module if run.step.ema is not None else run.model
    val = validate(evaluated, run.val_loader, step=run.step, num_classes=len(run.card.class_names))
    # Each unreadable file is named once: the training files met so far, and all the validation files.
    run.train_set.reported |= stats.failed_indices
    run.val_loader.dataset.report = False
    state.step += stats.steps
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
        "skipped_val_images": max(0, run.val_images - val["n"]),
    }


def _is_better(row: dict, best: dict | None) -> bool:
    if best is None:
        return True
    return row["val_top1"] > best["top1"] or (row["val_top1"] == best["top1"] and row["val_loss"] < best["loss"])


def _skipped_note(row: dict) -> str:
    """`` | 2 unreadable images skipped (1 train, 1 val)``, or nothing."""
    train, val = row["skipped_images"], row.get("skipped_val_images", 0)
    if not train + val:
        return ""
    return f" | {train + val} unreadable images skipped ({train} train, {val} val)"


def fit(run: Run, state: TrainingState) -> TrainingState:
    """Epochs from ``state.epoch`` to the end (or early stop), checkpointing after each."""
    config, trained_names, train_model = run.config, None, run.model
    while state.epoch < config.epochs:
        names = apply_strategy(run.model, run.stages, config.strategy, state.epoch, config.unfreeze_every)
        if names != trained_names:
            trained_names, train_model = names, wrap_model(run.model, run.dist, run.device)
            count = sum(p.numel() for p in run.model.parameters() if p.requires_grad)
            run.say(f"epoch {state.epoch + 1}: training {count:,} parameters")
        row = train_epoch(run, state, train_model)
        improved = _is_better(row, state.best)
        state.epoch += 1
        state.history.append(row)
        if improved:
            state.best = {
                "epoch": row["epoch"],
                "top1": row["val_top1"],
                "top5": row["val_top5"],
                "loss": row["val_loss"],
            }
            state.bad_epochs = 0
        else:
            state.bad_epochs += 1
        if run.dist.is_main:
            checkpoint = checkpoint_state(run, state)
            if improved:
                ckpt.save_checkpoint(run.out / "best.pth", checkpoint)
            ckpt.save_checkpoint(run.out / "last.pth", checkpoint)
            write_metrics(state.history, run.out)
            plot_curves(state.history, run.out / "curves.png")
        run.dist.barrier()
        run.say(
            f"epoch {row['epoch']}/{config.epochs}: train loss {row['train_loss']:.4f} top-1 {row['train_top1']:.3f} | "
            f"val loss {row['val_loss']:.4f} top-1 {row['val_top1']:.3f} top-5 {row['val_top5']:.3f} | "
            f"{row['train_images_per_s']:.1f} img/s{' | best' if improved else ''}" + _skipped_note(row)
        )
        if config.patience and state.bad_epochs >= config.patience:
            run.say(f"early stopping: no better val top-1 for {state.bad_epochs} epochs")
            break
    return state


def export_hint(out: Path) -> str:
    """The export command for a run's best checkpoint, quoted for a shell."""
    weights, output = shlex.quote(str(out / "best.pth")), shlex.quote(str(Path("exports") / out.name))
    return f"python training/export.py --weights {weights} --output {output}"


def train(config: TrainConfig) -> TrainingState:
    """Run (or resume) a whole training; returns where it ended, with the best epoch's metrics.

    ``config`` is one ``parse_config`` resolved and ``check_run_folder`` accepted.
    """
    dist = init_distributed(torch.device("cuda" if config.device != "cpu" and torch.cuda.is_available() else "cpu"))
    try:
        run = create_run(config, dist)
        state = TrainingState()
        if config.resume:
            path = run.out / "last.pth" if config.resume == "auto" else Path(config.resume)
            state = restore(run, path)
            run.say(f"resumed from {path} after epoch {state.epoch}")
            if state.epoch >= config.epochs:
                run.say(f"{path} has already trained {state.epoch} epochs: raise --epochs to train more")
                return state
        if dist.is_main:
            if config.force:
                clear_run_folder(run.out)
            run.out.mkdir(parents=True, exist_ok=True)
            save_config(config, run.out / "config.yaml")
            write_atomic(run.out / "labels.txt", "".join(f"{name}\n" for name in run.card.class_names))
        state = fit(run, state)
        best = state.best
        run.say(
            f"best val top-1 {best['top1']:.4f} (epoch {best['epoch']}): {run.out / 'best.pth'}\n"
            f"export it: {export_hint(run.out)}"
        )
        return state
    finally:
        shutdown(dist)
