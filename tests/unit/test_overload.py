"""Overload options: impossible queue bounds are refused."""

from __future__ import annotations

import pytest

from tritonclf.repository.models import BuildOptions


def test_negative_queue_bounds_are_refused():
    with pytest.raises(ValueError, match="0 \\(no bound\\) or positive"):
        BuildOptions(max_queue_size=-1)


# --- against the real server, built small on purpose: 1 preprocessing instance, batches of 2, 2 queued ---
