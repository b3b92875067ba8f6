#!/bin/bash
# The GPU sweep: the ladder variants gpu_*.yaml side by side on one lent GPU machine, then each final judge on
# the validation split, then (time allowing) the 7B judge throughput. Logs, records and final judges go to $OUT.
#   run: bash benchmarks/sandbox_gpu_sweep.sh   (LIMIT: seconds for the ladders, default 420)
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
nvidia-smi -L; python3 -c "import transformers, torch; print(transformers.__version__, torch.__version__)"
names=$(ls src/unireward/configs/sandbox/experiments/gpu_*.yaml | sed 's/.*gpu_\(.*\)\.yaml/\1/')
for x in $names; do
  timeout ${LIMIT:-420} python3 -m unireward.sandbox.ladder --config sandbox/experiments/gpu_$x \
    > $OUT/log_$x.txt 2>&1 &
done
wait
for x in $names; do
  mkdir -p $OUT/$x; cp runs/exp-$x/ladder.json runs/exp-$x/*/stage.json runs/exp-$x/*/eval.json $OUT/$x/ 2>/dev/null
  for d in runs/exp-$x/*/; do [ -f $d/stage.json ] && cp $d/stage.json $OUT/$x/$(basename $d).stage.json; done
  last=$(ls -d runs/exp-$x/[0-9]-*/ 2>/dev/null | tail -1)
  [ -n "$last" ] && [ -f $last/stage.json ] && cp -r $last $OUT/$x/final && \
    timeout 60 python3 -c "
import json, sys
from unireward.sandbox.ladder import evaluate_judge, _short
r = evaluate_judge('$last', n=48, split='val'); print('val $x', _short(r)); json.dump(r, open('$OUT/$x/val.json', 'w'))
" 2>&1 | grep "^val" &
done
wait
grep -h "eval\|stage" $OUT/log_*.txt | grep -v "Warn\|it/s" | tail -60
