#!/usr/bin/env bash
# The GPU kit's one entry point (written by `make gpu-kit`; docs/GPU.md explains it).
#   bash gpu-kit/run.sh                        # every phase on the GPU host, results.json beside this file
#   bash gpu-kit/run.sh --skip served          # a partial rerun; --results PATH to write elsewhere
#   bash gpu-kit/run.sh --libpython carried    # the stubs link the kit's libpython3.12 (default: the host's, if any)
#   PYTHON=.venv/bin/python bash gpu-kit/run.sh --cpu-smoke   # no GPU: prove the kit serves on the CPU
# PYTHON: the interpreter to run with (default: the GPU host's /opt/torch/.venv/bin/python3, else python3).
set -euo pipefail
KIT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
    PYTHON=/opt/torch/.venv/bin/python3
    [[ -x "$PYTHON" ]] || PYTHON="$(command -v python3)"
fi
[[ -x "$PYTHON" ]] || { echo "run.sh: no Python at PYTHON=$PYTHON" >&2; exit 2; }
# The package travels as source inside the kit: nothing is installed on the host.
export PYTHONPATH="$KIT/src${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" -m tritonclf_lab.gpu_kit.runner --kit "$KIT" "$@"
