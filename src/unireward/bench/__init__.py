"""Reward benchmarks: loaders for local copies in their published layouts, the `reference` and `clean`
protocols, pure metric functions, resumable runs, Markdown reports and plots.

    unireward bench vlrb --model path/to/judge --data ~/data/VL-RewardBench --protocol clean --out runs/vlrb
    unireward bench sandbox --model runs/judge      # the sandbox held-out split (runs/world/heldout.jsonl)

Modules: `loaders` (benchmark -> items), `tables` (local hub copies), `protocols` (order and swaps),
`metrics` (pure), `report` (tables, Markdown, plot), `runner` (the run itself).
"""

from .loaders import BENCHMARKS, DEFAULT_SANDBOX_DATA, load_benchmark
from .runner import BenchConfig, run_bench

__all__ = ["BENCHMARKS", "DEFAULT_SANDBOX_DATA", "BenchConfig", "load_benchmark", "run_bench"]
