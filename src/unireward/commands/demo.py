"""`unireward demo`: the offline sandbox, end to end (world -> judge -> evaluation -> preference data -> DPO ->
report). See `unireward.sandbox.demo` for what each step does.

    unireward demo                   # quick preset: the shipped judge and weak generator (minutes), in runs/demo
    unireward demo --from-scratch    # retrain both with the recipes recorded beside them (over an hour)
    unireward demo --preset full     # the ladder preset of configs/sandbox/ladder.yaml, larger DPO budget
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="run the offline sandbox demo end to end", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/demo", help="output and cache folder (default runs/demo)")
    p.add_argument("--preset", default="quick", choices=["quick", "full", "smoke"])
    p.add_argument("--from-scratch", action="store_true", help="delete cached stages and retrain all")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..sandbox.demo import config_from_args, run_demo

    run_demo(config_from_args(args))
    return 0
