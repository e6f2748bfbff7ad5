"""Turn an export into a Triton model repository: configs, engines, accuracy gate, preflight, upload."""
