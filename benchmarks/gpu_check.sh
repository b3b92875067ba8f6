#!/usr/bin/env bash
# The prepared GPU check (issue 17): on a lent GPU, in under 8 minutes, the Qwen2.5-VL-7B configuration's batched
# decision throughput with its % of the prefill compute bound, the group speedup of the shared path and the vision
# tower's share of the forward, written to one JSON file (see benchmarks/gpu_check.py).
#
#   bash benchmarks/gpu_check.sh                           # GPU: writes gpu_check.json
#   bash benchmarks/gpu_check.sh --tiny --out /tmp/g.json  # tiny model on CPU (what the test runs)
#   UNIREWARD_GPU_CHECK_TINY=1 bash benchmarks/gpu_check.sh # the same switch from the environment
#
# Python: $PYTHON, else the repository's .venv, else python3. Stops after 480 s whatever happens.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
if [[ -n "${PYTHON:-}" ]]; then py="$PYTHON"
elif [[ -x "$root/.venv/bin/python" ]]; then py="$root/.venv/bin/python"
else py=python3; fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH="$root/src:$here${PYTHONPATH:+:$PYTHONPATH}"
if [[ "${UNIREWARD_GPU_CHECK_TINY:-0}" == 1 ]]; then set -- --tiny "$@"; fi
exec timeout 480 "$py" "$here/gpu_check.py" "$@"
