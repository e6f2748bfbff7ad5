"""The serving contract: tensor and model names, defined once.

The ONNX export names its graph's input and output with these, the repository
builder writes them into every config, the Python-backend models read them, and
the clients send and ask for them. Changing one here changes it everywhere.
"""

IMAGE_INPUT = "image"  # encoded image bytes, TYPE_STRING, one image per batch item
PIXELS = "pixel_values"  # preprocessed float32 NCHW batch
PROBABILITIES = "probabilities"  # softmax output, float32 [num_classes]
# The classifier's probabilities inside an ensemble that ends with the monitor step.
CLASSIFIER_PROBABILITIES = "classifier_probabilities"

PREPROCESS_SUFFIX = "_preprocess"
CLASSIFIER_SUFFIX = "_model"
MONITOR_SUFFIX = "_monitor"
LABELS_FILENAME = "labels.txt"
ONNX_FILENAME = "model.onnx"
TORCHSCRIPT_FILENAME = "model.pt"  # also Triton's default file name for pytorch_libtorch
METADATA_FILENAME = "model.json"  # written by the export next to model.onnx
# The trained weights as tensors only (no pickled code), beside model.onnx: what --backend torch
# loads into the timm architecture named in model.json.
WEIGHTS_FILENAME = "model.safetensors"
MANIFEST_FILENAME = "manifest.json"  # written by the build into every version directory
# The validation set's predicted class frequencies and top-1 scores, beside model.json (which names it).
REFERENCE_FILENAME = "reference.json"


def preprocess_model_name(name: str) -> str:
    """Name of the preprocessing model behind ensemble ``name``."""
    return name + PREPROCESS_SUFFIX


def classifier_model_name(name: str) -> str:
    """Name of the classifier model behind ensemble ``name``."""
    return name + CLASSIFIER_SUFFIX


def monitor_model_name(name: str) -> str:
    """Name of the step after the classifier in ensemble ``name`` (prediction metrics, capture)."""
    return name + MONITOR_SUFFIX
