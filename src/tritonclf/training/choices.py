"""The values the training, export and evaluation options take, importable without torch.

The jobs check their arguments (and answer ``--help``) before they import torch, timm, cv2 or
albumentations, which take seconds; the modules that act on these values import them from here.
"""

from __future__ import annotations

STRATEGIES = ("feature_extract", "fine_tune_last", "gradual_unfreeze", "full")  # strategies.py
AUGMENTATION_PRESETS = ("light", "strong")  # augment.PRESETS
AUGMENTATIONS = ("none", *AUGMENTATION_PRESETS, "article")  # augment.TrainTransform
INITS = ("auto", "bundled", "hub", "random")  # model.create_model
BUNDLED_MODEL = "efficientnet_lite0"  # the architecture whose ImageNet weights ship in a package (weights.py)
EXPORT_FORMATS = {"onnx": ("onnx",), "torchscript": ("torchscript",), "both": ("onnx", "torchscript")}
DEFAULT_OPSET = 17
