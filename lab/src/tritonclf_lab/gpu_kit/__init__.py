"""The GPU kit: a self-contained folder that runs the whole GPU path on a bare GPU host.

``make gpu-kit`` (``tritonclf gpu-kit``) writes ``gpu-kit/``: the embedded Triton server
stripped and compressed, numpy 1.26 for the server's stub, the export and repositories,
a copy of this package, and ``run.sh``, the one entry point. ``bash gpu-kit/run.sh`` runs
the phases (preflight, standalone, accuracy, served) and writes ``results.json`` as it
goes; ``bash gpu-kit/run.sh --cpu-smoke`` proves the kit complete on a machine without
a GPU. docs/GPU.md explains it.
"""
