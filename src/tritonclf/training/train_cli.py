r"""``tritonclf train``: fine-tune a timm classifier on an ImageFolder dataset, for serving on Triton.

    python training/train.py --data data/flowers --model efficientnet_lite0 --strategy gradual_unfreeze \
        --epochs 10 --output runs/flowers
    python training/train.py --config training/configs/digits.yaml --epochs 3    # YAML, flags override it
    python training/train.py --output runs/flowers --resume                      # continue it, with its config
    python training/train.py --output runs/flowers --force ...                   # start that run over
    torchrun --nproc-per-node 2 training/train.py --data ... --output ...       # DDP (gloo on CPU)
    python training/export.py --weights runs/flowers/best.pth                    # then serve it

The options, ``--help`` and the checks of the data folder and the run folder come
before torch is imported, so a typo is reported at once. An ``--output`` that already
holds a run is refused unless ``--resume`` continues it or ``--force`` replaces it. The
work is ``tritonclf.training.trainer``; the options ``tritonclf.training.config``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tritonclf.cli_options import EXIT_INTERRUPTED, fail
from tritonclf.training.config import ConfigError, TrainConfig, check_run_folder, parse_config


def interrupted(config: TrainConfig | None) -> int:
    """Say what Ctrl-C left behind: a run to resume, or nothing yet."""
    saved = config is not None and (Path(config.output) / "last.pth").is_file()
    hint = "continue with --resume" if saved else "no epoch was saved"
    print(f"train: interrupted; {hint}", file=sys.stderr)
    return EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    """Train; expected failures print one line and return 2 (``tritonclf.cli_options``)."""
    config = None
    try:
        config = parse_config(argv)
        check_run_folder(config)
        from tritonclf.training import trainer
    except ConfigError as err:
        return fail("train", err)
    except KeyboardInterrupt:
        return interrupted(config)
    try:
        trainer.train(config)
    except trainer.EXPECTED_ERRORS as err:
        return fail("train", err)
    except KeyboardInterrupt:
        return interrupted(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
