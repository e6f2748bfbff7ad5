"""Every hostile input of the catalogue is rejected in-process, fast, with exactly the documented line."""

from __future__ import annotations

import time

import pytest

from tritonclf.preprocess import REJECTION_REASONS, ImageRejected, PreprocessSpec, preprocess_image
from tritonclf_lab.bad_images import BAD_INPUTS, markdown_table

from ..conftest import ROOT

SPEC = PreprocessSpec(input_size=(224, 224))


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=lambda bad: bad.name)
def test_bad_input_is_rejected_fast_with_its_documented_message(bad):
    data = bad.make()
    start = time.process_time()
    with pytest.raises(ImageRejected) as info:
        preprocess_image(data, SPEC)
    assert time.process_time() - start < 0.1  # rejected from headers and sizes, before any real decoding
    assert str(info.value) == bad.message
    assert info.value.reason == bad.reason


def test_every_rejection_reason_has_a_catalogued_input():
    assert {bad.reason for bad in BAD_INPUTS} == set(REJECTION_REASONS)


def test_readme_table_lists_every_bad_input_with_its_message():
    assert markdown_table() in (ROOT / "README.md").read_text()
