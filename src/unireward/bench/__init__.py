"""Reward benchmarks: loaders for local copies in their published layouts, the `reference` and `clean`
protocols, pure metric functions, resumable runs, Markdown reports and plots.

    unireward bench vlrb --model path/to/judge --data ~/data/VL-RewardBench --protocol clean --out runs/vlrb
    unireward bench sandbox --model runs/judge      # a plugin: the sandbox held-out split (runs/world)

Modules: `loaders` (benchmark -> items), `tables` (local hub copies), `protocols` (order and swaps),
`metrics` (pure), `report` (tables, Markdown, plot), `runner` (the run itself, whole or one shard), `merge` (shards
-> what one run writes).
"""

from .loaders import BENCHMARKS, benchmark_names, load_benchmark
from .merge import merge_bench
from .runner import BenchConfig, run_bench

__all__ = ["BENCHMARKS", "BenchConfig", "benchmark_names", "load_benchmark", "merge_bench", "run_bench"]
