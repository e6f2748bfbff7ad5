"""The export metadata file (``model.json`` beside ``model.onnx`` and/or ``model.pt``).

The export writes it, the repository build reads it: it is how the class labels and
the preprocessing spec travel from training to serving without being retyped.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tritonclf.preprocess import PreprocessSpec

METADATA_FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class ExportMetadata:
    """What the build needs to know about an exported classifier (ONNX, TorchScript or both).

    A file format that was not exported has an empty filename and hash.
    """

    model_name: str  # the timm architecture, e.g. "efficientnet_lite0"
    labels: tuple[str, ...]
    preprocess: PreprocessSpec
    onnx_filename: str
    onnx_sha256: str
    input_name: str
    output_name: str
    opset: int
    weights: str  # where the weights came from, for the record
    versions: dict[str, str]  # torch, timm, onnx... at export time
    # The weights as safetensors for --backend torch; empty in exports made before it existed.
    state_dict_filename: str = ""
    state_dict_sha256: str = ""
    torchscript_filename: str = ""
    torchscript_sha256: str = ""
    # The ensemble name ``tritonclf build`` gives it unless --name says otherwise: the run's name for
    # a fine-tuned model, so that it lands beside an ImageNet model of the same architecture.
    served_name: str = ""
    # The validation set's predictions (tritonclf.monitoring.reference), when one was recorded.
    reference_filename: str = ""

    @property
    def formats(self) -> tuple[str, ...]:
        """The exported file formats: ``onnx``, ``torchscript``."""
        files = (("onnx", self.onnx_filename), ("torchscript", self.torchscript_filename))
        return tuple(fmt for fmt, filename in files if filename)

    @property
    def ensemble_name(self) -> str:
        """The name the build serves this export under by default (exports without one: the architecture's)."""
        return self.served_name or self.model_name

    @property
    def num_classes(self) -> int:
        """Number of output classes."""
        return len(self.labels)

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        data = dataclasses.asdict(self)
        data["labels"] = list(self.labels)
        data["preprocess"] = self.preprocess.to_dict()
        data["format_version"] = METADATA_FORMAT_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ExportMetadata:
        """Inverse of :meth:`to_dict`."""
        if data.get("format_version") != METADATA_FORMAT_VERSION:
            raise ValueError(
                f"export metadata format {data.get('format_version')!r} is not {METADATA_FORMAT_VERSION}: "
                "re-export the model"
            )
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["labels"] = tuple(data["labels"])
        values["preprocess"] = PreprocessSpec.from_dict(data["preprocess"])
        return cls(**values)


def load_metadata(path: Path) -> ExportMetadata:
    """Read ``model.json``; a readable error if it is missing or malformed."""
    try:
        return ExportMetadata.from_dict(json.loads(Path(path).read_text()))
    except FileNotFoundError:
        raise FileNotFoundError(f"no export metadata at {path}: run training/export.py first") from None
    except (KeyError, TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"export metadata {path} is malformed ({err}): re-export the model") from None
