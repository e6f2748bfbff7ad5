"""``import tritonclf`` stays light; ``tritonclf.Classifier`` is imported on first use."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_package_pulls_in_nothing_heavy():
    code = (
        "import sys, tritonclf\n"
        "heavy = [m for m in ('torch', 'onnxruntime', 'numpy', 'PIL', 'timm', 'tritonclient') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert tritonclf.Classifier.__name__ == 'Classifier'\n"
        "assert 'onnxruntime' not in sys.modules and 'torch' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_unknown_attributes_still_raise_attribute_error():
    import tritonclf

    try:
        tritonclf.NoSuchThing  # noqa: B018
    except AttributeError as err:
        assert "NoSuchThing" in str(err)
    else:
        raise AssertionError("tritonclf.NoSuchThing resolved")
