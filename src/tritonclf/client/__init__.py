"""Classify images against a running Triton server over gRPC or HTTP (needs only tritonclient and numpy)."""
