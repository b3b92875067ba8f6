#!/usr/bin/env bash
# Create .venv (if missing) and install unireward with every extra, at the tested versions (constraints.txt).
#   bash install.sh            # then: .venv/bin/unireward demo
# Set PYTHON to choose the interpreter (default: python3, 3.10 or newer).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned with torchvision, so no other package pulls a different build
.venv/bin/python -m pip install -q -c constraints.txt torch torchvision
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
echo "unireward installed in .venv ($(.venv/bin/python -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'))"
