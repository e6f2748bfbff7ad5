"""The training configuration: defaults < YAML file (``--config``) < command-line flags.

    config = parse_config(["--config", "digits.yaml", "--epochs", "3"])
    config = parse_config(["--output", "runs/digits", "--resume"])   # the run folder's own config.yaml
    check_run_folder(config)                        # the data exists; an existing run needs --resume or --force
    save_config(config, out / "config.yaml")       # the resolved values, beside every run

Every option is a field of :class:`TrainConfig`; a YAML file uses the same names
(``lr_head: 0.001``), the command line the dashed ones (``--lr-head 0.001``).
Nothing here imports torch: ``tritonclf train`` checks its arguments in a fraction of a second.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from tritonclf.files import write_atomic
from tritonclf.training.choices import AUGMENTATIONS, INITS, STRATEGIES

if TYPE_CHECKING:
    from tritonclf.training.mixing import Mixer

AMP_MODES = ("none", "auto", "fp16", "bf16")
SCHEDULE_UNITS = ("step", "epoch")
# timm's train.py spellings, accepted beside ours: the same option under timm's name.
TIMM_ALIASES = {"smoothing": "label_smoothing", "drop": "drop_rate"}
# The files a training run writes into its folder (beside them, evaluate's eval/ and the user's own).
RUN_FILES = ("config.yaml", "labels.txt", "best.pth", "last.pth", "metrics.csv", "metrics.json", "curves.png")
# Options whose meaning moved: a saved config naming them says what to write instead.
_RETIRED = {
    "mixup_alpha": "--mixup is the mixup alpha (as in timm) and --mixup-prob the chance per batch",
    "cutmix_alpha": "--cutmix is the CutMix alpha (as in timm) and --mixup-switch-prob picks between them",
}


class ConfigError(ValueError):
    """A config file or flag that cannot be used; one line for the user."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every training option, with its default."""

    data: Path | None = None
    output: Path | None = None
    model: str = "efficientnet_lite0"
    init: str = "auto"
    weights: Path | None = None
    strategy: str = "fine_tune_last"
    unfreeze_every: int = 1
    epochs: int = 10
    batch_size: int = 32
    lr_head: float = 1e-3
    lr_backbone: float = 1e-4
    lr_stage_decay: float = 1.0
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    schedule_unit: str = "step"
    label_smoothing: float = 0.1
    mixup: float = 0.0
    cutmix: float = 0.0
    mixup_prob: float = 1.0
    mixup_switch_prob: float = 0.5
    drop_rate: float = 0.0
    aug: str = "light"
    hflip: float = 0.5
    input_size: int | None = None
    amp: str = "none"
    clip_grad: float = 0.0
    patience: int = 0
    ema_decay: float = 0.0
    seed: int = 42
    val_fraction: float = 0.2
    workers: int = 2
    threads: int = 0
    device: str = "auto"
    resume: str | None = None
    force: bool = False  # start over in a folder that holds a run; never saved in config.yaml

    def to_dict(self) -> dict:
        """YAML-ready values (paths as strings)."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()}


_HELP = {
    "data": "ImageFolder root: DIR/train/<class>/*, optionally DIR/val/<class>/*",
    "output": "run folder: checkpoints, metrics, curves, resolved config",
    "model": "timm architecture",
    "init": f"backbone weights: {', '.join(INITS)} (auto = bundled for efficientnet_lite0)",
    "weights": "backbone weights file (a timm or ImageNet checkpoint; its head is dropped)",
    "strategy": f"which parameters train: {', '.join(STRATEGIES)}",
    "unfreeze_every": "gradual_unfreeze: epochs between unfreezing one more stage",
    "lr_head": "learning rate of the new head",
    "lr_backbone": "learning rate of the last backbone stage",
    "lr_stage_decay": "LR multiplier per stage below the last (1 = same LR for the whole backbone)",
    "warmup_epochs": "linear LR warmup before the cosine decay (fractions allowed)",
    "min_lr_ratio": "the cosine schedule ends at this fraction of each LR",
    "schedule_unit": "step: the LR changes every step; epoch: once per epoch (torch's CosineAnnealingLR)",
    "label_smoothing": "label smoothing (timm: --smoothing)",
    "mixup": "mixup Beta alpha as in timm, 0 = off (e.g. 0.8); an alpha, not a probability",
    "cutmix": "CutMix Beta alpha as in timm, 0 = off (e.g. 1.0)",
    "mixup_prob": "probability that a batch is mixed when --mixup or --cutmix is on (timm)",
    "mixup_switch_prob": "probability of CutMix instead of mixup when both are on (timm)",
    "drop_rate": "dropout before the classifier head (timm's drop_rate; timm: --drop)",
    "aug": f"augmentation preset: {', '.join(AUGMENTATIONS)}",
    "hflip": "horizontal flip probability (0 for text, digits, asymmetric objects)",
    "input_size": "train and serve at this square size instead of the model's default",
    "amp": "mixed precision: fp16 (CUDA, with GradScaler), bf16 (CPU or CUDA), auto (fp16 on CUDA, else none)",
    "clip_grad": "clip the gradient norm to this value (0 = off)",
    "patience": "stop after this many epochs without a better val top-1 (0 = off)",
    "ema_decay": "keep an EMA of the weights, validated and exported instead (e.g. 0.998; 0 = off)",
    "val_fraction": "share of each class held out when there is no val/ folder",
    "workers": "DataLoader worker processes",
    "threads": "CPU threads for PyTorch (0 = the cores left after the workers)",
    "device": "auto, cpu, cuda or cuda:N",
    "resume": "continue from a checkpoint (no value: OUTPUT/last.pth) with the run's config.yaml, flags over it",
    "force": "train into an --output that holds a run, replacing it (default: refuse)",
}


def build_parser() -> argparse.ArgumentParser:
    """A flag per field; flags left out stay absent so YAML values are not overridden by defaults."""
    parser = argparse.ArgumentParser(
        description="Fine-tune a timm classifier on an ImageFolder dataset.", allow_abbrev=False
    )
    parser.add_argument("--config", type=Path, help="YAML file with any of the options below; flags override it")
    choices = {
        "strategy": STRATEGIES,
        "aug": AUGMENTATIONS,
        "init": INITS,
        "amp": AMP_MODES,
        "schedule_unit": SCHEDULE_UNITS,
    }
    aliases = {ours: theirs for theirs, ours in TIMM_ALIASES.items()}
    for field in dataclasses.fields(TrainConfig):
        flags = ["--" + field.name.replace("_", "-")]
        if field.name in aliases:
            flags.append("--" + aliases[field.name].replace("_", "-"))
        kwargs = {"default": argparse.SUPPRESS, "help": _HELP.get(field.name, "")}
        default = field.default
        if field.name == "resume":
            kwargs.update(nargs="?", const="auto", metavar="CHECKPOINT")
        elif field.name == "force":
            kwargs["action"] = "store_true"
        elif field.name in choices:
            kwargs["choices"] = choices[field.name]
        else:
            kwargs["type"] = _field_type(field)
        if default is not None and field.name not in ("resume", "force"):
            kwargs["help"] += f" (default: {default})"
        parser.add_argument(*flags, dest=field.name, **kwargs)
    return parser


def _field_type(field: dataclasses.Field) -> type:
    annotation = str(field.type)
    for name, kind in (("Path", Path), ("int", int), ("float", float), ("bool", bool)):
        if annotation.startswith(name):
            return kind
    return str


def _coerce(values: dict, source: str) -> dict:
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    retired = sorted(set(values) & set(_RETIRED))
    if retired:
        raise ConfigError(f"{source}: {retired[0]!r} is gone: {_RETIRED[retired[0]]}")
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown option {unknown[0]!r} (options: {', '.join(fields)})")
    coerced = {}
    for key, value in values.items():
        kind = _field_type(fields[key])
        try:
            coerced[key] = None if value is None else kind(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{source}: {key} must be a {kind.__name__}, got {value!r}") from None
    return coerced


def load_yaml(path: Path) -> dict:
    """A YAML mapping of option names to values."""
    import yaml  # here, not above: `tritonclf train --help` runs where only the client is installed

    try:
        values = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {' '.join(str(err).split())[:200]}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option: value")
    names = (str(k).replace("-", "_") for k in values)
    return _coerce({TIMM_ALIASES.get(n, n): v for n, v in zip(names, values.values(), strict=True)}, str(path))


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    """Resolve defaults < ``--config`` YAML < flags into a checked :class:`TrainConfig`.

    ``--resume`` without ``--config`` reads the run folder's own ``config.yaml`` (the folder of
    ``--output``, or of the checkpoint named): the flags given then change only what they name.
    """
    args = vars(build_parser().parse_args(argv))
    config_file = args.pop("config", None)
    flags = _coerce(args, "command line")
    values = {}
    if config_file is None and flags.get("resume"):
        config_file = _run_config(flags)
        if flags["resume"] != "auto" and "output" not in flags:
            values["output"] = Path(flags["resume"]).parent  # the run folder is where its checkpoint is
    values = {**(load_yaml(config_file) if config_file else {}), **values}
    values.update(flags)
    config = TrainConfig(**values)
    check_config(config)
    return config


def _run_config(flags: dict) -> Path | None:
    """The ``config.yaml`` of the run ``--resume`` continues, when there is one."""
    resume, output = flags["resume"], flags.get("output")
    folder = Path(output) if output is not None else None if resume == "auto" else Path(resume).parent
    if folder is None:
        raise ConfigError("--resume needs the run folder: --output RUN (or --config RUN/config.yaml)")
    path = folder / "config.yaml"
    if path.is_file():
        return path
    if flags.get("data") is None:
        raise ConfigError(f"nothing to resume in {folder}: it has no config.yaml (a run folder has one)")
    return None


def check_config(config: TrainConfig) -> None:
    """Reject values no training can use, before any work starts."""
    if config.data is None or config.output is None:
        raise ConfigError("--data and --output are required (on the command line or in --config)")
    if config.strategy not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}, not {config.strategy!r}")
    if config.aug not in AUGMENTATIONS:
        raise ConfigError(f"aug must be one of {', '.join(AUGMENTATIONS)}, not {config.aug!r}")
    if config.amp not in AMP_MODES:
        raise ConfigError(f"amp must be one of {', '.join(AMP_MODES)}, not {config.amp!r}")
    if config.schedule_unit not in SCHEDULE_UNITS:
        raise ConfigError(f"schedule_unit must be one of {', '.join(SCHEDULE_UNITS)}, not {config.schedule_unit!r}")
    if not 0.0 <= config.drop_rate < 1.0:
        raise ConfigError(f"--drop-rate must be in [0, 1), got {config.drop_rate}")
    if config.epochs < 1 or config.batch_size < 1:
        raise ConfigError("--epochs and --batch-size must be at least 1")
    if min(config.workers, config.threads, config.patience) < 0 or config.unfreeze_every < 1:
        raise ConfigError("--workers, --threads and --patience must be >= 0, --unfreeze-every >= 1")
    if not 0.0 <= config.ema_decay < 1.0:
        raise ConfigError(f"--ema-decay must be in [0, 1), got {config.ema_decay}")
    if config.input_size is not None and config.input_size < 8:
        raise ConfigError(f"--input-size must be at least 8 pixels, got {config.input_size}")
    _check_mixing(config)
    if config.resume and config.force:
        raise ConfigError("--resume continues the run and --force replaces it: pass one of them")


def _check_mixing(config: TrainConfig) -> None:
    """Mixup / CutMix knobs as timm reads them (``mixing.Mixer`` holds the same rules)."""
    if min(config.mixup, config.cutmix) < 0:
        raise ConfigError(
            f"--mixup and --cutmix are Beta alphas as in timm (0 = off), got {config.mixup} and {config.cutmix}"
        )
    for flag, value in (("--mixup-prob", config.mixup_prob), ("--mixup-switch-prob", config.mixup_switch_prob)):
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{flag} is a probability in [0, 1], got {value}")
    if not 0.0 <= config.label_smoothing < 1.0:
        raise ConfigError(f"--label-smoothing must be in [0, 1), got {config.label_smoothing}")


def check_run_folder(config: TrainConfig) -> None:
    """What the file system must hold for this run: the data, and no other run in ``--output`` unless asked.

    Without ``--resume`` or ``--force``, a folder that holds a run's files is refused: training
    would overwrite its checkpoints and config with another run's.
    """
    if not Path(config.data).is_dir():
        raise ConfigError(f"data folder {config.data} does not exist")
    output = Path(config.output)
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output} is a file, not a run folder")
    if config.resume:
        checkpoint = output / "last.pth" if config.resume == "auto" else Path(config.resume)
        if not checkpoint.is_file():
            raise ConfigError(f"nothing to resume: {checkpoint} does not exist (train without --resume to start)")
        return
    existing = [name for name in RUN_FILES if (output / name).exists()]
    if existing and not config.force:
        raise ConfigError(
            f"{output} already holds a training run ({', '.join(existing[:3])}): continue it with --resume, "
            "start over in it with --force, or pick another --output"
        )


def clear_run_folder(output: Path) -> None:
    """Remove a previous run's files (``--force``), so none of them is mistaken for the new run's."""
    for name in RUN_FILES:
        (Path(output) / name).unlink(missing_ok=True)


def create_mixer(config: TrainConfig, num_classes: int) -> Mixer:
    """The batch mixer the config asks for (timm's meaning of every knob)."""
    from tritonclf.training.mixing import Mixer

    return Mixer(
        num_classes,
        mixup_alpha=config.mixup,
        cutmix_alpha=config.cutmix,
        prob=config.mixup_prob,
        switch_prob=config.mixup_switch_prob,
        label_smoothing=config.label_smoothing,
    )


def save_config(config: TrainConfig, path: Path) -> None:
    """The resolved configuration, as YAML that ``--config`` reads back."""
    # Rerunning the saved config starts a run: it neither resumes nor replaces one.
    values = {key: value for key, value in config.to_dict().items() if key != "force"}
    values["resume"] = None
    import yaml

    write_atomic(path, yaml.safe_dump(values, sort_keys=False))
