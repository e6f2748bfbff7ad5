"""Training throughput per strategy on this machine: images/s of full optimizer steps.

    tritonclf bench-train                                      # EfficientNet-Lite0, 224 px, batch 16
    tritonclf bench-train --model resnet18 --input-size 64 --batch-size 32 --amp bf16 --json

Each strategy runs the training step of ``training/train.py`` (mixing, loss,
backward, AdamW, schedule) on synthetic in-memory batches, so the number is the
model's cost, not the disk's or the decoder's. ``gradual_unfreeze`` is measured
at each of its phases, from the head alone to every stage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from tritonclf.cli_options import fail
from tritonclf.training.loop import CosineSchedule, Step, train_one_epoch
from tritonclf.training.mixing import Mixer
from tritonclf.training.model import ModelError, create_model
from tritonclf.training.strategies import (
    STRATEGIES,
    apply_strategy,
    create_param_groups,
    find_stages,
    freeze_frozen_batchnorm,
)

NUM_CLASSES = 10


def measure(
    model: torch.nn.Module, strategy: str, epoch: int, args: argparse.Namespace, step: Step
) -> tuple[float, int]:
    """(images/s, trainable parameters) of ``args.steps`` timed steps after one warm-up step."""
    stages = find_stages(model)
    apply_strategy(model, stages, strategy, epoch=epoch, unfreeze_every=1)
    groups = create_param_groups(model, stages, strategy, lr_head=1e-3, lr_backbone=1e-4)
    optimizer = torch.optim.AdamW(groups)
    model.train()
    freeze_frozen_batchnorm(model)
    generator = torch.Generator().manual_seed(0)
    size = args.input_size

    def batches(count: int) -> list:
        return [
            (
                torch.randn(args.batch_size, 3, size, size, generator=generator),
                torch.randint(0, NUM_CLASSES, (args.batch_size,), generator=generator),
                torch.zeros(args.batch_size, dtype=torch.long),
            )
            for _ in range(count)
        ]

    schedule = CosineSchedule(total_steps=args.steps + 1)
    train_one_epoch(model, batches(1), optimizer, step=step, schedule=schedule, start_step=0)
    stats = train_one_epoch(model, batches(args.steps), optimizer, step=step, schedule=schedule, start_step=1)
    return stats.images_per_s, sum(p.numel() for p in model.parameters() if p.requires_grad)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="efficientnet_lite0", help="timm architecture (default: %(default)s)")
    parser.add_argument("--input-size", type=int, default=224, help="default: %(default)s")
    parser.add_argument("--batch-size", type=int, default=16, help="default: %(default)s")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per strategy (default: %(default)s)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated (default: all)")
    parser.add_argument("--amp", choices=("none", "bf16"), default="none", help="default: %(default)s")
    parser.add_argument("--threads", type=int, default=0, help="PyTorch CPU threads (default: every core)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Measure each strategy and print a table (or JSON lines)."""
    args = parse_args(argv)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        return fail("bench-train", f"unknown strategy {unknown[0]!r}: choose from {', '.join(STRATEGIES)}")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(args.threads or len(os.sched_getaffinity(0)))
    try:
        model = create_model(args.model, NUM_CLASSES, init="random").to(device)
    except ModelError as err:
        return fail("bench-train", err)
    step = Step(device, Mixer(NUM_CLASSES), torch.bfloat16 if args.amp == "bf16" else None)
    num_stages = len(find_stages(model).stages)
    print(
        f"{args.model}, {args.input_size} px, batch {args.batch_size}, {args.steps} steps, {device}"
        f"{f' ({torch.get_num_threads()} threads)' if device.type == 'cpu' else ''}, amp {args.amp}",
        file=sys.stderr if args.json else sys.stdout,
        flush=True,
    )
    for strategy in strategies:
        phases = range(num_stages + 1) if strategy == "gradual_unfreeze" else [0]
        for epoch in phases:
            images_per_s, trainable = measure(model, strategy, epoch, args, step)
            name = f"{strategy} ({epoch}/{num_stages} stages)" if strategy == "gradual_unfreeze" else strategy
            result = {
                "model": args.model,
                "strategy": strategy,
                "unfrozen_stages": epoch if strategy == "gradual_unfreeze" else None,
                "input_size": args.input_size,
                "batch_size": args.batch_size,
                "amp": args.amp,
                "device": str(device),
                "trainable_params": trainable,
                "images_per_s": round(images_per_s, 2),
            }
            if args.json:
                print(json.dumps(result), flush=True)
            else:
                print(f"{name:<36} {trainable:>12,} params  {images_per_s:8.1f} img/s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
