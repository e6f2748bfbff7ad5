"""Benchmark results say which preprocessing and classifier served them, so torch rows sit beside the default."""

from __future__ import annotations

from tritonclf_lab.bench.bench_cli import result_name
from tritonclf_lab.bench.bench_summary_cli import summary_row
from tritonclf_lab.bench.served import serving_variant

DEFAULT_CONFIGS = {
    "m_preprocess": {"backend": "python", "parameters": {"input_name": {"string_value": "image"}}},
    "m_model": {"backend": "python", "parameters": {"onnx_filename": {"string_value": "model.onnx"}}},
}
TORCH_CONFIGS = {
    "m_preprocess": {"backend": "python", "parameters": {"preprocessor": {"string_value": "torch"}}},
    "m_model": {"backend": "python", "parameters": {"weights_filename": {"string_value": "model.safetensors"}}},
}


def test_variant_names_the_preprocessing_and_the_classifier_backend():
    assert serving_variant(DEFAULT_CONFIGS, "m") == "pillow+python-ort"
    assert serving_variant(TORCH_CONFIGS, "m") == "torch+torch"
    assert serving_variant({"m_model": {"platform": "tensorrt_plan"}}, "m") == "pillow+trt"


def test_only_non_default_variants_get_their_own_result_file():
    assert result_name({"export": {"model_name": "m"}, "server": {"variant": "pillow+python-ort"}}) == "m"
    assert result_name({"export": {"model_name": "m"}, "server": {"variant": "torch+torch"}}) == "m-torch+torch"
    assert result_name({"export": {"model_name": "m"}, "server": {}}) == "m"


def test_summary_row_names_the_variant():
    result = {
        "export": {"model_name": "m"},
        "server": {"variant": "torch+python-ort"},
        "served": [],
        "served_large": None,
        "references": {},
        "comparison": {
            "latency": {"served_c1_p50_ms": None, "ratio": None},
            "served_vs_limit": None,
            "served_vs_inprocess": None,
            "served_vs_naive": None,
            "large": {"served_vs_naive": None},
        },
    }
    assert summary_row(result)[0] == "m (torch+python-ort)"
