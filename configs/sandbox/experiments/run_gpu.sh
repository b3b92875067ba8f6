#!/bin/bash
# runs experiments A and B side by side on one GPU machine; logs and stage records go to $OUT
export PYTHONPATH=src PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
nvidia-smi -L; python3 -c "import transformers, torch; print(transformers.__version__, torch.__version__)"
for x in a b; do
  timeout ${LIMIT:-500} python3 -m unireward.sandbox.ladder --config configs/sandbox/experiments/gpu_$x.yaml progress=false > $OUT/log_$x.txt 2>&1 &
done
wait
for x in a b; do
  python3 - $x <<'PY'
import json, glob, sys, os
x = sys.argv[1]
out = {p: json.load(open(p)) for p in sorted(glob.glob(f"runs/exp-{x}/*/stage.json") + glob.glob(f"runs/exp-{x}/*/eval.json"))}
json.dump(out, open(os.environ["OUT"] + f"/stages_{x}.json", "w"), indent=1)
PY
done
grep -h "eval\|stage" $OUT/log_*.txt | grep -v Warn | tail -40
